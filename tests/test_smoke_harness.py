"""The harness itself: migrations build the schema the models describe; the fixed world exists."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select

from linli.areas.models import Area
from linli.models import metadata
from tests.builders import World


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_world_is_there(session, world: World) -> None:  # type: ignore[no-untyped-def]
    names = set(session.scalars(select(Area.name)))
    assert {"西咸新区", "天府和苑", "幸福里"} <= names


def test_healthz(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"
