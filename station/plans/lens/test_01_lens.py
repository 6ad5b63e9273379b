"""The ``lens`` plan, for a lab: each M lens of the run (``--lens``, or on the twin the whole lens catalogue)
profiled on a reference phone, scene by scene as in the factory plan (flat field, ChArUco and slanted edge,
Siemens star), one lens at a time; then a profile per lens and the calibration written into the phone.

The steps are the factory plan's M lens steps (``station.plans.factory``) without the main sensor's and the
bare M sensor's: a line runs ``factory`` per phone (with its reference lens), a lab runs ``lens``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from station.plans.factory import test_01_selfcheck as selfcheck
from station.plans.factory import test_02_flat as flat
from station.plans.factory import test_04_charts as charts
from station.plans.factory import test_05_peaking as peaking
from station.plans.factory import test_06_calibration as writeback
from station.plans.helpers import Kept

if TYPE_CHECKING:
    from station.station import Station


def test_mount_homing(station: Station, measure: Any) -> None:
    selfcheck.test_mount_homing(station, measure)


def test_light_linearity(station: Station, measure: Any) -> None:
    selfcheck.test_light_linearity(station, measure)


def test_lens_shading(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                      results: dict) -> None:
    flat.test_lens_shading(station, operator, m_lens, lit_bench, measure, results)


def test_lens_isp_calibration_written(station: Station, m_lens: str, measure: Any, results: dict) -> None:
    flat.test_lens_isp_calibration_written(station, m_lens, measure, results)


def test_lens_zebra_calibration(station: Station, operator: Any, m_lens: str, measure: Any) -> None:
    flat.test_lens_zebra_calibration(station, operator, m_lens, measure)


def test_lens_geometry(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    charts.test_lens_geometry(station, operator, m_lens, lit_bench, measure, results)


def test_sfr_stopped_down(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any, results: dict,
                          kept: Kept) -> None:
    charts.test_sfr_stopped_down(station, operator, m_lens, lit_bench, measure, results, kept)


def test_lens_lateral_ca(station: Station, m_lens: str, measure: Any, results: dict, kept: Kept) -> None:
    charts.test_lens_lateral_ca(station, m_lens, measure, results, kept)


def test_sfr_wide_open(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    charts.test_sfr_wide_open(station, operator, m_lens, lit_bench, measure, results)


def test_adapter_focus(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    charts.test_adapter_focus(station, operator, m_lens, lit_bench, measure, results)


def test_lens_peaking_calibration(station: Station, operator: Any, m_lens: str, measure: Any) -> None:
    peaking.test_lens_peaking_calibration(station, operator, m_lens, measure)


def test_lens_profile(station: Station, case: str, results: dict, profile_dir: Any, run_record: Any, measure: Any,
                      request: pytest.FixtureRequest) -> None:
    writeback.test_lens_profile(station, case, results, profile_dir, run_record, measure, request)


def test_calibration_writeback(station: Station, results: dict, measure: Any, run_record: Any) -> None:
    writeback.test_calibration_writeback(station, results, measure, run_record)
