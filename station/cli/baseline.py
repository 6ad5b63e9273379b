"""``station baseline save RUN -o FILE``: a regression baseline from a passing run's record."""

from __future__ import annotations

import argparse

from station.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("baseline", help="regression baselines: save one from a passing run")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    save = actions.add_parser("save", help="write the measured values of a passing run as a baseline JSON")
    save.add_argument("run", metavar="RUN", help="a run id, run folder or record file (reports/records/...json)")
    save.add_argument("-o", "--output", metavar="FILE", required=True, help="the baseline JSON to write")
    save.add_argument("--reports", metavar="DIR", default="reports", help="where runs are (default ./reports)")
    parser.set_defaults(func=lambda args: _usage(parser))
    save.set_defaults(func=run_save)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_save(args: argparse.Namespace) -> int:
    from station.baseline import load_baseline, save_baseline
    from station.cli.common import check_output_folder
    from station.records import find_run

    check_output_folder("-o", args.output)
    run_id, record_path, _ = find_run(args.reports, args.run)
    if record_path is None:
        raise InputError(f"run {run_id}: no record in {args.reports}/records")
    out = save_baseline(record_path, args.output)
    count = len(load_baseline(out).values)
    print(f"{out}: baseline of run {run_id}, {count} values")
    return 0
