"""The twin in its own process, for a command that measures the station against it (``station bench plan``).

``station twin -o FILE`` is started as a child process (its progress to a log file); once it has written
its station TOML the bench is ready (the twin writes the file after homing the mount and greeting the
phone). ``stop()`` sends SIGTERM, which ``station twin`` handles by stopping its servers, and reaps the
child with ``os.wait4``: that gives the twin's own peak RSS (``ru_maxrss``), apart from the station's.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from station.errors import DeviceError

#: How long the twin may take to serve its wires and write its TOML (a full-resolution twin included).
START_TIMEOUT_S = 120.0
#: How long the twin may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 20.0


class TwinProcess:
    """``station twin`` as a child process; ``station_file`` is its TOML once ``start()`` returned."""

    def __init__(self, folder: Path, *, resolution: str = "ci", seed: int = 1, firmware: str = "golden",
                 time_scale: float = 0.0, faults: tuple[str, ...] | list[str] = ()) -> None:
        self.station_file = folder / "twin-station.toml"
        self.log_file = folder / "twin.log"
        self.argv = [sys.executable, "-m", "station", "twin", "--resolution", resolution, "--seed", str(seed),
                     "--firmware", firmware, "--time-scale", repr(float(time_scale)),
                     "-o", str(self.station_file)]
        for fault in faults:  # NAME[=VALUE], checked by the caller (station.twin.faults.parse_fault_args)
            self.argv += ["--twin-fault", fault]
        self._proc: subprocess.Popen[bytes] | None = None
        #: The twin's peak resident set, bytes (known once it has been stopped).
        self.peak_rss_bytes: int | None = None
        self.exit_code: int | None = None

    def start(self) -> Path:
        """Start the twin; return its station TOML once written. ``DeviceError`` if it dies or stalls."""
        with self.log_file.open("wb") as log:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.station_file.exists():
            if self._proc.poll() is not None:
                raise DeviceError("twin", f"the twin process exited {self._proc.returncode} before it was "
                                          f"ready: {self._last_log_line()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DeviceError("twin", f"the twin process wrote no station TOML within {START_TIMEOUT_S:g} s")
            time.sleep(0.05)
        return self.station_file

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        """SIGTERM, reap with ``os.wait4`` (SIGKILL after STOP_TIMEOUT_S); idempotent, never raises."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == proc.pid:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = self.exit_code = os.waitstatus_to_exitcode(status)
        self.peak_rss_bytes = max_rss_bytes(usage)

    def _last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            if lines:
                return lines[-1]
        return "(nothing in its log)"

    def __enter__(self) -> TwinProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def max_rss_bytes(usage: resource.struct_rusage) -> int:
    """``ru_maxrss`` in bytes (getrusage(2): kilobytes on Linux, bytes on macOS)."""
    return int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


def own_peak_rss_bytes() -> int:
    """This process's peak resident set since it was started (exec'd), bytes: ``VmHWM`` of
    ``/proc/self/status`` on Linux. ``ru_maxrss`` is carried across fork and exec (getrusage(2)), so a process
    forked from a larger one (``station bench all``'s plan, after the 50 MP RAW10 and render benchmarks) would
    report its parent's size; ``VmHWM`` belongs to the new image. Elsewhere ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return max_rss_bytes(resource.getrusage(resource.RUSAGE_SELF))
