"""Hypothesis fuzzing of every parser that reads from outside (issue 10 Build 2).

Each property says: the parser either gives a valid object (checked against independent rules) or
raises the one error type its caller turns into one line (``ConfigError``/``InputError`` exit 2,
``DeviceError`` exit 3); never another exception, never a multi-line message. The default run is
bounded (``FAST``); ``-m slow`` runs the same properties for a longer campaign (``LONG``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station.config import STANDARD_BAUDRATES, StationConfig, parse_config, to_toml, twin_config
from station.devices.phone import parse_raw10_metadata
from station.dng import dng_bytes, read_dng
from station.errors import ConfigError, DeviceError, InputError
from station.limits import default_limits_path, parse_limits
from station.raw10 import pack_raw10, unpack_raw10
from tests.unit.fuzz_corpus import flat_frame, patch_tag, self_pointing_ifd

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
LONG = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=6)
toml_scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=20),
                         st.sampled_from(["TCPIP0::h::1::SOCKET", "/dev/ttyUSB0", "/dev/../x", "a\nb", "phöne:1",
                                          "127.0.0.1:7000", "ASRL/dev/ttyS0::INSTR", "sqlite:///x.db", "prompt"]))
toml_values = st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3),
                        st.dictionaries(st.text(min_size=1, max_size=8), toml_scalars, max_size=3))


def one_line(exc: BaseException, source: str) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text and text.startswith(source), text


def accepted(parse: Callable[[], Any], error: type[Exception], source: str) -> Any:
    """What ``parse()`` returns, or None when it refuses with ``error`` in one line starting with ``source``."""
    try:
        return parse()
    except error as exc:
        one_line(exc, source)
        return None


def both(strategy: Any) -> Any:
    """The default bounded test and its ``-m slow`` long campaign, from one property."""
    def make(prop: Any) -> tuple[Any, Any]:
        fast = FAST(given(strategy)(prop))
        long = pytest.mark.slow(LONG(given(strategy)(prop)))
        return fast, long
    return make


# --- station TOML ------------------------------------------------------------------------

GOOD_STATION = tomllib.loads(to_toml(twin_config(5025, 5026, "/dev/pts/7", 7000, 7001)))


def _paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in doc.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _paths(value, (*prefix, key))
    return out


@st.composite
def mutated_documents(draw: Any, base: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        holder = doc
        for key in path[:-1]:
            holder = holder[key]
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del holder[path[-1]]
        elif action == "replace":
            holder[path[-1]] = draw(toml_values)
        elif isinstance(holder.get(path[-1]), dict):
            holder[path[-1]][draw(st.text(min_size=1, max_size=10))] = draw(toml_values)
    return doc


def _valid_station(config: StationConfig) -> None:
    """Independent rules every accepted station config meets."""
    texts = [config.name, config.light.resource, config.meter.resource, config.mount.port, config.dut.host]
    assert all(t.isascii() and t.isprintable() for t in texts), texts
    assert "/../" not in config.mount.port and 1 <= config.dut.port <= 65535
    assert config.mount.baudrate in STANDARD_BAUDRATES
    for t in (config.light.timeout_s, config.meter.timeout_s, config.mount.timeout_s, config.dut.timeout_s):
        assert math.isfinite(t) and 0 < t <= 3600
    for axis in config.mount.axes.values():
        assert math.isfinite(axis.min) and math.isfinite(axis.max) and axis.min < axis.max


def _station_property(doc: dict[str, Any]) -> None:
    config = accepted(lambda: parse_config(doc, "fuzz.toml"), ConfigError, "fuzz.toml: ")
    if config is None:
        return
    _valid_station(config)
    again = parse_config(tomllib.loads(to_toml(config)), "fuzz.toml")  # what we write we read back
    assert again == config


test_station_toml_fuzz, test_station_toml_fuzz_long = both(mutated_documents(GOOD_STATION))(_station_property)


def _station_text_property(text: str) -> None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    _station_property(doc)


test_station_toml_text_fuzz, test_station_toml_text_fuzz_long = both(
    st.text(max_size=200).map(lambda t: tomli_w.dumps(GOOD_STATION)[: len(t) % 900] + t))(_station_text_property)


# --- limits TOML -------------------------------------------------------------------------

GOOD_LIMITS = tomllib.loads(default_limits_path().read_text())
SMALL_LIMITS = {"meta": GOOD_LIMITS["meta"], "measurements": dict(list(GOOD_LIMITS["measurements"].items())[:6]),
                "regression": {k: v for k, v in GOOD_LIMITS.get("regression", {}).items()
                               if k in dict(list(GOOD_LIMITS["measurements"].items())[:6])}}


def _limits_property(doc: dict[str, Any]) -> None:
    limits = accepted(lambda: parse_limits(doc, "fuzz-limits.toml"), ConfigError, "fuzz-limits.toml: ")
    if limits is None:
        return
    for name, lim in limits.measurements.items():
        for case_lim in [lim, *limits.cases.get(name, {}).values()]:
            for v in (case_lim.low, case_lim.high):
                assert v is None or math.isfinite(v)
            assert case_lim.low is None or case_lim.high is None or case_lim.low < case_lim.high
            assert 0 <= case_lim.marginal_pct <= 49
    assert set(limits.regression) <= set(limits.measurements)


test_limits_toml_fuzz, test_limits_toml_fuzz_long = both(mutated_documents(SMALL_LIMITS))(_limits_property)


# --- the phone's capture metadata (JSON from the DUT) ------------------------------------

GOOD_META = {"width": 2048, "height": 1536, "stride_bytes": 2560, "black_level": 64, "white_level": 1023,
             "bit_depth": 10, "cfa": "RGGB", "exposure_us": 1000, "analog_gain": 1.0, "seq": 3}


@st.composite
def metadata(draw: Any) -> dict[str, Any]:
    meta = dict(GOOD_META)
    for key in draw(st.lists(st.sampled_from(sorted(GOOD_META)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del meta[key]
        else:
            meta[key] = draw(json_values)
    return meta


def _metadata_property(meta: dict[str, Any]) -> None:
    m = accepted(lambda: parse_raw10_metadata("dut", meta), DeviceError, "dut: capture: raw10 metadata: ")
    if m is None:
        return
    for key in ("width", "height", "black_level", "white_level", "bit_depth"):
        value = getattr(m, key)
        assert type(value) is int, (key, value)
    assert math.isfinite(m.exposure_us) and m.exposure_us > 0 and math.isfinite(m.analog_gain)


test_phone_metadata_fuzz, test_phone_metadata_fuzz_long = both(metadata())(_metadata_property)


class CraftedPhone:
    """A phone on a real socket that answers ``info`` and replies to ``capture`` with the given metadata
    (written with Python's json, which, like a careless phone, sends NaN as a bare ``NaN``)."""

    def __init__(self, meta: dict[str, Any], payload: bytes) -> None:
        import socketserver
        import threading

        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    cmd = json.loads(line)["cmd"]
                    result = {"serial": "P1", "model": "crafted", "firmware": "x"} if cmd == "info" else outer.meta
                    header: dict[str, Any] = {"ok": True, "result": result}
                    body = b"" if cmd == "info" else outer.payload
                    if body:
                        header |= {"payload_bytes": len(body), "payload_sha256": hashlib.sha256(body).hexdigest()}
                    self.wfile.write(json.dumps(header).encode() + b"\n" + body)

        self.meta, self.payload = meta, payload
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def crafted_phone():
    phone = CraftedPhone(dict(GOOD_META), pack_raw10(np.full((1536, 2048), 100, np.uint16)))
    yield phone
    phone.close()


@pytest.mark.parametrize(("key", "value"), [("width", 2048.5), ("exposure_us", float("nan")),
                                            ("height", "1536"), ("white_level", True), ("analog_gain", float("inf"))])
def test_capture_frame_refuses_garbled_metadata(key: str, value: Any, crafted_phone: CraftedPhone) -> None:
    """Issue 10 Found 3: ``capture_frame`` with width 2048.5 or exposure_us NaN -> DeviceError naming the dut."""
    from station.config import DutConfig
    from station.devices.phone import PhoneClient

    with PhoneClient(DutConfig(host="127.0.0.1", port=crafted_phone.port, timeout_s=5.0)) as client:
        crafted_phone.meta = dict(GOOD_META, **{key: value})
        with pytest.raises(DeviceError) as err:
            client.capture_frame("main")
        assert err.value.device == "dut" and f"{key}:" in str(err.value), str(err.value)
        crafted_phone.meta = dict(GOOD_META)
        frame = client.capture_frame("main")  # and the good metadata passes through the same path
    assert frame.data.shape == (1536, 2048) and frame.exposure_s == pytest.approx(1e-3)
    assert int(frame.data[0, 0]) == 100


# --- RAW10 buffers -----------------------------------------------------------------------

@st.composite
def raw10_inputs(draw: Any) -> tuple[bytes, int, int, int | None]:
    width = draw(st.integers(-4, 40))
    height = draw(st.integers(-2, 6))
    stride = draw(st.one_of(st.none(), st.integers(-8, 80)))
    size = draw(st.integers(0, 400))
    return draw(st.binary(min_size=size, max_size=size)), width, height, stride


def _raw10_property(args: tuple[bytes, int, int, int | None]) -> None:
    buf, width, height, stride = args
    out = accepted(lambda: unpack_raw10(buf, width, height, stride), InputError, "RAW10")
    if out is None:
        return
    assert out.shape == (height, width) and out.dtype == np.uint16 and int(out.max(initial=0)) <= 1023
    # independent check of the first pixel group: 4 high bytes then a byte of 2-bit low parts
    if width >= 4 and height >= 1:
        b = buf[:5]
        expected = [(b[k] << 2) | ((b[4] >> (2 * k)) & 3) for k in range(4)]
        assert out[0, :4].tolist() == expected


test_raw10_fuzz, test_raw10_fuzz_long = both(raw10_inputs())(_raw10_property)


# --- DNG tags ----------------------------------------------------------------------------

BASE_DNG = dng_bytes(flat_frame(16, 12))
DNG_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 270, 33421, 33422, 50706, 50710, 50713, 50714, 50717,
            50721, 50728, 50829, 254, 330)


