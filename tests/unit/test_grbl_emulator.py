"""The twin's GRBL emulator, spoken to as any serial terminal would (pyserial on its pty).

Expected positions and times come from the bench's spec (travel, home, max rates in the
issue) and plain kinematics, not from the emulator's code.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator

import pytest
import serial

from station.twin.faults import all_faults
from station.twin.grbl_emulator import MOUNT_FAULTS, GrblEmulator
from station.twin.world import World

STATUS_RE = re.compile(r"^<(Idle|Run|Hold:\d|Home|Alarm)\|MPos:(-?\d+\.\d{3}),(-?\d+\.\d{3}),(-?\d+\.\d{3}),"
                       r"(-?\d+\.\d{3})(\|[^<>]*)?>$")
HOME = {"X": 0.0, "Y": 150.0, "Z": 0.0, "A": 0.0}
RATE_PER_S = {"X": 3600 / 60, "Y": 6000 / 60, "Z": 1800 / 60, "A": 1800 / 60}


def start(time_scale: float = 0.002, axes: dict[str, float] | None = None) -> GrblEmulator:
    world = World(time_scale=time_scale)
    if axes:
        world.axes.update(axes)
    return GrblEmulator(world).start()


@pytest.fixture
def twin() -> Iterator[GrblEmulator]:
    emulator = start()
    yield emulator
    emulator.stop()


def terminal(emulator: GrblEmulator) -> serial.Serial:
    return serial.serial_for_url(emulator.port, baudrate=115200, timeout=1.0)


def line(ser: serial.Serial) -> str:
    raw = ser.readline()
    assert raw.endswith(b"\r\n"), f"no complete line: {raw!r}"
    return raw[:-2].decode("ascii")


def command(ser: serial.Serial, text: str) -> list[str]:
    """Send a line; every reply line up to and including ok / error:N."""
    ser.write(text.encode() + b"\n")
    replies = [line(ser)]
    while replies[-1] != "ok" and not replies[-1].startswith("error:"):
        replies.append(line(ser))
    return replies


def status(ser: serial.Serial) -> tuple[str, dict[str, float]]:
    ser.write(b"?")
    match = STATUS_RE.match(line(ser))
    assert match, "not a status report"
    return match.group(1), dict(zip("XYZA", map(float, match.groups()[1:5]), strict=True))


def wait_state(ser: serial.Serial, wanted: str, timeout_s: float = 3.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        state, pos = status(ser)
        if state == wanted:
            return pos
        assert time.monotonic() < deadline, f"still {state}, never {wanted}"
        time.sleep(0.005)


def test_plain_terminal_gets_a_status_line_before_homing(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        ser.write(b"?")
        report = line(ser)
    assert STATUS_RE.match(report), report
    assert report.startswith("<Alarm|MPos:0.000,1000.000,0.000,0.000|")  # homing enabled; rail where the world parks it
    assert twin.world.axes == {"X": 0.0, "Y": 1000.0, "Z": 0.0, "A": 0.0}


def test_soft_reset_prints_banner_and_unlock_hint(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        ser.write(b"\x18")
        assert [line(ser) for _ in range(3)] == ["", "GrblHAL 1.1f ['$' or '$HELP' for help]",
                                                  "[MSG:'$H'|'$X' to unlock]"]
        assert command(ser, "$I")[0] == "[VER:1.1f.20240101:M-Station twin]"
        settings = command(ser, "$$")
        assert {"$110=3600.000", "$111=6000.000", "$112=1800.000", "$113=1800.000"} <= set(settings)


def test_gcode_locked_in_alarm_until_unlocked(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        assert command(ser, "G0 X10") == ["error:9"]
        assert twin.world.axes["X"] == 0.0
        assert command(ser, "$X") == ["[MSG:Caution: Unlocked]", "ok"]
        assert status(ser)[0] == "Idle"


def test_homing_goes_home_in_simulated_time() -> None:
    emulator = start(axes={"X": 200.0, "Y": 1000.0, "Z": 10.0, "A": -5.0})
    try:
        with terminal(emulator) as ser:
            assert command(ser, "$H") == ["ok"]
            assert wait_state(ser, "Idle") == HOME
        assert emulator.world.axes == HOME
        seek_s = max(200 / RATE_PER_S["X"], 850 / RATE_PER_S["Y"], 10 / RATE_PER_S["Z"], 5 / RATE_PER_S["A"])
        assert emulator.world.hw_time_s["move"] == pytest.approx(seek_s + 1.0)  # + locate and pull-off
    finally:
        emulator.stop()


def test_g0_and_g1_moves_take_feed_rate_time(twin: GrblEmulator) -> None:
    world = twin.world
    with terminal(twin) as ser:
        command(ser, "$H")
        spent = world.hw_time_s["move"]
        assert command(ser, "G90 G0 X90 Y750") == ["ok"]
        assert wait_state(ser, "Idle") == {"X": 90.0, "Y": 750.0, "Z": 0.0, "A": 0.0}
        assert world.hw_time_s["move"] - spent == pytest.approx(max(90 / 60, 600 / 100))
        spent = world.hw_time_s["move"]
        assert command(ser, "G91 G1 F600 Z10 A-5") == ["ok"]  # relative, feed in units/min
        assert wait_state(ser, "Idle") == {"X": 90.0, "Y": 750.0, "Z": 10.0, "A": -5.0}
        assert world.hw_time_s["move"] - spent == pytest.approx(math.hypot(10, 5) / 600 * 60)
        assert "G91" in command(ser, "$G")[0] and "F600" in command(ser, "$G")[0]
    assert world.axes == {"X": 90.0, "Y": 750.0, "Z": 10.0, "A": -5.0}


def test_status_mid_move_hold_resume_and_reset() -> None:
    emulator = start(time_scale=0.02)  # 150 -> 3000 mm at 6000 mm/min: 28.5 s simulated, 0.57 s real
    try:
        with terminal(emulator) as ser:
            command(ser, "$H")
            assert command(ser, "G0 Y3000") == ["ok"]
            time.sleep(0.03)
            state, pos = status(ser)
            assert state == "Run" and 150 < pos["Y"] < 3000
            ser.write(b"!")
            held = wait_state(ser, "Hold:0")
            time.sleep(0.05)
            assert status(ser) == ("Hold:0", held)  # motion stopped where it was
            assert emulator.world.axes["Y"] == pytest.approx(held["Y"], abs=5e-4)
            ser.write(b"~")
            deadline = time.monotonic() + 2.0  # on a loaded machine the first report may come before a step
            state, pos = status(ser)
            while state == "Run" and pos["Y"] <= held["Y"] and time.monotonic() < deadline:
                time.sleep(0.01)
                state, pos = status(ser)
            assert state == "Run" and held["Y"] < pos["Y"] < 3000
            ser.write(b"\x18")  # reset in motion: GRBL cannot vouch for the position
            assert [line(ser) for _ in range(4)] == ["ALARM:3", "", "GrblHAL 1.1f ['$' or '$HELP' for help]",
                                                      "[MSG:'$H'|'$X' to unlock]"]
            state, stopped = status(ser)
            time.sleep(0.05)
            assert state == "Alarm" and status(ser) == ("Alarm", stopped) and stopped["Y"] < 3000
    finally:
        emulator.stop()


@pytest.mark.parametrize(("gcode", "code"), [
    ("G10 L2 X5", 28), ("G10 L3 P1 X5", 20), ("G10 L2 P7 X5", 29), ("G53 G0 G10 L2 P1 X1", 21),
    ("G0 X1.2.3", 2), ("G0 Xabc", 2), ("G5 X1", 20), ("M3", 20), ("$Q", 3), ("G1 X5", 22),
    ("G0 G1 X1", 21), ("G0 X1 X2", 25), ("123", 1),
])
def test_bad_lines_answer_error_and_do_not_move(twin: GrblEmulator, gcode: str, code: int) -> None:
    with terminal(twin) as ser:
        command(ser, "$H")
        assert command(ser, gcode) == [f"error:{code}"]
        assert status(ser) == ("Idle", HOME)
    assert twin.world.axes == HOME


def test_fault_stall_keeps_run_and_stops_a_third_of_the_way(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        command(ser, "$H")
        twin.world.faults["mount_stall"] = True
        assert command(ser, "G0 Y1050") == ["ok"]
        time.sleep(0.1)  # the whole move would take 9 s * 0.002 = 18 ms
        first = status(ser)
        time.sleep(0.05)
        assert first == status(ser) == ("Run", {"X": 0.0, "Y": 150 + 900 / 3, "Z": 0.0, "A": 0.0})
        ser.write(b"\x18")
        assert line(ser) == "ALARM:3"


def test_fault_alarm_trips_hard_limit_and_needs_reset(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        command(ser, "$H")
        twin.world.faults["mount_alarm"] = True
        assert command(ser, "G0 Y950") == ["ok"]
        assert [line(ser), line(ser)] == ["ALARM:1", "[MSG:Reset to continue]"]
        ser.write(b"?")
        assert line(ser).startswith("<Alarm|MPos:0.000,550.000,0.000,0.000|FS:0,0|Pn:Y")  # half way
        ser.write(b"$X\n")
        ser.timeout = 0.2
        assert ser.readline() == b""  # ignored until reset
        ser.timeout = 1.0
        twin.world.faults.clear()
        ser.write(b"\x18")
        assert [line(ser) for _ in range(3)][1:] == ["GrblHAL 1.1f ['$' or '$HELP' for help]",
                                                     "[MSG:'$H'|'$X' to unlock]"]
        assert command(ser, "$H") == ["ok"]


def test_fault_garbage_replaces_replies_and_can_be_switched_off(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        twin.world.faults["mount_garbage"] = True
        ser.write(b"?")
        noise = ser.readline()
        assert noise.endswith(b"\r\n") and not STATUS_RE.match(noise.decode("latin-1").strip())
        with pytest.raises(UnicodeDecodeError):
            noise.decode("ascii")
        twin.world.faults["mount_garbage"] = False  # faults change at run time
        assert status(ser)[0] == "Alarm"


def test_faults_are_documented_and_registered() -> None:
    assert set(MOUNT_FAULTS) == {"mount_stall", "mount_alarm", "mount_garbage"}
    assert set(MOUNT_FAULTS) <= set(all_faults())


def test_stop_joins_threads_and_closes_the_pty() -> None:
    emulator = start()
    threads = list(emulator._threads)
    emulator.stop()
    assert threads and not any(t.is_alive() for t in threads)
    emulator.stop()  # idempotent


@pytest.mark.parametrize("gcode", ["G0 Y3300", "G0 Y50", "G0 X-1", "G91 G0 Z40", "G53 G0 A30"])
def test_target_beyond_travel_is_a_soft_limit_alarm_until_reset(twin: GrblEmulator, gcode: str) -> None:
    """GRBL 1.1 limits_soft_check ($20=1): ALARM:2, critical; the line's ok comes after Ctrl-X."""
    with terminal(twin) as ser:
        command(ser, "$H")
        ser.write(gcode.encode() + b"\n")
        assert [line(ser), line(ser)] == ["ALARM:2", "[MSG:Reset to continue]"]
        ser.write(b"G0 X10\n")  # ignored until the reset
        ser.write(b"\x18")
        assert [line(ser) for _ in range(4)] == ["ok", "", "GrblHAL 1.1f ['$' or '$HELP' for help]",
                                                  "[MSG:'$H'|'$X' to unlock]"]
        assert status(ser) == ("Alarm", HOME)  # nothing moved, and G-code stays locked until $H
    assert twin.world.axes == HOME


