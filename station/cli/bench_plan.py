"""``station bench plan``: the takt benchmark, the station's own critical path against the twin's hardware time.

The twin runs in its own process (``station twin``, see ``twin_process``), at CI or full (8192 x 6144)
resolution, with ``time_scale`` 0 by default: the twin accounts the hardware time of every move, light
settling and exposure (``truth()["hw_time_s"]``) without waiting it out. The plan runs in this process
exactly as ``station run --station`` runs it (records and Allure results in a temporary folder, no HTML
report), on the whole plan or on the tests ``--select`` picks (pytest ``-k``; named in the JSON).

The figure (issue 13): ``critical_path_s = wall_s - wire_wait_s["total"]``, the wall time of the run minus
the time this process spent blocked on the phone's and the devices' wires (``station.devices.wire_time``:
every blocking read of a driver is accounted, per device; ``total`` is the union over devices), which is
the time the twin took to answer, render and send. Its reference from the same run is ``hw_time_s``, what
a bench would spend on moves, settling and exposures; ``takt_ratio = critical_path_s / hw_time_s`` (goal
<= 1.1). Peak RSS: the station process's own high-water mark (``VmHWM``: ``ru_maxrss`` is carried across
fork and exec, so under ``bench all`` it would be its parent's) and, separately, the twin's (``ru_maxrss``
from ``wait4``).
``--profile FILE`` runs the plan under cProfile (the figures are then inflated by it) and adds the top
functions of the station process by cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import json
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from station.cli.twin_process import TwinProcess, own_peak_rss_bytes
from station.errors import ConfigError

#: The whole factory plan in CI mode within 3 minutes on 2 cores (issue 11).
TARGET_WALL_S = 180.0
#: Issue 13's goals: station critical path / twin hardware time, and the station's peak memory.
TAKT_RATIO_GOAL = 1.1
PEAK_RSS_GOAL_MB = 1536.0
#: The phone's wire timeout for the run, by resolution: a 50 MP capture on a loaded 2-core machine (render,
#: pack, 64 MB over the socket) can take far longer than the twin's default 10 s.
DUT_TIMEOUT_S = {"ci": 10.0, "full": 300.0}
_MB = 1 << 20
_SELECT_RE = re.compile(r"^[A-Za-z0-9_(][\x20-\x7e]{0,199}\Z")
_OUR_CODE = ("station/", "calibration/", "targets/", "fixtures/")
#: Where the drivers block on a wire (socket, serial, poll sleeps): left out of the own-time ranking, which is
#: then the critical path's.
_WIRE_BUILTINS = frozenset({"<method 'recv' of '_socket.socket' objects>",
                            "<method 'recv_into' of '_socket.socket' objects>",
                            "<built-in method time.sleep>", "<built-in method select.select>",
                            "<method 'poll' of 'select.poll' objects>"})


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plan", help="the takt benchmark: a plan on a twin in its own process; the station's "
                                         "critical path against the twin's hardware time, and peak RSS")
    parser.add_argument("--plan", choices=("factory", "regression"), default="factory",
                        help="the plan (default factory)")
    parser.add_argument("--resolution", choices=("ci", "full"), default="ci",
                        help="the twin's sensor resolution: ci (2048x1536) or full (8192x6144); default ci")
    parser.add_argument("--select", metavar="EXPR",
                        help="run only the plan's tests this pytest -k expression selects (default: all)")
    parser.add_argument("--lens", metavar="ID", action="append", default=[],
                        help="M lens to test (repeatable; default: the configured lenses)")
    parser.add_argument("--firmware", metavar="BUILD", default="golden", help="the twin's firmware build")
    parser.add_argument("--seed", type=int, default=1, help="the twin's seed (default 1)")
    parser.add_argument("--twin-fault", metavar="NAME[=VALUE]", action="append", default=[],
                        help="a twin fault (repeatable; `station twin faults` lists them); the factory plan's twin is "
                             "a line's unit (unit_variation, sensor_defects) unless named =false, as in station run")
    parser.add_argument("--time-scale", type=float, default=0.0,
                        help="real seconds the twin waits per simulated second of hardware (default 0: "
                             "accounted, not waited)")
    parser.add_argument("--reports", metavar="DIR",
                        help="keep the run's record and Allure results here (default: a temporary folder)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run under cProfile, write the stats to FILE and add the top functions to the JSON")
    parser.add_argument("--analysis-workers", metavar="N", type=int,
                        help="threads analysing frames behind the next capture (0: serial; default: the "
                             "station's, 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _with_dut_timeout(config: Any, timeout_s: float) -> Any:
    """The twin's station config with the phone's wire timeout raised to ``timeout_s`` (never lowered)."""
    if config.dut.timeout_s >= timeout_s:
        return config
    return dataclasses.replace(config, dut=dataclasses.replace(config.dut, timeout_s=timeout_s))


def _frames_taken(dut: Any) -> int | None:
    """Frames the phone took so far: the sequence number of one more capture, minus that one (None if
    the phone does not answer: the figures stand without it). The plan's safe state reconfigures the
    sensors, which drops the phone's "last" frame, hence a new one.
    """
    from station.devices.phone import PhoneClient
    from station.errors import StationError

    try:
        with PhoneClient(dut, name="dut") as phone:
            meta, _ = phone.capture("main", "zebra_mask")
    except StationError as exc:
        print(f"station bench plan: frames not counted: {exc}", file=sys.stderr)
        return None
    return int(meta.get("seq", 1)) - 1


def _tally(records_dir: Path) -> tuple[dict[str, int], list[list[Any]]]:
    """Tests by outcome and the five slowest, from the run's record."""
    from station.records import load_record

    records = sorted(records_dir.glob("*.json"))
    if not records:
        return {}, []
    tests_run = load_record(records[-1]).get("tests", [])
    tests: dict[str, int] = {}
    for test in tests_run:
        tests[test["outcome"]] = tests.get(test["outcome"], 0) + 1
    ranked = sorted(tests_run, key=lambda t: -float(t.get("duration_s") or 0.0))
    return tests, [[t["name"], round(float(t.get("duration_s") or 0.0), 2)] for t in ranked[:5]]


