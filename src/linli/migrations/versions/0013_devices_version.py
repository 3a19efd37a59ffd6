"""devices_version: a token the database sets anew whenever the register of devices changes

The ingest keeps the devices it loaded between batches while the token stays the same
(devices.register.live_by_serials). Triggers set it on every insert and delete of a device and on every
update of a column other than last_seen_at, online, online_changed_at and updated_at (the hub moves those
with every batch or change of link; nothing it keeps reads them).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Every column of devices but the four the hub moves itself (see the docstring).
WATCHED = (
    "id",
    "serial",
    "name",
    "kind",
    "vendor",
    "model",
    "protocol",
    "community_code",
    "area_code",
    "building_id",
    "floor",
    "lat",
    "lon",
    "location",
    "installed_on",
    "state",
    "secret",
    "created_at",
)

_SQLITE_TOKEN = "lower(hex(randomblob(16)))"
_POSTGRES_TOKEN = "md5(random()::text || clock_timestamp()::text)"


def upgrade() -> None:
    op.create_table(
        "devices_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(length=32), nullable=False),
    )
    bind = op.get_bind()
    columns = ", ".join(WATCHED)
    if bind.dialect.name == "sqlite":
        op.execute(f"INSERT INTO devices_version (id, token) VALUES (1, {_SQLITE_TOKEN})")
        bump = f"UPDATE devices_version SET token = {_SQLITE_TOKEN} WHERE id = 1;"
        op.execute(f"CREATE TRIGGER devices_version_insert AFTER INSERT ON devices BEGIN {bump} END")
        op.execute(f"CREATE TRIGGER devices_version_delete AFTER DELETE ON devices BEGIN {bump} END")
        op.execute(
            f"CREATE TRIGGER devices_version_update AFTER UPDATE OF {columns} ON devices BEGIN {bump} END"
        )
        return
    op.execute(f"INSERT INTO devices_version (id, token) VALUES (1, {_POSTGRES_TOKEN})")
    op.execute(
        "CREATE FUNCTION devices_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE devices_version SET token = {_POSTGRES_TOKEN} WHERE id = 1; RETURN NULL; END $$"
    )
    # Once per statement: a sheet import of a thousand devices sets the token once.
    op.execute(
        "CREATE TRIGGER devices_version_change AFTER INSERT OR DELETE OR TRUNCATE ON devices "
        "FOR EACH STATEMENT EXECUTE FUNCTION devices_version_bump()"
    )
    op.execute(
        f"CREATE TRIGGER devices_version_update AFTER UPDATE OF {columns} ON devices "
        "FOR EACH STATEMENT EXECUTE FUNCTION devices_version_bump()"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS devices_version_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS devices_version_change ON devices")
        op.execute("DROP TRIGGER IF EXISTS devices_version_update ON devices")
        op.execute("DROP FUNCTION IF EXISTS devices_version_bump()")
    op.drop_table("devices_version")
