"""``station msa``: Gage R&R (AIAG MSA 4th ed., crossed ANOVA) per measurement, and a type-1 study."""

from __future__ import annotations

import argparse

from station.cli.common import print_json
from station.db.options import add_database_options, load_database_runs


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("msa", help="Gage R&R across stations from repeat runs, and a type-1 gauge study",
                            description="Gage R&R (AIAG MSA 4th ed., crossed ANOVA) per measurement: parts are the "
                                        "DUTs, appraisers the stations, trials the repeat runs; %GRR against "
                                        "tolerance and total variation, ndc, verdict (<= 10 % acceptable, <= 30 % "
                                        "marginal). With --golden-unit, a type-1 study (Cg, Cgk) of that unit.")
    add_database_options(parser)
    parser.add_argument("--golden-unit", metavar="SN", help="serial of the golden unit for the type-1 study")
    parser.add_argument("--json", action="store_true", help="one JSON object (README: schema)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.errors import InputError
    from station.records import check_serial
    from station.stats.msa_data import msa

    if args.golden_unit:
        check_serial(args.golden_unit, "--golden-unit")
    runs = load_database_runs(args)
    result = msa(runs, args.golden_unit)
    if not result["measurements"]:
        raise InputError("no measurement has repeat runs of >= 2 DUTs at every station (station line simulate "
                         "--repeats 2 makes them)")
    if args.json:
        print_json(result)
        return 0
    print(f"station msa: {len(result['measurements'])} measurement(s)")
    for key, m in result["measurements"].items():
        tol = "n/a" if m["grr_pct_tolerance"] is None else f"{m['grr_pct_tolerance']:.1f} %"
        print(f"  {key:44s} %GRR tol {tol:>8s}  total {m['grr_pct_total']:5.1f} %  ndc {m['ndc']:3d}  "
              f"{m['verdict']}  ({m['parts']} parts x {m['appraisers']} stations x {m['trials']})")
    for key, by_station in result["type1"]["measurements"].items():
        text = ", ".join(f"{s} Cg {t['cg']:.2f} Cgk {t['cgk']:.2f}" for s, t in by_station.items())
        print(f"  type-1 {key}: {text}")
    return 0
