"""Flat field on the holder (the plan's scenes come in the order that asks the operator least): the M sensor
bare (the light box through its sapphire cover glass), then the main sensor, then the M sensor through each M
lens wide open: EMVA 1288, lens shading and its map written into the phone; the main sensor's defect pixels and
its AWB against the golden module (``calibration.defects``, ``calibration.awb``); each lens's zebra calibrated
through its (now shading-corrected) preview.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from station.plans import steps
from station.plans.helpers import wide_open

if TYPE_CHECKING:
    from station.station import Station


@pytest.fixture(scope="module")
def bare_sensor(operator: Any) -> None:
    """The operator takes any M lens off."""
    operator.lens(None)


def test_m_bare_sensor_characterization(station: Station, operator: Any, bare_sensor: None, lit_bench: None,
                                        measure: Any, results: dict) -> None:
    steps.sensor_characterization(station, operator, measure, results, "m")


def test_m_bare_shading(station: Station, operator: Any, bare_sensor: None, lit_bench: None, measure: Any,
                        results: dict) -> None:
    steps.shading(station, operator, measure, results, "m")


def test_m_bare_isp_calibration_written(station: Station, measure: Any, results: dict) -> None:
    steps.isp_write(station, measure, results, "m")


def test_sensor_characterization(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.sensor_characterization(station, operator, measure, results, "main")


def test_shading(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.shading(station, operator, measure, results, "main")


def test_defect_pixels(station: Station, operator: Any, measure: Any, results: dict) -> None:
    steps.defect_pixels(station, operator, measure, results, "main")


def test_awb(station: Station, operator: Any, measure: Any, results: dict) -> None:
    steps.awb(station, operator, measure, results, "main")


def test_lens_shading(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                      results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.shading(station, operator, measure, results, "m", m_lens, wide_open(m_lens))


def test_lens_isp_calibration_written(station: Station, m_lens: str, measure: Any, results: dict) -> None:
    steps.isp_write(station, measure, results, "m", m_lens)


def test_lens_zebra_calibration(station: Station, operator: Any, m_lens: str, measure: Any) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.peaking_flats(station, operator, "m", m_lens, wide_open(m_lens))
    steps.zebra_calibration(station, operator, measure, "m", m_lens, wide_open(m_lens))
