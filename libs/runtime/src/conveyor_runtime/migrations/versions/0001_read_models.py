"""The read models: runs, jobs, steps, log lines, repositories, runners, leases, and the projector's position.

The columns are those of the embedded SQLite store, in the same order, so that both stores' rows compare
equal; times are ISO 8601 text as the events give them, JSON values are text.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, *, nullable: bool = True, default: str | None = None) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=nullable, server_default=default)


def _integer(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        _text("run_id", nullable=False),
        _text("repository", nullable=False),
        _text("ref", nullable=False),
        _text("sha", nullable=False),
        _text("event_name", nullable=False),
        _text("actor", nullable=False),
        _text("status", nullable=False),
        _text("conclusion"),
        _text("workflows", nullable=False, default="[]"),
        _text("problems", nullable=False, default="[]"),
        _text("created_at", nullable=False),
        _text("updated_at", nullable=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("runs_by_created_at", "runs", [sa.text("created_at DESC"), "run_id"])
    op.create_table(
        "jobs",
        _text("run_id", nullable=False),
        _text("job_id", nullable=False),
        _text("workflow", nullable=False),
        _text("job_key", nullable=False),
        _text("name", nullable=False),
        _text("needs", nullable=False),
        _text("status", nullable=False),
        _text("conclusion"),
        _integer("attempt"),
        _text("runner_id"),
        _text("outputs", nullable=False, default="{}"),
        _text("error"),
        _text("reason"),
        _text("queued_at"),
        _text("started_at"),
        _text("completed_at"),
        _integer("ordinal"),
        _text("labels"),
        sa.PrimaryKeyConstraint("run_id", "job_id"),
    )
    op.create_index("jobs_waiting", "jobs", ["status", "queued_at"], postgresql_where=sa.text("status <> 'completed'"))
    op.create_table(
        "steps",
        _text("run_id", nullable=False),
        _text("job_id", nullable=False),
        _integer("step_index"),
        _text("step_id"),
        _text("name", nullable=False),
        _text("status", nullable=False),
        _text("outcome"),
        _text("conclusion"),
        _text("outputs", nullable=False, default="{}"),
        _text("annotations", nullable=False, default="[]"),
        _text("summary", nullable=False, default=""),
        _text("started_at"),
        _text("completed_at"),
        sa.PrimaryKeyConstraint("run_id", "job_id", "step_index"),
    )
    op.create_table(
        "log_lines",
        _text("run_id", nullable=False),
        _text("job_id", nullable=False),
        _integer("line"),
        _integer("step_index"),
        _text("at", nullable=False),
        _text("text", nullable=False),
        sa.PrimaryKeyConstraint("run_id", "job_id", "line"),
    )
    op.create_table(
        "repositories",
        _text("name", nullable=False),
        _text("url", nullable=False),
        _text("default_branch", nullable=False),
        _text("github"),
        _text("webhook_secret"),
        _text("token"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "projector_position",
        _text("name", nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "runners",
        _text("runner_id", nullable=False),
        _text("name", nullable=False),
        _text("labels", nullable=False),
        _text("registered_at", nullable=False),
        _text("last_seen", nullable=False),
        sa.PrimaryKeyConstraint("runner_id"),
    )
    op.create_table(
        "leases",
        _text("lease_id", nullable=False),
        _text("runner_id", nullable=False),
        _text("run_id", nullable=False),
        _text("job_id", nullable=False),
        _integer("attempt"),
        _text("assigned_at", nullable=False),
        _text("renewed_at", nullable=False),
        sa.PrimaryKeyConstraint("lease_id"),
    )
    op.create_index("leases_by_job", "leases", ["run_id", "job_id", "attempt"])


def downgrade() -> None:
    for table in ("leases", "runners", "projector_position", "repositories", "log_lines", "steps", "jobs", "runs"):
        op.drop_table(table)
