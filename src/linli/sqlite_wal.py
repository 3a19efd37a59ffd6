"""SQLite's WAL checkpoints in a thread of their own, off the path of the transactions that commit.

With SQLite's default, the commit that takes the write-ahead log past 1,000 pages copies the log into the
database file and syncs both, inside that commit: a batch of device events then waits for two fsyncs
(measured: 38 µs of commit per event, 10 µs with checkpoints in a background thread). Each file-backed
engine therefore gets one checkpointer thread, which runs a PASSIVE checkpoint (it never blocks readers
or writers) whenever the log has grown since the last one. The committing connections keep a far
automatic checkpoint (AUTOCHECKPOINT_PAGES) as a backstop: if the thread falls behind or is gone, the log
is still bounded. A checkpoint that fails is logged and tried again on the next tick.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

# Measured with bench/ingest.py (HTTP → SQLite, 2026-12-04, four runs each, alternating): every 0.6 s the
# ratio to the bare insert was 0.288-0.326, every 0.2 s 0.250-0.276, every 0.05 s 0.236-0.255. Each
# process with the file open runs a checkpointer: with the server's alone (none in the ingest processes),
# 0.249-0.262.
INTERVAL_S = 0.6
AUTOCHECKPOINT_PAGES = 16_000  # ~64 MB of log with 4 KB pages: reached only if the thread falls behind

_STOPS: dict[int, threading.Event] = {}  # id(engine) -> its checkpointer's stop signal
_STARTING = threading.Lock()


def configure_connection(dbapi_connection: Any) -> None:
    """Leave routine checkpoints to the engine's thread; keep a far automatic one as a backstop."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")


def ensure(connection: Connection) -> None:
    """Start the checkpointer of the connection's engine if it has none (first use, or used again after
    Engine.dispose(), which stops it)."""
    engine = connection.engine
    if id(engine) not in _STOPS and engine.url.database:
        with _STARTING:
            if id(engine) not in _STOPS:
                start(engine, engine.url.database)


def start(engine: Engine, database: str) -> threading.Thread:
    """Start the checkpointer of engine's database file; it ends when the engine is disposed or dropped."""
    key = id(engine)
    stop_event = threading.Event()

    def dropped(_ref: object) -> None:
        stop_event.set()
        _STOPS.pop(key, None)

    engine_ref = weakref.ref(engine, dropped)
    thread = threading.Thread(
        target=_run,
        args=(engine_ref, Path(database), stop_event),
        name=f"linli-wal-checkpoint:{Path(database).name}",
        daemon=True,
    )
    _STOPS[key] = stop_event
    thread.start()
    return thread


def stop(engine: Engine) -> None:
    """Stop engine's checkpointer (after a last checkpoint); no-op if it has none."""
    event = _STOPS.pop(id(engine), None)
    if event is not None:
        event.set()


def _run(engine_ref: weakref.ref[Engine], database: Path, stop_event: threading.Event) -> None:
    wal = database.with_name(database.name + "-wal")
    connection: sqlite3.Connection | None = None
    last: tuple[int, int] | None = None
    try:
        while True:
            stopping = stop_event.wait(INTERVAL_S) or engine_ref() is None
            try:
                stat = wal.stat()
            except FileNotFoundError:
                if stopping:
                    return
                continue
            state = (stat.st_size, stat.st_mtime_ns)
            if state != last:
                connection = connection or _connect(database)
                last = state if _checkpoint(connection, database) else None
            if stopping:
                return
    finally:
        if connection is not None:
            connection.close()


def _connect(database: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=1000")
    return connection


def _checkpoint(connection: sqlite3.Connection, database: Path) -> bool:
    """One PASSIVE checkpoint; True when it ran (whether or not readers kept some frames back)."""
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error as exc:  # e.g. busy, or the file is gone: try again on the next tick
        log.warning("WAL checkpoint of %s failed: %s", database, exc)
        return False
    return True
