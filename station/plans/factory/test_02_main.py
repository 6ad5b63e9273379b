"""Main sensor (behind the phone's own lens): sensor characterization (EMVA 1288), geometry, shading, SFR across
the field and lateral CA, colour; the ISP's calibration written into the phone; then zebra and peaking
calibrated through the phone's own (now calibrated) preview.
"""

from __future__ import annotations

from typing import Any

import pytest

from station.plans import steps

pytestmark = pytest.mark.bench

SENSOR = "main"


@pytest.fixture(scope="module")
def main_sfr() -> dict[str, Any]:
    """The SFR capture of this module, for the lateral CA from the same edges."""
    return {}


def test_sensor_characterization(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.sensor_characterization(station, operator, measure, results, SENSOR)


def test_geometry(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.geometry(station, operator, measure, results, SENSOR)


def test_shading(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.shading(station, operator, measure, results, SENSOR)


def test_sfr(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict, main_sfr: dict) -> None:
    main_sfr["result"] = steps.sfr(station, operator, measure, results, SENSOR)


def test_lateral_ca(station: Any, measure: Any, results: dict, main_sfr: dict) -> None:
    if "result" not in main_sfr:
        pytest.skip("no slanted-edge capture (test_sfr did not measure)")
    steps.chromatic(station, measure, results, main_sfr["result"])


def test_color(station: Any, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.color(station, operator, measure, results, SENSOR)


def test_isp_calibration_written(station: Any, measure: Any, results: dict) -> None:
    """Shading map, white balance and colour matrix into the phone before anything looks at its preview."""
    steps.isp_write(station, measure, results, SENSOR)


def test_zebra_calibration(station: Any, operator: Any, measure: Any) -> None:
    steps.zebra_calibration(station, operator, measure, SENSOR, verify=("raw",))


def test_peaking_calibration(station: Any, operator: Any, measure: Any) -> None:
    steps.peaking_calibration(station, operator, measure, SENSOR, verify=True)
