"""Ingest processes: HTTP ingest requests authenticated, checked and stored beside the server's process.

One Python process runs one thread at a time, and SQLite's C code, run beside a busy Python thread, waits
for that thread at every row. With `LINLI_INGEST_PROCESSES=N` the server hands each signed request to one
of N processes (`receive.handle`: authenticate, read, check, store, commit) and keeps everything else: the
HTTP connections, the bus and its subscribers (rules, SSE streams), the MQTT ingest and the jobs. Once a
process has committed, the server answers the device and hands the outbox rows it wrote to its
`outbox.Deliverer`, which publishes them from memory: the bus stays in one process, and the outbox
catch-up delivers whatever a process committed but the server could not publish (a crash in between).

The processes share the database with the server: SQLite through its file (their write transactions take
turns on the writers' queue, `db._WriterQueue`), PostgreSQL through its own connections.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from linli.core.errors import LinliError, Relayed
from linli.devices import signing
from linli.devices.receive import Handled, handle
from linli.settings import Settings

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # seconds for the processes to import and open the database at start-up

# In an ingest process: its session factory, set by _start.
_factory: sessionmaker[Session] | None = None


class IngestPool:
    """N ingest processes (spawned, not forked: the server runs threads), started with the server."""

    def __init__(self, settings: Settings) -> None:
        if settings.ingest_processes < 1:
            raise ValueError("an ingest pool needs LINLI_INGEST_PROCESSES >= 1")
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError(
                "LINLI_INGEST_PROCESSES needs a database other processes can open: "
                f"{settings.database_url!r} is an in-memory SQLite database"
            )
        self.processes = settings.ingest_processes
        self._settings = settings
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(self._settings,),
        )

    def start(self) -> None:
        """Start the processes and wait until each has opened the database (the first request would
        otherwise wait for their imports)."""
        self._executor.submit(_ready).result(timeout=START_TIMEOUT)

    async def handle(self, signed: signing.Signed, *, content_type: str) -> Handled:
        """One ingest request in an ingest process (receive.handle); its business error, if any, comes
        back as Relayed. A process that died (killed, out of memory) is replaced for the next request;
        this one fails, and the device sends it again (dedup makes that safe)."""
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, _handle, signed, content_type)
        except BrokenProcessPool:
            self._replace(executor)
            raise

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                log.error("an ingest process died: starting %d new ones", self.processes)
                self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the processes once the requests they hold are answered."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _start(settings: Settings) -> None:
    """In a new ingest process: configure what the server configures, open the database."""
    global _factory
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    from linli import gc_tuning
    from linli.app import configure_process
    from linli.db import make_engine, make_session_factory

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_process(settings)
    _factory = make_session_factory(make_engine(settings.database_url))
    gc_tuning.settle()


def _ready() -> bool:
    return _factory is not None


def _handle(signed: signing.Signed, content_type: str) -> Handled:
    """receive.handle in an ingest process; business errors travel as Relayed."""
    assert _factory is not None, "ingest process not started"
    try:
        handled = handle(_factory, signed, content_type=content_type, hold=True)  # the server's Deliverer's
    except LinliError as exc:
        return Handled(None, Relayed.of(exc), None)
    if handled.error is not None:
        return Handled(None, Relayed.of(handled.error), None)
    return handled
