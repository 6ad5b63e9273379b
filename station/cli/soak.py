"""``station soak``: N short factory runs in a row on one twin and one station process; do resources stay flat?

Each run is ``station run`` in this process (the plan under pytest, as on a line that tests phone after
phone), against one twin started here. After each run (and a garbage collection) the process's resident
memory (RSS), open file descriptors and OS threads are sampled; after a warm-up, their slope per run is a
least-squares fit (``scipy.stats.linregress``). A slope above its bound is a leak.

Exit codes: 0 flat; 1 a slope above its bound (the soak's verdict on the station software); a run that
does not pass stops the soak with that run's own exit code (1 product, 3 station fault); 2 bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from station.errors import ConfigError

#: The short factory run of each phone: the light's closed loop and one measured scene (main shading).
DEFAULT_SELECT = "test_light_closed_loop or test_02_flat and test_shading"
#: Default bounds on the slope per run: memory, descriptors, threads.
MAX_RSS_KIB_PER_RUN = 256.0
MAX_FDS_PER_RUN = 0.05
MAX_THREADS_PER_RUN = 0.05
MAX_PHONES = 100_000


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "soak", help="N short factory runs on one twin in one process; fail if memory, fds or threads grow",
        description="Run N short factory runs in a row on one twin and one station process; sample RSS, open "
                    "file descriptors and threads after each; print the least-squares slope per run. Exit 0 "
                    "flat, 1 a slope above its bound, a failed run's own code (1, 3), 2 bad options.")
    parser.add_argument("--phones", type=int, default=20, metavar="N", help="number of runs (default 20)")
    parser.add_argument("--warmup", type=int, default=2, metavar="W",
                        help="first runs left out of the fit (imports, caches; default 2)")
    parser.add_argument("--select", default=DEFAULT_SELECT, metavar="EXPR",
                        help=f"pytest -k expression of each run (default: {DEFAULT_SELECT!r})")
    parser.add_argument("--time-scale", type=float, default=0.002,
                        help="the twin's real seconds per simulated hardware second (default 0.002)")
    parser.add_argument("--max-rss-kib-per-run", type=float, default=MAX_RSS_KIB_PER_RUN)
    parser.add_argument("--max-fds-per-run", type=float, default=MAX_FDS_PER_RUN)
    parser.add_argument("--max-threads-per-run", type=float, default=MAX_THREADS_PER_RUN)
    parser.add_argument("--twin-fault", metavar="NAME[=VALUE]", action="append", default=[],
                        help="inject a twin fault for the whole soak (repeatable), e.g. a flaky link")
    parser.add_argument("--reports", metavar="DIR",
                        help="where the runs write their records (default: a temporary folder, removed)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the summary")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST_ARGS",
                        help="after --, more options for each run's pytest")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.phones <= MAX_PHONES:
        raise ConfigError(f"--phones {args.phones}: expected 1..{MAX_PHONES}")
    if args.warmup < 0 or args.phones - args.warmup < 3:
        raise ConfigError(f"--warmup {args.warmup}: expected >= 0 and at least 3 runs after it "
                          f"(--phones {args.phones})")
    for option in ("time_scale", "max_rss_kib_per_run", "max_fds_per_run", "max_threads_per_run"):
        value = getattr(args, option)
        if not (math.isfinite(value) and 0 <= value <= 1e9):
            raise ConfigError(f"--{option.replace('_', '-')} {value!r}: expected a finite number >= 0")
    if not args.select.strip() or any(c in args.select for c in "\r\n\0"):
        raise ConfigError(f"--select {args.select!r}: expected a one-line pytest -k expression")
    from station.twin.faults import parse_fault_args

    args.faults = parse_fault_args(args.twin_fault)
    if not Path("/proc/self/status").is_file():
        raise ConfigError("station soak samples /proc/self (Linux); it is not available here")


def sample() -> dict[str, float]:
    """This process now: resident memory (KiB), open file descriptors, OS threads (from /proc/self)."""
    gc.collect()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_kib": float(status["VmRSS"].split()[0]), "fds": float(len(os.listdir("/proc/self/fd")) - 1),
            "threads": float(status["Threads"].strip())}


def slopes(samples: list[dict[str, float]], warmup: int) -> dict[str, float]:
    """Least-squares slope per run of each sampled quantity, the first ``warmup`` runs left out."""
    from scipy.stats import linregress

    kept = samples[warmup:]
    index = list(range(warmup, warmup + len(kept)))
    return {f"{key}_per_run": float(linregress(index, [s[key] for s in kept]).slope)
            for key in ("rss_kib", "fds", "threads")}


def _one_run(station_file: Path, reports: Path, serial: str, select: str, extra: list[str]) -> tuple[int, str]:
    from station.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["run", "--station", str(station_file), "--reports", str(reports), "--no-report",
                     "--dut-serial", serial, "--", "-q", "-k", select, *extra])
    return code, out.getvalue()


def _soak(args: argparse.Namespace, reports: Path) -> dict[str, Any]:
    from station.config import TwinConfig, to_toml
    from station.twin.runner import Twin

    extra = list(args.pytest_args or [])
    extra = extra[1:] if extra[:1] == ["--"] else extra
    runs: list[dict[str, Any]] = []
    with Twin(TwinConfig(time_scale=args.time_scale, faults=args.faults)) as twin:
        assert twin.config is not None
        station_file = reports / "soak-station.toml"
        station_file.write_text(to_toml(twin.config))
        for i in range(1, args.phones + 1):
            started = time.monotonic()
            code, out = _one_run(station_file, reports, f"SOAK-{i:06d}", args.select, extra)
            entry = {"run": i, "exit": code, "elapsed_s": round(time.monotonic() - started, 3), **sample()}
            runs.append(entry)
            if not args.json:
                print(f"run {i}/{args.phones}: exit {code} in {entry['elapsed_s']:.1f} s, RSS "
                      f"{entry['rss_kib'] / 1024:.1f} MiB, {entry['fds']:.0f} fds, {entry['threads']:.0f} threads",
                      flush=True)
            if code != 0:
                last = [line for line in out.splitlines() if line.strip()][-8:]
                return {"phones": args.phones, "runs": runs, "verdict": "run-failed", "exit_code": code,
                        "failed_run": i, "failed_output": last}
    limits = {"rss_kib_per_run": args.max_rss_kib_per_run, "fds_per_run": args.max_fds_per_run,
              "threads_per_run": args.max_threads_per_run}
    fitted = slopes([{k: r[k] for k in ("rss_kib", "fds", "threads")} for r in runs], args.warmup)
    over = [k for k, v in fitted.items() if v > limits[k]]
    return {"phones": args.phones, "warmup": args.warmup, "select": args.select, "runs": runs,
            "slopes": fitted, "limits": limits, "over": over, "verdict": "fail" if over else "pass",
            "exit_code": 1 if over else 0}


def run(args: argparse.Namespace) -> int:
    _check(args)
    with contextlib.ExitStack() as stack:
        if args.reports:
            reports = Path(args.reports)
            try:
                reports.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"--reports {reports}: cannot create it ({exc.strerror})") from None
        else:
            reports = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="station-soak-")))
        doc = _soak(args, reports)
    if args.json:
        from station.cli.common import print_json

        print_json(doc)
    elif doc["verdict"] == "run-failed":
        print(f"station soak: run {doc['failed_run']} of {doc['phones']} ended with exit {doc['exit_code']}:")
        for line in doc["failed_output"]:
            print(f"  {line}")
    else:
        s, lim = doc["slopes"], doc["limits"]
        print(f"station soak: {doc['verdict'].upper()} (exit {doc['exit_code']}): {doc['phones']} runs, slopes per "
              f"run after {doc['warmup']} warm-up: RSS {s['rss_kib_per_run']:+.2f} KiB (<= "
              f"{lim['rss_kib_per_run']:g}), fds {s['fds_per_run']:+.4f} (<= {lim['fds_per_run']:g}), threads "
              f"{s['threads_per_run']:+.4f} (<= {lim['threads_per_run']:g})")
    return int(doc["exit_code"])
