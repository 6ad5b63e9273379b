"""The records database: open it by URL, bring its schema to the head (Alembic), upload a record.

SQLite by default (a file beside ``reports/``: ``reports/records.sqlite``), PostgreSQL for a line
(``postgresql://user@host/db``, driven by psycopg 3). Uploading is idempotent on the run id: a
record already there with the same content is skipped, a newer version of it (the same run,
rewritten) replaces its rows in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, insert, select
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from station.db.schema import measurements, profiles, runs
from station.errors import ConfigError, DeviceError
from station.records import iso_utc, utc_now

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_URL_RE = re.compile(r"^(sqlite|postgresql)(\+[a-z0-9]+)?://", re.I)


def default_url(reports_dir: str | Path = "reports") -> str:
    """The station's own database: ``sqlite:///<reports>/records.sqlite``."""
    return f"sqlite:///{Path(reports_dir).resolve() / 'records.sqlite'}"


def normalize_url(url: str, where: str = "--database") -> str:
    """A database URL checked (sqlite or postgresql only); ``postgresql://`` runs on psycopg 3."""
    if not isinstance(url, str) or not _URL_RE.match(url):
        raise ConfigError(f"{where} {url!r}: expected sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB")
    if url.lower().startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def safe_url(url: str) -> str:
    """The URL with any password hidden (for messages)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_engine(url: str, *, connect_timeout_s: float = 5.0) -> Engine:
    """An engine on ``url`` (checked); PostgreSQL gets a connect timeout so a dead server is quick."""
    url = normalize_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": max(1, int(connect_timeout_s))}
        kwargs["pool_pre_ping"] = True
    else:
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"--database {safe_url(url)}: {exc}") from None
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


_MIGRATE_LOCK = threading.Lock()  # Alembic's command context is process-global: one migration at a time


def migrate(engine: Engine) -> str:
    """Bring the schema to Alembic's head (nothing to do when it is there); the revision it is at."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    try:
        with engine.connect() as connection:
            if MigrationContext.configure(connection).get_current_revision() == head:
                return str(head)
        with _MIGRATE_LOCK, engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        with engine.connect() as connection:
            return str(MigrationContext.configure(connection).get_current_revision())
    except SQLAlchemyError as exc:
        raise DeviceError("database", f"{safe_url(str(engine.url))}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys): what makes an upload idempotent."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_row(record: dict[str, Any], digest: str) -> dict[str, Any]:
    """The ``runs`` row of a record."""
    station = record.get("station") or {}
    limits = record.get("limits") or {}
    start = str(record.get("start") or "")
    return {"run_id": str(record["run_id"]), "station": str(station.get("name") or "unknown"),
            "dut_serial": str((record.get("dut") or {}).get("serial") or "unknown"),
            "firmware": record.get("firmware"), "plan": record.get("plan"),
            "limits_product": limits.get("product"), "limits_version": limits.get("version"),
            "outcome": record.get("outcome"), "exit_code": record.get("exit_code"),
            "reason": record.get("reason"), "start_utc": start, "end_utc": record.get("end"),
            "day": start[:10], "record_sha256": digest, "uploaded_utc": iso_utc(utc_now()),
            "record": json.dumps(record, sort_keys=True, allow_nan=False)}


def measurement_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    run_id = str(record["run_id"])
    return [{"run_id": run_id, "name": str(m.get("name")), "case": str(m.get("case") or ""),
             "key": str(m.get("key") or m.get("name")), "value": _float(m.get("value")),
             "unit": m.get("unit"), "low": _float(m.get("low")), "high": _float(m.get("high")),
             "verdict": m.get("verdict"), "test": m.get("test")}
            for m in record.get("measurements") or []]


def profile_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    run_id = str(record["run_id"])
    return [{"run_id": run_id, "path": str(p.get("path")), "case": p.get("case"), "sensor": p.get("sensor"),
             "lens": p.get("lens"), "digest": p.get("digest"), "test": p.get("test")}
            for p in record.get("profiles") or []]


def upload(engine: Engine, record: dict[str, Any]) -> str:
    """Put one record in the database: ``"inserted"``, ``"replaced"`` or ``"unchanged"`` (idempotent)."""
    digest = record_digest(record)
    run_id = str(record["run_id"])
    with engine.begin() as connection:
        present = connection.execute(select(runs.c.record_sha256).where(runs.c.run_id == run_id)).scalar()
        if present == digest:
            return "unchanged"
        if present is not None:
            for table in (measurements, profiles, runs):
                connection.execute(delete(table).where(table.c.run_id == run_id))
        connection.execute(insert(runs), [run_row(record, digest)])
        rows = measurement_rows(record)
        if rows:
            connection.execute(insert(measurements), rows)
        rows = profile_rows(record)
        if rows:
            connection.execute(insert(profiles), rows)
    return "inserted" if present is None else "replaced"


def load_records(engine: Engine) -> list[dict[str, Any]]:
    """Every run's record, as uploaded, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(runs.c.record).order_by(runs.c.start_utc, runs.c.run_id)).scalars()
        return [json.loads(text) for text in rows]


def load_runs(engine: Engine) -> list[dict[str, Any]]:
    """Every run as its ``runs`` row plus ``measurements`` (list of rows), read from the tables."""
    with engine.connect() as connection:
        found = {row["run_id"]: dict(row) | {"measurements": []} for row in connection.execute(
            select(*[c for c in runs.c if c.name != "record"]).order_by(runs.c.start_utc, runs.c.run_id)
        ).mappings()}
        for row in connection.execute(select(measurements).order_by(measurements.c.id)).mappings():
            if row["run_id"] in found:
                found[row["run_id"]]["measurements"].append(dict(row))
    return list(found.values())


def count_runs(engine: Engine) -> int:
    from sqlalchemy import func

    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(runs)).scalar() or 0)
