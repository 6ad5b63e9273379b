"""The phone driver (``PhoneClient``) against the twin's phone on a real socket, and against a
recorded message exchange (pymeasure ``expected_protocol`` style, ``tests/unit/replay.py``)."""

from __future__ import annotations

import hashlib
import json
import socket
import time

import numpy as np
import pytest

from station.config import DutConfig
from station.devices.phone import DutReplyError, PhoneClient
from station.devices.protocols import Dut
from station.errors import DeviceError, InputError
from station.raw10 import pack_raw10
from station.twin.phone_server import PhoneServer
from station.twin.render import render_raw
from station.twin.world import World
from tests.unit.replay import TcpReplay
from tests.unit.wires import lit_world

RAW10_BYTES = 2048 * 1536 * 5 // 4  # a CI frame: rows of 2560 bytes, already 16-byte aligned


def phone_world() -> World:
    return lit_world(seed=5, level_pct=30.0)


@pytest.fixture(scope="module")
def bare_frame() -> tuple[np.ndarray, dict]:
    """One physics frame of the bare M sensor, replayed where the test is about the wire, not the scene."""
    return render_raw(phone_world(), "m", {"exposure_us": 1000, "analog_gain": 1.0}, 1)


@pytest.fixture
def world() -> World:
    return phone_world()


@pytest.fixture
def client(phone_server: PhoneServer):
    with PhoneClient(DutConfig(host="127.0.0.1", port=phone_server.port, timeout_s=10.0)) as dut:
        yield dut


@pytest.fixture
def quick(bare_frame):
    """A phone replaying one physics frame, and a client with a short timeout."""
    world = phone_world()
    with PhoneServer(world, render=lambda *_: bare_frame) as phone, \
            PhoneClient(DutConfig(host="127.0.0.1", port=phone.port, timeout_s=0.3)) as dut:
        yield dut, phone, world


def _line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


# --- against the twin --------------------------------------------------------------------

def test_identity_and_protocol(client: PhoneClient, world: World) -> None:
    assert isinstance(client, Dut)
    assert client.identity == f"M-Phone twin,{world.phone_serial()},golden"
    assert client.info()["sensors"]["main"]["cfa"] == "RGGB"


def test_capture_frame_is_the_physics_frame(client: PhoneClient, world: World) -> None:
    applied = client.configure("m", exposure_us=4000, analog_gain=2.0)
    assert applied["exposure_us"] == 4000 and applied["analog_gain"] == 2.0
    frame = client.capture_frame("m")
    expected, truth = render_raw(world, "m", {"exposure_us": 4000, "analog_gain": 2.0}, frame.extra["seq"])
    np.testing.assert_array_equal(frame.data, expected)
    assert (frame.sensor, frame.cfa, frame.black_level, frame.white_level) == ("m", "RGGB", 64, 1023)
    assert frame.exposure_s == pytest.approx(0.004) and frame.analog_gain == 2.0
    assert frame.dut_serial == client.serial and frame.firmware == "golden"
    assert frame.extra["truth"]["conversion_gain_dn_per_e"] == truth["conversion_gain_dn_per_e"]
    assert frame.extra["truth"]["sensor_serial"] == f"{client.serial}-m"
    # the app's histogram of that frame, then its preview
    counts = client.histogram("m", "raw")
    np.testing.assert_array_equal(counts, np.bincount(frame.data.ravel(), minlength=1024))
    assert sum(client.histogram("m", "preview")) == frame.data.size
    meta, png = client.capture("m", "preview", frame="last")
    assert png.startswith(b"\x89PNG") and meta["seq"] == frame.extra["seq"]
    assert isinstance(png, bytearray)  # the buffer the payload was received into, not a second (bytes) copy of it
    last = client.capture_frame("m", frame="last")
    assert last.extra["seq"] == frame.extra["seq"]
    np.testing.assert_array_equal(last.data, frame.data)


def test_calibration_round_trip(client: PhoneClient) -> None:
    blob = {"profiles": {"m/summicron-m-50-f2": {"k1": -0.01}}, "zebra": {"t_raw": 944}}
    receipt = client.calibration_write(blob)
    assert receipt["bytes"] == len(json.dumps(blob, separators=(",", ":"), sort_keys=True))
    assert client.calibration_read() == blob


