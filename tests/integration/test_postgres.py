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


@needs_pg
def test_stored_event_keys_are_probed_on_the_unique_index_whatever_the_statistics(engine: Engine) -> None:
    """The hub's dedup look-up must not hash the whole store: it did, 12-20 ms a batch at 50,000 events.

    A copy of device_events is analysed while empty and then filled (statistics that say "tiny"), and
    the look-up's plan is read: a nested loop of probes on the unique index, no scan of the table.
    """
    from linli.devices.store import EXISTING_KEYS_PG

    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.exec_driver_sql("CREATE TEMP TABLE ev_probe (LIKE device_events INCLUDING ALL)")
            conn.exec_driver_sql("ANALYZE ev_probe")
            conn.exec_driver_sql(
                "INSERT INTO ev_probe (id, event_uid, device_id, device_serial, community_code, area_code,"
                " type, occurred_at, received_at, source, payload, media)"
                " SELECT n, 'uid-' || n, mod(n, 150), 'S', 'c', 'c', 'device.heartbeat', now(), now(),"
                " 'linli', '{}', '[]' FROM generate_series(1, 50000) AS n"
            )
            keys = {"d": [n % 150 for n in range(1, 501)], "u": [f"uid-{n}" for n in range(1, 501)]}
            probe = EXISTING_KEYS_PG.replace("device_events", "ev_probe")
            assert len(conn.exec_driver_sql(probe, keys).all()) == 500
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + probe, keys))
        finally:
            trans.rollback()
    assert "Nested Loop" in plan and "Index Scan" in plan, plan
    assert "Seq Scan" not in plan and "Hash" not in plan, plan
