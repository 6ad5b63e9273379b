"""The twin's control interface: the operator stand-in and the ground truth, over JSON lines.

The same wire style as the phone (one JSON object per line each way, no payload). Commands:

| cmd | args | what it does |
| --- | --- | --- |
| ``chart.set`` | chart | put a chart on the holder (a lower-case slug) |
| ``lens.mount`` | lens (catalog id or null) | the operator's lens change on the M adapter |
| ``fault.set`` | name, value (default true) | switch a device fault on |
| ``fault.clear`` | name | switch it off (no error when it was off) |
| ``fault.list`` | | active faults and every known one with its description |
| ``firmware.set`` | build | the phone's firmware build |
| ``truth`` | | the world's state: light, pose, chart, lens, hw_time_s, seed, firmware, faults |

Names are checked (lower-case slugs, known faults and lenses) before they reach the world.
``TwinControl`` is the client: a refused command is an ``InputError`` (the caller's
request), an unreachable twin a ``DeviceError`` naming ``twin`` and the address.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from typing import Any

from station.errors import DeviceError, InputError
from station.twin.faults import all_faults
from station.twin.phone_server import (
    M_LENS_CODES,
    PHONE_FAULTS,
    BadRequestError,
    JsonLineServer,
    Reply,
    fault_period,
)
from station.twin.world import World

_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,63}$")
_FAULT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_FAULT_TEXT = 200
MAX_REPLY_LINE_BYTES = 1024 * 1024


def _slug(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SLUG_RE.match(value):
        raise BadRequestError(f"{what} {value!r}: expected a lower-case slug (letters, digits, '.', '-')")
    return value


def _fault_name(value: Any) -> str:
    if not isinstance(value, str) or not _FAULT_RE.match(value):
        raise BadRequestError(f"fault name {value!r}: expected a lower-case word (letters, digits, '_')")
    known = all_faults()
    if value not in known:
        raise BadRequestError(f"unknown fault {value!r}; known: {', '.join(known) or '(none)'}")
    return value


def _fault_value(name: str, value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_FAULT_TEXT or not value.isprintable():
            raise BadRequestError(f"fault {name}: value must be printable text "
                                  f"of at most {MAX_FAULT_TEXT} chars")
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise BadRequestError(f"fault {name}: value {value!r}; expected true/false, a number or text")
    if isinstance(value, float) and value != value:
        raise BadRequestError(f"fault {name}: value NaN")
    if name in PHONE_FAULTS:
        try:
            fault_period(value)
        except ValueError as exc:
            raise BadRequestError(f"fault {name}: {exc}") from None
    return True if value is None else value


def _args(args: dict[str, Any], cmd: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    for key in args:
        if key not in required + optional:
            allowed = ", ".join(required + optional) or "none"
            raise BadRequestError(f"{cmd}: unknown argument {key!r}; allowed: {allowed}")
    for key in required:
        if key not in args:
            raise BadRequestError(f"{cmd}: missing argument {key!r}")


class ControlServer(JsonLineServer):
    """The twin's control interface over its ``World`` (operator stand-in, faults, truth)."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.world = world
        self._commands = {"chart.set": self._chart_set, "lens.mount": self._lens_mount,
                          "fault.set": self._fault_set, "fault.clear": self._fault_clear,
                          "fault.list": self._fault_list, "firmware.set": self._firmware_set,
                          "truth": self._truth}

    def start(self) -> ControlServer:
        super().start()
        return self

    def handle_request(self, request: dict[str, Any]) -> Reply:
        args = dict(request)
        cmd = args.pop("cmd")
        handler = self._commands.get(cmd)
        if handler is None:
            raise BadRequestError(f"unknown command {cmd!r}; allowed: {', '.join(self._commands)}")
        return Reply({"ok": True, "result": handler(args)})

    def _chart_set(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "chart.set", ("chart",))
        chart = _slug(args["chart"], "chart")
        with self.world.lock:
            self.world.chart = chart
        return {"chart": chart}

    def _lens_mount(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "lens.mount", ("lens",))
        lens = args["lens"]
        if lens is not None:
            lens = _slug(lens, "lens")
            if lens not in M_LENS_CODES:
                raise BadRequestError(f"lens {lens!r} is not in the M lens catalog; "
                                      f"known: {', '.join(M_LENS_CODES)}")
        with self.world.lock:
            self.world.m_lens = lens
        return {"lens": lens}

    def _fault_set(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "fault.set", ("name",), ("value",))
        name = _fault_name(args["name"])
        value = _fault_value(name, args.get("value"))
        with self.world.lock:
            self.world.faults[name] = value
            return {"faults": dict(self.world.faults)}

    def _fault_clear(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "fault.clear", ("name",))
        name = args["name"]
        if not isinstance(name, str) or not _FAULT_RE.match(name):
            raise BadRequestError(f"fault name {name!r}: expected a lower-case word (letters, digits, '_')")
        with self.world.lock:
            self.world.faults.pop(name, None)
            return {"faults": dict(self.world.faults)}

    def _fault_list(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "fault.list", ())
        with self.world.lock:
            active = dict(self.world.faults)
        return {"active": active, "known": all_faults()}

    def _firmware_set(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "firmware.set", ("build",))
        build = _slug(args["build"], "firmware build")
        from station.twin.firmware import FIRMWARE_BUILDS

        if build not in FIRMWARE_BUILDS:
            raise BadRequestError(f"unknown firmware build {build!r}; allowed: {', '.join(FIRMWARE_BUILDS)}")
        with self.world.lock:
            self.world.firmware = build
        return {"firmware": build}

    def _truth(self, args: dict[str, Any]) -> dict[str, Any]:
        _args(args, "truth", ())
        world = self.world
        with world.lock:
            light = world.light
            return {
                "light": {"output": light.output, "level_pct": light.level_pct, "cct_k": light.cct_k,
                          "fraction": world.light_fraction(), "illuminance_lux": world.illuminance_lux(),
                          "settled": world.light_settled()},
                "pose": world.pose(),
                "chart": world.chart,
                "lens": world.m_lens,
                "hw_time_s": dict(world.hw_time_s),
                "seed": world.seed,
                "firmware": world.firmware,
                "resolution": world.resolution,
                "faults": dict(world.faults),
            }


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

    def chart_set(self, chart: str) -> dict[str, Any]:
        _client_slug(chart, "chart")
        return self.request("chart.set", chart=chart)

    def lens_mount(self, lens: str | None) -> dict[str, Any]:
        if lens is not None:
            _client_slug(lens, "lens")
        return self.request("lens.mount", lens=lens)

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
