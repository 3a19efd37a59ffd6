"""device events: drop content_hash (never read; a device without ids sends it as the event id)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:10:00.000000
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE on both databases (SQLite >= 3.35 drops an unindexed column in place): a batch
    # operation would copy the whole event store into a new table.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        with op.batch_alter_table("device_events", schema=None) as batch_op:
            batch_op.drop_column("content_hash")
        return
    op.execute("ALTER TABLE device_events DROP COLUMN content_hash")


def downgrade() -> None:
    op.add_column(
        "device_events",
        sa.Column("content_hash", sa.String(length=64), nullable=False, server_default=""),
    )
