"""``station db status|sync|migrate``: the records database and the spool waiting for it (DESIGN 8)."""

from __future__ import annotations

import argparse

from station.cli.common import print_json
from station.db.options import add_database_options, database_url


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="the records database: status, sync the spool, migrate",
                            description="status: what is pending in the spool and what the database holds; "
                                        "sync: upload the spooled records (exit 3 when the database is down); "
                                        "migrate: bring the schema to the newest revision.")
    parser.add_argument("action", choices=("status", "sync", "migrate"))
    add_database_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.db.spool import pending, sync
    from station.db.store import count_runs, migrate, open_engine, safe_url
    from station.errors import DeviceError

    url = database_url(args)
    if args.action == "sync":
        result = sync(args.reports, url)
        out = {"database": safe_url(url), **result.to_dict()}
        if args.json:
            print_json(out)
        else:
            print(f"station db sync: {len(result.uploaded)} uploaded, {result.left} left in the spool"
                  + (f" ({result.failed})" if result.failed else ""))
        if result.failed:
            raise DeviceError("database", f"down: {result.failed}; {result.left} record(s) stay spooled")
        return 0
    engine = open_engine(url)
    try:
        revision = migrate(engine)
        out = {"database": safe_url(url), "revision": revision, "runs": count_runs(engine),
               "pending": [p.name for p in pending(args.reports)]}
    finally:
        engine.dispose()
    if args.json:
        print_json(out)
    else:
        print(f"database {out['database']}: schema {revision}, {out['runs']} run(s)")
        print(f"spool {args.reports}/spool: {len(out['pending'])} record(s) pending"
              + "".join(f"\n  {name}" for name in out["pending"]))
    return 0
