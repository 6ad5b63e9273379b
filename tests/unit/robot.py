"""A line's robot for the bench rehearsal: a TCP server speaking the station's operator protocol (README,
``station.operator.tcp``) that does each action through the twin's control interface and nothing else.

``Robot(control_address)`` serves on a free local port. ``never="flat"``: it answers ok to every request for
that chart without doing it (a missed step); ``wrong_first="flat"``: the first time that chart is asked for it
puts up another one. ``requests`` keeps every request it got.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from station.twin.control_client import TwinControl

#: A wrong chart for each chart a plan asks for (what a confused operator might hang up instead).
WRONG = {"flat": "siemens", "siemens": "flat", "sfr": "steps", "steps": "sfr", "colorchecker": "steps",
         "charuco": "sfr"}


class Robot:
    """The rehearsal's operator: answers ``{"id", "action", ...}`` lines by acting on the twin."""

    def __init__(self, control_address: str, *, never: str | None = None, wrong_first: str | None = None) -> None:
        self.control = TwinControl(control_address)
        self.never, self.wrong_first = never, wrong_first
        self.requests: list[dict[str, Any]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._wrong_done = False

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def __enter__(self) -> Robot:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self.control.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                for line in stream:
                    answer = self._answer(json.loads(line))
                    stream.write(json.dumps(answer).encode() + b"\n")
                    stream.flush()

    def _answer(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(msg)
        try:
            if msg["action"] == "chart":
                if msg["chart"] == self.never:
                    return {"id": msg["id"], "ok": True}  # says done, did nothing
                chart = msg.get("spec") or msg["chart"]
                if msg["chart"] == self.wrong_first and not self._wrong_done:
                    self._wrong_done = True
                    chart = WRONG[msg["chart"]]
                self.control.chart_set(chart)
            elif msg["action"] == "lens":
                self.control.lens_mount(msg["lens"], msg["aperture"])
            elif msg["action"] == "aperture":
                self.control.lens_aperture(msg["aperture"])
            else:
                return {"id": msg["id"], "ok": False, "error": f"unknown action {msg['action']!r}"}
        except Exception as exc:  # noqa: BLE001 - the robot reports, the station decides
            return {"id": msg["id"], "ok": False, "error": str(exc)}
        return {"id": msg["id"], "ok": True}
