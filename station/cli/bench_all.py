"""``station bench all --json``: every benchmark in one run, one JSON object (issue 13).

``raw10``, ``sfr`` and ``render`` run in this process, one after the other, each with its own in-run
reference (``np.copy`` of the frame, one ``rfft2`` of the ROI, one blur pass of the frame); ``plan`` runs
``station bench plan --json`` in a child process (it starts its own twin) when this version has it, else
its entry says why it is missing. ``--skip`` leaves named benchmarks out (their entry says so); ``--quick``
runs small sizes (RAW10 2048 x 1536, 200 edges, the CI render only) to check that everything runs: its
figures are not the issue's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from typing import Any

from station.errors import ConfigError

NAMES = ("raw10", "sfr", "render", "plan")
#: The plan benchmark runs a whole factory plan on a twin: bounded so that ``bench all`` always ends.
PLAN_TIMEOUT_S = 3600.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("all", help="every benchmark (raw10, sfr, render, plan) in one JSON object")
    parser.add_argument("--skip", default="", metavar="NAMES",
                        help=f"comma-separated benchmarks to leave out ({', '.join(NAMES)})")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, to check the benchmarks run (not the issue's figures)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _plan() -> dict[str, Any]:
    """``station bench plan --json`` in a child process, its ``plan`` object (or why there is none)."""
    if importlib.util.find_spec("station.cli.bench_plan") is None:
        return {"skipped": "station bench plan is not part of this version"}
    code = "import sys; from station.cli import main; sys.exit(main(sys.argv[1:]))"
    try:
        proc = subprocess.run([sys.executable, "-c", code, "bench", "plan", "--json"], capture_output=True,
                              text=True, timeout=PLAN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"station bench plan did not end within {PLAN_TIMEOUT_S:g} s"}
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 0:
        return {"error": f"station bench plan exited {proc.returncode}: {lines[-1] if lines else ''}"}
    try:
        return json.loads(proc.stdout)["plan"]
    except (ValueError, KeyError, TypeError):
        return {"error": "station bench plan printed no JSON object with a 'plan' key"}


def measure(skip: tuple[str, ...] = (), quick: bool = False) -> dict[str, Any]:
    """Every benchmark not in ``skip``, each under its own name, with the seconds the whole run took."""
    from station.cli import bench_raw10, bench_render, bench_sfr

    unknown = [name for name in skip if name not in NAMES]
    if unknown:
        raise ConfigError(f"bench all: --skip {','.join(unknown)}: expected names from {', '.join(NAMES)}")
    runs = {
        "raw10": lambda: bench_raw10.measure(2048, 1536, 3) if quick else bench_raw10.measure(8192, 6144),
        "sfr": lambda: bench_sfr.measure(200, 128, 1) if quick else bench_sfr.measure(),
        "render": lambda: bench_render.measure(("ci",), 1) if quick else bench_render.measure(),
        "plan": _plan,
    }
    t0 = time.perf_counter()
    result: dict[str, Any] = {}
    for name in NAMES:
        result[name] = {"skipped": "--skip"} if name in skip else runs[name]()
    result["all_s"] = time.perf_counter() - t0
    result["quick"] = quick
    return result


def run(args: argparse.Namespace) -> int:
    skip = tuple(s.strip() for s in str(args.skip).split(",") if s.strip())
    result = measure(skip, args.quick)
    if args.json:
        print(json.dumps(result))
    else:
        for name in NAMES:
            print(f"{name}: {json.dumps(result[name])}")
    return 0
