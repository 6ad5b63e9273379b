"""The safe state after mount faults (issue 10 item 5): motion stopped, and confirmed or said not to be.

The truth is the twin's: its controller's state and the world's axes (what the renderer sees),
sampled twice, never only the station's word. The station's word is checked against it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from station.cli import main
from station.config import StationConfig, TwinConfig, to_toml
from station.errors import DeviceError
from station.station import Station
from station.twin.grbl_emulator import GrblEmulator
from station.twin.runner import Twin


def emulator_of(twin: Twin) -> GrblEmulator:
    return next(s for s in twin._servers if isinstance(s, GrblEmulator))


def assert_stopped_in_truth(twin: Twin) -> None:
    """The twin's controller rests (Idle or Alarm) and the world's axes do not move."""
    state = emulator_of(twin).state
    before = dict(twin.world.axes)
    time.sleep(0.2)
    assert state in ("Idle", "Alarm") and emulator_of(twin).state == state, state
    assert twin.world.axes == before


def quick(config: StationConfig, timeout_s: float = 0.5) -> StationConfig:
    return replace(config, mount=replace(config.mount, timeout_s=timeout_s))


def start_move(station: Station, distance_mm: float) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def move() -> None:
        try:
            station.mount.move_to(distance=distance_mm)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    return mover, errors


def test_stall_mid_move_safe_state_stops_and_confirms() -> None:
    with Twin(TwinConfig(time_scale=0.02)) as twin, Station.open(twin.config) as station:
        twin.world.faults["mount_stall"] = True
        mover, errors = start_move(station, 3000.0)
        deadline = time.monotonic() + 3.0
        while emulator_of(twin).state != "Run" and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # stalled a third of the way: Run, FS > 0, nothing advancing
        assert emulator_of(twin).state == "Run"
        problems = station.safe_state()
        mover.join(3.0)
        assert errors and isinstance(errors[0], DeviceError)
        assert problems == [], problems
        assert_stopped_in_truth(twin)
        assert "FS:0," in station.mount.last_status


def test_stall_while_homing_at_open_is_stopped_and_confirmed_before_the_error() -> None:
    """The issue's case: homing never ended and the controller was left <Home|...|FS:3600,0>."""
    with Twin(TwinConfig(time_scale=0.02, faults={"mount_stall": True})) as twin:
        with pytest.raises(DeviceError) as exc:
            Station.open(quick(twin.config))
        assert "no 'ok' to '$H'" in str(exc.value)
        assert exc.value.safe_state == []  # type: ignore[attr-defined]  # reset (ALARM:6) and confirmed
        assert emulator_of(twin).state == "Alarm"
        assert_stopped_in_truth(twin)
        assert twin.world.light_power is False  # the reset opened the light's relay


def test_hard_limit_alarm_safe_state_resets_and_confirms() -> None:
    with Twin(TwinConfig(time_scale=0.005)) as twin, Station.open(twin.config) as station:
        twin.world.faults["mount_alarm"] = True
        with pytest.raises(DeviceError, match="ALARM:1 Hard limit"):
            station.mount.move_to(distance=1000.0)
        assert station.safe_state() == []
        assert_stopped_in_truth(twin)
        assert emulator_of(twin).state == "Alarm" and twin.world.light_power is False


def test_garbage_mid_move_safe_state_stops_but_says_not_confirmed() -> None:
    with Twin(TwinConfig(time_scale=0.02)) as twin, Station.open(twin.config) as station:
        twin.world.faults["mount_garbage"] = True
        with pytest.raises(DeviceError):
            station.mount.move_to(distance=3000.0)  # accepted by the controller, the ok is noise
        time.sleep(0.05)
        assert emulator_of(twin).state == "Run"  # the rail runs on
        problems = station.safe_state()
        assert len(problems) == 1 and problems[0].startswith("motion stop not confirmed: mount: ")
        assert_stopped_in_truth(twin)  # feed hold and Ctrl-X acted although no answer was readable
        assert twin.world.illuminance_lux() == 0.0


def test_garbage_at_open_says_not_confirmed() -> None:
    with Twin(TwinConfig(time_scale=0.02, faults={"mount_garbage": True})) as twin:
        with pytest.raises(DeviceError) as exc:
            Station.open(twin.config)
        assert exc.value.safe_state == ["motion stop not confirmed: the mount did not open"]  # type: ignore[attr-defined]
        assert_stopped_in_truth(twin)


@pytest.mark.parametrize("fault", ["mount_stall", "mount_garbage"])
def test_station_run_records_the_safe_state_after_a_mount_fault(fault: str, tmp_path: Path, capsys) -> None:
    with Twin(TwinConfig(time_scale=0.02, faults={fault: True})) as twin:
        station_file = tmp_path / "station.toml"
        station_file.write_text(to_toml(quick(twin.config)))
        code = main(["run", "--station", str(station_file), "--reports", str(tmp_path / "r"), "--no-report"])
        out = capsys.readouterr().out
        assert code == 3, out
        records = list((tmp_path / "r" / "records").glob("*.json"))
        assert len(records) == 1, out
        safe = json.loads(records[0].read_text())["safe_state"]
        assert safe is not None
        if fault == "mount_stall":
            assert safe == {"ok": True, "problems": []}
            assert "SAFE STATE NOT CONFIRMED" not in out
        else:
            assert safe["ok"] is False and "SAFE STATE NOT CONFIRMED: motion stop not confirmed" in out
        assert_stopped_in_truth(twin)
