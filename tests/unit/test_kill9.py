"""kill -9 (issue 10 item 4): ``station run`` SIGKILLed at seeded random points loses nothing it wrote.

After each kill: every record in the reports folder parses (``station.records.load_record``), every profile
parses and verifies its digest (``calibration.profile``), no process of the killed run's group is left (the
twin runs inside ``station run``: nothing may outlive it), and, at the end, a fresh run in the same folder
succeeds. Writes are atomic (``station.atomic``): a kill leaves at most a hidden ``.NAME.*.tmp``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from calibration.profile import loads_profile, verify_digest
from station.records import load_record

#: A short factory subset that measures and writes a profile (main), on a fast twin clock.
SUBSET = ("-k", "test_02_flat and test_shading or test_lens_profile and main", "--twin-time-scale", "0.002")
#: Kill points are drawn in this window after the start, s (the subset takes about 5-10 s: the twin starts,
#: homes, measures, writes the profile and the record late in it; the slow campaign reaches further).
WINDOW_S = (0.3, 5.0)


def _start(reports: Path, *pytest_args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "station", "run", "--reports", str(reports), "--no-report",
                             "--", *pytest_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: orphans are findable


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (from /proc; zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _check_folder(reports: Path) -> tuple[int, int]:
    """Every record and profile under ``reports`` is whole; returns (records, profiles)."""
    records = sorted((reports / "records").glob("*.json")) if (reports / "records").is_dir() else []
    for path in records:
        record = load_record(path)
        assert record["run_id"] and path.name.endswith(f"{record['run_id']}.json"), path
    profiles = sorted(reports.glob("runs/*/profiles/*.json"))
    for path in profiles:
        doc = loads_profile(path.read_text())
        assert verify_digest(doc), f"{path}: digest does not verify"
    leftovers = [p for p in reports.rglob("*") if p.is_file() and p.suffix == ".tmp"]
    assert all(p.name.startswith(".") for p in leftovers), leftovers  # hidden temp files only
    return len(records), len(profiles)


def _kill_at(reports: Path, delay_s: float) -> None:
    proc = _start(reports, *SUBSET)
    try:
        proc.wait(timeout=delay_s)  # it may finish first: then nothing was killed, which is fine too
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)  # the station process only: whatever it started must die with it
        proc.wait(timeout=30)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 5.0
    while (left := _group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:  # clean up before failing: an orphan must not outlive the test either
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert left == [], f"processes of the killed run still alive: {left}"
    _check_folder(reports)


def _campaign(tmp_path: Path, seed: int, kills: int, window_s: tuple[float, float] = WINDOW_S) -> None:
    reports = tmp_path / "reports"
    rng = random.Random(seed)
    for delay_s in sorted(rng.uniform(*window_s) for _ in range(kills)):
        _kill_at(reports, delay_s)
    # a fresh run in the same folder succeeds, and leaves its own record beside the killed runs'
    before, _ = _check_folder(reports)
    proc = _start(reports, "-k", "test_light_linearity", "--twin-time-scale", "0.002")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode(errors="replace")[-1500:]
    after, _ = _check_folder(reports)
    assert after == before + 1


def test_kill9_at_seeded_random_points_loses_nothing(tmp_path: Path) -> None:
    _campaign(tmp_path, seed=10, kills=3)


@pytest.mark.slow
def test_kill9_campaign(tmp_path: Path) -> None:
    _campaign(tmp_path, seed=11, kills=15, window_s=(0.3, 12.0))