def test_reset_after_a_completed_feed_hold_is_idle_without_alarm() -> None:
    """mc_reset raises ALARM:3 only in a cycle or a hold still decelerating (data/grbl/hold_reset.json)."""
    emulator = start(time_scale=0.02)
    try:
        with terminal(emulator) as ser:
            command(ser, "$H")
            assert command(ser, "G0 Y3000") == ["ok"]
            time.sleep(0.03)
            ser.write(b"!")
            held = wait_state(ser, "Hold:0")
            ser.write(b"\x18")
            assert [line(ser) for _ in range(2)] == ["", "GrblHAL 1.1f ['$' or '$HELP' for help]"]
            assert status(ser) == ("Idle", held)  # no ALARM:3, the position kept
            time.sleep(0.05)
            assert status(ser) == ("Idle", held) and emulator.world.axes["Y"] == held["Y"]
            assert command(ser, "G0 Y500") == ["ok"]  # not locked: the queued rest of the move is gone
            assert wait_state(ser, "Idle")["Y"] == 500.0
    finally:
        emulator.stop()


def test_work_offset_g10_g54_and_machine_moves_g53(twin: GrblEmulator) -> None:
    with terminal(twin) as ser:
        command(ser, "$H")
        assert command(ser, "G10 L2 P1 X10 Y-100") == ["ok"]
        assert command(ser, "G0 X5 Y400") == ["ok"]  # G54 work coordinates: machine X15 Y300
        assert wait_state(ser, "Idle") == {"X": 15.0, "Y": 300.0, "Z": 0.0, "A": 0.0}
        assert command(ser, "G53 G0 X5 Y400") == ["ok"]  # machine coordinates, the offset ignored
        assert wait_state(ser, "Idle") == {"X": 5.0, "Y": 400.0, "Z": 0.0, "A": 0.0}
        assert command(ser, "$#")[0] == "[G54:10.000,-100.000,0.000,0.000]"
        assert "G54" in command(ser, "$G")[0]
        reports = []
        for _ in range(10):
            ser.write(b"?")
            reports.append(line(ser))
        assert any("|WCO:10.000,-100.000,0.000,0.000" in r for r in reports)
        assert command(ser, "G10 L20 P2 X0") == ["ok"]  # G55: here is X0
        assert command(ser, "G55 G0 X1") == ["ok"]
        assert wait_state(ser, "Idle")["X"] == 6.0
    assert twin.world.axes["X"] == 6.0


