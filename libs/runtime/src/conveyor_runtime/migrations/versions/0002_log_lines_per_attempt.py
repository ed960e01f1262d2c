"""Log lines are kept per attempt of a job: a re-run's lines, numbered from 1 again, no longer collide with the
first attempt's. Lines stored before are the first attempt's. The column comes last, as in the SQLite store.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("log_lines", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
    op.drop_constraint("log_lines_pkey", "log_lines", type_="primary")
    op.create_primary_key("log_lines_pkey", "log_lines", ["run_id", "job_id", "attempt", "line"])


def downgrade() -> None:
    op.execute("DELETE FROM log_lines WHERE attempt > 1")
    op.drop_constraint("log_lines_pkey", "log_lines", type_="primary")
    op.create_primary_key("log_lines_pkey", "log_lines", ["run_id", "job_id", "line"])
    op.drop_column("log_lines", "attempt")
