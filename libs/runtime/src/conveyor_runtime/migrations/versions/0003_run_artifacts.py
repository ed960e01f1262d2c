"""A run's artifacts, as its jobs' actions uploaded them (`ArtifactUploaded`), listed with the run. The column
comes last, as in the SQLite store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("artifacts", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("runs", "artifacts")
