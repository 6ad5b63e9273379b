"""Firmware regression, image quality of the main sensor's RAW: MTF50 across the field, lens shading, colour
(CIEDE2000 after the colour matrix) and temporal noise; with ``--baseline`` each value is reported with the
approved build's and the delta, and judged by the limits file's ``[regression.*]`` tolerances.
"""

from __future__ import annotations

from typing import Any

import pytest

from station.plans import steps

pytestmark = pytest.mark.bench

SENSOR = "main"


def test_sfr(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.sfr(station, operator, measure, results, SENSOR)


def test_raw_shading(measure: Any, stored_shading: Any) -> None:
    case = SENSOR
    measure("shading_corner_falloff_pct", stored_shading.corner_falloff_pct(), case=case, check=False)
    measure("shading_max_gain", stored_shading.max_gain(), case=case, check=False)
    measure.check()


def test_color(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict,
               stored_shading: Any) -> None:
    steps.color(station, operator, measure, results, SENSOR)


def test_noise(station: Any, operator: Any, lit_bench: None, measure: Any) -> None:
    steps.noise(station, operator, measure, SENSOR)
