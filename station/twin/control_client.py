"""The client of the twin's control interface (``station.twin.control``): the operator stand-in's and the tests'
way to change the twin's world and read its truth. A refused command is an ``InputError`` (the caller's
request), an unreachable twin a ``DeviceError`` naming ``twin`` and the address."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

from station.errors import DeviceError, InputError
from station.twin.control_names import CHART_RE as _CHART_RE
from station.twin.control_names import FAULT_RE as _FAULT_RE
from station.twin.control_names import SLUG_RE as _SLUG_RE

#: The longest reply line the client reads.
MAX_REPLY_LINE_BYTES = 1024 * 1024


class TwinControl:
    """Client of the twin's control interface at ``address`` ("host:port")."""

    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"twin control address {address!r}: expected host:port")
        self.address = address
        self.host, self.port = host, int(port)
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    def chart_set(self, chart: str, size_mm: tuple[float, float] | None = None) -> dict[str, Any]:
        """Put chart ``chart`` (a ``targets.registry`` name) on the holder, at its own size or ``size_mm``."""
        if not isinstance(chart, str) or not _CHART_RE.match(chart):
            raise InputError(f"twin control: chart {chart!r}: expected a chart name "
                             "(letters, digits, '.', ':', '_', '-')")
        args: dict[str, Any] = {"chart": chart}
        if size_mm is not None:
            args["size_mm"] = [float(v) for v in size_mm]
        return self.request("chart.set", **args)

    def lens_mount(self, lens: str | None, aperture: float | None = None) -> dict[str, Any]:
        """Mount M lens ``lens`` (None: take it off, the bare sensor), its ring at ``aperture`` (None: wide open)."""
        if lens is not None:
            _client_slug(lens, "lens")
        args: dict[str, Any] = {"lens": lens}
        if aperture is not None:
            args["aperture"] = float(aperture)
        return self.request("lens.mount", **args)

    def lens_aperture(self, aperture: float) -> dict[str, Any]:
        """Turn the mounted M lens's aperture ring to f-number ``aperture``."""
        return self.request("lens.aperture", aperture=float(aperture))

    def adapter_set(self, back_focus_mm: float | None = None, tilt_x_deg: float | None = None,
                    tilt_y_deg: float | None = None) -> dict[str, Any]:
        """Set the M adapter's flange back-focus error and tilt (the ones given); returns all three."""
        args = {k: float(v) for k, v in (("back_focus_mm", back_focus_mm), ("tilt_x_deg", tilt_x_deg),
                                         ("tilt_y_deg", tilt_y_deg)) if v is not None}
        return self.request("adapter.set", **args)

    def fault_set(self, name: str, value: Any = True) -> dict[str, Any]:
        _client_fault(name)
        return self.request("fault.set", name=name, value=value)

    def fault_clear(self, name: str) -> dict[str, Any]:
        _client_fault(name)
        return self.request("fault.clear", name=name)

    def fault_list(self) -> dict[str, Any]:
        return self.request("fault.list")

    def firmware_set(self, build: str) -> dict[str, Any]:
        _client_slug(build, "firmware build")
        return self.request("firmware.set", build=build)

    def truth(self) -> dict[str, Any]:
        return self.request("truth")

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """One command; its result. One reconnect when a kept connection turns out closed."""
        try:
            line = json.dumps({"cmd": cmd, **args}, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise InputError(f"twin control: {cmd}: arguments are not plain JSON: {exc}") from None
        for attempt in (1, 2):
            fresh = self._sock is None
            try:
                reply = self._exchange(cmd, line)
                break
            except ConnectionError:
                self.close()
                if fresh or attempt == 2:
                    raise DeviceError("twin", f"control {self.address}: {cmd}: connection closed") from None
        if reply.get("ok") is True and isinstance(reply.get("result"), dict):
            return reply["result"]
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        raise InputError(f"twin control: {cmd}: {error.get('code', 'error')}: {error.get('message', reply)}")

    def _exchange(self, cmd: str, line: bytes) -> dict[str, Any]:
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            except OSError as exc:
                raise DeviceError("twin", f"cannot connect to control {self.address}: "
                                          f"{exc.strerror or exc}") from None
            self._buffer = bytearray()
        try:
            self._sock.sendall(line)
            while b"\n" not in self._buffer:
                if len(self._buffer) > MAX_REPLY_LINE_BYTES:
                    raise DeviceError("twin", f"control {self.address}: {cmd}: reply line too long")
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError
                self._buffer += chunk
        except TimeoutError:
            self.close()
            raise DeviceError("twin", f"control {self.address}: {cmd}: "
                                      f"no reply within {self.timeout_s:g} s") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionError from exc
        except OSError as exc:
            self.close()
            raise DeviceError("twin", f"control {self.address}: {cmd}: {exc.strerror or exc}") from None
        end = self._buffer.find(b"\n")
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            reply = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self.close()
            raise DeviceError("twin", f"control {self.address}: {cmd}: "
                                      f"reply is not JSON: {raw[:60]!r}") from None
        if not isinstance(reply, dict):
            raise DeviceError("twin", f"control {self.address}: {cmd}: reply is not a JSON object")
        return reply

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer = bytearray()

    def __enter__(self) -> TwinControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client_slug(value: Any, what: str) -> None:
    if not isinstance(value, str) or not _SLUG_RE.match(value):
        raise InputError(f"twin control: {what} {value!r}: "
                         "expected a lower-case slug (letters, digits, '.', '-')")


def _client_fault(name: Any) -> None:
    if not isinstance(name, str) or not _FAULT_RE.match(name):
        raise InputError(f"twin control: fault name {name!r}: "
                         "expected a lower-case word (letters, digits, '_')")
