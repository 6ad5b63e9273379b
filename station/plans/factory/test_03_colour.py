"""ColorChecker and step chart: the main sensor's colour, its ISP calibration (shading, white balance, colour
matrix) written into the phone; its zebra calibrated through that calibrated preview (flat field) and verified
on the step chart; RAW integrity of both sensors (the M sensor through the run's first M lens, wide open).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from station.plans import steps
from station.plans.conftest import configured_lenses

if TYPE_CHECKING:
    from station.station import Station


def test_color(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.color(station, operator, measure, results, "main")


def test_isp_calibration_written(station: Station, measure: Any, results: dict) -> None:
    """Shading map, white balance and colour matrix into the phone before anything looks at its preview."""
    steps.isp_write(station, measure, results, "main")


def test_raw_integrity(station: Station, operator: Any, measure: Any) -> None:
    steps.raw_integrity(station, operator, measure, "main")


def test_zebra_calibration(station: Station, operator: Any, measure: Any) -> None:
    steps.zebra_calibration(station, operator, measure, "main", verify=("raw",))


def test_m_raw_integrity(station: Station, operator: Any, measure: Any, request: pytest.FixtureRequest) -> None:
    lenses = configured_lenses(request.config)
    if not lenses:
        pytest.skip("RAW integrity of the M sensor needs an M lens to see the charts: give --lens")
    operator.lens(lenses[0], None)
    steps.raw_integrity(station, operator, measure, "m", lenses[0])