@pytest.mark.parametrize("call, words", [
    (lambda c: c.capture("side", "raw10"), "sensor 'side'"),
    (lambda c: c.capture("main", "jpeg"), "format 'jpeg'"),
    (lambda c: c.configure("main", exposure_us=0), "exposure_us 0"),
    (lambda c: c.configure("main", exposure_us=1.5), "exposure_us 1.5"),
    (lambda c: c.configure("main", analog_gain="2"), "analog_gain '2'"),
    (lambda c: c.configure("m", focus_m=1.0), "main sensor only"),
    (lambda c: c.configure("main", iso=100), "setting 'iso'"),
    (lambda c: c.configure("main", zebra={"mode": "loud"}), "zebra.mode"),
    (lambda c: c.configure("main", peaking={"threshold": -1}), "peaking.threshold"),
    (lambda c: c.histogram("main", "luma"), "source 'luma'"),
    (lambda c: c.calibration_write([1]), "must be a dict"),
    (lambda c: c.calibration_write({"x": float("nan")}), "not plain JSON"),
])
def test_bad_arguments_are_input_errors_before_sending(call, words: str) -> None:
    replay = TcpReplay([(_line({"cmd": "info"}), _line({"ok": True, "result": {"model": "M", "serial": "S",
                                                                                 "firmware": "F"}}))])
    dut = PhoneClient(DutConfig(host="127.0.0.1", port=replay.port, timeout_s=1.0))
    with pytest.raises(InputError) as info:
        call(dut)
    assert words in str(info.value) and str(info.value).startswith("dut: ") and "\n" not in str(info.value)
    dut.close()
    replay.check()  # nothing but info reached the wire


def test_a_refused_command_is_a_one_line_device_error(client: PhoneClient) -> None:
    with pytest.raises(DutReplyError) as info:
        client.configure("main", exposure_us=60_000_000)  # over the phone's 30 s
    error = info.value
    assert isinstance(error, DeviceError) and error.exit_code == 3
    assert str(error).startswith("dut: configure: bad_request: exposure_us 60000000")
    assert "\n" not in str(error)
    assert error.code == "bad_request"
    with pytest.raises(DutReplyError, match="unknown command 'reboot'"):
        client.request("reboot")
    assert client.info()["model"]  # the connection survives a refusal


def test_connection_refused_names_host_and_port() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(DeviceError) as info:
        PhoneClient(DutConfig(host="127.0.0.1", port=port, timeout_s=0.5))
    assert f"127.0.0.1:{port}" in str(info.value) and "refused" in str(info.value)
    assert str(info.value).startswith("dut: ") and "\n" not in str(info.value)


# --- faults: retried with a bound, reported in one line -----------------------------

def test_one_corrupt_payload_is_detected_and_retried(quick, bare_frame) -> None:
    client, _, world = quick
    first = client.capture_frame("m")
    world.faults["dut_corrupt_payload"] = 2  # every second capture: the next one
    frame = client.capture_frame("m")
    assert frame.extra["seq"] == first.extra["seq"] + 2  # the corrupt frame was rejected
    np.testing.assert_array_equal(frame.data, bare_frame[0])


def capture_error(quick, fault: str) -> str:
    """Switch a phone fault on for good, capture a RAW10 frame: the one-line ``DeviceError`` it raises."""
    client, _, world = quick
    world.faults[fault] = True
    with pytest.raises(DeviceError) as info:
        client.capture("m", "raw10")
    text = str(info.value)
    assert "\n" not in text
    return text


def test_persistent_corruption_is_a_device_error(quick) -> None:
    text = capture_error(quick, "dut_corrupt_payload")
    assert text.startswith("dut: capture: corrupt payload: sha256") and "3 of 3 attempts" in text


def test_disconnect_mid_payload_names_the_bytes(quick) -> None:
    text = capture_error(quick, "dut_disconnect")
    assert f"connection closed after {RAW10_BYTES // 2} of {RAW10_BYTES} payload bytes" in text
    client, _, world = quick
    del world.faults["dut_disconnect"]
    meta, payload = client.capture("m", "raw10")  # reconnects on the next call
    assert len(payload) == RAW10_BYTES


