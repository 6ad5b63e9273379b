"""The measurer takes a sensor's limits for the readout mode its frame size names (``[readout.*]``), from the
sizes the phone declares; without them, or for a size no readout declares, the file's own limits."""

from __future__ import annotations

import pytest

from fixtures.measurer import Measurer
from fixtures.recorder import _sensor_sizes
from station.limits import parse_limits
from station.records import RunRecord

DOC = {
    "meta": {"product": "m-phone", "version": "1"},
    "measurements": {"mtf50_cpp": {"unit": "c/px", "low": 0.2}},
    "readout": {"full": {"width": 8192, "height": 6144, "measurements": {"mtf50_cpp": {"low": 0.1}}}},
}


@pytest.mark.parametrize("sizes, case, low", [
    ({"main": (8192, 6144), "m": (2048, 1536)}, "main", 0.1),
    ({"main": (8192, 6144), "m": (2048, 1536)}, "m/summicron-m-50-f2", 0.2),
    ({"main": (8192, 6144)}, "m", 0.2),
    ({}, "main", 0.2),
])
def test_limits_follow_the_sensor_readout(sizes: dict, case: str, low: float) -> None:
    measure = Measurer(parse_limits(DOC), None, RunRecord(run_id="r1", records_dir=None, plan="factory"), "t",
                       sizes)
    taken = measure("mtf50_cpp", 0.15, case=case, check=False)
    assert taken.limits.low == low and taken.verdict == ("pass" if low < 0.15 else "fail")


def test_sensor_sizes_from_the_phone_info_skip_what_it_does_not_give_whole() -> None:
    info = {"sensors": {"main": {"width": 8192, "height": 6144}, "m": {"width": "wide"}, "x": None}}
    assert _sensor_sizes(info) == {"main": (8192, 6144)}
    assert _sensor_sizes({}) == {}
