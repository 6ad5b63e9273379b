"""GrblMount on real wires: the twin's GRBL emulator on a pty, and a recorded GRBL 1.1h exchange.

Expected positions and times come from the requested targets, the bench's max rates and
plain kinematics; the twin's world (what the renderer sees) is the ground truth of the pose.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from station.config import TWIN_AXES, AxisConfig, MountConfig, load_config, to_toml, twin_config
from station.devices.grbl_mount import GrblMount
from station.devices.protocols import Mount
from station.errors import ConfigError, DeviceError, InputError
from station.twin.grbl_emulator import GrblEmulator
from station.twin.world import World
from tests.unit.replay import PtyReplay, Transcript

HOME = {"focus": 0.0, "distance": 150.0, "pan": 0.0, "tilt": 0.0}


def start_twin(time_scale: float = 0.002) -> GrblEmulator:
    return GrblEmulator(World(time_scale=time_scale)).start()


def open_mount(port: str, timeout_s: float = 5.0, axes: dict[str, AxisConfig] | None = None,
               **kwargs: float) -> GrblMount:
    config = MountConfig(port=port, timeout_s=timeout_s, axes=dict(axes or TWIN_AXES))
    options = {"poll_s": 0.005, "stall_s": 0.3, "hold_s": 0.5, "boot_quiet_s": 0.05} | kwargs
    return GrblMount(config, **options)


@pytest.fixture
def twin() -> Iterator[GrblEmulator]:
    emulator = start_twin()
    yield emulator
    emulator.stop()


@pytest.fixture
def mount(twin: GrblEmulator) -> Iterator[GrblMount]:
    driver = open_mount(twin.port)
    yield driver
    driver.close()


def one_line_device_error(exc: pytest.ExceptionInfo[DeviceError], *words: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.startswith("mount: ") and exc.value.exit_code == 3
    for word in words:
        assert word in text
    return text


def test_identity_from_banner_and_version(mount: GrblMount) -> None:
    assert isinstance(mount, Mount)
    assert mount.identity == "GrblHAL 1.1f; VER:1.1f.20240101:M-Station twin"


def test_moves_are_locked_out_until_homed(mount: GrblMount, twin: GrblEmulator) -> None:
    before = dict(twin.world.axes)
    with pytest.raises(DeviceError) as exc:
        mount.move_to(focus=10.0)
    one_line_device_error(exc, "error:9", "alarm", "home()")
    assert twin.world.axes == before


def test_home_then_move_reports_mpos_matching_the_world(mount: GrblMount, twin: GrblEmulator) -> None:
    mount.home()
    assert mount.position() == HOME == twin.world.pose()
    spent = twin.world.hw_time_s["move"]
    target = {"focus": 45.5, "distance": 812.25, "pan": -12.5, "tilt": 7.125}
    assert mount.move_to(**target) == target
    assert mount.position() == target == twin.world.pose()
    # G0: every axis at its max rate (focus 3600 deg/min, rail 6000 mm/min, pan/tilt 1800 deg/min)
    expected_s = max(45.5 / 60, (812.25 - 150) / 100, 12.5 / 30, 7.125 / 30)
    assert twin.world.hw_time_s["move"] - spent == pytest.approx(expected_s)
    assert twin.lines[-1] == "G53 G0 X45.500 Y812.250 Z-12.500 A7.125"


@pytest.mark.parametrize(("axes", "words"), [
    ({"focus": 300.5}, ["focus=300.5", "[0, 300]"]),
    ({"distance": 149.0}, ["distance=149", "[150, 3000]", "mm"]),
    ({"pan": -30.001}, ["pan=-30.001", "[-30, 30]"]),
    ({"tilt": 20.5}, ["tilt", "[-20, 20]"]),
    ({"tilt": float("nan")}, ["tilt", "not a finite number"]),
    ({"focus": float("inf")}, ["focus", "not a finite number"]),
    ({"focus": "10"}, ["focus", "not a finite number"]),
    ({"zoom": 1.0}, ["unknown axis 'zoom'", "focus, distance, pan, tilt"]),
    ({"focus": 10.0, "distance": 5000.0}, ["distance=5000"]),  # one bad axis: nothing moves
])
def test_soft_limits_rejected_before_anything_is_sent(mount: GrblMount, twin: GrblEmulator,
                                                       axes: dict[str, float], words: list[str]) -> None:
    mount.home()
    sent = twin.bytes_in
    with pytest.raises(InputError) as exc:
        mount.move_to(**axes)
    assert exc.value.exit_code == 2 and "\n" not in str(exc.value) and str(exc.value).startswith("mount: ")
    for word in words:
        assert word in str(exc.value)
    time.sleep(0.02)
    assert twin.bytes_in == sent  # the emulator received nothing
    assert twin.world.pose() == HOME


def test_target_beyond_machine_travel_is_refused_by_the_controller(twin: GrblEmulator) -> None:
    wide = dict(TWIN_AXES) | {"distance": AxisConfig(axis="Y", min=0.0, max=3500.0)}  # a wrong config
    with open_mount(twin.port, axes=wide) as mount:
        mount.home()
        with pytest.raises(DeviceError) as exc:
            mount.move_to(distance=3300.0)  # the rail's travel ends at 3200 mm
        one_line_device_error(exc, "ALARM:2 Soft limit", "G53 G0 Y3300.000")
        assert twin.world.pose() == HOME
        assert mount.move_to(distance=500.0)["distance"] == 500.0  # Ctrl-X, $H, then the move
        assert twin.lines[-2:] == ["$H", "G53 G0 Y500.000"] and "$X" not in twin.lines


def moving(mount: GrblMount, **target: float) -> tuple[threading.Thread, list[BaseException]]:
    """``mount.move_to(**target)`` started on a thread: the thread, and the list that gets what it raised."""
    errors: list[BaseException] = []

    def move() -> None:
        try:
            mount.move_to(**target)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    return mover, errors


def interrupt_long_move(mount: GrblMount, twin: GrblEmulator, interrupt: Callable[[], None]) -> list[BaseException]:
    """Start a 150 -> 3000 mm rail move on a thread, call ``interrupt`` once the rail passes 300 mm, and return
    what the move raised."""
    mover, errors = moving(mount, distance=3000.0)
    deadline = time.monotonic() + 2.0
    while twin.world.axes["Y"] < 300.0 and time.monotonic() < deadline:
        time.sleep(0.005)
    interrupt()
    mover.join(2.0)
    return errors


def test_stop_mid_move_holds_resets_to_idle_and_the_next_move_needs_no_unlock() -> None:
    twin = start_twin(time_scale=0.02)  # 150 -> 3000 mm: 28.5 s simulated, 0.57 s real
    try:
        with open_mount(twin.port) as mount:
            mount.home()
            errors = interrupt_long_move(mount, twin, mount.stop)
            assert len(errors) == 1 and isinstance(errors[0], DeviceError)
            assert "interrupted by stop()" in str(errors[0])
            halted = twin.world.axes["Y"]
            time.sleep(0.1)
            assert twin.world.axes["Y"] == halted and 300.0 <= halted < 3000.0  # motion stopped
            assert twin.state == "Idle"  # the hold completed before the reset: no ALARM:3
            assert mount.position()["distance"] == pytest.approx(halted, abs=5e-4)
            assert mount.move_to(distance=500.0)["distance"] == 500.0
            assert twin.lines[-1] == "G53 G0 Y500.000" and "$X" not in twin.lines
            assert twin.world.axes["Y"] == 500.0
    finally:
        twin.stop()


def test_stop_while_idle_keeps_idle_and_needs_no_unlock(mount: GrblMount, twin: GrblEmulator) -> None:
    mount.home()
    mount.move_to(pan=12.0)
    mount.stop()
    assert twin.state == "Idle"
    assert mount.move_to(tilt=-3.0) == HOME | {"pan": 12.0, "tilt": -3.0}
    assert "$X" not in twin.lines


def test_stop_after_power_up_does_not_unlock_an_unhomed_mount(mount: GrblMount) -> None:
    mount.stop()
    with pytest.raises(DeviceError) as exc:
        mount.move_to(focus=1.0)
    one_line_device_error(exc, "error:9")


def test_stop_never_raises(mount: GrblMount, twin: GrblEmulator) -> None:
    twin.world.faults["mount_garbage"] = True
    mount.stop()
    mount.close()
    mount.stop()


@pytest.mark.parametrize(("fault", "words"), [
    ("mount_stall", ["stalled", "Run with no motion for 0.3 s", "<Run|MPos:0.000,450.000"]),
    ("mount_alarm", ["ALARM:1 Hard limit triggered", "G53 G0 Y1050.000"]),
    ("mount_garbage", ["unexpected answer b'\\x", "to 'G53 G0 Y1050.000'"]),
])
def test_each_fault_gives_a_one_line_device_error(mount: GrblMount, twin: GrblEmulator, fault: str,
                                                  words: list[str]) -> None:
    mount.home()
    twin.world.faults[fault] = True  # switched on at run time
    with pytest.raises(DeviceError) as exc:
        mount.move_to(distance=1050.0)
    one_line_device_error(exc, *words)
    twin.world.faults.clear()
    mount.stop()
    mount.home()  # the bench recovers: home again
    assert mount.position() == HOME


def test_timeouts_name_the_time_and_last_status(twin: GrblEmulator) -> None:
    with open_mount(twin.port, timeout_s=0.3, stall_s=10.0, hold_s=0.1) as mount:
        twin.world.faults["mount_stall"] = True
        with pytest.raises(DeviceError) as exc:
            mount.home()
        one_line_device_error(exc, "no 'ok' to '$H' within 0.3 s", "last status <Home|MPos:")
        mount.stop()
        twin.world.faults.clear()
        mount.home()
        twin.world.faults["mount_stall"] = True
        with pytest.raises(DeviceError) as exc:
            mount.move_to(focus=90.0)
        one_line_device_error(exc, "not Idle within 0.3 s", "last status <Run|MPos:30.000,")


def test_garbage_at_open_is_a_device_error(twin: GrblEmulator) -> None:
    twin.world.faults["mount_garbage"] = True
    with pytest.raises(DeviceError) as exc:
        open_mount(twin.port)
    one_line_device_error(exc, "unexpected answer", "Ctrl-X")


def test_port_that_cannot_open_is_named() -> None:
    with pytest.raises(DeviceError) as exc:
        open_mount("/dev/m-station-no-such-tty")
    one_line_device_error(exc, "cannot open serial port /dev/m-station-no-such-tty")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(DeviceError) as exc:
        open_mount(f"socket://127.0.0.1:{port}")
    one_line_device_error(exc, f"cannot open serial port socket://127.0.0.1:{port}")


def test_silent_port_times_out_waiting_for_the_banner() -> None:
    replay = PtyReplay([(b"\x18", b"")])
    try:
        with pytest.raises(DeviceError) as exc:
            open_mount(replay.port, timeout_s=0.2)
        one_line_device_error(exc, "no GRBL welcome banner within 0.2 s", replay.port)
    finally:
        replay.close()




# --- GRBL 1.1h exchanges (tests/unit/data/grbl, derived from GRBL's source: see its README) ---------
GRBL_DATA = Path(__file__).parent / "data" / "grbl"
#: The 3-axis GRBL 1.1h bench of the transcripts: homing ends at -1, the machine space is negative.
GRBL_AXES = {"focus": AxisConfig("X", -300.0, -1.0), "distance": AxisConfig("Y", -1000.0, -1.0),
             "pan": AxisConfig("Z", -80.0, -1.0)}
GRBL_HOME = {"focus": -1.0, "distance": -1.0, "pan": -1.0}


def transcript(name: str) -> Transcript:
    steps = json.loads((GRBL_DATA / f"{name}.json").read_text())["steps"]
    return [(sent.encode("latin-1"), reply.encode("latin-1")) for sent, reply in steps]


@contextlib.contextmanager
def replaying(steps: Transcript, axes: dict[str, AxisConfig], **options: float) -> Iterator[GrblMount]:
    """A driver on a pty that plays GRBL's side of ``steps``; every step must be exchanged."""
    replay = PtyReplay(steps)
    try:
        with open_mount(replay.port, axes=axes, **options) as mount:
            yield mount
        replay.check()
    finally:
        replay.close()


