"""runs, measurements and profiles: the first schema of the records database.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("station", sa.String(128), nullable=False),
        sa.Column("dut_serial", sa.String(64), nullable=False),
        sa.Column("firmware", sa.String(64)),
        sa.Column("plan", sa.String(64)),
        sa.Column("limits_product", sa.String(64)),
        sa.Column("limits_version", sa.String(32)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("start_utc", sa.String(32), nullable=False),
        sa.Column("end_utc", sa.String(32)),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("record_sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_utc", sa.String(32), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("ix_runs_station_start", "runs", ["station", "start_utc"])
    op.create_index("ix_runs_dut", "runs", ["dut_serial", "start_utc"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("case", sa.String(128), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(32)),
        sa.Column("low", sa.Float),
        sa.Column("high", sa.Float),
        sa.Column("verdict", sa.String(32)),
        sa.Column("test", sa.Text),
    )
    op.create_index("ix_measurements_key", "measurements", ["key"])
    op.create_index("ix_measurements_run", "measurements", ["run_id"])
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("case", sa.String(128)),
        sa.Column("sensor", sa.String(32)),
        sa.Column("lens", sa.String(64)),
        sa.Column("digest", sa.String(128)),
        sa.Column("test", sa.Text),
    )
    op.create_index("ix_profiles_run", "profiles", ["run_id"])


def downgrade() -> None:
    op.drop_table("profiles")
    op.drop_table("measurements")
    op.drop_table("runs")
