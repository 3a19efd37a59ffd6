"""WAL checkpoints run in the engine's own thread, not inside the commits of the writers.

A commit that crossed SQLite's default 1,000-page mark copied the log into the database file and synced
both before returning: device ingest spent 38 µs of commit per event on it. The checkpointer thread
moves that work off the writer's path; a far automatic checkpoint stays as the backstop.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from sqlalchemy import Engine

from linli import sqlite_wal
from linli.db import make_engine
from tests.waiting import wait_until


def _checkpointers(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"linli-wal-checkpoint:{name}" and t.is_alive()]


def test_the_thread_checkpoints_what_commits_leave_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == sqlite_wal.AUTOCHECKPOINT_PAGES
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER, pad TEXT)")
    assert len(_checkpointers("c.db")) == 1
    before = path.stat().st_size
    with engine.begin() as conn:  # ~2 MB: far below the backstop, so no commit checkpoints it
        conn.exec_driver_sql(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 2000) "
            "INSERT INTO t SELECT n, printf('%.1000c', 'x') FROM s"
        )
    # The rows reach the database file itself: only a checkpoint writes there.
    assert wait_until(lambda: path.stat().st_size > before + 1_500_000), (before, path.stat().st_size)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2000
    engine.dispose()


def _use(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def test_dispose_stops_the_thread_and_a_new_use_starts_it_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    _use(engine)
    assert len(_checkpointers("d.db")) == 1
    engine.dispose()
    assert wait_until(lambda: not _checkpointers("d.db"))
    _use(engine)
    assert len(_checkpointers("d.db")) == 1
    engine.dispose()


def test_a_dropped_engine_ends_its_thread(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    _use(engine)
    assert len(_checkpointers("g.db")) == 1
    del engine
    gc.collect()  # an engine sits in reference cycles (its pool, its events): freed by the collector
    assert wait_until(lambda: not _checkpointers("g.db"))


def test_an_in_memory_database_has_no_checkpointer() -> None:
    def running() -> int:
        return sum(t.name.startswith("linli-wal-checkpoint:") for t in threading.enumerate())

    before = running()
    _use(make_engine("sqlite://"))
    assert running() == before
