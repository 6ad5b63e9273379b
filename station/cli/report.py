"""``station report [RUN]``: the single-file HTML report of a run (Allure Report 3, no Java)."""

from __future__ import annotations

import argparse
from pathlib import Path

from station.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="build the single-file HTML report of a run (Allure Report 3)")
    parser.add_argument("run", nargs="?", metavar="RUN",
                        help="a run id, run folder, record file or allure-results folder (default: the latest run)")
    parser.add_argument("-o", "--output", metavar="FILE", help="the HTML file (default RUN_DIR/report.html)")
    parser.add_argument("--reports", metavar="DIR", default="reports", help="where runs are (default ./reports)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.cli.common import check_output_folder
    from station.records import find_run
    from station.report import build_report

    check_output_folder("-o", args.output)
    given = Path(args.run) if args.run else None
    if given is not None and given.is_dir() and any(given.glob("*-result.json")):
        results, run_id, run_dir = given, given.parent.name, given.parent  # an allure-results folder
    else:
        run_id, _, run_dir = find_run(args.reports, args.run)
        results = run_dir / "allure-results"
        if not results.is_dir():
            raise InputError(f"run {run_id}: no allure results at {results}")
    out = Path(args.output) if args.output else run_dir / "report.html"
    path = build_report(results, out, report_name=f"M-Station run {run_id}")
    print(path)
    return 0
