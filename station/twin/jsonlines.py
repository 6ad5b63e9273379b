"""The twin's JSON-lines servers: one JSON object per line each way, optional binary payload (DESIGN 3.3).

A reply is ``{"ok": true, "result": {...}}``; one carrying data adds ``"payload_bytes": N`` and
exactly N bytes follow its newline. Errors are ``{"ok": false, "error": {"code", "message"}}`` with
codes ``bad_request`` (unknown command or bad arguments), ``line_too_long`` (the connection is then
closed) and ``internal`` (the service failed). Shared by the phone and the twin's control interface;
the argument checks here turn a bad value into one ``bad_request`` line naming it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from station.errors import DeviceError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 2 * 1024 * 1024  # a request line longer than this is refused


class BadRequestError(Exception):
    """A request the service refuses: its ``code`` and one-line message go back on the wire."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class Reply:
    """What goes back for one request: the header object, an optional payload, a fault action."""

    def __init__(self, header: dict[str, Any], payload: bytes | None = None, action: str = "") -> None:
        self.header = header
        self.payload = payload
        self.action = action  # "", "drop" (send nothing) or "disconnect" (close mid-payload)
        self.line = b""  # the header as sent, once serialised


def json_line(header: dict[str, Any]) -> bytes:
    """One compact JSON object and its newline (NaN and infinities refused)."""
    return json.dumps(header, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def ok_header(result: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "result": result}


def error_header(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


# --- argument checks -------------------------------------------------------------------------

def check_args(args: dict[str, Any], cmd: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
               ) -> None:
    """Every key of ``args`` is allowed and every required one is there."""
    for key in args:
        if key not in required and key not in optional:
            allowed = ", ".join(required + optional) or "none"
            raise BadRequestError(f"{cmd}: unknown argument {key!r}; allowed: {allowed}")
    for key in required:
        if key not in args:
            raise BadRequestError(f"{cmd}: missing argument {key!r}")


def choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BadRequestError(f"{name} {value!r}; allowed: {', '.join(choices)}")
    return value


def number(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> float:
    """A JSON number in [lo, hi] (NaN and booleans refused); an int when ``integer``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise BadRequestError(f"{name} {value!r}; expected {kind} in {lo:g}..{hi:g}")
    return value


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestError(f"{name} {value!r}; expected true or false")
    return value


# --- the server ------------------------------------------------------------------------------

class JsonLineServer:
    """A threaded TCP server of one-JSON-object-per-line requests (several clients at once).

    Subclasses fill ``commands`` (name -> handler of the request's other keys, returning a
    ``Reply``) or override ``handle_request``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.commands: dict[str, Callable[[dict[str, Any]], Reply]] = {}
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

    def handle_request(self, request: dict[str, Any]) -> Reply:
        """Dispatch on ``cmd`` through ``commands``; an unknown command is a bad request."""
        args = dict(request)
        cmd = args.pop("cmd")
        handler = self.commands.get(cmd)
        if handler is None:
            raise BadRequestError(f"unknown command {cmd!r}; allowed: {', '.join(self.commands)}")
        return handler(args)

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
                    self._send(conn, Reply(error_header("line_too_long", message)))
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
            return Reply(error_header("bad_request", f"not a JSON line: {exc.__class__.__name__}: {exc}"))
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return Reply(error_header("bad_request", 'expected a JSON object with a string "cmd"'))
        try:
            reply = self.handle_request(request)
            reply.line = json_line(reply.header)
            return reply
        except BadRequestError as exc:
            return Reply(error_header(exc.code, str(exc)))
        except Exception as exc:  # the service must answer, not die: report its own words
            log.exception("%s failed on %s", type(self).__name__, request.get("cmd"))
            return Reply(error_header("internal", f"{request.get('cmd')}: {exc.__class__.__name__}: {exc}"))

    @staticmethod
    def _send(conn: socket.socket, reply: Reply) -> bool:
        """Send one reply; a ``disconnect`` reply sends half its payload and closes. False: closed."""
        conn.sendall(reply.line or json_line(reply.header))
        payload = reply.payload
        if payload is not None:
            if reply.action == "disconnect":
                conn.sendall(memoryview(payload)[: len(payload) // 2])
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                return False
            conn.sendall(payload)
        return True
