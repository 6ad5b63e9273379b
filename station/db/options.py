"""Options shared by ``station db``, ``stats``, ``msa`` and ``line``: the database and the golden units."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from station.errors import ConfigError, InputError
from station.records import check_serial


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help="records database (sqlite:///PATH or postgresql://...; default: the station "
                             "TOML's [records] database, else REPORTS/records.sqlite)")
    parser.add_argument("--station", metavar="FILE", help="station TOML (its [records] table)")
    parser.add_argument("--reports", metavar="DIR", default="reports", help="the station's reports (default ./reports)")


def station_config(args: argparse.Namespace) -> Any:
    if not getattr(args, "station", None):
        return None
    from station.config import load_config

    return load_config(args.station)


def database_url(args: argparse.Namespace) -> str:
    from station.db.spool import database_url as resolve

    return resolve(station_config(args), args.database, args.reports)


def golden_serials(args: argparse.Namespace) -> list[str]:
    """``--golden FILE`` (serials one a line, ``#`` comments, or a JSON list), else ``[records] golden_units``."""
    if getattr(args, "golden", None):
        path = Path(args.golden)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--golden {path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise InputError(f"--golden {path}: not a JSON list of serials") from None
        else:
            items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        serials = [str(s) for s in items if str(s).strip()]
        where = f"--golden {path}"
    else:
        records = getattr(station_config(args), "records", None)
        found = records.get("golden_units") if isinstance(records, dict) else getattr(records, "golden_units", None)
        serials, where = [str(s) for s in (found or [])], "[records] golden_units"
    for serial in serials:
        check_serial(serial, where)
    if len(set(serials)) != len(serials):
        raise ConfigError(f"{where}: a serial is listed twice")
    return serials


def open_database(args: argparse.Namespace) -> Any:
    """The engine on the database (schema migrated to the head)."""
    from station.db.store import migrate, open_engine

    engine = open_engine(database_url(args))
    migrate(engine)
    return engine


def load_database_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every run of the records database the options name (``station.db.store.load_runs`` rows)."""
    from station.db.store import load_runs

    engine = open_database(args)
    try:
        return load_runs(engine)
    finally:
        engine.dispose()
