"""The run record's ``hw_time_s``: the station's own measure of the time it spent blocked on the devices' wires
(``station.devices.wire_time``, from the session's start to its end), per device and their union, checked
against the twin's account of the simulated hardware time it made the station wait for."""

from __future__ import annotations

import json
from pathlib import Path

# Imported before any in-process inner session (pytester restores sys.modules; cv2 cannot load twice).
import cv2  # noqa: F401
import pytest

import station.devices.grbl_mount  # noqa: F401
import station.devices.light  # noqa: F401
import station.devices.lux_meter  # noqa: F401
import station.devices.phone  # noqa: F401
import station.devices.wire_time  # noqa: F401
import station.station  # noqa: F401
import station.twin.control  # noqa: F401
from station.config import TwinConfig, to_toml
from station.records import load_record
from station.report import run_overview
from station.twin.runner import Twin

TIME_SCALE = 0.05


def test_the_record_carries_the_time_blocked_on_each_wire_and_their_union(pytester: pytest.Pytester,
                                                                          tmp_path: Path) -> None:
    with Twin(TwinConfig(time_scale=TIME_SCALE)) as twin:
        path = tmp_path / "station.toml"
        path.write_text(to_toml(twin.config))
        pytester.makepyfile("""
            def test_moves_and_light(light, mount):
                mount.home()
                mount.move_to(distance=600.0)
                light.set_level_pct(50.0)
                light.set_output(True)
                light.wait_settled()
                light.set_output(False)
        """)
        reports = tmp_path / "reports"
        pytester.runpytest("--station", str(path), "--reports", str(reports),
                           "-p", "no:cacheprovider").assert_outcomes(passed=1)
        moved_s = twin.world.hw_time_s["move"] * TIME_SCALE  # the real seconds the twin made the mount take
    (record_path,) = (reports / "records").glob("*.json")
    record = load_record(record_path)  # the record model admits it
    hw = record["hw_time_s"]
    print(f"\nhw_time_s: {json.dumps(hw)}; the twin's moves took {moved_s:.3f} s")
    assert {"mount", "light"} <= set(hw["by_device"]) and all(n > 0 for n in hw["blocks"].values())
    assert hw["by_device"]["mount"] >= moved_s * 0.95  # the station waited for every move the twin made
    # the union: at least the largest device's time, at most their sum (one thread here: their sum)
    assert max(hw["by_device"].values()) <= hw["total"] <= sum(hw["by_device"].values()) + 1e-3
    assert f"{hw['total']:.1f} s hardware" in run_overview(record)["takt"]


def test_a_record_with_a_malformed_hardware_time_is_refused(tmp_path: Path) -> None:
    from station.errors import InputError

    path = tmp_path / "r.json"
    base = {"format": "m-station-record", "run_id": "20261205T160000Z-abcd"}
    path.write_text(json.dumps(base | {"hw_time_s": {"total": 1.5, "by_device": {"dut": 1.0}}}))
    assert load_record(path)["hw_time_s"]["total"] == 1.5
    path.write_text(json.dumps(base | {"hw_time_s": {"total": -1, "by_device": {"dut": "x"}, "wall": 3}}))
    with pytest.raises(InputError, match="hw_time_s"):
        load_record(path)
