"""The twin's phone service on a real TCP socket (DESIGN 3.3), its simple sensor model and firmware.

The wire is spoken here by hand (raw JSON lines), so the server is tested apart from the
driver; frames and masks are checked against independent maths on the decoded payloads.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading

import cv2
import numpy as np
import pytest

from station.dng import read_dng
from station.raw10 import unpack_raw10
from station.twin import sensor_model
from station.twin.phone_server import MAX_LINE_BYTES, PHONE_FAULTS, PhoneServer
from station.twin.world import World


class Wire:
    """A hand-driven client of the phone's wire."""

    def __init__(self, port: int, timeout_s: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.file = self.sock.makefile("rb")

    def send(self, obj: dict | bytes) -> None:
        self.sock.sendall(obj if isinstance(obj, bytes) else json.dumps(obj).encode() + b"\n")

    def reply(self) -> tuple[dict, bytes | None]:
        line = self.file.readline()
        assert line.endswith(b"\n"), f"no reply line: {line!r}"
        header = json.loads(line)
        payload = None
        if "payload_bytes" in header:
            payload = self.file.read(header["payload_bytes"])
        return header, payload

    def call(self, obj: dict | bytes) -> tuple[dict, bytes | None]:
        self.send(obj)
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    """A lit world at a small test resolution (512 x 384) so PNG-heavy tests stay fast."""
    monkeypatch.setitem(sensor_model.RESOLUTIONS, "unit",
                        {"width": 512, "height": 384, "pixel_pitch_um": 25.6})
    world = World(seed=11, time_scale=0.001, resolution="unit")
    world.set_light(output=True, level_pct=40.0)
    world.light.settle_s = 0.0
    return world


@pytest.fixture
def server(world: World):
    with PhoneServer(world) as phone:
        yield phone


@pytest.fixture
def wire(server: PhoneServer):
    w = Wire(server.port)
    yield w
    w.close()


def _ok(header: dict) -> dict:
    assert header["ok"] is True, header
    return header["result"]


def _decode_png(payload: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), flags)
    assert image is not None
    return image[..., ::-1] if image.ndim == 3 else image  # BGR -> RGB