def test_one_disconnect_is_retried_on_a_new_connection(quick) -> None:
    client, _, world = quick
    world.faults["dut_disconnect"] = 2  # every second capture
    client.capture("m", "raw10")
    meta, payload = client.capture("m", "raw10")
    assert meta["seq"] == 3 and hashlib.sha256(payload).hexdigest()


def test_a_dropped_frame_times_out_then_is_retried(quick) -> None:
    client, _, world = quick
    world.faults["dut_drop_frame"] = 2
    client.capture("m", "raw10")
    start = time.monotonic()
    meta, _ = client.capture("m", "raw10")
    assert meta["seq"] == 3 and time.monotonic() - start >= 0.3  # one timeout, then a new frame


def test_every_frame_dropped_is_a_timeout_error(quick) -> None:
    _, server, world = quick
    world.faults["dut_drop_frame"] = True
    dut = PhoneClient(DutConfig(host="127.0.0.1", port=server.port, timeout_s=0.2), attempts=2)
    with pytest.raises(DeviceError) as info:
        dut.capture("main", "raw10")
    assert "capture: no reply within 0.2 s" in str(info.value) and "2 of 2 attempts" in str(info.value)
    dut.close()


def test_phone_closing_before_the_reply_is_retried_then_reported() -> None:
    info = _line({"ok": True, "result": {"model": "M", "serial": "S", "firmware": "F"}})
    replay = TcpReplay([(_line({"cmd": "info"}), info), (_line({"cmd": "calibration.read"}), b"")])
    dut = PhoneClient(DutConfig(host="127.0.0.1", port=replay.port, timeout_s=1.0), attempts=1)
    with pytest.raises(DeviceError, match="connection closed by the phone before a reply"):
        dut.calibration_read()
    replay.check()


# --- a recorded exchange ----------------------------------------------------------------

def test_recorded_exchange() -> None:
    cfa = (np.arange(8 * 4, dtype=np.uint16).reshape(4, 8) * 31) % 1024
    raw = pack_raw10(cfa, stride_bytes=16)
    meta = {"sensor": "main", "format": "raw10", "seq": 7, "timestamp": "2024-01-01T00:00:00+00:00",
            "width": 8, "height": 4, "stride_bytes": 16, "cfa": "RGGB", "bit_depth": 10, "black_level": 64,
            "white_level": 1023, "exposure_us": 1000, "analog_gain": 1.0, "truth": {}}
    capture_reply = _line({"ok": True, "result": meta, "payload_bytes": len(raw),
                           "payload_sha256": hashlib.sha256(raw).hexdigest()}) + raw
    transcript = [
        (_line({"cmd": "info"}), _line({"ok": True, "result": {"model": "M-Phone", "serial": "SN1",
                                                               "firmware": "1.0"}})),
        (_line({"cmd": "configure", "sensor": "main", "exposure_us": 1000}),
         _line({"ok": True, "result": {"sensor": "main", "exposure_us": 1000}})),
        (_line({"cmd": "capture", "sensor": "main", "format": "raw10"}), capture_reply),
        (_line({"cmd": "histogram", "sensor": "main", "source": "raw"}),
         _line({"ok": False, "error": {"code": "busy", "message": "camera in use"}})),
    ]
    replay = TcpReplay(transcript)
    dut = PhoneClient(DutConfig(host="127.0.0.1", port=replay.port, timeout_s=2.0))
    assert dut.identity == "M-Phone,SN1,1.0"
    assert dut.configure("main", exposure_us=1000)["exposure_us"] == 1000
    frame = dut.capture_frame("main")
    np.testing.assert_array_equal(frame.data, cfa)
    assert frame.dut_serial == "SN1" and frame.exposure_s == pytest.approx(0.001)
    with pytest.raises(DeviceError, match=r"^dut: histogram: busy: camera in use$"):
        dut.histogram("main", "raw")
    dut.close()
    replay.check()