def replayed(name: str, axes: dict[str, AxisConfig] | None = None, **options: float
             ) -> contextlib.AbstractContextManager[GrblMount]:
    """The driver against the derived transcript ``name`` (GRBL 1.1h's side of it)."""
    return replaying(transcript(name), axes or GRBL_AXES, **options)


def test_alarm3_on_the_twin_homes_again_and_never_unlocks() -> None:
    twin = start_twin(time_scale=0.02)  # 150 -> 3000 mm: 0.57 s real
    try:
        with open_mount(twin.port) as mount:
            mount.home()
            errors = interrupt_long_move(mount, twin, twin.reset_pin)  # the board's reset input while it runs
            assert len(errors) == 1 and "ALARM:3 Reset while in motion" in str(errors[0])
            assert twin.state == "Alarm"
            homes = twin.lines.count("$H")
            assert mount.move_to(distance=500.0)["distance"] == 500.0 == twin.world.axes["Y"]
            assert twin.lines.count("$H") == homes + 1 and "$X" not in twin.lines
    finally:
        twin.stop()


def test_no_homing_after_an_alarm_is_a_station_fault_in_grbls_words() -> None:
    replay = PtyReplay(transcript("alarm3_reset_in_motion")[:8] + [(b"$H\n", b"error:5\r\n")])
    try:
        with open_mount(replay.port, axes=GRBL_AXES) as mount:
            mount.home()
            with pytest.raises(DeviceError):
                mount.move_to(distance=-800.0)
            with pytest.raises(DeviceError) as exc:
                mount.move_to(distance=-300.0)
            one_line_device_error(exc, "position lost (ALARM:3", "error:5 Homing not enabled", "never unlocks")
        replay.check()
    finally:
        replay.close()


