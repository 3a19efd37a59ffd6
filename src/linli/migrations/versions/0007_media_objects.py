"""media store: media_objects (content-addressed pictures and clips, scoped by area)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=71), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("area_code", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "area_code", name="uq_media_objects_key_area"),
    )
    with op.batch_alter_table("media_objects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_objects_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_objects_key"), ["key"], unique=False)
        batch_op.create_index("ix_media_objects_claimed_created", ["claimed_at", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_media_objects_claimed_created")
        batch_op.drop_index(batch_op.f("ix_media_objects_key"))
        batch_op.drop_index(batch_op.f("ix_media_objects_area_code"))
    op.drop_table("media_objects")
