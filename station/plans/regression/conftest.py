"""The regression plan's shared state: the main sensor's lens shading, measured once and stored in the phone
(a phone under firmware test carries its factory calibration; a fresh twin has none, so the plan makes it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import allure
import pytest

from station.plans import steps
from station.procedures.captures import lit

if TYPE_CHECKING:
    from station.station import Station

SENSOR = "main"


@pytest.fixture(scope="session")
def stored_shading(station: Station, operator: Any, results: dict) -> Iterator[Any]:
    """The main sensor's shading measured from flat fields and its map written into the phone."""
    from station.procedures.shading import measure_shading

    operator.chart("flat", sensor=SENSOR)
    with lit(station, 80.0), allure.step("the main sensor's lens shading map from flat fields"):
        result = measure_shading(station, SENSOR)
    entry = steps.case_results(results, station, SENSOR)
    entry.phone.update(result.isp_entry())
    with allure.step("store the shading map in the phone (its ISP applies it to the preview)"):
        from station.procedures import calibration_path
        from station.procedures.profile import write_calibration

        write_calibration(station, [(calibration_path(SENSOR, None, "lens_shading_map"),
                                     result.isp_entry()["lens_shading_map"])])
    yield result
