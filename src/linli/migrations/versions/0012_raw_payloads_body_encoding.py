"""raw payloads: large bodies kept compressed (body_encoding "zlib"; "" for a body kept as it came)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:50:00.000000
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: both databases add the column in place, without rewriting the table.
    op.add_column(
        "raw_payloads",
        sa.Column("body_encoding", sa.String(length=8), nullable=False, server_default=""),
    )


def downgrade() -> None:
    # Compressed bodies are expanded first: the older code reads body as the bytes received.
    bind = op.get_bind()
    raws = sa.table(
        "raw_payloads",
        sa.column("id", sa.Integer),
        sa.column("body", sa.LargeBinary),
        sa.column("body_encoding", sa.String),
    )
    rows = bind.execute(sa.select(raws.c.id, raws.c.body).where(raws.c.body_encoding == "zlib")).all()
    for raw_id, body in rows:
        bind.execute(sa.update(raws).where(raws.c.id == raw_id).values(body=zlib.decompress(body)))
    with op.batch_alter_table("raw_payloads") as batch_op:
        batch_op.drop_column("body_encoding")
