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