def test_g54_offset_on_the_twin_moves_where_asked(twin: GrblEmulator) -> None:
    with serial.serial_for_url(twin.port, baudrate=115200, timeout=1.0) as terminal:
        for line in (b"$H\n", b"G10 L2 P1 X10 Y-100\n"):  # another program leaves a work offset
            terminal.write(line)
            assert terminal.readline().strip() == b"ok"
    with open_mount(twin.port) as mount:
        mount.home()
        assert mount.move_to(focus=50.0, distance=800.0) == HOME | {"focus": 50.0, "distance": 800.0}
        assert twin.world.axes["X"] == 50.0 and twin.world.axes["Y"] == 800.0  # machine coordinates
        assert mount.position() == twin.world.pose()


def test_replay_coolant_output_and_status_reports() -> None:
    with replayed("coolant_and_status") as mount:
        mount.home()
        mount.set_aux_output(True)
        assert mount.state() == "Idle" and mount.last_status.endswith("|A:F>")
        mount.set_aux_output(False)
        assert mount.state() == "Idle" and "A:F" not in mount.last_status
        assert mount.position() == GRBL_HOME


def test_replay_double_boot_at_open() -> None:
    with replayed("double_boot", boot_quiet_s=0.1) as mount:
        assert mount.identity == "Grbl 1.1h; VER:1.1h.20190825:"


