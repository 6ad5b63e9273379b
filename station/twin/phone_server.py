"""The twin's phone: the DUT test service on a real TCP port (DESIGN 3.3, JSON lines + payload).

One JSON object per line each way. A reply is ``{"ok": true, "result": {...}}``; a reply
that carries data adds ``"payload_bytes": N, "payload_sha256": HEX`` and exactly N bytes
follow its newline. Errors are ``{"ok": false, "error": {"code", "message"}}`` with codes
``bad_request`` (unknown command or bad arguments), ``line_too_long`` (the connection is
then closed) and ``internal`` (the service failed). Frames come from one function,
``station.twin.sensor_model.render_raw``; the phone's firmware (preview ISP, zebra,
peaking, histogram) sits in the ``firmware`` section below, one function per feature
of DESIGN 7's table.

Extension of the DESIGN table: ``capture`` takes ``"frame": "last"`` to return the last
frame of that sensor in another format (a mask of the very frame a RAW came from);
``histogram`` is the app's histogram of the last frame of the sensor (a new frame is
taken when there is none, or the settings changed since).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np

from station.dng import dng_bytes
from station.errors import DeviceError
from station.frame import Frame
from station.raw10 import pack_raw10
from station.twin import sensor_model
from station.twin.world import World

log = logging.getLogger(__name__)

#: Faults of the phone, read from ``world.faults`` at each capture. Value ``true`` hits every
#: capture; an integer N hits every Nth capture the phone serves (counted from 1).
PHONE_FAULTS: dict[str, str] = {
    "dut_drop_frame": "a capture gets no reply at all (the frame is lost; the client times out)",
    "dut_corrupt_payload": "bytes of a capture's payload are flipped after payload_sha256 is computed",
    "dut_disconnect": "the phone closes the connection after sending half of a capture's payload",
}
#: The 6-bit codes the M adapter reads from a mounted lens (representative, not Leica's table).
M_LENS_CODES: dict[str, int] = {
    "summicron-m-50-f2": 0b000011,
    "summilux-m-35-f1.4": 0b000101,
    "elmarit-m-28-f2.8": 0b001001,
    "noctilux-m-50-f0.95": 0b010001,
}
MODEL = "M-Phone twin"
FORMATS = ("raw10", "dng", "preview", "zebra_mask", "peaking_mask")
HISTOGRAM_SOURCES = ("preview", "raw")
MAX_LINE_BYTES = 2 * 1024 * 1024  # a request line longer than this is refused
MAX_CALIBRATION_BYTES = 1024 * 1024  # a calibration blob, as compact JSON
ROW_ALIGN_BYTES = 16  # RAW10 rows are padded to this alignment (stride_bytes)
FRAME_INTERVAL_S = 1.0 / 30.0  # the phone's sensor clock: timestamps are epoch + seq frames
CLOCK_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
EXPOSURE_US_RANGE = (10, 30_000_000)
ANALOG_GAIN_RANGE = (1.0, 16.0)
FOCUS_M_RANGE = (0.05, 1000.0)
ZEBRA_DEFAULT_THRESHOLD = {"luma": 250, "raw": 1000}
ZEBRA_THRESHOLD_MAX = {"luma": 255, "raw": 1023}
PEAKING_THRESHOLD_MAX = 4 * 255

_BLACK = sensor_model.BLACK_LEVEL_DN
_WHITE = sensor_model.WHITE_LEVEL_DN


class BadRequestError(Exception):
    """A request the phone refuses: its ``code`` and one-line message go back on the wire."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


def fault_period(value: Any) -> int | None:
    """Every how many captures a phone fault hits: None (off) or N >= 1; ValueError if unreadable."""
    if value is None or value is False:
        return None
    if value is True:
        return 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("on", "true", "yes"):
            return 1
        if text in ("off", "false", "no", "0"):
            return None
        value = int(text) if text.isdigit() else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return value or None
    raise ValueError(f"fault value {value!r}: expected true/false or a whole number N >= 1 "
                     "(every Nth capture)")


