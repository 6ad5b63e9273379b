"""``station run`` as a subprocess against a twin held by the test: the twin's truth stays readable after the run.

The twin serves its wires from the test's process; the station is another process (as on a line), started
with ``--station`` naming a TOML that points at the twin, short device timeouts, and a wall-clock bound: a
run that does not end within it is killed and reported as a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from station.config import TwinConfig, to_toml
from station.twin.runner import Twin

#: Device I/O timeouts of the station under test, s: short, so a silent device costs little.
TIMEOUTS_S = {"light": 0.3, "meter": 0.3, "mount": 8.0, "dut": 6.0}
#: The twin's hardware time scale for these runs (real seconds per simulated second).
TIME_SCALE = 0.005


@dataclass
class Run:
    code: int
    elapsed_s: float
    out: str
    record: dict[str, Any] | None


def station_file(twin: Twin, folder: Path, timeouts_s: dict[str, float] | None = None) -> Path:
    """A station TOML pointing at ``twin`` with the given device timeouts."""
    t = {**TIMEOUTS_S, **(timeouts_s or {})}
    c = twin.config
    assert c is not None
    config = replace(c, light=replace(c.light, timeout_s=t["light"]), meter=replace(c.meter, timeout_s=t["meter"]),
                     mount=replace(c.mount, timeout_s=t["mount"]), dut=replace(c.dut, timeout_s=t["dut"]))
    path = folder / "station.toml"
    path.write_text(to_toml(config))
    return path


def station_run(station: Path, reports: Path, plan: str, select: str, bound_s: float,
                *extra: str) -> Run:
    """``station run --plan PLAN --station FILE -- -k SELECT`` in a subprocess, killed after ``bound_s``."""
    argv = [sys.executable, "-m", "station", "run", "--plan", plan, "--station", str(station),
            "--reports", str(reports), "--no-report", *extra, "--", "-k", select]
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=bound_s,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"station run did not end within {bound_s:g} s (a hang): {out[-800:]}") from None
    elapsed_s = time.monotonic() - started
    records = sorted((reports / "records").glob("*.json"))
    record = json.loads(records[-1].read_text()) if records else None
    return Run(done.returncode, elapsed_s, done.stdout + done.stderr, record)


def mount_state(twin: Twin) -> str:
    """The twin's mount controller state (Idle, Run, Home, Hold:0, Alarm) from its emulator: truth."""
    from station.twin.grbl_emulator import GrblEmulator

    emulator = next(s for s in twin._servers if isinstance(s, GrblEmulator))
    return emulator.state


def bench_is_safe(twin: Twin, watch_s: float = 0.15) -> list[str]:
    """What the twin's truth says is unsafe after a run: the light lighting the chart, motion going on."""
    problems = []
    lux = twin.world.illuminance_lux()
    if lux >= 1.0:
        problems.append(f"light on: {lux:.1f} lux at the chart (output {twin.world.light.output}, "
                        f"power {twin.world.light_power})")
    before = twin.world.pose()
    time.sleep(watch_s)
    after, state = twin.world.pose(), mount_state(twin)
    if after != before or state in ("Run", "Home", "Jog", "Hold:1"):
        problems.append(f"motion not stopped: mount {state}, pose {before} -> {after}")
    return problems


def twin_with(faults: dict[str, Any], **settings: Any) -> Twin:
    return Twin(TwinConfig(time_scale=TIME_SCALE, faults=faults, **settings))