def _luma(rgb: np.ndarray) -> np.ndarray:
    """DESIGN 7: Y' = 0.2126 R' + 0.7152 G' + 0.0722 B', rounded half up, in exact integer maths."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return (r * 2126 + g * 7152 + b * 722 + 5000) // 10000


def _raw(meta: dict, payload: bytes) -> np.ndarray:
    return unpack_raw10(payload, meta["width"], meta["height"], meta["stride_bytes"])


# --- info and configure ----------------------------------------------------------------

def test_info_reports_the_ci_sensors_and_lens(wire: Wire, world: World) -> None:
    world.resolution = "ci"
    info = _ok(wire.call({"cmd": "info"})[0])
    assert info["model"] == "M-Phone twin" and info["firmware"] == "golden"
    assert info["serial"].startswith("TWIN-") and len(info["serial"]) > 5
    for name in ("main", "m"):
        sensor = info["sensors"][name]
        assert (sensor["width"], sensor["height"]) == (2048, 1536)
        assert sensor["cfa"] == "RGGB" and sensor["bit_depth"] == 10
        assert (sensor["black_level"], sensor["white_level"]) == (64, 1023)
        # a 1-inch sensor: 13.1 x 9.8 mm whatever the binning
        assert sensor["width"] * sensor["pixel_pitch_um"] / 1000 == pytest.approx(13.1, abs=0.05)
        assert sensor["height"] * sensor["pixel_pitch_um"] / 1000 == pytest.approx(9.8, abs=0.05)
    assert info["m_lens"] is None
    world.m_lens, world.firmware = "summicron-m-50-f2", "fw-2"
    info = _ok(wire.call({"cmd": "info"})[0])
    assert info["m_lens"]["id"] == "summicron-m-50-f2" and 0 <= info["m_lens"]["code"] < 64
    assert info["firmware"] == "fw-2"


def test_serial_is_derived_from_the_seed() -> None:
    assert PhoneServer(World(seed=1)).serial == PhoneServer(World(seed=1)).serial
    assert PhoneServer(World(seed=1)).serial != PhoneServer(World(seed=2)).serial


def test_full_resolution_is_the_whole_sensor() -> None:
    geometry = sensor_model.sensor_geometry("full")
    assert (geometry["width"], geometry["height"]) == (8192, 6144)
    assert geometry["width"] * geometry["pixel_pitch_um"] / 1000 == pytest.approx(13.1, abs=0.05)


def test_configure_round_trip_and_partial_update(wire: Wire) -> None:
    applied = _ok(wire.call({"cmd": "configure", "sensor": "main", "exposure_us": 2500, "analog_gain": 2.0,
                             "focus_m": 0.8, "zebra": {"enabled": True, "mode": "raw", "threshold": 900},
                             "peaking": {"enabled": True, "threshold": 30}})[0])
    assert applied["exposure_us"] == 2500 and applied["analog_gain"] == 2.0 and applied["focus_m"] == 0.8
    assert applied["zebra"] == {"enabled": True, "mode": "raw", "threshold": 900}
    assert applied["peaking"] == {"enabled": True, "threshold": 30}
    again = _ok(wire.call({"cmd": "configure", "sensor": "main", "analog_gain": 4})[0])
    assert again["exposure_us"] == 2500 and again["analog_gain"] == 4.0  # the rest kept
    other = _ok(wire.call({"cmd": "configure", "sensor": "m"})[0])
    assert other["exposure_us"] != 2500 and "focus_m" not in other  # per sensor
    meta, _ = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    assert meta["result"]["exposure_us"] == 2500 and meta["result"]["analog_gain"] == 4.0


@pytest.mark.parametrize("request_, words", [
    ({"cmd": "configure", "sensor": "side"}, "sensor 'side'"),
    ({"cmd": "configure", "sensor": "m", "focus_m": 1.0}, "main sensor only"),
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
def test_bad_requests_are_refused_on_the_wire(wire: Wire, request_: dict | bytes, words: str) -> None:
    header, payload = wire.call(request_)
    assert header["ok"] is False and payload is None
    assert header["error"]["code"] == "bad_request"
    assert words in header["error"]["message"] and "\n" not in header["error"]["message"]
    assert _ok(wire.call({"cmd": "info"})[0])["model"]  # the connection is still served


def test_a_line_over_the_bound_is_refused_and_closed(server: PhoneServer) -> None:
    w = Wire(server.port)
    try:
        w.send(b'{"cmd": "info", "pad": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
        header, _ = w.reply()
        assert header["ok"] is False and header["error"]["code"] == "line_too_long"
        assert w.file.readline() == b""  # closed
    finally:
        w.close()


def test_several_clients_at_once(server: PhoneServer) -> None:
    results: list[int] = []

    def client() -> None:
        w = Wire(server.port)
        for _ in range(2):
            header, payload = w.call({"cmd": "capture", "sensor": "m", "format": "raw10"})
            assert hashlib.sha256(payload).hexdigest() == header["payload_sha256"]
            results.append(header["result"]["seq"])
        w.close()

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == list(range(1, 7))  # one phone, one frame counter


# --- frames: the model, RAW10, DNG, preview and the app's features ------------------

def test_raw10_capture_is_what_the_model_made(wire: Wire, world: World) -> None:
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    meta = _ok(header)
    assert header["payload_bytes"] == len(payload) == meta["height"] * meta["stride_bytes"]
    assert hashlib.sha256(payload).hexdigest() == header["payload_sha256"]
    settings = {"exposure_us": meta["exposure_us"], "analog_gain": meta["analog_gain"]}
    expected, truth = sensor_model.render_raw(world, "main", settings, meta["seq"])
    np.testing.assert_array_equal(_raw(meta, payload), expected)
    assert meta["truth"] == pytest.approx(truth)
    # seeded: the same seq is the same frame; the next seq is a new noise draw
    again, _ = sensor_model.render_raw(world, "main", settings, meta["seq"])
    np.testing.assert_array_equal(again, expected)
    header2, payload2 = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    assert header2["result"]["seq"] == meta["seq"] + 1
    assert not np.array_equal(_raw(header2["result"], payload2), expected)
    other, _ = sensor_model.render_raw(World(seed=12, time_scale=0.001), "main", settings, meta["seq"])
    assert not np.array_equal(other, expected)


def test_dng_capture_reads_back(wire: Wire) -> None:
    header, payload = wire.call({"cmd": "capture", "sensor": "m", "format": "dng"})
    meta = _ok(header)
    _, raw_payload = wire.call({"cmd": "capture", "sensor": "m", "format": "raw10", "frame": "last"})
    frame = read_dng(payload)
    np.testing.assert_array_equal(frame.data, _raw(meta | {"stride_bytes": 640}, raw_payload))
    assert (frame.cfa, frame.black_level, frame.white_level) == ("RGGB", 64, 1023)
    assert frame.exposure_s == pytest.approx(meta["exposure_us"] * 1e-6)
    assert frame.sensor == "m" and frame.extra.get("seq") == meta["seq"]


def test_same_seed_gives_byte_identical_dngs(world: World) -> None:
    payloads = []
    for _ in range(2):
        with PhoneServer(world) as phone:
            w = Wire(phone.port)
            header, payload = w.call({"cmd": "capture", "sensor": "main", "format": "dng"})
            assert header["result"]["seq"] == 1
            payloads.append(payload)
            w.close()
    assert payloads[0] == payloads[1]


def _expected_preview_code(mean_dn: float) -> float:
    linear = (mean_dn - 64) / (1023 - 64)
    srgb = 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055
    return 255 * srgb


def test_preview_png_decodes_to_the_flat_field(wire: Wire) -> None:
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "preview"})
    meta = _ok(header)
    rgb = _decode_png(payload)
    assert rgb.shape == (meta["height"], meta["width"], 3) and rgb.dtype == np.uint8
    expected = _expected_preview_code(meta["truth"]["noise_free_mean_dn"])
    for channel in range(3):  # grey flat field, unit white balance: every channel the same level
        assert rgb[..., channel].mean() == pytest.approx(expected, abs=1.5)


def test_dark_frame_when_the_light_is_off(wire: Wire, world: World) -> None:
    world.set_light(output=False)
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    raw = _raw(header["result"], payload)
    assert header["result"]["truth"]["illuminance_lux"] == 0.0
    assert raw.mean() == pytest.approx(64.0, abs=0.05)
    assert raw.std() == pytest.approx(2.0, rel=0.05)  # read noise only


def test_zebra_masks_match_the_spec(wire: Wire) -> None:
    # a flat field near the raw clip: the noise straddles both thresholds
    _ok(wire.call({"cmd": "configure", "sensor": "main", "exposure_us": 20_000,
                   "zebra": {"enabled": True, "mode": "luma", "threshold": 0}})[0])
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "preview"})
    luma = _luma(_decode_png(payload))
    threshold = int(np.median(luma))
    _ok(wire.call({"cmd": "configure", "sensor": "main", "zebra": {"threshold": threshold}})[0])
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "zebra_mask"})
    assert header["result"]["zebra"]["threshold"] == threshold
    _, preview = wire.call({"cmd": "capture", "sensor": "main", "format": "preview", "frame": "last"})
    mask = _decode_png(payload)
    expected = np.where(_luma(_decode_png(preview)) >= threshold, 255, 0)
    assert 0.05 < (mask > 0).mean() < 0.95
    np.testing.assert_array_equal(mask, expected)

    raw_threshold = 880
    _ok(wire.call({"cmd": "configure", "sensor": "main",
                   "zebra": {"mode": "raw", "threshold": raw_threshold}})[0])
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "zebra_mask"})
    raw_header, raw_payload = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10",
                                         "frame": "last"})
    assert raw_header["result"]["seq"] == header["result"]["seq"]
    raw = _raw(raw_header["result"], raw_payload)
    mask = _decode_png(payload)
    assert 0.05 < (mask > 0).mean() < 0.95
    for r in range(2):
        for c in range(2):
            quad_flag = np.zeros(raw[::2, ::2].shape, bool)
            for dr in range(2):
                for dc in range(2):
                    quad_flag |= raw[dr::2, dc::2] >= raw_threshold
            np.testing.assert_array_equal(mask[r::2, c::2] > 0, quad_flag)

    _ok(wire.call({"cmd": "configure", "sensor": "main", "zebra": {"enabled": False}})[0])
    _, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "zebra_mask"})
    assert not _decode_png(payload).any()


def test_peaking_mask_matches_the_spec(wire: Wire) -> None:
    _ok(wire.call({"cmd": "configure", "sensor": "main", "exposure_us": 5000,
                   "peaking": {"enabled": True, "threshold": 6}})[0])
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "peaking_mask"})
    _, preview = wire.call({"cmd": "capture", "sensor": "main", "format": "preview", "frame": "last"})
    luma = _luma(_decode_png(preview)).astype(np.float32)
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)
    response = np.abs(cv2.filter2D(luma, -1, kernel, borderType=cv2.BORDER_REPLICATE))
    mask = _decode_png(payload)
    assert 0.01 < (mask > 0).mean() < 0.99  # noise peaks at a low threshold
    np.testing.assert_array_equal(mask > 0, response >= 6)
    _ok(wire.call({"cmd": "configure", "sensor": "main", "peaking": {"enabled": False}})[0])
    _, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "peaking_mask"})
    assert not _decode_png(payload).any()


def test_histograms_match_the_captured_frame(wire: Wire) -> None:
    header, payload = wire.call({"cmd": "capture", "sensor": "m", "format": "raw10"})
    raw = _raw(header["result"], payload)
    hist = _ok(wire.call({"cmd": "histogram", "sensor": "m", "source": "raw"})[0])
    assert hist["seq"] == header["result"]["seq"] and hist["bins"] == 1024
    assert sum(hist["counts"]) == raw.size
    np.testing.assert_array_equal(hist["counts"], np.histogram(raw, bins=1024, range=(0, 1024))[0])

    _, preview = wire.call({"cmd": "capture", "sensor": "m", "format": "preview", "frame": "last"})
    luma = _luma(_decode_png(preview))
    hist = _ok(wire.call({"cmd": "histogram", "sensor": "m", "source": "preview"})[0])
    assert hist["bins"] == 256 and sum(hist["counts"]) == raw.size
    np.testing.assert_array_equal(hist["counts"], np.histogram(luma, bins=256, range=(0, 256))[0])


# --- the simple sensor model: linear in light, EMVA 1288 photon transfer -----------

def test_flat_field_mean_is_linear_in_exposure(world: World) -> None:
    exposures_s = np.array([0.002, 0.004, 0.006, 0.008, 0.010])
    means = []
    for seq, exposure_s in enumerate(exposures_s):
        raw, truth = sensor_model.render_raw(world, "main", {"exposure_us": int(exposure_s * 1e6),
                                                             "analog_gain": 1.0}, seq)
        signal_dn = truth["mean_signal_e"] * truth["conversion_gain_dn_per_e"]
        assert signal_dn < 0.8 * (truth["clip_level_dn"] - 64)  # well below the clip
        means.append(raw.mean(dtype=np.float64))
    slope, offset = np.polyfit(exposures_s, means, 1)
    fit = slope * exposures_s + offset
    assert np.max(np.abs(np.array(means) - fit) / (fit - 64)) < 0.005  # linearity error
    assert offset == pytest.approx(64.0, abs=0.5)  # black level
    expected_slope = (world.illuminance_lux() * sensor_model.K_E_PER_LUX_S
                      * sensor_model.CONVERSION_GAIN_DN_PER_E)
    assert slope == pytest.approx(expected_slope, rel=0.005)


def test_photon_transfer_gives_the_conversion_gain(world: World) -> None:
    """EMVA 1288: K = var(A - B) / 2 over mean(A + B) / 2 - black, corrected for read noise."""
    settings = {"exposure_us": 6000, "analog_gain": 2.0}
    a, truth = sensor_model.render_raw(world, "main", settings, 1)
    b, _ = sensor_model.render_raw(world, "main", settings, 2)
    dark_a, _ = sensor_model.render_raw(World(seed=11), "main", settings, 1)  # light off
    dark_b, _ = sensor_model.render_raw(World(seed=11), "main", settings, 2)
    diff = a.astype(np.float64) - b
    dark_diff = dark_a.astype(np.float64) - dark_b
    signal = (a.mean(dtype=np.float64) + b.mean(dtype=np.float64)) / 2 - 64
    gain = (diff.var() / 2 - dark_diff.var() / 2) / signal
    assert gain == pytest.approx(truth["conversion_gain_dn_per_e"], rel=0.02)
    assert np.sqrt(dark_diff.var() / 2) == pytest.approx(truth["read_noise_dn"], rel=0.02)


def test_clip_level_follows_the_full_well_and_gain(world: World) -> None:
    long = {"exposure_us": 200_000}
    raw1, truth1 = sensor_model.render_raw(world, "main", long | {"analog_gain": 1.0}, 1)
    raw2, truth2 = sensor_model.render_raw(world, "main", long | {"analog_gain": 2.0}, 1)
    # gain 1: the well fills first, at black + K * full well, below the ADC's top code
    assert truth1["clip_level_dn"] == 64 + 0.25 * 3600 < 1023
    assert raw1.mean() == pytest.approx(truth1["clip_level_dn"], abs=0.5) and raw1.max() < 1023
    # gain 2: the ADC clips first
    assert truth2["clip_level_dn"] == 1023 and raw2.max() == 1023 and raw2.mean() > 1015


# --- faults on the wire ----------------------------------------------------------------

def test_phone_faults_are_documented() -> None:
    assert set(PHONE_FAULTS) == {"dut_drop_frame", "dut_corrupt_payload", "dut_disconnect"}
    assert all(isinstance(text, str) and text for text in PHONE_FAULTS.values())


def test_drop_frame_gets_no_reply(server: PhoneServer, world: World) -> None:
    world.faults["dut_drop_frame"] = 2  # every second capture
    w = Wire(server.port, timeout_s=0.3)
    try:
        assert w.call({"cmd": "capture", "sensor": "main", "format": "raw10"})[0]["ok"]
        w.send({"cmd": "capture", "sensor": "main", "format": "raw10"})
        with pytest.raises(TimeoutError):
            w.file.readline()
    finally:
        w.close()
    w = Wire(server.port)
    header, _ = w.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    assert header["result"]["seq"] == 3  # the dropped frame was taken, then lost
    w.close()


def test_corrupt_payload_fails_its_sha(wire: Wire, world: World) -> None:
    world.faults["dut_corrupt_payload"] = True
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    assert len(payload) == header["payload_bytes"]
    assert hashlib.sha256(payload).hexdigest() != header["payload_sha256"]
    del world.faults["dut_corrupt_payload"]
    header, payload = wire.call({"cmd": "capture", "sensor": "main", "format": "raw10"})
    assert hashlib.sha256(payload).hexdigest() == header["payload_sha256"]


def test_disconnect_closes_mid_payload(wire: Wire, world: World) -> None:
    world.faults["dut_disconnect"] = True
    wire.send({"cmd": "capture", "sensor": "main", "format": "raw10"})
    header = json.loads(wire.file.readline())
    rest = wire.file.read()
    assert header["payload_bytes"] > 0 and len(rest) == header["payload_bytes"] // 2


# --- calibration storage ---------------------------------------------------------------

def test_calibration_write_then_read(wire: Wire) -> None:
    assert _ok(wire.call({"cmd": "calibration.read"})[0])["blob"] == {}
    blob = {"zebra": {"main": {"t_raw": 944, "t_luma": 246}}, "lenses": [{"id": "summicron-m-50-f2"}]}
    receipt = _ok(wire.call({"cmd": "calibration.write", "blob": blob})[0])
    text = json.dumps(blob, separators=(",", ":"), sort_keys=True)
    assert receipt == {"bytes": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    assert _ok(wire.call({"cmd": "calibration.read"})[0])["blob"] == blob


@pytest.mark.parametrize("blob, words", [([1, 2], "JSON object"), ("text", "JSON object"),
                                         ({"pad": "x" * (1024 * 1024)}, "bytes")])
def test_calibration_write_refuses_bad_blobs(wire: Wire, blob: object, words: str) -> None:
    header, _ = wire.call({"cmd": "calibration.write", "blob": blob})
    assert header["ok"] is False and words in header["error"]["message"]
    assert _ok(wire.call({"cmd": "calibration.read"})[0])["blob"] == {}
