"""M sensor bare (no lens, the light box through its sapphire cover glass): EMVA 1288, shading and its map
written into the phone; then RAW integrity of the M sensor, which needs charts: seen through the run's first M
lens (the operator mounts it; the lens tests that follow start with it on).
"""

from __future__ import annotations

from typing import Any

import pytest

from station.plans import steps
from station.plans.conftest import configured_lenses

pytestmark = pytest.mark.bench

SENSOR = "m"


@pytest.fixture(scope="module", autouse=True)
def bare_sensor(operator: Any) -> None:
    """The operator takes any M lens off."""
    operator.lens(None)


def test_sensor_characterization(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.sensor_characterization(station, operator, measure, results, SENSOR)


def test_shading(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.shading(station, operator, measure, results, SENSOR)


def test_isp_calibration_written(station: Any, measure: Any, results: dict) -> None:
    steps.isp_write(station, measure, results, SENSOR)


def test_raw_integrity(station: Any, operator: Any, measure: Any, request: pytest.FixtureRequest) -> None:
    lenses = configured_lenses(request.config)
    if not lenses:
        pytest.skip("RAW integrity of the M sensor needs an M lens to see the charts: give --lens")
    operator.lens(lenses[0], None)
    steps.raw_integrity(station, operator, measure, SENSOR, lenses[0])