def test_double_boot_on_the_twin() -> None:
    with GrblEmulator(World(time_scale=0.002), double_boot_s=0.05) as twin:
        with open_mount(twin.port, boot_quiet_s=0.3) as mount:
            time.sleep(0.1)  # had the second banner not been waited for, it would now sit in the line
            mount.home()
            assert mount.move_to(pan=5.0)["pan"] == 5.0
        assert twin.lines[:1] == ["$I"]


def test_four_axis_config_on_a_three_axis_controller_is_a_config_error_before_any_move() -> None:
    replay = PtyReplay(transcript("g54_offset")[:3])
    try:
        with pytest.raises(ConfigError) as exc:
            open_mount(replay.port, axes=GRBL_AXES | {"tilt": AxisConfig("A", -20.0, 20.0)})
        assert exc.value.exit_code == 2 and "\n" not in str(exc.value)
        assert str(exc.value).startswith("mount.axes.tilt: axis 'A', but the controller on ")
        assert "has 3 axes (X, Y, Z" in str(exc.value)
        replay.check()
    finally:
        replay.close()
    with GrblEmulator(World(time_scale=0.002), n_axes=3, flavour="grbl") as twin:
        with pytest.raises(ConfigError) as exc:
            open_mount(twin.port)
        assert "mount.axes.tilt" in str(exc.value)
        time.sleep(0.05)
        assert twin.lines == ["$I"] and twin.world.axes["A"] == 0.0  # nothing but $I and ? was sent


def test_a_symlinked_port_is_accepted(twin: GrblEmulator) -> None:
    """A port that is a symlink under /dev (as /dev/serial/by-id names a board; the config takes /dev paths only,
    so the link lives in /dev/shm)."""
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("needs a writable /dev/shm to put a symlinked port under /dev")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        link = Path(folder) / "usb-Grbl_CNC_Shield-if00-port0"
        os.symlink(twin.port, link)
        with open_mount(str(link)) as mount:
            mount.home()
            assert mount.move_to(focus=20.0)["focus"] == 20.0 == twin.world.axes["X"]


def test_a_serial_by_id_port_passes_the_station_config(tmp_path: Path) -> None:
    by_id = "/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0"  # always a symlink to a ttyUSB
    station_file = tmp_path / "bench.toml"
    station_file.write_text(to_toml(twin_config(5025, 5026, by_id, 7000, 7001)))
    assert load_config(station_file).mount.port == by_id


def test_work_positions_are_turned_into_machine_positions_with_wco() -> None:
    """A controller set to $10=0 reports WPos; WCO (sent on the first report after a reset) maps it back."""
    opening = transcript("g54_offset")[:2]
    replay = PtyReplay([*opening, (b"?", b"<Alarm|WPos:10.000,100.000,0.000|FS:0,0|WCO:-10.000,-100.000,0.000>\r\n"),
                        (b"?", b"<Alarm|WPos:9.000,99.000,-1.000|FS:0,0>\r\n")])
    try:
        with open_mount(replay.port, axes=GRBL_AXES) as mount:
            assert mount.position() == GRBL_HOME  # WPos + WCO: -1, -1, -1 in machine coordinates
        replay.check()
    finally:
        replay.close()