def _hw_time(hw: dict[str, Any]) -> dict[str, float]:
    """The twin's hardware time by kind (move, settle, exposure first) and its total, s."""
    kinds = {"move": 0.0, "settle": 0.0, "exposure": 0.0, **{k: float(v) for k, v in hw.items()}}
    out = {k: round(v, 3) for k, v in kinds.items()}
    out["total"] = round(sum(kinds.values()), 3)
    return out


def top_functions(profiler: cProfile.Profile, n: int = 20) -> dict[str, list[list[Any]]]:
    """The profile's top ``n`` of our own code by cumulative time (wire waits included), and of everything by
    own time with the wire reads left out (the critical path's hot spots)."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [(f"{Path(f).name}:{line}:{name}", f, ct, tt) for (f, line, name), (_, _, tt, ct, _) in stats.items()]
    ours = sorted((r for r in rows if any(p in r[1] for p in _OUR_CODE)), key=lambda r: -r[2])[:n]
    own = sorted((r for r in rows if r[0].rpartition(":")[2] not in _WIRE_BUILTINS), key=lambda r: -r[3])[:n]
    return {"cumulative_s": [[r[0], round(r[2], 3)] for r in ours],
            "own_s_off_the_wire": [[r[0], round(r[3], 3)] for r in own]}


def _run_plan(argv: list[str], profile: str | None) -> tuple[int, float, dict[str, Any] | None]:
    """``station run`` in this process: exit code, wall seconds, and the profile's top functions."""
    from station.cli import main

    profiler = cProfile.Profile() if profile else None
    with contextlib.redirect_stdout(sys.stderr):  # the plan's progress on stderr, the JSON alone on stdout
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        try:
            code = main(argv)
        finally:
            if profiler:
                profiler.disable()
        wall_s = time.perf_counter() - started
    if profiler is None:
        return code, wall_s, None
    profiler.dump_stats(profile)
    return code, wall_s, top_functions(profiler)


def measure(plan: str = "factory", lenses: list[str] | None = None, firmware: str = "golden",
            seed: int = 1, reports_dir: str | None = None, *, resolution: str = "ci", select: str | None = None,
            time_scale: float = 0.0, profile: str | None = None, analysis_workers: int | None = None,
            twin_faults: list[str] | None = None) -> dict[str, Any]:
    """Run ``plan`` against a twin in its own process; the takt figures, memory, frames and test outcomes. The
    twin is the phone ``station run`` would give the plan: for the factory plan, a line's unit (``twin_faults`` plus
    ``station.plans.units.PER_UNIT_FAULTS``, each unless named)."""
    from station.atomic import atomic_write_text
    from station.config import load_config, to_toml
    from station.devices import wire_time
    from station.plans.units import with_unit_faults
    from station.twin.control_client import TwinControl

    if resolution not in ("ci", "full"):
        raise ConfigError(f"--resolution {resolution!r}: expected ci or full")
    with tempfile.TemporaryDirectory(prefix="m-station-bench-plan-") as tmp:
        faults = with_unit_faults(plan, twin_faults or [])
        with TwinProcess(Path(tmp), resolution=resolution, seed=seed, firmware=firmware, time_scale=time_scale,
                         faults=faults) as twin:
            config = _with_dut_timeout(load_config(twin.station_file), DUT_TIMEOUT_S[resolution])
            station_file = Path(tmp) / "station.toml"
            atomic_write_text(station_file, to_toml(config))
            reports = Path(reports_dir) if reports_dir else Path(tmp) / "reports"
            argv = ["run", "--plan", plan, "--station", str(station_file), "--reports", str(reports),
                    "--no-report"]
            if analysis_workers is not None:
                argv += ["--analysis-workers", str(analysis_workers)]
            for lens in lenses or []:
                argv += ["--lens", lens]
            argv += ["--", "-q"] + (["-k", select] if select else [])
            before = wire_time.snapshot()
            code, wall_s, top = _run_plan(argv, profile)
            waited = wire_time.snapshot().since(before)
            assert config.twin is not None
            with TwinControl(config.twin.control) as control:
                truth = control.truth()
            hw = _hw_time(dict(truth.get("hw_time_s") or {}))
            frames = _frames_taken(config.dut)
            dut_timeout_s = config.dut.timeout_s
            tests, slowest = _tally(reports / "records")
            pids = {"station": os.getpid(), "twin": twin.pid}
        station_rss = own_peak_rss_bytes()
        twin_rss = twin.peak_rss_bytes
    result = _result(plan, resolution, select, wall_s, waited, hw, station_rss, twin_rss, frames, tests, slowest,
                     code, lenses, time_scale, top)
    result["pids"] = pids
    result["analysis_workers"] = config.analysis_workers if analysis_workers is None else analysis_workers
    result["dut_timeout_s"] = dut_timeout_s
    result["twin_faults"] = dict(truth.get("faults") or {})  # as the twin reports them
    return {"plan": result}


