"""The production database: the suite's second pass runs on PostgreSQL; this proves it really does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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
    from linli.devices.store import EXISTING_KEYS_PG, existing_keys_params

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
            keys = existing_keys_params([(n % 150, f"uid-{n}") for n in range(1, 501)])
            probe = EXISTING_KEYS_PG.replace("device_events", "ev_probe")
            assert len(conn.exec_driver_sql(probe, keys).all()) == 500
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + probe, keys))
        finally:
            trans.rollback()
    assert "Nested Loop" in plan and "Index Scan" in plan, plan
    assert "Seq Scan" not in plan and "Hash" not in plan, plan


@contextmanager
def _committed_devices(engine: Engine, community: str, prefix: str, n: int) -> Iterator[list[int]]:
    """n cameras committed for tests that need several connections to see them; deleted after."""
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from linli.devices.models import Device
    from tests.devices.helpers import device

    with Session(engine) as setup:
        made = [device(setup, community, serial=f"{prefix}-{i}")[0] for i in range(n)]
        setup.commit()
        ids = sorted(d.id for d in made)
    try:
        yield ids
    finally:
        with engine.begin() as conn:
            conn.execute(delete(Device).where(Device.id.in_(ids)))


@needs_pg
def test_a_batch_locks_its_devices_last_seen_rows_in_device_order(engine: Engine, world) -> None:  # type: ignore[no-untyped-def]
    """Two ingest workers moving last_seen of the same devices must not deadlock: the one statement that
    moves a batch's devices takes their row locks in id order. Proof: while another transaction holds the
    highest id, the statement waits for it already holding the lowest."""
    import threading
    import time
    from datetime import UTC, datetime

    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from linli.devices import health
    from linli.devices.models import Device

    seen = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    failed: list[BaseException] = []

    def move(ids: list[int]) -> None:
        try:
            with Session(engine) as worker:
                health._move_last_seen(worker, [(i, seen) for i in ids])
                worker.commit()
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    waiting_sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %(q)s"
    lowest = "SELECT id FROM devices WHERE id = %(id)s FOR UPDATE NOWAIT"
    with (
        _committed_devices(engine, world.tianfu, "DS-2CD-LOCK", 5) as ids,
        engine.connect() as other,
        engine.connect() as watch,
    ):
        other.begin()
        other.exec_driver_sql("SELECT id FROM devices WHERE id = %(id)s FOR UPDATE", {"id": ids[-1]})
        mover = threading.Thread(target=move, args=(ids,))
        mover.start()
        deadline = time.monotonic() + 10
        while True:  # each look in its own transaction: pg_stat_activity is read once per transaction
            waiting = watch.exec_driver_sql(waiting_sql, {"q": "%locked AS%"}).scalar()
            watch.rollback()
            if waiting == 1:
                break
            assert time.monotonic() < deadline, "the last_seen statement never waited for the lock"
            time.sleep(0.02)
        with pytest.raises(OperationalError, match="could not obtain lock"), other.begin_nested():
            other.exec_driver_sql(lowest, {"id": ids[0]})
        other.rollback()
        mover.join(10)
        assert not failed, failed
        with Session(engine) as check:
            moved = check.scalars(select(Device.last_seen_at).where(Device.id.in_(ids))).all()
        assert moved == [seen] * len(ids)


@needs_pg
def test_moving_last_seen_does_not_wait_for_another_batchs_event_inserts(engine: Engine, world) -> None:  # type: ignore[no-untyped-def]
    """A batch's event rows reference their devices: their foreign-key checks hold FOR KEY SHARE locks on
    the devices' rows until the batch commits. Moving last_seen must not wait for those (a plain UPDATE's
    FOR NO KEY UPDATE does not; FOR UPDATE did, and two MQTT workers deadlocked on it in the benchmark)."""
    import threading
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from linli.devices import health

    seen = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    done = threading.Event()

    def move(ids: list[int]) -> None:
        with Session(engine) as worker:
            health._move_last_seen(worker, [(i, seen) for i in ids])
            worker.commit()
        done.set()

    with (
        _committed_devices(engine, world.tianfu, "DS-2CD-KEYSHARE", 2) as ids,
        engine.connect() as other,
    ):
        other.begin()
        other.exec_driver_sql("SELECT id FROM devices WHERE id = ANY(%(ids)s) FOR KEY SHARE", {"ids": ids})
        mover = threading.Thread(target=move, args=(ids,), daemon=True)
        mover.start()
        moved_meanwhile = done.wait(10)
        other.rollback()
        mover.join(10)
    assert moved_meanwhile, "moving last_seen waited for another transaction's FOR KEY SHARE locks"
