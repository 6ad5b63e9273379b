"""GrblMount against exchanges recorded from the real GRBL 1.1h firmware (tests/unit/data/grbl/recorded_*.json).

The release's own grbl_v1.1h.20190825.hex ran unmodified in simavr (README.md there says how); the
driver's session was logged byte for byte with timestamps. Here a pty plays GRBL's side of each
recording back: a driver that sends anything else, or in another order, fails. The twin's GRBL is
held to what the recordings show about timing (the critical alarm's 500 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import serial

from station.config import AxisConfig
from station.devices.grbl_mount import GrblMount
from station.errors import DeviceError
from station.twin.grbl_emulator import GrblEmulator
from station.twin.world import World
from tests.unit.replay import PtyReplay
from tests.unit.test_grbl_mount import moving, one_line_device_error, open_mount, replaying

DATA = Path(__file__).parent / "data" / "grbl"
RECORDED = ("alarm3_reset_in_motion", "g54_offset", "hold_then_reset", "soft_limit", "power_up", "fresh_board")
#: The recorded bench: 200 mm of travel per axis, homing towards + with a 1 mm pull-off.
AXES = {"focus": AxisConfig("X", -199.0, -1.0), "distance": AxisConfig("Y", -199.0, -1.0),
        "pan": AxisConfig("Z", -199.0, -1.0)}
HOME = {"focus": -1.0, "distance": -1.0, "pan": -1.0}


def recording(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"recorded_{name}.json").read_text())


def replayed(name: str, axes: dict[str, AxisConfig] | None = None, **options: float
             ) -> contextlib.AbstractContextManager[GrblMount]:
    """The driver against the recording ``name`` (real GRBL 1.1h's side of it)."""
    steps = [(sent.encode("latin-1"), reply.encode("latin-1")) for sent, reply in recording(name)["steps"]]
    return replaying(steps, axes or AXES, **options)


def arrival(events: list[list[Any]], text: str) -> float:
    """When the last byte of ``text`` came from GRBL (the log keeps bytes as read, in chunks)."""
    stream, ends = "", []
    for t, who, chunk in events:
        if who == "grbl":
            stream += chunk
            ends.append((len(stream), t))
    end = stream.index(text) + len(text)
    return next(t for n, t in ends if n >= end)


@pytest.mark.parametrize("name", RECORDED)
def test_each_recording_is_real_grbl_and_its_steps_are_its_wire_log(name: str) -> None:
    """Provenance names the release firmware; the steps are exactly the logged bytes, in order."""
    doc = recording(name)
    assert doc["provenance"].startswith("recorded from GRBL 1.1h")
    assert "aec218a09666a4c3d79eafa5cc46f5a0" in doc["recording"]["firmware"]
    events = doc["events"]
    times = [t for t, _, _ in events]
    assert times == sorted(times)
    first = 0 if doc["steps"][0][0] == "" else next(i for i, (_, w, _) in enumerate(events) if w == "driver")
    end = next((i for i, (_, who, _) in enumerate(events) if who == "setup" and i > first), len(events))
    session = events[first:end]
    assert "".join(s for s, _ in doc["steps"]) == "".join(b for _, who, b in session if who == "driver")
    assert "".join(r for _, r in doc["steps"]) == "".join(b for _, who, b in session if who == "grbl")
    assert "$X" not in "".join(s for s, _ in doc["steps"])  # the driver never unlocks


def test_recorded_power_up_then_coolant() -> None:
    """The driver opened the port as the board booted: its banner, the Ctrl-X's, then $I, $H and M8/M9."""
    boot, reset = recording("power_up")["steps"][:2]
    assert boot[0] == "" and reset[0] == "\x18" and (boot[1] + reset[1]).count("Grbl 1.1h ['$' for help]") == 2
    with replayed("power_up") as mount:
        assert mount.identity == "Grbl 1.1h; VER:1.1h.20190825:" and mount.n_axes == 3
        mount.home()
        mount.set_aux_output(True)
        assert mount.state() == "Idle" and mount.last_status.endswith("|Ov:100,100,100|A:F>")
        mount.set_aux_output(False)
        assert mount.state() == "Idle" and "A:F" not in mount.last_status
        assert mount.last_status.startswith("<Idle|MPos:-1.000,-1.000,-1.000|")  # homed: machine space below 0


def test_recorded_first_boot_of_a_blank_eeprom_opens() -> None:
    """A freshly flashed board: error:7, the restored settings (mangled by the Ctrl-X: grbl/serial.c drops bytes
    while a reset is pending), one banner, >:error:7 twice; the driver opens it and reads its state."""
    boot, reset = recording("fresh_board")["steps"][:2]
    assert boot[1].startswith("error:7\r\n$0=10\r\n") and reset[1].endswith(">:error:7\r\n>:error:7\r\n")
    with replayed("fresh_board") as mount:
        assert mount.identity == "Grbl 1.1h; VER:1.1h.20190825:" and mount.n_axes == 3
        assert mount.state() == "Idle"  # no homing on a blank EEPROM ($22=0): Idle


def test_recorded_alarm3_homes_again_and_never_unlocks() -> None:
    with replayed("alarm3_reset_in_motion") as mount:
        mount.home()
        with pytest.raises(DeviceError) as exc:
            mount.move_to(distance=-150.0)  # the board's reset input was pulled while it ran
        one_line_device_error(exc, "ALARM:3 Reset while in motion", "G53 G0 Y-150.000")
        assert mount.lost_position.startswith("ALARM:3")
        assert mount.move_to(distance=-100.0) == HOME | {"distance": -100.0}  # $H first, never $X


def test_recorded_g54_offset_moves_in_machine_coordinates() -> None:
    doc = recording("g54_offset")
    assert doc["setup_before_driver"][1] == "G10 L2 P1 X-10 Y-100\n"
    contrast = "".join(b for _, who, b in doc["contrast_after_driver"] if who == "grbl")
    assert "MPos:-10.000,-100.000," in contrast  # a plain G0 X0 Y0 went to the work zero: the offset was live
    with replayed("g54_offset") as mount:
        mount.home()
        assert mount.move_to(focus=-50.0, distance=-120.0) == {"focus": -50.0, "distance": -120.0, "pan": -1.0}
        assert mount.position() == {"focus": -50.0, "distance": -120.0, "pan": -1.0}


class GatedReplay(PtyReplay):
    """A replay that holds the reply of step ``gate_step`` until ``gate`` is set (to stop() a move mid-poll)."""

    def __init__(self, transcript: list[tuple[bytes, bytes]], gate_step: int) -> None:
        self.gate = threading.Event()
        self._held_write = sum(1 for _, reply in transcript[:gate_step] if reply)  # replies written before it
        super().__init__(transcript)

    def _run(self) -> None:
        writes = 0

        def write(data: bytes) -> None:
            nonlocal writes
            if writes == self._held_write:
                self.gate.wait(5.0)
            writes += 1
            os.write(self._master, data)

        self._serve(lambda: os.read(self._master, 65536), write)


def test_recorded_hold_then_reset_is_idle_and_the_next_move_needs_no_unlock() -> None:
    doc = recording("hold_then_reset")
    steps = [(sent.encode("latin-1"), reply.encode("latin-1")) for sent, reply in doc["steps"]]
    at = next(i for i, (sent, _) in enumerate(steps) if sent.startswith(b"!"))
    assert b"Hold:1" in steps[at][1] and b"Hold:0" in b"".join(r for _, r in steps[at:at + 3])
    replay = GatedReplay(steps, gate_step=at - 1)  # stop() comes while the driver waits for this report
    try:
        with open_mount(replay.port, axes=AXES, poll_s=0.01, hold_s=3.0) as mount:
            mount.home()
            mover, errors = moving(mount, distance=-150.0)
            deadline = time.monotonic() + 5.0
            while len(replay.received) < at and time.monotonic() < deadline:
                time.sleep(0.001)
            stopper = threading.Thread(target=mount.stop)
            stopper.start()
            while not mount._stopping.is_set() and time.monotonic() < deadline:  # noqa: SLF001 - the order on the wire
                time.sleep(0.001)
            replay.gate.set()
            mover.join(5.0)
            stopper.join(5.0)
            assert len(errors) == 1 and "interrupted by stop()" in str(errors[0])
            assert mount.lost_position == "" and mount.confirm_stopped() == ""
            assert mount.move_to(distance=-100.0)["distance"] == -100.0  # straight on: no $X, no $H
        replay.check()
    finally:
        replay.close()


def test_recorded_soft_limit_resets_after_the_message_and_homes() -> None:
    """Real GRBL prints [MSG:Reset to continue] 500 ms after ALARM:2; only a Ctrl-X after it counts."""
    doc = recording("soft_limit")
    alarm_t, message_t = arrival(doc["events"], "ALARM:2\r\n"), arrival(doc["events"], "[MSG:Reset to continue]")
    reset_t = next(t for t, who, b in doc["events"] if who == "driver" and b == "\x18" and t > alarm_t)
    assert message_t - alarm_t >= 0.45 and reset_t > message_t
    wide = AXES | {"distance": AxisConfig("Y", -300.0, -1.0)}  # a config wider than the machine
    with replayed("soft_limit", axes=wide) as mount:
        mount.home()
        with pytest.raises(DeviceError) as exc:
            mount.move_to(distance=-250.0)
        one_line_device_error(exc, "ALARM:2 Soft limit", "G53 G0 Y-250.000")
        assert mount.move_to(distance=-100.0) == HOME | {"distance": -100.0}  # Ctrl-X, $H, the move


def grbl_twin(delay_s: float) -> GrblEmulator:
    return GrblEmulator(World(time_scale=0.002), n_axes=3, flavour="grbl", critical_delay_s=delay_s).start()


def test_the_twins_grbl_loses_a_reset_sent_before_reset_to_continue() -> None:
    twin = grbl_twin(1.0)  # long enough that a loaded machine still sends the first Ctrl-X inside it
    try:
        with serial.serial_for_url(twin.port, baudrate=115200, timeout=3.0) as terminal:
            terminal.write(b"$H\n")
            assert terminal.read_until(b"ok\r\n").endswith(b"ok\r\n")  # after the boot banner, if still there
            terminal.write(b"G53 G0 Y9000\n")  # beyond the rail's travel
            assert terminal.readline() == b"ALARM:2\r\n"
            terminal.write(b"\x18")  # too early: lost, as on the real firmware
            assert terminal.readline() == b"[MSG:Reset to continue]\r\n"
            assert twin.dropped_resets == 1 and twin.state == "Alarm"
            terminal.write(b"\x18")
            after = terminal.read_until(b"help]\r\n")  # the line the alarm cut short, then the banner
            assert after.startswith(b"ok\r\n") and after.endswith(b"Grbl 1.1h ['$' for help]\r\n")
    finally:
        twin.stop()


def test_after_a_soft_limit_on_the_twin_the_driver_waits_for_the_message_then_resets() -> None:
    """Fails on a driver that sends Ctrl-X at once: the reset is lost and no banner ever comes."""
    twin = grbl_twin(0.3)
    try:
        wide = {"focus": AxisConfig("X", 0.0, 320.0), "distance": AxisConfig("Y", 100.0, 9000.0)}
        with open_mount(twin.port, axes=wide) as mount:
            mount.home()
            with pytest.raises(DeviceError) as exc:
                mount.move_to(distance=9000.0)
            one_line_device_error(exc, "ALARM:2 Soft limit")
            assert mount.move_to(distance=500.0)["distance"] == 500.0 == twin.world.axes["Y"]
        assert twin.dropped_resets == 0 and "$X" not in twin.lines
    finally:
        twin.stop()


def test_the_twins_grbl_answers_status_during_homing_once_as_it_ends_as_recorded() -> None:
    """Real GRBL 1.1h answers no ? and ignores ! while $H runs, then one <Home|...> report and ok."""
    events = recording("status_during_homing")["events"]
    sent_h = next(t for t, who, b in events if who == "setup" and b == "$H\n")
    last_poll = max(t for t, who, b in events if who == "setup" and b == "?")
    during = [b for t, who, b in events if who == "grbl" and sent_h < t < last_poll]
    recorded = [line.split("|")[0] for line in "".join(during).split("\r\n") if line]
    assert recorded == ["<Home", "ok"]
    twin = GrblEmulator(World(time_scale=0.1), n_axes=3, flavour="grbl").start()
    try:
        with serial.serial_for_url(twin.port, baudrate=115200, timeout=2.0) as terminal:
            terminal.write(b"$H\n")
            deadline = time.monotonic() + 2.0
            while twin.state != "Home" and time.monotonic() < deadline:
                time.sleep(0.001)
            terminal.write(b"?!?")
            lines = terminal.read_until(b"ok\r\n").decode().split("\r\n")
            assert [line.split("|")[0] for line in lines if line and not line.startswith(("Grbl", "[MSG"))] == recorded
    finally:
        twin.stop()
