"""The records database on SQLite and on a real PostgreSQL: migrations, idempotent upload, the spool."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from station.cli import main
from station.db import spool, store
from station.records import load_record
from tests.unit.line_support import private_postgres, require_postgres, write_record  # noqa: F401

PG_ENV = "M_STATION_TEST_POSTGRES"


def _postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        require_postgres(f"no PostgreSQL server: set {PG_ENV} (.ci/postgres.sh start does)")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.sqlite'}"
        return
    base = _postgres_url()
    name = f"station_test_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    admin = store.open_engine(base)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - a server that is not there
        admin.dispose()
        require_postgres(f"PostgreSQL at {PG_ENV} not reachable ({exc.__class__.__name__})")
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upload_is_idempotent_and_queryable(database: str, tmp_path: Path) -> None:
    path = write_record(tmp_path / "records", "SN-0001", 0.25)
    record = load_record(path)
    engine = store.open_engine(database)
    assert store.migrate(engine) == "0001"
    assert store.migrate(engine) == "0001"  # at the head already
    assert store.upload(engine, record) == "inserted"
    assert store.upload(engine, record) == "unchanged"
    record["reason"] = "rewritten"
    assert store.upload(engine, record) == "replaced"
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT r.station, r.dut_serial, r.limits_version, m.name, m.value, m.low, "
                                       "m.verdict FROM runs r JOIN measurements m USING (run_id)")).all()
        digests = connection.execute(text("SELECT digest FROM profiles")).scalars().all()
    engine.dispose()
    assert rows == [("line-1", "SN-0001", "2.0", "mtf50_centre_cpp", 0.25, 0.2, "pass")]
    assert digests == ["sha256:ab"]


def test_spool_waits_for_a_database_that_is_down(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    path = write_record(reports / "records", "SN-0002", 0.3)
    down = "postgresql://station@127.0.0.1:1/none"  # nothing listens on port 1
    line = spool.upload_after_run(reports, path, url=down, timeout_s=20)
    assert line.startswith("database down") and [p.name for p in spool.pending(reports)] == [path.name]
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["db", "sync", "--reports", str(reports), "--database", url]) == 0
    assert spool.pending(reports) == []
    engine = store.open_engine(url)
    assert [r["run_id"] for r in store.load_runs(engine)] == [load_record(path)["run_id"]]
    engine.dispose()


def test_killing_postgres_mid_run_loses_nothing(private_postgres, tmp_path: Path) -> None:  # noqa: F811
    """A run ends while the server is dead: its record is spooled; after the restart ``db sync`` sends it."""
    reports = tmp_path / "reports"
    url = private_postgres.url
    first = write_record(reports / "records", "SN-0003", 0.3)
    assert spool.upload_after_run(reports, first, url=url).startswith("uploaded 1")
    private_postgres.kill()  # the server dies in the middle of the next run
    second = write_record(reports / "records", "SN-0004", 0.31)
    line = spool.upload_after_run(reports, second, url=url, timeout_s=20)
    assert "spooled" in line and [p.name for p in spool.pending(reports)] == [second.name]
    assert main(["db", "sync", "--reports", str(reports), "--database", url]) == 3  # still down: a station fault
    private_postgres.start()
    assert main(["db", "sync", "--reports", str(reports), "--database", url]) == 0
    engine = store.open_engine(url)
    ids = sorted(r["run_id"] for r in store.load_runs(engine))
    engine.dispose()
    assert ids == sorted(load_record(p)["run_id"] for p in (first, second))
    assert spool.pending(reports) == []


def test_db_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    spool.enqueue(reports, write_record(reports / "records", "SN-0005", 0.3))
    assert main(["db", "status", "--reports", str(reports), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["revision"] == "0001" and out["runs"] == 0 and len(out["pending"]) == 1
    assert out["database"].endswith("records.sqlite")


@pytest.mark.parametrize("argv, needle", [
    (["db", "status", "--database", "mysql://x/y"], "--database 'mysql://x/y': expected sqlite"),
    (["stats", "--golden", "/nonexistent/golden.txt"], "--golden /nonexistent/golden.txt: cannot read"),
    (["msa", "--golden-unit", "../etc"], "--golden-unit '../etc'"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needle: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--reports", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_a_spooled_file_that_is_not_a_record_is_put_aside(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    good = spool.enqueue(reports, write_record(reports / "records", "SN-0006", 0.3))
    (spool.spool_dir(reports) / "junk.json").write_text("{not json")
    result = spool.sync(reports, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert result.uploaded == {good.name: "inserted"} and result.rejected == ["junk.rejected"]
    assert result.left == 0 and not result.failed


def test_concurrent_uploads_in_one_process_do_not_race_the_migration(database: str, tmp_path: Path) -> None:
    """Two stations' uploads at once from one process (station line simulate --jobs): no KeyError from Alembic."""
    import threading

    records = [load_record(write_record(tmp_path / "records", f"SN-1{i:03d}", 0.3)) for i in range(6)]
    errors: list[str] = []

    def work(record: dict) -> None:
        try:
            engine = store.open_engine(database)
            store.migrate(engine)
            store.upload(engine, record)
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "uploads deadlocked"
    assert errors == []
    engine = store.open_engine(database)
    assert store.count_runs(engine) == 6
    engine.dispose()