def test_grbl_flavour_three_axes_and_mute_critical_alarm() -> None:
    world = World(time_scale=0.002)
    with GrblEmulator(world, n_axes=3, flavour="grbl") as emulator, terminal(emulator) as ser:
        ser.write(b"\x18")
        assert [line(ser) for _ in range(3)] == ["", "Grbl 1.1h ['$' for help]", "[MSG:'$H'|'$X' to unlock]"]
        assert command(ser, "$I")[0].startswith("[VER:1.1h.")
        command(ser, "$H")
        ser.write(b"?")
        assert line(ser).startswith("<Idle|MPos:0.000,150.000,0.000|")  # three fields
        assert command(ser, "G0 A1") == ["error:20"]  # no A axis
        ser.write(b"G0 Y5000\n")
        assert [line(ser), line(ser)] == ["ALARM:2", "[MSG:Reset to continue]"]
        ser.timeout = 0.2
        ser.write(b"?")
        assert ser.readline() == b""  # GRBL's critical loop answers nothing but the reset
        ser.timeout = 1.0
        ser.write(b"\x18")
        assert line(ser) == "ok"


def test_double_boot_prints_the_banner_twice() -> None:
    with GrblEmulator(World(time_scale=0.002), double_boot_s=0.05) as emulator, terminal(emulator) as ser:
        ser.write(b"\x18")
        banners = [line(ser) for _ in range(6)]
        assert banners.count("GrblHAL 1.1f ['$' or '$HELP' for help]") == 2
