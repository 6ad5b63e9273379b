"""Firmware regression, image quality of the main sensor's RAW: MTF50 across the field, lens shading, colour
(CIEDE2000 after the colour matrix) and temporal noise; with ``--baseline`` each value is reported with the
approved build's and the delta, and judged by the limits file's ``[regression.*]`` tolerances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from station.plans import steps
from station.plans.helpers import take

if TYPE_CHECKING:
    from station.station import Station

SENSOR = "main"


def test_sfr(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.sfr(station, operator, measure, results, SENSOR)


def test_raw_shading(measure: Any, stored_shading: Any) -> None:
    take(measure, stored_shading.regression_measurements, SENSOR)


def test_color(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict,
               stored_shading: Any) -> None:
    steps.color(station, operator, measure, results, SENSOR)


def test_noise(station: Station, operator: Any, lit_bench: None, measure: Any) -> None:
    steps.noise(station, operator, measure, SENSOR)
