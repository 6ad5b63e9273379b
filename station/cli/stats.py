"""``station stats``: yields, capability, control charts and golden units of a line (DESIGN 8)."""

from __future__ import annotations

import argparse
from pathlib import Path

from station.cli.common import print_json
from station.db.options import add_database_options, golden_serials, load_database_runs


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stats", help="yield, Cpk, control charts and golden units from the records database",
                            description="Production statistics from the records database: first-pass and final "
                                        "yield per station, day, firmware and plan; per measurement n, mean, sigma, "
                                        "Cp/Cpk, Pp/Ppk, an individuals chart (Western Electric rules) and a drift "
                                        "alarm; the golden units per station and the stations' offsets.")
    add_database_options(parser)
    parser.add_argument("--golden", metavar="FILE", help="golden unit serials (one a line, or a JSON list)")
    parser.add_argument("--json", action="store_true", help="one JSON object (README: schema)")
    parser.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page with plots")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.errors import InputError
    from station.stats.report import statistics

    serials = golden_serials(args)
    runs = load_database_runs(args)
    if not runs:
        raise InputError("the records database has no runs yet (station run uploads them; station db status)")
    result = statistics(runs, serials)
    if args.html:
        from station.atomic import atomic_write_text
        from station.stats.html import render_html

        atomic_write_text(Path(args.html), render_html(result, runs))
    if args.json:
        print_json(result)
        return 0
    print(f"station stats: {result['runs']} run(s), {result['judged_runs']} judged")
    for key, groups in result["yields"].items():
        for group, y in groups.items():
            print(f"  yield {key:8s} {group:24s} first-pass {100 * y['first_pass']:5.1f} %  "
                  f"final {100 * y['final']:5.1f} %  ({y['duts']} DUTs)")
    for key, m in result["measurements"].items():
        cpk = "n/a" if m["cpk"] is None else f"{m['cpk']:.2f}"
        flag = " DRIFT" if m["drift"] else ""
        low = " CPK<1.33" if m["cpk"] is not None and m["cpk"] < 1.33 else ""
        print(f"  {key:44s} n={m['n']:4d} mean={m['mean']:.4g} {m['unit'] or ''} Cpk={cpk}{low}{flag}")
    for key, offsets in result["golden"]["correlation"].items():
        text = ", ".join(f"{s} {o['offset_pct']:+.2f} %" for s, o in offsets.items())
        print(f"  golden offsets {key}: {text}")
    if args.html:
        print(f"  html: {args.html}")
    return 0
