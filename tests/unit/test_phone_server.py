"""The twin's phone service on a real TCP socket (DESIGN 3.3): info, configure, the physics' frames, calibration.

The wire is spoken by hand (raw JSON lines, ``tests.unit.phone_wire``), so the server is tested apart from the
driver. Frames are CI mode (2048 x 1536) from the twin's physics (``station.twin.render``); payloads are
decoded and checked against independent maths and against the render's ground truth. Firmware builds and
faults are in ``test_phone_firmware.py``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from station.dng import read_dng
from station.twin import isp
from station.twin.lenses import M_LENSES
from station.twin.phone_server import MAX_LINE_BYTES, PhoneServer
from station.twin.render import render_raw
from station.twin.world import World
from tests.unit.phone_wire import (
    BLACK,
    WHITE,
    Wire,
    decode_png,
    srgb8,
    unpack,
)
from tests.unit.wires import lit_world


@pytest.fixture
def world() -> World:
    return lit_world()


@pytest.fixture
def wire(phone_server: PhoneServer):
    w = Wire(phone_server.port)
    yield w
    w.close()


@pytest.fixture(scope="module")
def idle_wire():
    """One phone for the requests it refuses (they change nothing, take no frame)."""
    with PhoneServer(lit_world()) as phone:
        w = Wire(phone.port)
        yield w
        w.close()


# --- info and configure ----------------------------------------------------------------------

def test_info_reports_the_ci_sensors_lens_and_serials(wire: Wire, world: World) -> None:
    info, _ = wire.ok({"cmd": "info"})
    assert info["model"] == "M-Phone twin" and info["firmware"] == "golden"
    assert info["serial"] == world.phone_serial() and info["serial"].startswith("TWIN-")
    for name in ("main", "m"):
        sensor = info["sensors"][name]
        assert (sensor["width"], sensor["height"]) == (2048, 1536)
        assert sensor["cfa"] == "RGGB" and sensor["bit_depth"] == 10
        assert (sensor["black_level"], sensor["white_level"]) == (BLACK, WHITE)
        assert sensor["serial"] == f"{info['serial']}-{name}"
        # a 1-inch sensor: 13.1 x 9.8 mm whatever the binning
        assert sensor["width"] * sensor["pixel_pitch_um"] / 1000 == pytest.approx(13.1, abs=0.05)
        assert sensor["height"] * sensor["pixel_pitch_um"] / 1000 == pytest.approx(9.8, abs=0.05)
    assert info["m_lens"] is None
    world.m_lens, world.firmware = "summicron-m-50-f2", "zebra-shift"
    info, _ = wire.ok({"cmd": "info"})
    assert info["m_lens"] == {"id": "summicron-m-50-f2", "code": M_LENSES["summicron-m-50-f2"].code}
    assert info["firmware"] == "zebra-shift"


def test_serial_is_derived_from_the_seed() -> None:
    assert PhoneServer(World(seed=1)).serial == PhoneServer(World(seed=1)).serial
    assert PhoneServer(World(seed=1)).serial != PhoneServer(World(seed=2)).serial


def test_configure_round_trip_and_partial_update(wire: Wire) -> None:
    applied, _ = wire.ok({"cmd": "configure", "sensor": "main", "exposure_us": 2500, "analog_gain": 2.0,
                          "focus_m": 0.8, "zebra": {"enabled": True, "mode": "raw", "threshold": 900},
                          "peaking": {"enabled": True, "threshold": 30}})
    assert applied["exposure_us"] == 2500 and applied["analog_gain"] == 2.0 and applied["focus_m"] == 0.8
    assert applied["zebra"] == {"enabled": True, "mode": "raw", "threshold": 900}
    assert applied["peaking"] == {"enabled": True, "threshold": 30}
    again, _ = wire.ok({"cmd": "configure", "sensor": "main", "analog_gain": 4, "focus_m": None})
    assert again["exposure_us"] == 2500 and again["analog_gain"] == 4.0  # the rest kept
    assert again["focus_m"] is None  # autofocus
    other, _ = wire.ok({"cmd": "configure", "sensor": "m", "exposure_us": 700})
    assert other["analog_gain"] == 1.0 and "focus_m" not in other  # per sensor
    meta, _ = wire.ok({"cmd": "capture", "sensor": "m", "format": "raw10"})
    assert meta["exposure_us"] == 700 and meta["truth"]["exposure_s"] == pytest.approx(700e-6)


@pytest.mark.parametrize("request_, words", [
    ({"cmd": "configure", "sensor": "side"}, "sensor 'side'"),
    ({"cmd": "configure", "sensor": "m", "focus_m": 1.0}, "main sensor only"),
    ({"cmd": "configure", "sensor": "main", "focus_m": "far"}, "focus_m 'far'"),
    ({"cmd": "configure", "sensor": "main", "exposure_us": -5}, "exposure_us -5"),
    ({"cmd": "configure", "sensor": "main", "exposure_us": 1.5}, "exposure_us 1.5"),
    ({"cmd": "configure", "sensor": "main", "analog_gain": True}, "analog_gain True"),
    ({"cmd": "configure", "sensor": "main", "zebra": {"mode": "loud"}}, "zebra.mode"),
    ({"cmd": "configure", "sensor": "main", "zebra": {"mode": "luma", "threshold": 300}}, "zebra.threshold"),
    ({"cmd": "configure", "sensor": "main", "peaking": {"colour": "red"}}, "unknown argument 'colour'"),
    ({"cmd": "capture", "sensor": "main", "format": "jpeg"}, "format 'jpeg'"),
    ({"cmd": "capture", "sensor": "main"}, "missing argument 'format'"),
    ({"cmd": "capture", "sensor": "m", "format": "raw10", "frame": "last"}, "no frame"),
    ({"cmd": "histogram", "sensor": "main", "source": "luma"}, "source 'luma'"),
    ({"cmd": "reboot"}, "unknown command 'reboot'"),
    ({"cmd": "info", "verbose": True}, "unknown argument 'verbose'"),
    ({"command": "info"}, '"cmd"'),
    (b"{not json\n", "not a JSON line"),
    (b"[1, 2]\n", '"cmd"'),
])
def test_bad_requests_are_refused_on_the_wire(idle_wire: Wire, request_: dict | bytes, words: str) -> None:
    header, payload = idle_wire.call(request_)
    assert header["ok"] is False and payload is None
    assert header["error"]["code"] == "bad_request"
    assert words in header["error"]["message"] and "\n" not in header["error"]["message"]
    assert idle_wire.ok({"cmd": "info"})[0]["model"]  # the connection is still served


def test_a_line_over_the_bound_is_refused_and_closed(phone_server: PhoneServer) -> None:
    w = Wire(phone_server.port)
    try:
        w.send(b'{"cmd": "info", "pad": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
        header, _ = w.reply()
        assert header["ok"] is False and header["error"]["code"] == "line_too_long"
        assert w.file.readline() == b""  # closed
    finally:
        w.close()


# --- the physics' frames on the wire ---------------------------------------------------------

def test_frames_are_the_physics_and_raw10_equals_the_dng(wire: Wire, world: World) -> None:
    meta, payload = wire.ok({"cmd": "capture", "sensor": "main", "format": "raw10"})
    assert len(payload) == meta["height"] * meta["stride_bytes"]
    raw = unpack(meta, payload)
    # the render on the world alone (its own serial recipe): the phone's frame, seeded by seq
    expected, truth = render_raw(world, "main", {"exposure_us": meta["exposure_us"], "analog_gain": 1.0,
                                                 "focus_m": None}, meta["seq"])
    np.testing.assert_array_equal(raw, expected)
    assert meta["truth"]["sensor_serial"] == truth["sensor_serial"] == f"{world.phone_serial()}-main"
    assert {k: meta["truth"][k] for k in truth} == json.loads(json.dumps(truth))
    assert meta["truth"]["firmware"]["build"] == "golden"
    assert (meta["cfa"], meta["black_level"], meta["white_level"]) == ("RGGB", BLACK, WHITE)
    # the DNG of the very same frame carries the same data, levels and truth
    dng_meta, dng = wire.ok({"cmd": "capture", "sensor": "main", "format": "dng", "frame": "last"})
    frame = read_dng(dng)
    assert dng_meta["seq"] == meta["seq"]
    np.testing.assert_array_equal(frame.data, raw)
    assert (frame.cfa, frame.black_level, frame.white_level) == ("RGGB", BLACK, WHITE)
    assert frame.exposure_s == pytest.approx(meta["exposure_us"] * 1e-6)
    assert frame.sensor == "main" and frame.extra["seq"] == meta["seq"]
    assert frame.extra["truth"]["expected_mean_dn"] == pytest.approx(truth["expected_mean_dn"])


def test_same_seed_gives_byte_identical_dngs() -> None:
    payloads = []
    for _ in range(2):
        with PhoneServer(lit_world(seed=5)) as phone:
            w = Wire(phone.port)
            meta, payload = w.ok({"cmd": "capture", "sensor": "m", "format": "dng"})
            assert meta["seq"] == 1
            payloads.append(payload)
            w.close()
    assert payloads[0] == payloads[1]


def test_preview_of_a_flat_field_is_the_isp_of_the_true_signal(wire: Wire) -> None:
    meta, payload = wire.ok({"cmd": "capture", "sensor": "m", "format": "preview"})
    rgb = decode_png(payload)
    assert rgb.shape == (1536, 2048, 3) and rgb.dtype == np.uint8
    truth = meta["truth"]
    cx, cy = round(truth["intrinsics"]["cx"]), round(truth["intrinsics"]["cy"])
    centre = rgb[cy - 16:cy + 16, cx - 16:cx + 16].reshape(-1, 3).mean(axis=0)
    for k, channel in enumerate("rgb"):  # black level, the phone's daylight white balance, sRGB
        linear = (truth["expected_mean_dn_rgb"][channel] - BLACK) / (WHITE - BLACK) * isp.DEFAULT_WB_GAINS[k]
        assert 0.2 < linear < 0.9
        assert centre[k] == pytest.approx(srgb8(linear), abs=1.0)


def test_dark_frame_when_the_light_is_off(wire: Wire, world: World) -> None:
    world.set_light(output=False)
    meta, payload = wire.ok({"cmd": "capture", "sensor": "m", "format": "raw10"})
    raw = unpack(meta, payload)
    truth = meta["truth"]
    assert truth["illuminance_lux"] == 0.0
    dark_dn = truth["dark_current_e_per_s"] * truth["exposure_s"] * truth["conversion_gain_dn_per_e"]
    assert raw.mean() == pytest.approx(meta["black_level"] + dark_dn, abs=0.05)
    assert raw.std() < 1.0  # read noise and DSNU only


# --- calibration storage ---------------------------------------------------------------------

def test_calibration_write_then_read(wire: Wire) -> None:
    assert wire.ok({"cmd": "calibration.read"})[0]["blob"] == {}
    blob = {"zebra": {"main": {"t_raw": 944, "t_luma": 246}}, "lenses": [{"id": "summicron-m-50-f2"}],
            "sensors": {"m": {"wb_gains": [1.8, 1.0, 1.6],
                              "lenses": {"summicron-m-50-f2": {"lens_shading_map": [[[1, 1, 1, 1]] * 2] * 2}}}}}
    receipt, _ = wire.ok({"cmd": "calibration.write", "blob": blob})
    text = json.dumps(blob, separators=(",", ":"), sort_keys=True)
    assert receipt == {"bytes": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    assert wire.ok({"cmd": "calibration.read"})[0]["blob"] == blob


@pytest.mark.parametrize("blob, words", [
    ([1, 2], "JSON object"), ("text", "JSON object"), ({"pad": "x" * (1024 * 1024)}, "bytes"),
    ({"wb_gains": [1, 0, 1]}, "wb_gains"),
    ({"sensors": {"main": {"ccm": [[1, 0], [0, 1]]}}}, "sensors.main.ccm"),
    ({"sensors": {"m": {"lenses": {"summicron-m-50-f2": {"lens_shading_map": [[[0.5, 1, 1, 1]] * 2] * 2}}}}},
     "gains must be >= 1"),
])
def test_calibration_write_refuses_bad_blobs(wire: Wire, blob: object, words: str) -> None:
    header, _ = wire.call({"cmd": "calibration.write", "blob": blob})
    assert header["ok"] is False and header["error"]["code"] == "bad_request"
    assert words in header["error"]["message"]
    assert wire.ok({"cmd": "calibration.read"})[0]["blob"] == {}
