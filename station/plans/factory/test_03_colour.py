"""ColorChecker and step chart: the main sensor's colour, its ISP calibration (shading, white balance, colour
matrix) written into the phone; the colour half of RAW integrity of both sensors while the ColorChecker is up
(the M sensor through the run's first M lens, wide open); the main sensor's zebra calibrated through that
calibrated preview (flat field) and verified on the step chart; then, the step chart still up, the other half
of RAW integrity (missing codes, black level) of both sensors. Three operator requests for the group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from station.plans import steps
from station.plans.conftest import configured_lenses
from station.plans.helpers import Kept

if TYPE_CHECKING:
    from station.station import Station


def _m_lens(operator: Any, request: pytest.FixtureRequest) -> str:
    """The run's first M lens, mounted (the bare M sensor images no chart)."""
    lenses = configured_lenses(request.config)
    if not lenses:
        pytest.skip("RAW integrity of the M sensor needs an M lens to see the charts: give --lens")
    operator.lens(lenses[0], None)
    return lenses[0]


def test_color(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.color(station, operator, measure, results, "main")


def test_isp_calibration_written(station: Station, measure: Any, results: dict) -> None:
    """Shading map, white balance and colour matrix into the phone before anything looks at its preview."""
    steps.isp_write(station, measure, results, "main")


def test_raw_colour(station: Station, operator: Any, measure: Any, kept: Kept) -> None:
    kept["raw_colour/main"] = steps.raw_colour(station, operator, measure, "main")


def test_m_raw_colour(station: Station, operator: Any, measure: Any, kept: Kept,
                      request: pytest.FixtureRequest) -> None:
    lens = _m_lens(operator, request)
    kept["raw_colour/m"] = steps.raw_colour(station, operator, measure, "m", lens)


def test_zebra_calibration(station: Station, operator: Any, measure: Any) -> None:
    steps.peaking_flats(station, operator, "main")
    steps.zebra_calibration(station, operator, measure, "main", verify=("raw",))


def test_raw_integrity(station: Station, operator: Any, measure: Any, kept: Kept) -> None:
    """The step-chart half of RAW integrity, going on from ``test_raw_colour``'s capture; run alone (-k) it
    takes the ColorChecker half itself."""
    steps.raw_integrity(station, operator, measure, "main", colour=kept.take_if("raw_colour/main"))


def test_m_raw_integrity(station: Station, operator: Any, measure: Any, kept: Kept,
                         request: pytest.FixtureRequest) -> None:
    lens = _m_lens(operator, request)
    steps.raw_integrity(station, operator, measure, "m", lens, colour=kept.take_if("raw_colour/m"))
