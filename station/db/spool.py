"""Store and forward: a run's record waits in ``reports/spool/`` until the database has it.

``enqueue`` copies the record into the spool (atomically); ``sync`` uploads every spooled record,
oldest first, and removes each once the database has it (idempotent on the run id, so a record
sent twice is harmless); a database that is down stops the sync and leaves the rest waiting.
``upload_after_run`` is what ``station run`` calls after writing its record: it never raises and
never holds the run longer than its timeout (the upload runs in a daemon thread).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.atomic import atomic_write_text
from station.errors import StationError
from station.records import load_record

SPOOL = "spool"


def spool_dir(reports_dir: str | Path) -> Path:
    return Path(reports_dir) / SPOOL


def enqueue(reports_dir: str | Path, record_path: str | Path) -> Path:
    """Copy the record into the spool (temp file + rename); the spooled path."""
    record = load_record(record_path)
    target = spool_dir(reports_dir) / Path(record_path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return target


def pending(reports_dir: str | Path) -> list[Path]:
    """Spooled records waiting for the database, oldest first (by name: serial-runid; by mtime)."""
    folder = spool_dir(reports_dir)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))


@dataclass
class SyncResult:
    uploaded: dict[str, str] = field(default_factory=dict)  # file name -> inserted/replaced/unchanged
    failed: str = ""  # why the sync stopped (the database's words), "" when it did not
    rejected: list[str] = field(default_factory=list)  # spooled files that are not records (kept aside)
    left: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"uploaded": self.uploaded, "failed": self.failed, "rejected": self.rejected, "left": self.left}


def sync(reports_dir: str | Path, url: str) -> SyncResult:
    """Upload every spooled record; stop at the first database failure (the rest stays spooled)."""
    from station.db.store import migrate, open_engine

    result = SyncResult()
    files = pending(reports_dir)
    if not files:
        return result
    engine = open_engine(url)
    try:
        migrate(engine)
        for path in files:
            try:
                record = load_record(path)
            except StationError:
                if not path.exists():  # another sync sent it meanwhile
                    continue
                bad = path.with_suffix(".rejected")
                path.replace(bad)
                result.rejected.append(bad.name)
                continue
            result.uploaded[path.name] = _upload(engine, record)
            path.unlink(missing_ok=True)
    except StationError as exc:
        result.failed = str(exc)
    finally:
        engine.dispose()
        result.left = len(pending(reports_dir))
    return result


def _upload(engine: Any, record: dict[str, Any]) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from station.db.store import _reason, safe_url, upload
    from station.errors import DeviceError

    try:
        return upload(engine, record)
    except SQLAlchemyError as exc:
        raise DeviceError("database", f"{safe_url(str(engine.url))}: {_reason(exc)}") from None


def database_url(config: Any = None, option: str | None = None, reports_dir: str | Path = "reports") -> str:
    """``--database`` first, then the station TOML's ``[records] database``, then the SQLite default."""
    from station.db.store import default_url, normalize_url

    if option:
        normalize_url(option)
        return option
    records = getattr(config, "records", None)
    url = records.get("database") if isinstance(records, dict) else getattr(records, "database", None)
    if url:
        normalize_url(str(url), where="[records] database")
        return str(url)
    return default_url(reports_dir)


def upload_after_run(reports_dir: str | Path, record_path: str | Path | None, config: Any = None,
                     url: str | None = None, timeout_s: float = 10.0) -> str:
    """Spool the run's record and try to send the spool up; one line saying what happened. Never raises."""
    try:
        if record_path is None:
            return "no record to upload"
        enqueue(reports_dir, record_path)
        target = database_url(config, url, reports_dir)
    except (StationError, OSError) as exc:
        return f"not spooled: {exc}"
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = sync(reports_dir, target)
        except Exception as exc:  # the run's outcome must not depend on the database
            box["error"] = f"{exc.__class__.__name__}: {exc}"

    thread = threading.Thread(target=work, name="records-upload", daemon=True)
    thread.start()
    thread.join(timeout_s)
    left = len(pending(reports_dir))
    if thread.is_alive():
        return f"database slow: {left} record(s) spooled (station db sync sends them)"
    if "error" in box:
        return f"database error: {box['error']}; {left} spooled"
    result: SyncResult = box["result"]
    if result.failed:
        return f"database down ({result.failed}); {left} record(s) spooled (station db sync sends them)"
    return f"uploaded {len(result.uploaded)} record(s); {left} spooled"

