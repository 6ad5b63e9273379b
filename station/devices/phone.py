"""The phone's test service (the DUT): JSON lines + binary payload over TCP (DESIGN 3.3).

On a bench the service is reached through ``adb forward tcp:P tcp:P``; the twin serves the
same wire. One JSON object per line each way; a reply carrying data says
``"payload_bytes": N`` and ``"payload_sha256"``, and exactly N bytes follow its newline.

Errors, and whose fault they are:

* arguments are checked here before anything is sent: a bad sensor, format or setting is
  the caller's mistake, an ``InputError`` (exit 2);
* an ``{"ok": false}`` reply becomes ``DutReplyError`` (a ``DeviceError``, exit 3) reading
  ``dut: <cmd>: <code>: <message>``. Since arguments were checked first, a refusal means
  the driver and the phone's service disagree (another protocol version) or the service
  failed; a wire answer alone cannot tell a product defect, so plans judge the product on
  measurements and a refused command is a station fault, never a scrapped phone;
* wire faults (no reply within the timeout, the connection closed mid-reply, a payload
  whose SHA-256 differs, a reply that is not JSON) are transient: the connection is
  dropped and the command retried on a new one, ``attempts`` times in all (every command
  of this protocol is idempotent); then a ``DeviceError`` with the last fault's words.
  A refused or unreachable connection is reported at once, naming host:port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import socket
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from station.config import DutConfig
from station.devices import wire_time
from station.devices.registry import register
from station.errors import DeviceError, InputError
from station.frame import CFA_PATTERNS, Frame
from station.validation import FiniteFloat, SafeStr, one_line

SENSORS = ("main", "m")
FORMATS = ("raw10", "dng", "preview", "zebra_mask", "peaking_mask")
HISTOGRAM_SOURCES = ("preview", "raw")
CONFIGURE_KEYS = ("exposure_us", "analog_gain", "focus_m", "focus_code", "zebra", "peaking")
ZEBRA_MODES = ("luma", "raw")
MAX_REPLY_LINE_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 1 << 30
MAX_CALIBRATION_BYTES = 1024 * 1024
_CHUNK = 1 << 20


class DutReplyError(DeviceError):
    """The phone refused a command: ``{"ok": false, "error": {"code", "message"}}``."""

    def __init__(self, device: str, cmd: str, code: str, message: str) -> None:
        super().__init__(device, f"{cmd}: {code}: {message}")
        self.cmd = cmd
        self.code = code
        self.reply_message = message


class _WireError(DeviceError):
    """A transient fault of the wire: the connection is dropped and the command may be retried."""


@register("dut", "phone")
class PhoneClient:
    """Driver of the phone's test service; satisfies ``station.devices.protocols.Dut``.

    Connects at once and records ``identity`` ("model,serial,firmware") from ``info``.
    """

    def __init__(self, config: DutConfig, name: str = "dut", attempts: int = 3) -> None:
        self.config = config
        self.name = name
        self.attempts = max(1, attempts)
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        info = self.info()
        self.identity = f"{info.get('model', '?')},{info.get('serial', '?')},{info.get('firmware', '?')}"
        self.serial = str(info.get("serial", ""))
        self.firmware = str(info.get("firmware", ""))

    # --- Dut protocol ---------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Serial, model, firmware, both sensors' geometry and levels, the mounted M lens."""
        result, _ = self.request("info")
        return result

    def configure(self, sensor: str, **settings: Any) -> dict[str, Any]:
        """Set exposure_us, analog_gain, focus_m (main only), zebra {...}, peaking {...}; returns
        the applied settings."""
        _check_sensor(self.name, sensor)
        _check_settings(self.name, sensor, settings)
        result, _ = self.request("configure", sensor=sensor, **settings)
        return result

    def capture(self, sensor: str, fmt: str, frame: str = "new") -> tuple[dict[str, Any], bytes]:
        """One capture: (metadata, payload). ``frame="last"`` re-sends the sensor's last frame."""
        _check_sensor(self.name, sensor)
        if fmt not in FORMATS:
            raise InputError(f"{self.name}: capture format {fmt!r}; allowed: {', '.join(FORMATS)}")
        if frame not in ("new", "last"):
            raise InputError(f"{self.name}: capture frame {frame!r}; allowed: new, last")
        args: dict[str, Any] = {"sensor": sensor, "format": fmt}
        if frame != "new":
            args["frame"] = frame
        result, payload = self.request("capture", **args)
        if payload is None:
            raise DeviceError(self.name, f"capture: the reply carries no payload (format {fmt})")
        return result, payload

    def capture_frame(self, sensor: str, frame: str = "new") -> Frame:
        """A RAW10 capture unpacked into a ``station.frame.Frame`` with the capture's metadata."""
        meta, payload = self.capture(sensor, "raw10", frame)
        m = parse_raw10_metadata(self.name, meta)
        extra = {k: meta[k] for k in ("seq", "truth") if k in meta}
        try:
            return Frame.from_raw10(payload, m.width, m.height, stride_bytes=m.stride_bytes or m.width * 5 // 4,
                                    sensor=sensor, cfa=m.cfa, black_level=m.black_level, white_level=m.white_level,
                                    bit_depth=m.bit_depth, exposure_s=m.exposure_us * 1e-6,
                                    analog_gain=m.analog_gain, dut_serial=self.serial, firmware=self.firmware,
                                    lens=m.lens, timestamp=m.timestamp, extra=extra)
        except InputError as exc:  # the phone's payload disagrees with its own metadata
            raise DeviceError(self.name, f"capture: raw10 payload: {exc}") from None

    def histogram(self, sensor: str, source: str) -> list[int]:
        """The app's histogram of the sensor's last frame: 256 bins of preview Y' or 1024 of raw DN."""
        return list(self.histogram_reply(sensor, source)["counts"])

    def histogram_reply(self, sensor: str, source: str) -> dict[str, Any]:
        """The whole histogram reply: sensor, source, seq of the frame, bins, counts."""
        _check_sensor(self.name, sensor)
        if source not in HISTOGRAM_SOURCES:
            raise InputError(f"{self.name}: histogram source {source!r}; allowed: preview, raw")
        result, _ = self.request("histogram", sensor=sensor, source=source)
        counts = result.get("counts")
        expected = 256 if source == "preview" else 1024
        if not isinstance(counts, list) or len(counts) != expected:
            got = len(counts) if isinstance(counts, list) else type(counts).__name__
            raise DeviceError(self.name, f"histogram: expected {expected} counts, got {got}")
        return result

    def calibration_read(self) -> dict[str, Any]:
        """The calibration blob the phone stores (lens profiles, thresholds)."""
        result, _ = self.request("calibration.read")
        blob = result.get("blob")
        if not isinstance(blob, dict):
            raise DeviceError(self.name, "calibration.read: reply has no JSON object 'blob'")
        return blob

    def calibration_write(self, blob: dict[str, Any]) -> dict[str, Any]:
        """Store a calibration blob (a JSON object) on the phone; the phone's receipt (bytes, sha256)."""
        if not isinstance(blob, dict):
            raise InputError(f"{self.name}: calibration blob must be a dict, got {type(blob).__name__}")
        try:
            size = len(json.dumps(blob, separators=(",", ":"), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.name}: calibration blob is not plain JSON: {exc}") from None
        if size > MAX_CALIBRATION_BYTES:
            raise InputError(f"{self.name}: calibration blob of {size} bytes; "
                             f"at most {MAX_CALIBRATION_BYTES}")
        result, _ = self.request("calibration.write", blob=blob)
        return result

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> PhoneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the wire -------------------------------------------------------------------
    def request(self, cmd: str, **args: Any) -> tuple[dict[str, Any], bytes | None]:
        """Send one command (retrying wire faults); return (result, payload or None)."""
        try:
            line = json.dumps({"cmd": cmd, **args}, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.name}: {cmd}: arguments are not plain JSON: {exc}") from None
        last: _WireError | None = None
        for _ in range(self.attempts):
            try:
                return self._exchange(cmd, line)
            except _WireError as fault:
                self._drop()
                last = fault
        assert last is not None
        raise DeviceError(self.name, f"{last.detail} (failed {self.attempts} of {self.attempts} attempts)")

    def _exchange(self, cmd: str, line: bytes) -> tuple[dict[str, Any], bytes | None]:
        sock = self._connect()
        try:
            sock.sendall(line)
        except OSError as exc:
            raise _WireError(self.name, f"{cmd}: send failed: {exc.strerror or exc}") from None
        header = self._read_header(cmd)
        ok = header.get("ok")
        if ok is False:
            error = header.get("error") if isinstance(header.get("error"), dict) else {}
            raise DutReplyError(self.name, cmd, str(error.get("code", "error")),
                                str(error.get("message", "(no message)")))
        if ok is not True or not isinstance(header.get("result"), dict):
            raise _WireError(self.name, f"{cmd}: reply is not {{'ok': true, 'result': {{...}}}}: "
                                        f"{_excerpt(json.dumps(header).encode())}")
        if "payload_bytes" not in header:
            return header["result"], None
        size, digest = header["payload_bytes"], header.get("payload_sha256")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_PAYLOAD_BYTES:
            raise _WireError(self.name, f"{cmd}: payload_bytes {size!r} is not a size "
                                        f"in 0..{MAX_PAYLOAD_BYTES}")
        payload = self._read_payload(cmd, size)
        if not isinstance(digest, str):
            raise _WireError(self.name, f"{cmd}: reply with a payload lacks payload_sha256")
        actual = hashlib.sha256(payload).hexdigest()
        if actual != digest.lower():
            raise _WireError(self.name, f"{cmd}: corrupt payload: sha256 {actual[:12]}... of {size} bytes "
                                        f"differs from the declared {digest[:12]}...")
        return header["result"], payload

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        where = f"{self.config.host}:{self.config.port}"
        try:
            sock = socket.create_connection((self.config.host, self.config.port),
                                            timeout=self.config.timeout_s)
        except ConnectionRefusedError:
            raise DeviceError(self.name, f"cannot connect to {where}: connection refused "
                                         "(is the phone's test service running, adb forward set?)") from None
        except TimeoutError:
            raise DeviceError(self.name, f"cannot connect to {where}: no answer within "
                                         f"{self.config.timeout_s:g} s") from None
        except OSError as exc:
            raise DeviceError(self.name, f"cannot connect to {where}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.config.timeout_s)
        self._sock = sock
        self._buffer = bytearray()
        return sock

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer = bytearray()

    def _recv(self, cmd: str, what: str) -> bytes:
        assert self._sock is not None
        try:
            with wire_time.waiting(self.name):
                chunk = self._sock.recv(_CHUNK)
        except TimeoutError:
            raise _WireError(self.name, f"{cmd}: no {what} within {self.config.timeout_s:g} s "
                                        "(frame dropped or phone hung)") from None
        except OSError as exc:
            raise _WireError(self.name, f"{cmd}: connection lost waiting for {what}: "
                                        f"{exc.strerror or exc}") from None
        return chunk

    def _read_header(self, cmd: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                break
            if len(self._buffer) > MAX_REPLY_LINE_BYTES:
                raise _WireError(self.name, f"{cmd}: reply line over {MAX_REPLY_LINE_BYTES} bytes")
            if time.monotonic() > deadline:
                raise _WireError(self.name, f"{cmd}: no complete reply within {self.config.timeout_s:g} s")
            chunk = self._recv(cmd, "reply")
            if not chunk:
                raise _WireError(self.name, f"{cmd}: connection closed by the phone before a reply"
                                 + (f" (got {_excerpt(bytes(self._buffer))})" if self._buffer else ""))
            self._buffer += chunk
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            header = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _WireError(self.name, f"{cmd}: reply is not JSON: {_excerpt(raw)}") from None
        if not isinstance(header, dict):
            raise _WireError(self.name, f"{cmd}: reply is not a JSON object: {_excerpt(raw)}")
        return header

    def _read_payload(self, cmd: str, size: int) -> bytearray:
        """The reply's ``size`` payload bytes, received in place: handed on as the buffer they were read into (a
        ``bytes`` of it would be a second copy, 64 MB for a 50 MP RAW10 frame, 77 MB for its preview PNG)."""
        payload = bytearray(size)
        view = memoryview(payload)
        got = min(len(self._buffer), size)
        view[:got] = self._buffer[:got]
        del self._buffer[:got]
        assert self._sock is not None
        while got < size:
            try:
                with wire_time.waiting(self.name):
                    n = self._sock.recv_into(view[got:], min(size - got, 4 * _CHUNK))
            except TimeoutError:
                raise _WireError(self.name, f"{cmd}: payload stalled after {got} of {size} bytes "
                                            f"(no data for {self.config.timeout_s:g} s)") from None
            except OSError as exc:
                raise _WireError(self.name, f"{cmd}: connection lost after {got} of {size} payload bytes: "
                                            f"{exc.strerror or exc}") from None
            if n == 0:
                raise _WireError(self.name, f"{cmd}: connection closed after {got} of {size} payload bytes")
            got += n
        return payload


class Raw10Metadata(BaseModel):
    """The metadata of a ``raw10`` capture reply (DESIGN 3.3): integers where integers are meant, finite numbers."""

    model_config = ConfigDict(extra="ignore")
    width: Annotated[StrictInt, Field(ge=2, le=65535)]
    height: Annotated[StrictInt, Field(ge=2, le=65535)]
    stride_bytes: Annotated[StrictInt, Field(ge=1, le=1 << 20)] | None = None
    black_level: Annotated[StrictInt, Field(ge=0, le=65535)]
    white_level: Annotated[StrictInt, Field(ge=1, le=65535)]
    bit_depth: Annotated[StrictInt, Field(ge=1, le=16)] = 10
    cfa: Literal["RGGB", "GRBG", "GBRG", "BGGR"]
    exposure_us: Annotated[FiniteFloat, Field(gt=0.0, le=3.6e9)]
    analog_gain: Annotated[FiniteFloat, Field(gt=0.0, le=1024.0)]
    lens: Annotated[SafeStr, Field(max_length=128)] | None = None
    timestamp: Annotated[SafeStr, Field(max_length=64)] | None = None


assert set(Raw10Metadata.model_fields["cfa"].annotation.__args__) == set(CFA_PATTERNS), "CFA table drifted"


def parse_raw10_metadata(name: str, meta: Any) -> Raw10Metadata:
    """The capture reply's metadata, validated; a ``DeviceError`` naming the device and every problem otherwise."""
    try:
        return Raw10Metadata.model_validate(meta)
    except ValidationError as exc:
        raise DeviceError(name, one_line("capture: raw10 metadata", exc, Raw10Metadata)) from None


def _excerpt(raw: bytes, limit: int = 60) -> str:
    text = repr(raw[:limit])
    return text + ("..." if len(raw) > limit else "")


def _check_sensor(name: str, sensor: Any) -> None:
    if sensor not in SENSORS:
        raise InputError(f"{name}: sensor {sensor!r}; allowed: {', '.join(SENSORS)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_settings(name: str, sensor: str, settings: dict[str, Any]) -> None:
    """Types and signs of configure's settings (the phone checks its own ranges too)."""
    for key, value in settings.items():
        if key not in CONFIGURE_KEYS:
            raise InputError(f"{name}: configure setting {key!r}; allowed: {', '.join(CONFIGURE_KEYS)}")
        if key == "exposure_us" and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise InputError(f"{name}: exposure_us {value!r}; expected a positive integer (microseconds)")
        if key == "analog_gain" and not (_is_number(value) and value >= 1.0):
            raise InputError(f"{name}: analog_gain {value!r}; expected a number >= 1")
        if key == "focus_m":
            if sensor != "main":
                raise InputError(f"{name}: focus_m applies to the main sensor only "
                                 "(an M lens focuses by its ring)")
            if value is not None and not (_is_number(value) and value > 0):
                raise InputError(f"{name}: focus_m {value!r}; expected a distance in metres > 0, "
                                 "or None for autofocus")
        if key == "focus_code" and (sensor != "main" or not (value is None or (
                isinstance(value, int) and not isinstance(value, bool) and value >= 0))):
            raise InputError(f"{name}: focus_code {value!r}; expected the main camera's actuator code "
                             "(an integer >= 0) or None")
        if key in ("zebra", "peaking"):
            _check_overlay(name, key, value)


def _check_overlay(name: str, key: str, value: Any) -> None:
    allowed = ("enabled", "mode", "threshold") if key == "zebra" else ("enabled", "threshold")
    if not isinstance(value, dict):
        raise InputError(f"{name}: {key} {value!r}; expected a dict with keys {', '.join(allowed)}")
    for sub, item in value.items():
        if sub not in allowed:
            raise InputError(f"{name}: {key}.{sub}; allowed: {', '.join(allowed)}")
        if sub == "enabled" and not isinstance(item, bool):
            raise InputError(f"{name}: {key}.enabled {item!r}; expected true or false")
        if sub == "mode" and item not in ZEBRA_MODES:
            raise InputError(f"{name}: zebra.mode {item!r}; allowed: {', '.join(ZEBRA_MODES)}")
        if sub == "threshold" and (isinstance(item, bool) or not isinstance(item, int) or item < 0):
            raise InputError(f"{name}: {key}.threshold {item!r}; expected an integer >= 0")
