"""A line's automation (a robot cell, a PLC gateway) over TCP: one JSON object per line each way.

The station sends ``{"id": N, "action": "chart", "chart": "flat", ...}`` (or ``lens`` / ``aperture``) and
waits for ``{"id": N, "ok": true}``; ``{"id": N, "ok": false, "error": "..."}``, a wrong id, garbage, a
closed connection or no answer within ``answer_timeout_s`` is a station fault naming the operator. Every
field sent is checked first (names are slugs, numbers finite), so nothing unchecked reaches the line.
"""

from __future__ import annotations

import json
import math
import re
import socket
from typing import Any

from station.errors import DeviceError
from station.operator.protocol import OperatorRequest

#: Connect within this (s); a change may take a robot a while: answer within ``answer_timeout_s``.
CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 300.0
MAX_LINE_BYTES = 64 * 1024
_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_\-]{0,80}$")


def _slug(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SLUG_RE.match(value):
        raise DeviceError("operator", f"refusing to send {what} {value!r}: not a name")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise DeviceError("operator", f"refusing to send {what} {value!r}: not a positive number")
    return float(value)


def request_message(request_id: int, request: OperatorRequest) -> dict[str, Any]:
    """The JSON object sent for ``request`` (checked field by field)."""
    msg: dict[str, Any] = {"id": int(request_id), "action": request.action, "step": int(request.step)}
    if request.total >= request.step:
        msg["of"] = int(request.total)  # the plan's planned requests, when known and not yet exceeded
    if request.sensor is not None:
        msg["sensor"] = _slug(request.sensor, "sensor")
    if request.action == "chart":
        msg["chart"] = _slug(request.chart, "chart")
        if request.chart_spec and request.chart_spec != request.chart:
            msg["spec"] = _slug(request.chart_spec, "chart spec")
        if request.size_mm is not None:
            msg["size_mm"] = [_number(v, "chart size") for v in request.size_mm]
    elif request.action == "lens":
        msg["lens"] = None if request.lens is None else _slug(request.lens, "lens")
        msg["aperture"] = None if request.aperture is None else _number(request.aperture, "aperture")
    else:
        msg["lens"] = _slug(request.lens, "lens")
        msg["aperture"] = _number(request.aperture, "aperture")
    return msg


class TcpOperator:
    """The line's automation at ``host:port``; the connection is opened on the first request."""

    name = "tcp"

    def __init__(self, host: str, port: int, *, answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self.host, self.port = host, int(port)
        self.answer_timeout_s = float(answer_timeout_s)
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 1

    @property
    def where(self) -> str:
        return f"operator tcp://{self.host}:{self.port}"

    def _connect(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                raise DeviceError("operator", f"cannot connect to tcp://{self.host}:{self.port} "
                                              f"({exc.strerror or exc})") from None
        return self._sock

    def _read_line(self, sock: socket.socket) -> bytes:
        sock.settimeout(self.answer_timeout_s)
        while b"\n" not in self._buffer:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                raise DeviceError("operator", f"no answer from tcp://{self.host}:{self.port} within "
                                              f"{self.answer_timeout_s:g} s") from None
            except OSError as exc:
                raise DeviceError("operator", f"tcp://{self.host}:{self.port}: {exc.strerror or exc}") from None
            if not chunk:
                raise DeviceError("operator", f"tcp://{self.host}:{self.port} closed the connection")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                raise DeviceError("operator", f"tcp://{self.host}:{self.port}: answer longer than "
                                              f"{MAX_LINE_BYTES} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _exchange(self, request: OperatorRequest) -> None:
        request_id = self._next_id
        self._next_id += 1
        line = json.dumps(request_message(request_id, request), allow_nan=False).encode() + b"\n"
        sock = self._connect()
        try:
            sock.sendall(line)
        except OSError as exc:
            self.close()
            raise DeviceError("operator", f"tcp://{self.host}:{self.port}: {exc.strerror or exc}") from None
        raw = self._read_line(sock)
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DeviceError("operator", f"tcp://{self.host}:{self.port} answered {len(raw)} bytes that are not "
                                          "a JSON object") from None
        if not isinstance(answer, dict) or answer.get("id") != request_id:
            got = answer.get("id") if isinstance(answer, dict) else None
            raise DeviceError("operator", f"tcp://{self.host}:{self.port} answered id {got!r} to request "
                                          f"{request_id}")
        if answer.get("ok") is not True:
            error = answer.get("error")
            text = error if isinstance(error, str) and error.isprintable() else "no reason given"
            raise DeviceError("operator", f"could not {request.action} ({request.text()}): {text[:200]}")

    #: Every change is one exchange: the request names its action on the wire.
    chart = lens = aperture = _exchange

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