def lens_info(lens_id: str | None) -> dict[str, Any] | None:
    """What the phone reads from the M adapter: the lens's 6-bit code and its id, or None bare."""
    if lens_id is None:
        return None
    return {"code": M_LENS_CODES.get(lens_id), "id": lens_id}


# --- firmware (golden, simple): the physics/firmware work replaces these functions ----------

def render_preview(raw: np.ndarray, black_level: int = _BLACK, white_level: int = _WHITE,
                   wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The 8-bit sRGB preview (H x W x 3, RGB) of an RGGB frame: black level, white balance,
    bilinear demosaic (OpenCV), sRGB transfer curve (IEC 61966-2-1)."""
    scale = 65535.0 / (white_level - black_level)
    dn = np.arange(65536, dtype=np.float64)
    mosaic = np.empty(raw.shape, dtype=np.uint16)
    sites = {(0, 0): wb_gains[0], (0, 1): wb_gains[1], (1, 0): wb_gains[1], (1, 1): wb_gains[2]}
    for (row, col), gain in sites.items():
        lut = np.clip(np.rint((dn - black_level) * scale * gain), 0, 65535).astype(np.uint16)
        mosaic[row::2, col::2] = lut[raw[row::2, col::2]]
    rgb16 = cv2.cvtColor(mosaic, cv2.COLOR_BayerBG2RGB)  # OpenCV's BG names the RGGB layout
    linear = np.arange(65536, dtype=np.float64) / 65535.0
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    gamma_lut = np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)
    return gamma_lut[rgb16]


def preview_luma(rgb: np.ndarray) -> np.ndarray:
    """Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' of the 8-bit preview, rounded half up (uint8)."""
    weighted = (rgb[..., 0].astype(np.uint32) * 2126 + rgb[..., 1].astype(np.uint32) * 7152
                + rgb[..., 2].astype(np.uint32) * 722 + 5000) // 10000
    return weighted.astype(np.uint8)


def zebra_mask(raw: np.ndarray, luma: np.ndarray, zebra: dict[str, Any]) -> np.ndarray:
    """Zebra (DESIGN 7): luma mode flags Y' >= T; raw mode flags each 2x2 CFA quad with any
    sample >= T on the quad's four preview pixels. 255 flagged, 0 not; all zero when off."""
    if not zebra["enabled"]:
        return np.zeros(luma.shape, dtype=np.uint8)
    threshold = zebra["threshold"]
    if zebra["mode"] == "luma":
        return np.where(luma >= threshold, np.uint8(255), np.uint8(0))
    height, width = raw.shape
    quad = raw.reshape(height // 2, 2, width // 2, 2).max(axis=(1, 3)) >= threshold
    flagged = np.broadcast_to(quad[:, None, :, None], (height // 2, 2, width // 2, 2))
    return np.where(flagged.reshape(height, width), np.uint8(255), np.uint8(0))


def peaking_response(luma: np.ndarray) -> np.ndarray:
    """P = |4 Y'(x,y) - Y'(x-1,y) - Y'(x+1,y) - Y'(x,y-1) - Y'(x,y+1)|, edges replicated."""
    padded = np.pad(luma.astype(np.int16), 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    response = 4 * centre - padded[1:-1, :-2] - padded[1:-1, 2:] - padded[:-2, 1:-1] - padded[2:, 1:-1]
    return np.abs(response)


def peaking_mask(luma: np.ndarray, peaking: dict[str, Any]) -> np.ndarray:
    """Peaking (DESIGN 7): 255 where P >= T on the preview luma; all zero when off."""
    if not peaking["enabled"]:
        return np.zeros(luma.shape, dtype=np.uint8)
    return np.where(peaking_response(luma) >= peaking["threshold"], np.uint8(255), np.uint8(0))


def histogram_counts(raw: np.ndarray, luma: np.ndarray | None, source: str) -> list[int]:
    """The app's histogram: 256 bins of preview Y', or 1024 bins of raw DN; all pixels counted."""
    if source == "preview":
        assert luma is not None
        return np.bincount(luma.ravel(), minlength=256).tolist()
    return np.bincount(raw.ravel(), minlength=1024)[:1024].tolist()


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit grey (H x W) or RGB (H x W x 3) image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


# --- argument checks -------------------------------------------------------------------

def _check_args(args: dict[str, Any], cmd: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
                ) -> None:
    for key in args:
        if key not in required and key not in optional:
            allowed = ", ".join(required + optional) or "none"
            raise BadRequestError(f"{cmd}: unknown argument {key!r}; allowed: {allowed}")
    for key in required:
        if key not in args:
            raise BadRequestError(f"{cmd}: missing argument {key!r}")


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BadRequestError(f"{name} {value!r}; allowed: {', '.join(choices)}")
    return value


def _number(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise BadRequestError(f"{name} {value!r}; expected {kind} in {lo:g}..{hi:g}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestError(f"{name} {value!r}; expected true or false")
    return value


def _default_settings(sensor: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "exposure_us": 10_000, "analog_gain": 1.0,
        "zebra": {"enabled": False, "mode": "luma", "threshold": ZEBRA_DEFAULT_THRESHOLD["luma"]},
        "peaking": {"enabled": False, "threshold": 60},
    }
    if sensor == "main":
        settings["focus_m"] = 1.0
    return settings


class _Frame:
    """One frame the phone took: its raw data, seq, timestamp, settings and the model's truth."""

    def __init__(self, seq: int, raw: np.ndarray, truth: dict[str, Any], settings: dict[str, Any]) -> None:
        self.seq = seq
        self.raw = raw
        self.truth = truth
        self.settings = settings
        self.timestamp = (CLOCK_EPOCH + timedelta(seconds=seq * FRAME_INTERVAL_S)).isoformat()
        self._luma: np.ndarray | None = None
        self._preview: np.ndarray | None = None

    def preview(self) -> np.ndarray:
        if self._preview is None:
            self._preview = render_preview(self.raw)
        return self._preview

    def luma(self) -> np.ndarray:
        if self._luma is None:
            self._luma = preview_luma(self.preview())
        return self._luma


class Reply:
    """What goes back for one request: the header object, an optional payload, a fault action."""

    def __init__(self, header: dict[str, Any], payload: bytes | None = None, action: str = "") -> None:
        self.header = header
        self.payload = payload
        self.action = action  # "", "drop" (send nothing) or "disconnect" (close mid-payload)
        self.line = b""  # the header as sent, once serialised


# --- the JSON-lines server -----------------------------------------------------------------

class JsonLineServer:
    """A threaded TCP server of one-JSON-object-per-line requests (several clients at once).

    Subclasses implement ``handle_request(request) -> Reply``. Shared by the phone and the
    twin's control interface.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> JsonLineServer:
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                outer._serve_connection(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            block_on_close = False

        try:
            self._server = Server((self.host, self.port), Handler)
        except OSError as exc:
            raise DeviceError("twin", f"{type(self).__name__} cannot listen on {self.host}:{self.port}: "
                                      f"{exc.strerror or exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._connections_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._server = None

    def __enter__(self) -> JsonLineServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle_request(self, request: dict[str, Any]) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def _serve_connection(self, conn: socket.socket, rfile: Any) -> None:
        with self._connections_lock:
            self._connections.add(conn)
        try:
            while True:
                line = rfile.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                if len(line) > MAX_LINE_BYTES:
                    message = f"request line over {MAX_LINE_BYTES} bytes; connection closed"
                    self._send(conn, Reply(_error("line_too_long", message)))
                    return
                if not line.strip():
                    continue
                reply = self._dispatch(line)
                if reply.action == "drop":
                    continue
                if not self._send(conn, reply):
                    return
        except OSError:
            return
        finally:
            with self._connections_lock:
                self._connections.discard(conn)

    def _dispatch(self, line: bytes) -> Reply:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Reply(_error("bad_request", f"not a JSON line: {exc.__class__.__name__}: {exc}"))
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return Reply(_error("bad_request", 'expected a JSON object with a string "cmd"'))
        try:
            reply = self.handle_request(request)
            reply.line = _line(reply.header)
            return reply
        except BadRequestError as exc:
            return Reply(_error(exc.code, str(exc)))
        except Exception as exc:  # the service must answer, not die: report its own words
            log.exception("%s failed on %s", type(self).__name__, request.get("cmd"))
            return Reply(_error("internal", f"{request.get('cmd')}: {exc.__class__.__name__}: {exc}"))

    @staticmethod
    def _send(conn: socket.socket, reply: Reply) -> bool:
        """Send one reply; a ``disconnect`` reply sends half its payload and closes. False: closed."""
        conn.sendall(reply.line or _line(reply.header))
        payload = reply.payload
        if payload is not None:
            if reply.action == "disconnect":
                conn.sendall(memoryview(payload)[: len(payload) // 2])
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                return False
            conn.sendall(payload)
        return True


def _line(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "result": result}


class PhoneServer(JsonLineServer):
    """The phone's test service over the twin's ``World`` (DESIGN 3.3).

    ``render`` makes a frame: ``render(world, sensor, settings, seq) -> (uint16 CFA, truth)``;
    by default the simple model of ``station.twin.sensor_model``.
    """

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0,
                 render: Callable[..., tuple[np.ndarray, dict[str, Any]]] | None = None) -> None:
        super().__init__(host, port)
        self.world = world
        self.render = render or sensor_model.render_raw
        self.serial = "TWIN-" + hashlib.sha256(f"m-phone:{world.seed}".encode()).hexdigest()[:8].upper()
        self._lock = threading.RLock()
        self._settings = {sensor: _default_settings(sensor) for sensor in sensor_model.SENSORS}
        self._last: dict[str, _Frame] = {}
        self._seq = 0
        self._captures = 0
        self._calibration: dict[str, Any] = {}
        self._commands: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "info": self._info, "configure": self._configure, "capture": self._capture,
            "histogram": self._histogram, "calibration.read": self._calibration_read,
            "calibration.write": self._calibration_write,
        }

    def start(self) -> PhoneServer:
        super().start()
        return self

    def handle_request(self, request: dict[str, Any]) -> Reply:
        args = dict(request)
        cmd = args.pop("cmd")
        handler = self._commands.get(cmd)
        if handler is None:
            raise BadRequestError(f"unknown command {cmd!r}; allowed: {', '.join(self._commands)}")
        return handler(args)

    # --- commands ---------------------------------------------------------------------
    def _info(self, args: dict[str, Any]) -> Reply:
        _check_args(args, "info", ())
        geometry = sensor_model.sensor_geometry(self.world.resolution)
        sensor = {"width": int(geometry["width"]), "height": int(geometry["height"]), "cfa": sensor_model.CFA,
                  "bit_depth": sensor_model.BIT_DEPTH, "black_level": _BLACK, "white_level": _WHITE,
                  "pixel_pitch_um": geometry["pixel_pitch_um"]}
        with self.world.lock:
            firmware, lens = self.world.firmware, self.world.m_lens
        return Reply(_ok({"serial": self.serial, "model": MODEL, "firmware": firmware,
                          "sensors": {name: dict(sensor) for name in sensor_model.SENSORS},
                          "m_lens": lens_info(lens)}))

    def _configure(self, args: dict[str, Any]) -> Reply:
        _check_args(args, "configure", ("sensor",),
                    ("exposure_us", "analog_gain", "focus_m", "zebra", "peaking"))
        sensor = _choice(args["sensor"], "sensor", sensor_model.SENSORS)
        with self._lock:
            new = json.loads(json.dumps(self._settings[sensor]))
        if "exposure_us" in args:
            new["exposure_us"] = int(_number(args["exposure_us"], "exposure_us", *EXPOSURE_US_RANGE, True))
        if "analog_gain" in args:
            new["analog_gain"] = float(_number(args["analog_gain"], "analog_gain", *ANALOG_GAIN_RANGE))
        if "focus_m" in args:
            if sensor != "main":
                raise BadRequestError("focus_m applies to the main sensor only "
                                      "(an M lens focuses by its ring)")
            new["focus_m"] = float(_number(args["focus_m"], "focus_m", *FOCUS_M_RANGE))
        if "zebra" in args:
            new["zebra"] = self._zebra(args["zebra"], new["zebra"])
        if "peaking" in args:
            peaking = args["peaking"]
            if not isinstance(peaking, dict):
                raise BadRequestError("peaking: expected an object {enabled, threshold}")
            _check_args(peaking, "peaking", (), ("enabled", "threshold"))
            if "enabled" in peaking:
                new["peaking"]["enabled"] = _flag(peaking["enabled"], "peaking.enabled")
            if "threshold" in peaking:
                new["peaking"]["threshold"] = int(_number(peaking["threshold"], "peaking.threshold", 0,
                                                          PEAKING_THRESHOLD_MAX, True))
        with self._lock:
            self._settings[sensor] = new
            self._last.pop(sensor, None)  # the app's histogram follows the new settings
        return Reply(_ok({"sensor": sensor, **new}))

    @staticmethod
    def _zebra(zebra: Any, current: dict[str, Any]) -> dict[str, Any]:
        """Merge a zebra update; a new mode without a threshold takes that mode's default."""
        if not isinstance(zebra, dict):
            raise BadRequestError("zebra: expected an object {enabled, mode, threshold}")
        _check_args(zebra, "zebra", (), ("enabled", "mode", "threshold"))
        new = dict(current)
        if "enabled" in zebra:
            new["enabled"] = _flag(zebra["enabled"], "zebra.enabled")
        if "mode" in zebra:
            mode = _choice(zebra["mode"], "zebra.mode", ("luma", "raw"))
            if mode != current["mode"] and "threshold" not in zebra:
                new["threshold"] = ZEBRA_DEFAULT_THRESHOLD[mode]
            new["mode"] = mode
        if "threshold" in zebra:
            new["threshold"] = int(_number(zebra["threshold"], f"zebra.threshold ({new['mode']} mode)", 0,
                                           ZEBRA_THRESHOLD_MAX[new["mode"]], True))
        return new

    def _take_frame(self, sensor: str) -> _Frame:
        with self._lock:
            self._seq += 1
            seq = self._seq
            settings = json.loads(json.dumps(self._settings[sensor]))
        self.world.spend("exposure", settings["exposure_us"] * 1e-6)
        raw, truth = self.render(self.world, sensor, settings, seq)
        frame = _Frame(seq, raw, truth, settings)
        with self._lock:
            self._last[sensor] = frame
        return frame

    def _capture(self, args: dict[str, Any]) -> Reply:
        _check_args(args, "capture", ("sensor", "format"), ("frame",))
        sensor = _choice(args["sensor"], "sensor", sensor_model.SENSORS)
        fmt = _choice(args["format"], "format", FORMATS)
        which = _choice(args.get("frame", "new"), "frame", ("new", "last"))
        with self._lock:
            frame = self._last.get(sensor) if which == "last" else None
        if which == "last" and frame is None:
            raise BadRequestError(f"capture: no frame from sensor {sensor!r} yet; "
                                  'capture with "frame": "new"')
        if frame is None:
            frame = self._take_frame(sensor)
        height, width = frame.raw.shape
        meta: dict[str, Any] = {
            "sensor": sensor, "format": fmt, "seq": frame.seq, "timestamp": frame.timestamp,
            "width": width, "height": height, "cfa": sensor_model.CFA, "bit_depth": sensor_model.BIT_DEPTH,
            "black_level": _BLACK, "white_level": _WHITE,
            "exposure_us": frame.settings["exposure_us"], "analog_gain": frame.settings["analog_gain"],
            "truth": frame.truth,
        }
        payload = self._encode(frame, fmt, meta)
        header = _ok(meta)
        header["payload_bytes"] = len(payload)
        header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
        return self._inject_faults(Reply(header, payload))

    def _encode(self, frame: _Frame, fmt: str, meta: dict[str, Any]) -> bytes:
        if fmt == "raw10":
            stride = -(-meta["width"] * 10 // 8 // ROW_ALIGN_BYTES) * ROW_ALIGN_BYTES
            meta["stride_bytes"] = stride
            return pack_raw10(frame.raw, stride)
        if fmt == "dng":
            return dng_bytes(self._frame_object(frame, meta))
        if fmt == "preview":
            return encode_png(frame.preview())
        settings = frame.settings
        if fmt == "zebra_mask":
            meta["zebra"] = settings["zebra"]
            return encode_png(zebra_mask(frame.raw, frame.luma(), settings["zebra"]))
        meta["peaking"] = settings["peaking"]
        return encode_png(peaking_mask(frame.luma(), settings["peaking"]))

    def _frame_object(self, frame: _Frame, meta: dict[str, Any]) -> Frame:
        with self.world.lock:
            firmware, lens = self.world.firmware, self.world.m_lens
        return Frame(data=frame.raw, sensor=meta["sensor"], cfa=sensor_model.CFA, black_level=_BLACK,
                     white_level=_WHITE, bit_depth=sensor_model.BIT_DEPTH,
                     exposure_s=meta["exposure_us"] * 1e-6, analog_gain=meta["analog_gain"],
                     lens=lens if meta["sensor"] == "m" else None, dut_serial=self.serial,
                     firmware=firmware, timestamp=frame.timestamp,
                     extra={"make": "M-Phone", "model": f"{MODEL} {meta['sensor']} sensor", "seq": frame.seq,
                            "truth": frame.truth})

    def _inject_faults(self, reply: Reply) -> Reply:
        with self._lock:
            self._captures += 1
            count = self._captures
        with self.world.lock:
            faults = dict(self.world.faults)

        def hit(name: str) -> bool:
            try:
                period = fault_period(faults.get(name))
            except ValueError:
                return False
            return period is not None and count % period == 0

        if hit("dut_drop_frame"):
            return Reply(reply.header, None, "drop")
        if hit("dut_disconnect"):
            reply.action = "disconnect"
        if hit("dut_corrupt_payload") and reply.payload:
            corrupt = bytearray(reply.payload)
            step = max(len(corrupt) // 7, 1)
            corrupt[::step] = bytes(b ^ 0x5A for b in corrupt[::step])
            reply.payload = bytes(corrupt)
        return reply

    def _histogram(self, args: dict[str, Any]) -> Reply:
        _check_args(args, "histogram", ("sensor", "source"))
        sensor = _choice(args["sensor"], "sensor", sensor_model.SENSORS)
        source = _choice(args["source"], "source", HISTOGRAM_SOURCES)
        with self._lock:
            frame = self._last.get(sensor)
        if frame is None:
            frame = self._take_frame(sensor)
        counts = histogram_counts(frame.raw, frame.luma() if source == "preview" else None, source)
        return Reply(_ok({"sensor": sensor, "source": source, "seq": frame.seq, "bins": len(counts),
                          "counts": counts}))

    def _calibration_read(self, args: dict[str, Any]) -> Reply:
        _check_args(args, "calibration.read", ())
        with self._lock:
            blob = json.loads(json.dumps(self._calibration))
        return Reply(_ok({"blob": blob}))

    def _calibration_write(self, args: dict[str, Any]) -> Reply:
        _check_args(args, "calibration.write", ("blob",))
        blob = args["blob"]
        if not isinstance(blob, dict):
            raise BadRequestError(f"calibration.write: blob must be a JSON object, got {type(blob).__name__}")
        text = json.dumps(blob, separators=(",", ":"), sort_keys=True)
        if len(text) > MAX_CALIBRATION_BYTES:
            raise BadRequestError(f"calibration.write: blob of {len(text)} bytes over the phone's "
                             f"{MAX_CALIBRATION_BYTES} bytes of calibration storage")
        with self._lock:
            self._calibration = json.loads(text)
        return Reply(_ok({"bytes": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}))
