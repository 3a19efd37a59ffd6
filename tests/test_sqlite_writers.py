"""Concurrent writers on SQLite: write transactions take the lock up front instead of failing on upgrade.

A deferred transaction that reads and then writes cannot upgrade its lock while another writer holds it:
SQLite answers "database is locked" at once, whatever the busy timeout. The ingest benchmark hit this
with two HTTP clients (a device got 500 for events that were stored).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from linli.db import make_engine, make_session_factory, unit_of_work


def _read_then_write(factory, n: int, errors: list[str], *, write: bool) -> None:  # type: ignore[no-untyped-def]
    try:
        with unit_of_work(factory, write=write) as session:
            session.execute(text("SELECT count(*) FROM t")).scalar()
            time.sleep(0.05)  # another writer gets in between the read and the write
            session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
    except Exception as exc:  # collected and asserted on below
        errors.append(str(exc))


def _run(tmp_path: Path, *, write: bool) -> tuple[list[str], int]:
    engine = make_engine(f"sqlite:///{tmp_path / ('w.db' if write else 'r.db')}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    factory = make_session_factory(engine)
    errors: list[str] = []
    threads = [
        threading.Thread(target=_read_then_write, args=(factory, i, errors), kwargs={"write": write})
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM t").scalar() or 0
    engine.dispose()
    return errors, rows


def test_write_units_of_work_never_fail_to_lock(tmp_path: Path) -> None:
    errors, rows = _run(tmp_path, write=True)
    assert errors == [] and rows == 8


def test_the_failure_it_prevents_is_real(tmp_path: Path) -> None:
    errors, rows = _run(tmp_path, write=False)  # deferred: what every transaction did before
    assert errors and all("database is locked" in e for e in errors)
    assert rows == 8 - len(errors)


ROUNDS = 5


def _hold_in_turns(db: str, holding, release, released_at, go) -> None:  # type: ignore[no-untyped-def]
    """Another process: ROUNDS times, hold a write transaction until told to end it; stamp its end; wait
    for the test's own write before the next round."""
    engine = make_engine(f"sqlite:///{db}")
    factory = make_session_factory(engine)
    for n in range(ROUNDS):
        assert go.wait(30)
        go.clear()
        with unit_of_work(factory) as session:
            session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            holding.set()
            release.wait(30)
            release.clear()
        released_at.value = time.time()  # committed: the writer's turn is over
    engine.dispose()


def test_a_process_waiting_to_write_starts_as_soon_as_the_other_process_commits(tmp_path: Path) -> None:
    import multiprocessing as mp
    import random
    import statistics

    db = str(tmp_path / "p.db")
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    factory = make_session_factory(engine)
    ctx = mp.get_context("spawn")
    holding, release, released_at, go = ctx.Event(), ctx.Event(), ctx.Value("d", 0.0), ctx.Event()
    other = ctx.Process(target=_hold_in_turns, args=(db, holding, release, released_at, go), daemon=True)
    other.start()
    go.set()
    late: list[float] = []
    rng = random.Random(5)
    for n in range(ROUNDS):
        assert holding.wait(60)
        holding.clear()
        # The other process ends its transaction a while after this one has started waiting for its turn.
        threading.Timer(rng.uniform(0.4, 0.8), release.set).start()
        with unit_of_work(factory) as session:
            began = time.time()
            session.execute(text("INSERT INTO t VALUES (:n)"), {"n": 100 + n})
        time.sleep(0.01)  # let the other process stamp its commit
        late.append(began - released_at.value)
        go.set()
    other.join(30)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2 * ROUNDS
    engine.dispose()
    # SQLite's busy handler alone checks again after sleeps of up to 100 ms: about 50 ms late on average.
    assert all(x >= -0.005 for x in late), late  # never inside the other's transaction
    assert statistics.median(late) < 0.025, late


def test_a_write_turn_ends_only_once_sqlite_has_committed_or_rolled_back(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from linli import db

    ends: list[bool] = []  # whether SQLite still had the transaction open when the turn ended
    real_end = db._sqlite_end

    def end(connection) -> None:  # type: ignore[no-untyped-def]
        if connection.info.get("linli_holds_writer"):
            ends.append(connection.connection.dbapi_connection.in_transaction)
        real_end(connection)

    monkeypatch.setattr(db, "_sqlite_end", end)
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    try:
        with unit_of_work(factory) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM t").scalars().all() == [1]
    engine.dispose()
    assert ends == [False, False]  # committed, then rolled back, before the next writer may begin


def test_a_long_read_writes_its_last_row_in_a_write_of_its_own(tmp_path: Path) -> None:
    """An export reads for seconds, then records itself (an audit row). Meanwhile the devices wrote: a
    deferred read cannot upgrade to a write after another writer committed ("database is locked" at
    once), so the read ends and the row goes in a write transaction of its own (db.write_after_read)."""
    from linli.db import write_after_read

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    factory = make_session_factory(engine)

    def export(switch: bool) -> str:
        session = factory()
        try:
            session.execute(text("SELECT count(*) FROM t")).scalar()  # the long read begins
            with unit_of_work(factory) as other:  # a device's events are stored meanwhile
                other.execute(text("INSERT INTO t VALUES (1)"))
            if switch:
                write_after_read(session)
            session.execute(text("INSERT INTO t VALUES (2)"))  # the audit row
            session.commit()
            return "ok"
        except Exception as exc:  # the failure without the switch is the point
            session.rollback()
            return str(exc)
        finally:
            session.close()

    assert "database is locked" in export(switch=False)
    assert export(switch=True) == "ok"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t WHERE n = 2").scalar() == 1
    engine.dispose()
