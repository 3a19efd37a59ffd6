"""The production database: the suite's second pass runs on PostgreSQL; this proves it really does."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine, text

from linli.core.auth.service import Principal
from linli.registry import search
from tests.builders import person
from tests.registry.helpers import house, resident

pytestmark = pytest.mark.integration

needs_pg = pytest.mark.skipif(
    not os.environ.get("LINLI_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="integration: set LINLI_TEST_DATABASE_URL=postgresql+psycopg://... "
    "(.ci/run does) to run on PostgreSQL",
)


@needs_pg
def test_suite_runs_on_postgresql(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('public.people')")).scalar() == "people"


@needs_pg
def test_prefix_search_and_scope_on_postgresql(session, world, as_user) -> None:
    system = Principal.system()
    resident(session, system, house(session, system, world.tianfu), person(name="张三丰"))
    resident(session, system, house(session, system, world.yuyu), person(name="张无忌"))
    as_user("shequ")
    assert [p.name for p in search.search(session, text="zs")] == ["张三丰"]
    as_user("admin")
    assert {p.name for p in search.search(session, text="张")} >= {"张三丰", "张无忌"}
