"""GrblMount on real wires: the twin's GRBL emulator on a pty, and a recorded GRBL 1.1h exchange.

Expected positions and times come from the requested targets, the bench's max rates and
plain kinematics; the twin's world (what the renderer sees) is the ground truth of the pose.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from station.config import TWIN_AXES, AxisConfig, MountConfig
from station.devices.grbl_mount import GrblMount
from station.devices.protocols import Mount
from station.errors import DeviceError, InputError
from station.twin.grbl_emulator import GrblEmulator
from station.twin.world import World
from tests.unit.replay import PtyReplay

HOME = {"focus": 0.0, "distance": 150.0, "pan": 0.0, "tilt": 0.0}


def start_twin(time_scale: float = 0.002) -> GrblEmulator:
    return GrblEmulator(World(time_scale=time_scale)).start()


def open_mount(port: str, timeout_s: float = 5.0, axes: dict[str, AxisConfig] | None = None,
               **kwargs: float) -> GrblMount:
    config = MountConfig(port=port, timeout_s=timeout_s, axes=dict(axes or TWIN_AXES))
    options = {"poll_s": 0.005, "stall_s": 0.3, "hold_s": 0.5} | kwargs
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
    assert twin.lines[-1] == "G90 G0 X45.500 Y812.250 Z-12.500 A7.125"


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
        one_line_device_error(exc, "error:15", "Travel exceeds machine travel", "G90 G0 Y3300.000")
        assert mount.position() == HOME == twin.world.pose()


def test_stop_mid_move_halts_then_next_move_unlocks() -> None:
    twin = start_twin(time_scale=0.02)  # 150 -> 3000 mm: 28.5 s simulated, 0.57 s real
    try:
        with open_mount(twin.port) as mount:
            mount.home()
            errors: list[BaseException] = []

            def move() -> None:
                try:
                    mount.move_to(distance=3000.0)
                except BaseException as exc:  # noqa: BLE001 - handed to the test
                    errors.append(exc)

            mover = threading.Thread(target=move)
            mover.start()
            deadline = time.monotonic() + 2.0
            while twin.world.axes["Y"] < 300.0 and time.monotonic() < deadline:
                time.sleep(0.005)
            mount.stop()
            mover.join(2.0)
            assert len(errors) == 1 and isinstance(errors[0], DeviceError)
            assert "interrupted by stop()" in str(errors[0])
            halted = twin.world.axes["Y"]
            time.sleep(0.1)
            assert twin.world.axes["Y"] == halted and 300.0 <= halted < 3000.0  # motion stopped
            assert twin.state == "Alarm"  # reset in motion: ALARM:3
            assert mount.position()["distance"] == pytest.approx(halted, abs=5e-4)
            assert mount.move_to(distance=500.0)["distance"] == 500.0  # unlocked with $X after stop()
            assert twin.lines[-2:] == ["$X", "G90 G0 Y500.000"]
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
    ("mount_alarm", ["ALARM:1 Hard limit triggered", "G90 G0 Y1050.000"]),
    ("mount_garbage", ["unexpected answer b'\\x", "to 'G90 G0 Y1050.000'"]),
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


#: A recorded session with a 3-axis GRBL 1.1h (grblHAL-style extras in the status reports).
GRBL_11H_SESSION = [
    (b"\x18", b"\r\nGrbl 1.1h ['$' for help]\r\n[MSG:'$H'|'$X' to unlock]\r\n"),
    (b"$I\n", b"[VER:1.1h.20190825:bench-7]\r\n[OPT:V,15,128]\r\nok\r\n"),
    (b"$H\n", b"ok\r\n"),
    (b"?", b"<Idle|MPos:0.000,150.000,0.000|Bf:15,128|FS:0,0|WCO:0.000,0.000,0.000>\r\n"),
    (b"G90 G0 X12.500 Y800.000\n", b"<Idle|MPos:0.000,150.000,0.000|FS:0,0>\r\n[GC:G0 G54 G17 G21 G90 G94 M5 "
                                   b"M9 T0 F0 S0]\r\nok\r\n"),
    (b"?", b"<Run|MPos:6.250,475.000,0.000|Bf:14,127|FS:3000,0|Pn:P>\r\n"),
    (b"?", b"[MSG:Pgm End]\r\n<Idle|MPos:12.500,800.000,0.000|FS:0,0|Ov:100,100,100>\r\n"),
    (b"G90 G0 Z45.000\n", b"error:15\r\n"),
    (b"?", b"<Idle|WPos:2.500,790.000,0.000|FS:0,0|WCO:10.000,10.000,0.000>\r\n"),
]


def test_recorded_grbl_11h_session() -> None:
    replay = PtyReplay(GRBL_11H_SESSION)
    axes = {"focus": AxisConfig("X", 0.0, 300.0), "distance": AxisConfig("Y", 150.0, 3000.0),
            "pan": AxisConfig("Z", -50.0, 50.0)}
    try:
        with open_mount(replay.port, axes=axes) as mount:
            assert mount.identity == "Grbl 1.1h; VER:1.1h.20190825:bench-7"
            mount.home()
            assert mount.move_to(focus=12.5, distance=800.0) == {"focus": 12.5, "distance": 800.0, "pan": 0.0}
            with pytest.raises(DeviceError) as exc:
                mount.move_to(pan=45.0)
            one_line_device_error(exc, "error:15 Travel exceeds machine travel in reply to 'G90 G0 Z45.000'")
            assert mount.position() == {"focus": 12.5, "distance": 800.0, "pan": 0.0}  # WPos + WCO
        replay.check()
    finally:
        replay.close()


def test_three_axis_controller_cannot_serve_a_four_axis_config() -> None:
    replay = PtyReplay(GRBL_11H_SESSION[:3] + [
        (b"?", b"<Idle|MPos:0.000,150.000,0.000|FS:0,0>\r\n")])
    try:
        with open_mount(replay.port) as mount, pytest.raises(DeviceError) as exc:
            mount.home()
        one_line_device_error(exc, "lacks axes ['A']", "3-axis controller")
    finally:
        replay.close()