@st.composite
def dng_mutants(draw: Any) -> bytes:
    buf = BASE_DNG
    for _ in range(draw(st.integers(1, 3))):
        code = draw(st.sampled_from(DNG_TAGS))
        kind = draw(st.sampled_from([1, 3, 4, 5]))
        n = draw(st.integers(1, 5))
        limit = {1: 255, 3: 65535, 4: 2**32 - 1, 5: 2**32 - 1}[kind]
        values = tuple(draw(st.lists(st.integers(0, limit), min_size=n * (2 if kind == 5 else 1),
                                     max_size=n * (2 if kind == 5 else 1))))
        buf = patch_tag(buf, code, kind, bytes(values) if kind == 1 else values)
    if draw(st.booleans()):
        buf = self_pointing_ifd(buf) if draw(st.booleans()) else buf[: draw(st.integers(0, len(buf)))]
    return buf


def _dng_property(buf: bytes) -> None:
    frame = accepted(lambda: read_dng(buf), InputError, "<DNG bytes>")
    if frame is None:
        return
    assert frame.data.ndim == 2 and frame.data.dtype == np.uint16 and min(frame.data.shape) >= 1
    assert 0 <= frame.black_level < frame.white_level <= 65535


test_dng_tags_fuzz, test_dng_tags_fuzz_long = both(dng_mutants())(_dng_property)