def _result(plan: str, resolution: str, select: str | None, wall_s: float, waited: Any, hw: dict[str, float],
            station_rss: int, twin_rss: int | None, frames: int | None, tests: dict[str, int],
            slowest: list[list[Any]], code: int, lenses: list[str] | None, time_scale: float,
            top: dict[str, Any] | None) -> dict[str, Any]:
    """The benchmark's JSON object."""
    wire = {device: round(s, 6) for device, s in waited.by_device_s.items()}
    wire["total"] = round(waited.busy_s, 6)
    critical_s = wall_s - waited.busy_s
    result: dict[str, Any] = {
        "name": plan, "resolution": resolution,
        "frame_size": "8192x6144" if resolution == "full" else "2048x1536",
        "select": select or "whole plan",
        "wall_s": round(wall_s, 3), "wire_wait_s": wire, "wire_reads": dict(waited.blocks),
        "critical_path_s": round(critical_s, 3), "hw_time_s": hw,
        "takt_ratio": round(critical_s / hw["total"], 3) if hw["total"] > 0 else None,
        "takt_ratio_goal": TAKT_RATIO_GOAL,
        "peak_rss_mb": {"station": round(station_rss / _MB, 1),
                        "twin": round(twin_rss / _MB, 1) if twin_rss is not None else None},
        "peak_rss_goal_mb": PEAK_RSS_GOAL_MB,
        "frames": frames, "tests": tests, "slowest_tests_s": slowest, "exit_code": code,
        "lenses": lenses or "configured", "time_scale": time_scale, "target_wall_s": TARGET_WALL_S,
        "profiled": top is not None,
    }
    if top is not None:
        result["profile_top"] = top
    return result


def run(args: argparse.Namespace) -> int:
    from station.pipeline import MAX_WORKERS
    from station.twin.faults import parse_fault_args
    from station.twin.firmware import FIRMWARE_BUILDS

    if not args.time_scale >= 0:
        raise ConfigError(f"--time-scale {args.time_scale}: must be a number >= 0")
    if args.select is not None and not _SELECT_RE.match(args.select):
        raise ConfigError(f"--select {args.select!r}: expected a pytest -k expression (names, and/or/not, "
                          "brackets; printable ASCII, at most 200 characters)")
    if args.analysis_workers is not None and not 0 <= args.analysis_workers <= MAX_WORKERS:
        raise ConfigError(f"--analysis-workers {args.analysis_workers}: expected 0..{MAX_WORKERS} threads "
                          "(0: serial)")
    if args.firmware not in FIRMWARE_BUILDS:
        raise ConfigError(f"--firmware {args.firmware!r}: the twin has no such build; allowed: "
                          f"{', '.join(FIRMWARE_BUILDS)}")
    parse_fault_args(args.twin_fault)  # ConfigError naming a fault the twin does not have, before it starts
    result = measure(args.plan, list(dict.fromkeys(args.lens)), args.firmware, args.seed, args.reports,
                     resolution=args.resolution, select=args.select, time_scale=args.time_scale,
                     profile=args.profile, analysis_workers=args.analysis_workers, twin_faults=args.twin_fault)
    plan = result["plan"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        hw, wire, rss = plan["hw_time_s"], plan["wire_wait_s"], plan["peak_rss_mb"]
        tally = ", ".join(f"{n} {k}" for k, n in plan["tests"].items()) or "no test ran"
        ratio = "n/a" if plan["takt_ratio"] is None else f"{plan['takt_ratio']:.2f}"
        print(f"{plan['name']} plan ({plan['select']}) on the twin at {plan['frame_size']}: {plan['wall_s']:.1f} s "
              f"wall, {wire['total']:.1f} s on wires, critical path {plan['critical_path_s']:.1f} s; hardware "
              f"{hw['total']:.1f} s (moves {hw['move']:.1f}, settling {hw['settle']:.1f}, exposures "
              f"{hw['exposure']:.1f}); takt ratio {ratio} (goal <= {TAKT_RATIO_GOAL}); peak RSS station "
              f"{rss['station']:.0f} MB, twin {rss['twin']} MB; {plan['frames']} frames; {tally}; "
              f"exit {plan['exit_code']}")
    return int(plan["exit_code"])  # station run's: 0 pass, 1 product failed, 2 usage, 3 station fault
