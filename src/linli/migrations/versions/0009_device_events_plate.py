"""device events: plate (a plate read's normalised plate) with a partial index, backfilled

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

VEHICLE_TYPES = "('vehicle.entered', 'vehicle.exited')"


def upgrade() -> None:
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plate", sa.String(length=16), nullable=True))
    # Stored reads: their plate as read, upper case, without spaces and separators (what normalising a
    # valid plate does, but for folding full-width characters; new reads are normalised by the hub).
    read = (
        "payload->>'plate'"
        if op.get_bind().dialect.name == "postgresql"
        else "json_extract(payload, '$.plate')"
    )
    cleaned = read
    for mark in (" ", "·", "•", "-", "."):
        cleaned = f"replace({cleaned}, '{mark}', '')"
    op.execute(
        f"UPDATE device_events SET plate = upper(substr({cleaned}, 1, 16)) "
        f"WHERE type IN {VEHICLE_TYPES} AND {read} IS NOT NULL"
    )
    op.create_index(
        "ix_device_events_plate_time",
        "device_events",
        ["plate", "occurred_at"],
        unique=False,
        sqlite_where=sa.text("plate IS NOT NULL"),
        postgresql_where=sa.text("plate IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_device_events_plate_time", table_name="device_events")
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.drop_column("plate")
