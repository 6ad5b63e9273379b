"""station.procedures.color on the twin: with the ColorChecker up, its capture picture shows the patches found;
with another chart up, ``ChartNotFoundError`` (a setup fault) carries the plain capture as a PNG for the report
(drawn only then: found, the patch picture replaces it)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from station.procedures.captures import set_light
from station.procedures.color import measure_color
from station.procedures.framing import ChartNotFoundError
from station.station import Station
from tests.unit.twin_station import twin_station


@pytest.fixture(scope="module")
def bench() -> Iterator[Station]:
    with twin_station(seed=2) as station:
        set_light(station, 80.0)
        yield station


def _png_shape(data: bytes) -> tuple[int, ...]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "not a PNG"
    return image.shape


def test_colour_found_attaches_the_patch_picture(bench: Station) -> None:
    bench.twin.chart_set("colorchecker")
    result = measure_color(bench, "main")
    (name, png), = result.attachments().items()
    assert name == "main: ColorChecker capture"
    assert 256 <= max(_png_shape(png)[:2]) <= 768
    assert 0.0 < result.delta_e("after")["mean"] <= 3.0  # the limits file's high


def test_colour_not_found_is_a_setup_fault_with_the_capture(bench: Station) -> None:
    bench.twin.chart_set("flat")
    with pytest.raises(ChartNotFoundError, match="main: no ColorChecker in the capture") as caught:
        measure_color(bench, "main")
    assert caught.value.exit_code == 3 and caught.value.fault_kind == "setup"
    (name, png), = caught.value.attachments.items()
    assert name == "main: ColorChecker capture"
    assert 256 <= max(_png_shape(png)[:2]) <= 768
