"""The records database's schema (SQLAlchemy 2 Core): runs, their measurements, their profiles.

A person can query it with plain SQL: one row per run (station, DUT, firmware, plan, limits version,
outcome, start and end), one per measurement (name, case, value, unit, limits, verdict), one per
lens profile written (path, case, digest). The JSON record itself is kept too (``runs.record``), so
nothing of a run is lost when a field is added to the record format. Alembic owns the schema's
versions (``station/db/migrations``); this module is the current head, for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("station", String(128), nullable=False),
    Column("dut_serial", String(64), nullable=False),
    Column("firmware", String(64)),
    Column("plan", String(64)),
    Column("limits_product", String(64)),
    Column("limits_version", String(32)),
    Column("outcome", String(32)),
    Column("exit_code", Integer),
    Column("reason", Text),
    Column("start_utc", String(32), nullable=False),  # ISO 8601 UTC, as in the record (sorts as text)
    Column("end_utc", String(32)),
    Column("day", String(10), nullable=False),  # UTC date of the start, for yields per day
    Column("record_sha256", String(64), nullable=False),
    Column("uploaded_utc", String(32), nullable=False),
    Column("record", Text, nullable=False),
)
Index("ix_runs_station_start", runs.c.station, runs.c.start_utc)
Index("ix_runs_dut", runs.c.dut_serial, runs.c.start_utc)

measurements = Table(
    "measurements", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("case", String(128), nullable=False),
    Column("key", String(256), nullable=False),
    Column("value", Float),
    Column("unit", String(32)),
    Column("low", Float),
    Column("high", Float),
    Column("verdict", String(32)),
    Column("test", Text),
)
Index("ix_measurements_key", measurements.c.key)
Index("ix_measurements_run", measurements.c.run_id)

profiles = Table(
    "profiles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("case", String(128)),
    Column("sensor", String(32)),
    Column("lens", String(64)),
    Column("digest", String(128)),
    Column("test", Text),
)
Index("ix_profiles_run", profiles.c.run_id)
