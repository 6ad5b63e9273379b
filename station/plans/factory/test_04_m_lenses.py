"""M sensor with each M lens of the run (``--lens``, or the twin's catalog), one lens at a time: stopped down
(``STOPPED_DOWN``) geometry, SFR and lateral CA; wide open shading, SFR, the adapter's flange back-focus and
tilt from a through-focus sweep across the field; the lens's shading map written into the phone; zebra and
peaking calibrated through its preview.
"""

from __future__ import annotations

from typing import Any

import pytest

from station.procedures.geometry import lens_datasheet
from station.plans import steps

pytestmark = pytest.mark.bench

SENSOR = "m"
#: The stopped-down aperture (depth of field for the tilted board; the lens's sharpest region).
STOPPED_DOWN = 8.0


def stopped_down(lens: str) -> float:
    apertures = lens_datasheet(SENSOR, lens).apertures
    return STOPPED_DOWN if STOPPED_DOWN in apertures else float(max(apertures))


def wide_open(lens: str) -> float:
    return float(lens_datasheet(SENSOR, lens).apertures[0])


@pytest.fixture(scope="module")
def captures() -> dict[str, Any]:
    """Captures of this lens reused by a later step (the stopped-down SFR capture for the lateral CA)."""
    return {}


def test_geometry(station: Any, operator: Any, m_lens: str, lit_bench: None, measure: Any, results: dict) -> None:
    operator.set_aperture(m_lens, stopped_down(m_lens))
    steps.geometry(station, operator, measure, results, SENSOR, m_lens, stopped_down(m_lens))


def test_sfr_stopped_down(station: Any, operator: Any, m_lens: str, lit_bench: None, measure: Any, results: dict,
                          captures: dict) -> None:
    captures.clear()
    operator.set_aperture(m_lens, stopped_down(m_lens))
    captures["sfr"] = steps.sfr(station, operator, measure, results, SENSOR, m_lens, stopped_down(m_lens))


def test_lateral_ca(station: Any, m_lens: str, measure: Any, results: dict, captures: dict) -> None:
    if "sfr" not in captures:
        pytest.skip("no stopped-down slanted-edge capture (test_sfr_stopped_down did not measure)")
    steps.chromatic(station, measure, results, captures["sfr"])


def test_shading(station: Any, operator: Any, m_lens: str, lit_bench: None, measure: Any, results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.shading(station, operator, measure, results, SENSOR, m_lens, wide_open(m_lens))


def test_sfr_wide_open(station: Any, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.sfr(station, operator, measure, results, SENSOR, m_lens, wide_open(m_lens))


def test_adapter_focus(station: Any, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.focus(station, operator, measure, results, m_lens, wide_open(m_lens))


def test_isp_calibration_written(station: Any, m_lens: str, measure: Any, results: dict) -> None:
    steps.isp_write(station, measure, results, SENSOR, m_lens)


def test_zebra_calibration(station: Any, operator: Any, m_lens: str, measure: Any) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.zebra_calibration(station, operator, measure, SENSOR, m_lens, wide_open(m_lens))


def test_peaking_calibration(station: Any, operator: Any, m_lens: str, measure: Any) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.peaking_calibration(station, operator, measure, SENSOR, m_lens, wide_open(m_lens))
