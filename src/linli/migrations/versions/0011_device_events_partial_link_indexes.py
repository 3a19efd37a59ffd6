"""device events: the person and vehicle indexes hold only linked rows (partial indexes)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = ("person_id", "vehicle_id")


def upgrade() -> None:
    for column in COLUMNS:
        name = f"ix_device_events_{column}"
        op.drop_index(name, table_name="device_events")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "device_events", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for column in COLUMNS:
        name = f"ix_device_events_{column}"
        op.drop_index(name, table_name="device_events")
        op.create_index(name, "device_events", [column])