def test_the_unmutated_dng_still_reads() -> None:
    """The fuzz base is a good file: the properties exercise refusals and acceptances alike."""
    frame = read_dng(BASE_DNG)
    assert frame.data.shape == (12, 16) and (frame.black_level, frame.white_level) == (64, 1023)


# --- the twin's JSON-line services (phone and control) ----------------------------------

PHONE_CMDS = ("info", "configure", "capture", "histogram", "calibration.read", "calibration.write", "nope")
CONTROL_CMDS = ("chart.set", "lens.mount", "lens.aperture", "adapter.set", "fault.set", "fault.clear", "fault.list",
                "firmware.set", "truth", "nope")
ARG_KEYS = ("sensor", "format", "frame", "exposure_us", "analog_gain", "focus_m", "zebra", "peaking", "source",
            "blob", "chart", "size_mm", "lens", "aperture", "back_focus_mm", "tilt_x_deg", "name", "value", "build")


@st.composite
def request_lines(draw: Any, cmds: tuple[str, ...]) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=40))
    request: dict[str, Any] = {"cmd": draw(st.sampled_from(cmds))}
    for key in draw(st.lists(st.sampled_from(ARG_KEYS), max_size=3, unique=True)):
        request[key] = draw(st.one_of(json_values, st.sampled_from(["main", "m", "raw10", "preview", "new", "last",
                                                                     "flat", "siemens", "raw", "luma"])))
    return json.dumps(request).encode()


@pytest.fixture(scope="module")
def twin_services():
    from station.twin.control import ControlServer
    from station.twin.phone_server import PhoneServer, sensor_meta
    from station.twin.world import World

    def flat(scene: Any, sensor: str, settings: dict[str, Any], seq: int) -> tuple[np.ndarray, dict]:
        meta = sensor_meta("ci", sensor)  # the wire is under test here, not the physics: a flat frame
        return np.full((meta["height"], meta["width"]), 200, np.uint16), {}

    world = World(seed=3, time_scale=0.0, resolution="ci")
    return PhoneServer(world, render=flat), ControlServer(world)


def _service_property(server: Any, line: bytes) -> None:
    reply = server._dispatch(line)  # the function the wire calls for each request line
    header = reply.header
    assert isinstance(header.get("ok"), bool)
    if not header["ok"]:
        code, message = header["error"]["code"], header["error"]["message"]
        assert code != "internal", f"the twin failed on its input {line[:200]!r}: {message}"


@FAST
@given(line=request_lines(PHONE_CMDS))
def test_phone_service_json_lines_fuzz(twin_services: Any, line: bytes) -> None:
    _service_property(twin_services[0], line)


@FAST
@given(line=request_lines(CONTROL_CMDS))
def test_control_service_json_lines_fuzz(twin_services: Any, line: bytes) -> None:
    _service_property(twin_services[1], line)


@pytest.mark.slow
@LONG
@given(line=request_lines(PHONE_CMDS + CONTROL_CMDS))
def test_twin_services_json_lines_fuzz_long(twin_services: Any, line: bytes) -> None:
    _service_property(twin_services[0], line)
    _service_property(twin_services[1], line)
