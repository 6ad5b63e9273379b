"""``station bench plan``: the factory plan's wall time on the twin in CI mode, and the twin's simulated hardware time.

A twin is started for the benchmark (CI resolution, ``time_scale`` 0: no real waiting for simulated hardware,
which the twin still accounts) and the factory plan runs against it exactly as ``station run --station`` runs
it (records and Allure results written to a temporary folder, no HTML report). The figure is ``wall_s``; its
reference from the same run is ``hw_time_s``, what a bench would spend on moves, light settling and exposures
by the twin's own account (``truth()["hw_time_s"]``). ``captures`` is the number of frames the phone took
(read off the next frame's sequence number, over the phone's own wire), ``tests`` the plan's tests by
outcome. The issue's target: the whole plan within 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_WALL_S = 180.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plan", help="the factory plan's wall time on the twin (CI mode) and its hardware time")
    parser.add_argument("--plan", choices=("factory", "regression"), default="factory",
                        help="the plan (default factory)")
    parser.add_argument("--lens", metavar="ID", action="append", default=[],
                        help="M lens to test (repeatable; default: the twin's catalog)")
    parser.add_argument("--firmware", metavar="BUILD", default="golden", help="the twin's firmware build")
    parser.add_argument("--seed", type=int, default=1, help="the twin's seed (default 1)")
    parser.add_argument("--reports", metavar="DIR",
                        help="keep the run's record and Allure results here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _frames_taken(config: Any) -> int:
    """Frames the phone took so far: the sequence number of one more capture, minus that one."""
    from station.devices.phone import PhoneClient

    with PhoneClient(config.dut, name="dut") as phone:
        meta, _ = phone.capture("main", "preview")
    return int(meta.get("seq", 1)) - 1


def measure(plan: str = "factory", lenses: list[str] | None = None, firmware: str = "golden",
            seed: int = 1, reports_dir: str | None = None) -> dict[str, Any]:
    """Run ``plan`` on a fresh twin; the figure, the twin's hardware time, captures and test outcomes."""
    from station.cli import main
    from station.config import TwinConfig, to_toml
    from station.records import load_record
    from station.twin.control_client import TwinControl
    from station.twin.runner import Twin

    settings = TwinConfig(seed=seed, firmware=firmware, resolution="ci", time_scale=0.0)
    with tempfile.TemporaryDirectory(prefix="m-station-bench-plan-") as tmp, Twin(settings) as twin:
        assert twin.config is not None
        station_file = Path(tmp) / "station.toml"
        station_file.write_text(to_toml(twin.config), encoding="utf-8")
        reports = Path(reports_dir) if reports_dir else Path(tmp) / "reports"
        argv = ["run", "--plan", plan, "--station", str(station_file), "--reports", str(reports), "--no-report"]
        for lens in lenses or []:
            argv += ["--lens", lens]
        argv += ["--", "-q"]
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the plan's progress on stderr, the JSON alone on stdout
            code = main(argv)
        wall_s = time.perf_counter() - started
        with TwinControl(twin.config.twin.control) as control:
            hw = dict(control.truth().get("hw_time_s") or {})
        captures = _frames_taken(twin.config)
        records = sorted((reports / "records").glob("*.json"))
        tests: dict[str, int] = {}
        slowest: list[list[Any]] = []
        if records:
            record = load_record(records[-1])
            for test in record.get("tests", []):
                tests[test["outcome"]] = tests.get(test["outcome"], 0) + 1
            ranked = sorted(record.get("tests", []), key=lambda t: -float(t.get("duration_s") or 0.0))
            slowest = [[t["name"], round(float(t.get("duration_s") or 0.0), 2)] for t in ranked[:5]]
    hw_time = {"move": hw.get("move", 0.0), "settle": hw.get("settle", 0.0), "exposure": hw.get("exposure", 0.0)}
    hw_time = {k: round(float(v), 3) for k, v in hw_time.items()}
    hw_time["total"] = round(sum(float(v) for v in hw.values()), 3)
    return {"plan": {"name": plan, "wall_s": round(wall_s, 2), "hw_time_s": hw_time, "captures": captures,
                     "tests": tests, "slowest_tests_s": slowest, "exit_code": code, "lenses": lenses or "catalog",
                     "target_wall_s": TARGET_WALL_S, "time_scale": 0.0, "resolution": "ci"}}


def run(args: argparse.Namespace) -> int:
    result = measure(args.plan, list(dict.fromkeys(args.lens)), args.firmware, args.seed, args.reports)
    plan = result["plan"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        hw = plan["hw_time_s"]
        tally = ", ".join(f"{n} {k}" for k, n in plan["tests"].items()) or "no test ran"
        print(f"{plan['name']} plan on the twin (CI): {plan['wall_s']:.1f} s wall (target <= {TARGET_WALL_S:g} s); "
              f"simulated hardware {hw['total']:.1f} s (moves {hw['move']:.1f}, settling {hw['settle']:.1f}, "
              f"exposures {hw['exposure']:.1f}); {plan['captures']} frames; {tally}; exit {plan['exit_code']}")
    return 0 if plan["exit_code"] == 0 else 1
