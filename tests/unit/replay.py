"""Recorded message exchanges, replayed on a real wire (after pymeasure's ``expected_protocol``).

A ``Transcript`` is a list of ``(expected_from_driver, reply)`` byte pairs. The replay peer
serves it over a TCP socket or a pseudo-terminal, so the driver under test runs unmodified
on a real wire; any message that differs from the transcript is recorded as a mismatch and
``check()`` fails naming it. ``reply`` may be ``b""`` for a message that gets no answer.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import tty

Transcript = list[tuple[bytes, bytes]]


class _Replay:
    def __init__(self, transcript: Transcript, split: bytes) -> None:
        self.transcript = list(transcript)
        self.split = split
        self.received: list[bytes] = []
        self.mismatches: list[str] = []
        self._done = threading.Event()

    def _serve(self, read, write) -> None:
        buffer = b""
        step = 0
        try:
            while step < len(self.transcript):
                expected, reply = self.transcript[step]
                while len(buffer) < len(expected):
                    chunk = read()
                    if not chunk:
                        self.mismatches.append(f"peer closed before step {step} ({expected!r})")
                        return
                    buffer += chunk
                got, buffer = buffer[: len(expected)], buffer[len(expected):]
                self.received.append(got)
                if got != expected:
                    self.mismatches.append(f"step {step}: expected {expected!r}, got {got!r}")
                    return
                if reply:
                    write(reply)
                step += 1
        except OSError as exc:
            self.mismatches.append(f"wire error at step {step}: {exc}")
        finally:
            self._done.set()

    def check(self, timeout_s: float = 5.0) -> None:
        """Fail unless the whole transcript was exchanged, in order, byte for byte."""
        self._done.wait(timeout_s)
        assert not self.mismatches, "; ".join(self.mismatches)
        assert len(self.received) == len(self.transcript), (
            f"only {len(self.received)} of {len(self.transcript)} steps exchanged")


class TcpReplay(_Replay):
    """Serve a transcript to one TCP client on 127.0.0.1; ``port`` is free and chosen here."""

    def __init__(self, transcript: Transcript, split: bytes = b"\n") -> None:
        super().__init__(transcript, split)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            self._serve(lambda: conn.recv(65536), conn.sendall)
        self._listener.close()


class PtyReplay(_Replay):
    """Serve a transcript on a pseudo-terminal; ``port`` is the slave path for pyserial."""

    def __init__(self, transcript: Transcript, split: bytes = b"\n") -> None:
        super().__init__(transcript, split)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        self._serve(lambda: os.read(self._master, 65536), lambda b: os.write(self._master, b))

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
