"""``station line simulate|truth``: twin stations with their own errors, phones that vary, into a database.

``simulate`` runs every phone (twin seeds) ``--repeats`` times on each of ``--stations`` twin stations:
per run a twin started with ``line_station=N``, ``line_unit`` and ``line_repeat=K`` (station.twin.line),
named ``line-N`` in its station TOML, and ``station run --station`` on it (the CLI entry point, a short
plan subset), then the record spooled and uploaded to ``--database``. ``truth`` prints the injected
station errors and unit variation.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from station.cli.common import print_json
from station.errors import ConfigError

#: The plan subset: the station self-check and the main sensor's shading and SFR.
SUBSET = ("test_01_selfcheck or (test_02_flat and test_shading) "
          "or (test_04_charts and test_sfr and not stopped_down and not wide_open)")
FIRST_SEED = 1001
#: Under each station's reports: the spool of records waiting for the line's database
#: (``station db sync --reports DIR/line-N/to-line-database --database URL`` sends them).
LINE_SPOOL = "to-line-database"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("line", help="simulate a line of twin stations and phones into a database",
                            description="simulate: N twin stations x phones x repeats, each a station run, "
                                        "uploaded to the records database; truth: the injected errors.")
    parser.add_argument("action", choices=("simulate", "truth"))
    parser.add_argument("--stations", type=int, default=3, help="twin stations (default 3)")
    parser.add_argument("--phones", type=int, default=5, help="phones, twin seeds from --first-seed (default 5)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each phone on each station (default 2)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED, help=f"seed of phone 1 (default {FIRST_SEED})")
    parser.add_argument("--database", metavar="URL", help="records database (default REPORTS/records.sqlite)")
    parser.add_argument("--reports", metavar="DIR", default="reports/line",
                        help="where each station keeps its reports (DIR/line-N; default reports/line)")
    parser.add_argument("--subset", default=SUBSET, help="pytest -k expression of the plan subset")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name, low, high in (("stations", 1, 20), ("phones", 1, 1000), ("repeats", 1, 10), ("jobs", 1, 16)):
        value = getattr(args, name)
        if not low <= value <= high:
            raise ConfigError(f"--{name} {value}: expected {low}..{high}")
    if not 0 <= args.first_seed < 2**31:
        raise ConfigError(f"--first-seed {args.first_seed}: expected 0..2^31-1")
    if args.database:
        from station.db.store import normalize_url

        normalize_url(args.database)


def seeds(args: argparse.Namespace) -> list[int]:
    return [args.first_seed + i for i in range(args.phones)]


def run_one(station: int, seed: int, repeat: int, args: argparse.Namespace) -> dict[str, Any]:
    """One station run of phone ``seed`` on twin station ``station``; its record uploaded."""
    from station.config import TwinConfig, to_toml
    from station.db.spool import upload_after_run
    from station.devices.grbl_mount import GrblMount
    from station.twin.runner import Twin

    name = f"line-{station}"
    reports = Path(args.reports) / name
    reports.mkdir(parents=True, exist_ok=True)
    faults = {"line_station": station, "line_unit": True, "line_repeat": repeat}
    twin = Twin(TwinConfig(seed=seed, time_scale=0.02, faults=faults))
    config = twin.start()
    try:
        with GrblMount(config.mount) as mount:  # the operator homes the bench and closes the light's relay
            mount.home()
            mount.set_aux_output(True)
        text = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', to_toml(config), count=1)
        toml = reports / f"station-{seed}-{repeat}.toml"
        toml.write_text(text, encoding="utf-8")
        before = set((reports / "records").glob("*.json"))
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "station", "run", "--plan", "factory", "--station", str(toml),
                               "--no-report", "--reports", str(reports), "--", "-q", "-p", "no:randomly",
                               "-k", args.subset], capture_output=True, text=True, timeout=900)
        elapsed = time.monotonic() - started
        toml.unlink(missing_ok=True)
    finally:
        twin.stop()
    new = sorted(set((reports / "records").glob("*.json")) - before)
    record = new[-1] if new else None
    # the line's database has its own spool (the station's own goes to the station's database)
    upload = upload_after_run(reports / LINE_SPOOL, record, url=args.database)
    return {"station": name, "seed": seed, "repeat": repeat, "exit": proc.returncode, "elapsed_s": elapsed,
            "record": str(record) if record else None, "upload": upload}


def run(args: argparse.Namespace) -> int:
    from station.twin.line import line_truth

    _check(args)
    if args.action == "truth":
        print_json(line_truth(args.stations, seeds(args)))
        return 0
    from station.db.store import migrate, open_engine

    if not args.database:
        args.database = f"sqlite:///{Path(args.reports).resolve() / 'records.sqlite'}"
    engine = open_engine(args.database)  # the schema first, once: concurrent uploads must not race to create it
    try:
        migrate(engine)
    finally:
        engine.dispose()
    # phone by phone: a line stopped part way still holds whole phones (every station, every repeat)
    jobs = [(s, seed, r) for seed in seeds(args) for r in range(1, args.repeats + 1)
            for s in range(1, args.stations + 1)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: run_one(*job, args), jobs))
    elapsed = time.monotonic() - started
    summary = {"runs": len(results), "elapsed_s": elapsed,
               "exit_codes": {str(c): sum(1 for r in results if r["exit"] == c)
                              for c in sorted({r["exit"] for r in results})},
               "missing_records": sum(1 for r in results if r["record"] is None), "results": results}
    if args.json:
        print_json(summary)
    else:
        print(f"station line simulate: {len(results)} runs in {elapsed:.0f} s; exit codes {summary['exit_codes']}")
        print(f"  last upload: {results[-1]['upload']}")
    return 3 if summary["missing_records"] else 0
