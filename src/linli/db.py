"""Engine, sessions, the declarative Base and area scoping applied to every ORM query."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows has no flock: between processes SQLite's own waiting remains
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import JSON, DateTime, Engine, String, Table, create_engine, event, insert, or_
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.sql.elements import ColumnElement

from linli import sqlite_wal
from linli.core import jsonio
from linli.core.timeutil import utcnow


class _SqliteUtcDateTime(sqlite.DATETIME):
    """SQLite's DATETIME, which writes a time's wall-clock digits and drops its zone: an aware time in
    another zone is turned into UTC first, the zone every stored time is in, so that a filter such as a
    local day's start (Asia/Shanghai) or an API caller's +08:00 compares as the instant it is, as on
    PostgreSQL. Naive times are taken as UTC already, as before."""

    def bind_processor(self, dialect: Any) -> Any:
        process = super().bind_processor(dialect)
        assert process is not None  # SQLite's DATETIME always formats

        def bind(value: Any) -> Any:
            offset = getattr(value, "utcoffset", None)
            if offset is not None and offset():  # aware and not UTC (a naive time's offset is None)
                value = value.astimezone(UTC)
            return process(value)

        return bind


UTC_DATETIME = DateTime(timezone=True).with_variant(_SqliteUtcDateTime(timezone=True), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UTC_DATETIME}


def prefix_range(prefix: str) -> tuple[str, str]:
    """The half-open string range [lo, hi) holding every text that starts with prefix."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """An index-friendly `column LIKE prefix%` as a range (works the same on SQLite and PostgreSQL)."""
    lo, hi = prefix_range(prefix)
    return (column >= lo) & (column < hi)


class AreaScoped:
    """Mixin: the row belongs to an area; every ORM query is limited to the caller's area subtrees."""

    area_code: Mapped[str] = mapped_column(String(32), index=True)

    @classmethod
    def scope_criteria(cls, scope: Scope) -> ColumnElement[bool]:
        """Which rows of this class the scope sees (a class may widen it, e.g. people by residence)."""
        return scope.clause(cls.area_code)


class Timestamped:
    """Mixin: creation and update times in UTC."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class Scope:
    """The area subtrees a caller may see: codes are prefixes of hierarchical area codes."""

    codes: tuple[str, ...]
    unrestricted: bool = False

    @classmethod
    def everything(cls) -> Scope:
        """A scope that sees every area (system jobs, the district administration)."""
        return cls(codes=(), unrestricted=True)

    def allows(self, area_code: str | None) -> bool:
        """True if a row in area_code is inside this scope."""
        if self.unrestricted:
            return True
        return area_code is not None and any(area_code.startswith(c) for c in self.codes)

    def clause(self, column: Any) -> ColumnElement[bool]:
        """SQL condition limiting column (an area code) to this scope."""
        if not self.codes:
            return column.is_(None) & column.is_not(None)  # sees nothing
        return or_(*(starts_with(column, c) for c in self.codes))


SCOPE_KEY = "linli.scope"


def set_scope(session: Session, scope: Scope | None) -> None:
    """Bind the caller's scope to a session; None means unscoped (system use only)."""
    session.info[SCOPE_KEY] = scope


def get_scope(session: Session) -> Scope | None:
    """The scope bound to a session, if any."""
    return session.info.get(SCOPE_KEY)


@event.listens_for(Session, "do_orm_execute")
def _apply_area_scope(state: ORMExecuteState) -> None:
    scope = get_scope(state.session)
    if scope is None or scope.unrestricted or state.execution_options.get("skip_scope", False):
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    # Plain criteria per scoped class (not one lambda on the mixin): SQLAlchemy caches a lambda by
    # its code, so a closure over the caller's codes would leak one caller's scope into another's query.
    state.statement = state.statement.options(
        *(
            with_loader_criteria(cls, cls.scope_criteria(scope), include_aliases=True)
            for cls in _scoped_classes()
        )
    )


def _scoped_classes() -> list[type[AreaScoped]]:
    """Every mapped class with an area_code (computed once the mappers are configured)."""
    return [m.class_ for m in Base.registry.mappers if issubclass(m.class_, AreaScoped)]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT (a rolled-back savepoint can take the
    # enclosing transaction with it); hand transactions to SQLAlchemy, which emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    sqlite_wal.configure_connection(dbapi_connection)


WRITE_OPTION = "linli_write"


WRITER_WAIT_S = 10.0  # as long as busy_timeout: then SQLite's own waiting takes over
_HOLDS_WRITER = "linli_holds_writer"


def _sqlite_begin(connection: Any) -> None:
    # A deferred transaction that reads first and writes later cannot upgrade its lock while another
    # writer holds it (SQLite answers "database is locked" at once, busy_timeout does not help); write
    # transactions therefore take the write lock up front and wait their turn. Reads stay deferred, so
    # pages never queue behind an import.
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    if not immediate:
        connection.exec_driver_sql("BEGIN")
        return
    # The writers queue, each woken the moment the writer before it ends (see _WriterQueue); SQLite's busy
    # handler would poll in sleeps of up to 100 ms and leave the database idle in between.
    held = _writer_lock(connection.engine).acquire(timeout=WRITER_WAIT_S)
    connection.info[_HOLDS_WRITER] = held
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _sqlite_end(connection)
        raise


def _sqlite_end(connection: Any) -> None:
    if connection.info.pop(_HOLDS_WRITER, False):
        _writer_lock(connection.engine).release()


def _sqlite_commit(connection: Any) -> None:
    _end_after(connection, "commit")


def _sqlite_rollback(connection: Any) -> None:
    _end_after(connection, "rollback")


def _end_after(connection: Any, action: str) -> None:
    # SQLAlchemy calls its "commit" and "rollback" listeners before it commits or rolls back. A write
    # transaction therefore does it here, and only then ends its turn: the next writer's BEGIN IMMEDIATE
    # finds SQLite's lock free instead of waiting in the busy handler's sleeps (1, 2, 5 ms ...). The
    # dialect's own commit or rollback that follows finds no transaction open and does nothing.
    try:
        if connection.info.get(_HOLDS_WRITER):
            getattr(connection.connection.dbapi_connection, action)()
    finally:
        _sqlite_end(connection)


class _WriterQueue:
    """The turns of the write transactions on one SQLite file: the threads of this process on a lock, the
    processes (the app, `linli ingest mqtt` workers, `linli workers`) on an advisory lock of a file beside
    the database, `<database>-writer` (flock; the kernel drops it with its process). A process polls for
    it every 0.2-2 ms: with SQLite's busy handler alone, two ingest workers on one file waited up to
    100 ms for each other's turns (bench/README.md). Past the timeout, or without a lock file (an
    in-memory database, a folder it cannot be created in, no fcntl), SQLite's own waiting takes over."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database}-writer" if database and fcntl is not None else None
        self._fd: int | None = None
        self._pid = 0  # the process that opened _fd: a forked child opens its own (flock is per open file)
        self._file_held = False

    def acquire(self, timeout: float) -> bool:
        """Wait for the turn; True when this thread holds it (release it then), False after timeout."""
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            return False
        fd = self._file()
        if fd is None or fcntl is None:
            return True
        pause = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._file_held = True
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return True  # the process's turn only: BEGIN IMMEDIATE waits with busy_timeout
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    def release(self) -> None:
        """End this thread's turn."""
        if self._file_held and self._fd is not None and fcntl is not None:
            self._file_held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def _file(self) -> int | None:
        if self._path is not None and (self._fd is None or self._pid != os.getpid()):
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._pid = os.getpid()
            except OSError:
                self._path = self._fd = None
        return self._fd


_writer_locks: dict[str, _WriterQueue] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> _WriterQueue:
    """The queue the write transactions on one SQLite database file take their turns in."""
    database = engine.url.database
    file_backed = bool(database) and database != ":memory:" and "mode=memory" not in str(engine.url)
    key = database if file_backed and database else f"memory:{id(engine.pool)}"
    with _writer_locks_guard:
        if key not in _writer_locks:
            _writer_locks[key] = _WriterQueue(database if file_backed else None)
        return _writer_locks[key]


def writing(session: Session) -> Session:
    """Mark the next transaction as a write (SQLite: BEGIN IMMEDIATE); call before its first query."""
    session.connection(execution_options={WRITE_OPTION: True})
    return session


def write_after_read(session: Session) -> Session:
    """End the session's read transaction and begin a write, for a long read that ends with a write (an
    export's audit row). SQLite cannot upgrade a deferred read to a write once another writer committed
    after it began ("database is locked" at once, whatever the busy timeout); a transaction that writes
    already (or holds pending changes) is left as it is."""
    connection = session.connection()
    if (
        connection.get_execution_options().get(WRITE_OPTION)
        or session.new
        or session.dirty
        or session.deleted
    ):
        return session
    session.commit()  # a read: nothing to write, only its snapshot to let go
    return writing(session)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for url; SQLite gets WAL, foreign keys and its folder created; JSON columns use orjson."""
    kwargs.setdefault("json_serializer", jsonio.dumps_text)
    kwargs.setdefault("json_deserializer", jsonio.loads)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        file_backed = bool(parsed.database) and parsed.database != ":memory:"
        if file_backed:
            Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "commit", _sqlite_commit)
        event.listen(engine, "rollback", _sqlite_rollback)
        if file_backed:
            event.listen(engine, "engine_connect", sqlite_wal.ensure)
            event.listen(engine, "engine_disposed", sqlite_wal.stop)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to engine (no autoflush surprises, objects usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def bulk_insert(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    constants: dict[str, Any] | None = None,
    *,
    or_ignore: bool = False,
) -> None:
    """Insert many rows that all have the same keys, in the caller's transaction.

    The rows go through each column's own bind processor (so encrypted columns are encrypted, dates and
    JSON stored as SQLAlchemy stores them) and straight to the driver: SQLite's executemany, PostgreSQL's
    COPY. Core's per-row bookkeeping costs more than the insert itself. Python-side column defaults are
    not applied: rows must carry every value they need; constants holds values shared by every row
    (timestamps of a batch), converted once. A constraint violation raises IntegrityError as an INSERT
    would (PostgreSQL: the transaction, or the savepoint, is then aborted). or_ignore (SQLite only):
    INSERT OR IGNORE, rows that break a unique or not-null constraint are skipped; the caller checks.
    """
    if not rows:
        return
    constants = constants or {}
    connection = session.connection()
    dialect = connection.dialect
    if or_ignore and dialect.name != "sqlite":
        raise ValueError("or_ignore is for SQLite only")
    if dialect.name not in ("sqlite", "postgresql"):
        session.execute(insert(table).values(**constants) if constants else insert(table), rows)
        return
    keys = list(rows[0])
    processors = [_processor(table, key, dialect) for key in keys]
    converted = [(i, process) for i, process in enumerate(processors) if process is not None]
    pick = itemgetter(*keys)
    fixed = _constants(table, constants, dialect)
    values: list[tuple[Any, ...]] = []
    for row in rows:
        value = list(pick(row)) if len(keys) > 1 else [row[keys[0]]]
        for i, process in converted:
            value[i] = process(value[i])
        values.append((*value, *fixed))
    _insert(connection, table, [*keys, *constants], values, or_ignore=or_ignore)


def insert_rows(
    session: Session,
    table: Table,
    keys: Sequence[str],
    rows: list[tuple[Any, ...]],
    constants: dict[str, Any] | None = None,
    *,
    or_ignore: bool = False,
) -> int:
    """bulk_insert for rows built already as the driver takes them: tuples in the order of keys, each value
    as the column's bind processor would make it (SQLite: dates as text; JSON as its text on both
    databases). For a hot writer that encodes each row in one pass; constants are converted here, once.

    Returns how many rows went in as the driver counts them (or_ignore: the rows not skipped), -1 if the
    driver does not say."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql") or (or_ignore and dialect.name != "sqlite"):
        raise ValueError(
            f"insert_rows is for SQLite and PostgreSQL (or_ignore: SQLite only), not {dialect.name}"
        )
    fixed = _constants(table, constants or {}, dialect)
    values = [(*row, *fixed) for row in rows] if fixed else rows
    return _insert(connection, table, [*keys, *(constants or {})], values, or_ignore=or_ignore)


def _constants(table: Table, constants: dict[str, Any], dialect: Any) -> list[Any]:
    """The values shared by every row of a batch, each through its column's bind processor, once."""
    fixed = []
    for key, value in constants.items():
        process = _processor(table, key, dialect)
        fixed.append(process(value) if process else value)
    return fixed


def _insert(
    connection: Any, table: Table, keys: list[str], values: list[tuple[Any, ...]], *, or_ignore: bool
) -> int:
    """INSERT (SQLite's executemany) or COPY (PostgreSQL) of driver-ready rows; how many went in (-1: the
    driver does not say). sqlite3 sums an executemany's changes, which leave out the rows it ignored."""
    names = ", ".join(f'"{table.c[key].name}"' for key in keys)
    if connection.dialect.name == "postgresql":
        _copy(connection, f'COPY "{table.name}" ({names}) FROM STDIN', values)
        return len(values)  # COPY takes every row or fails
    marks = ", ".join("?" for _ in keys)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    result = connection.exec_driver_sql(f'{verb} INTO "{table.name}" ({names}) VALUES ({marks})', values)
    return int(result.rowcount)


def _processor(table: Table, key: str, dialect: Any) -> Any:
    """How a value of column key goes to the driver: the type's bind processor; for COPY into PostgreSQL
    JSON as its text (COPY parses it), cheaper than the driver's JSON wrapper objects, and a time with
    its zone as ISO text (copy_time)."""
    column_type = table.c[key].type.dialect_impl(dialect)
    if dialect.name == "postgresql" and isinstance(column_type, JSON):
        return jsonio.dumps_text
    if dialect.name == "postgresql" and isinstance(column_type, DateTime):
        return copy_time
    return column_type.bind_processor(dialect)


def copy_time(value: Any) -> Any:
    """A datetime with its zone as ISO 8601 text for COPY into PostgreSQL: psycopg writes a datetime object
    field by field in Python (1.1 ms of CPU per 500 rows, against nothing for text); the offset makes the
    text as exact. A naive datetime is left to psycopg, which sends it as such."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return value


def _copy(connection: Any, sql: str, values: list[tuple[Any, ...]]) -> None:
    """COPY rows in through psycopg, errors translated as SQLAlchemy translates an INSERT's."""
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for value in values:
                copy.write_row(value)
    except driver.DatabaseError as exc:
        raise _translated(connection, exc, sql) from exc


def _translated(connection: Any, exc: Exception, sql: str) -> Exception:
    """The SQLAlchemy exception (IntegrityError, OperationalError …) for a driver error."""
    from sqlalchemy.exc import DBAPIError

    return DBAPIError.instance(sql, None, exc, connection.dialect.loaded_dbapi.Error)


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """count new primary keys of table (an integer id column) for rows the caller inserts right away.

    PostgreSQL draws them from the column's sequence. SQLite hands out max(id) + 1 ..., which is what it
    would assign itself: only valid in a write transaction (BEGIN IMMEDIATE, see writing()) and until the
    rows are inserted; another allocation for the same table before that would get the same ids.
    """
    if count <= 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The sequence is looked up once (MATERIALIZED): in the select list pg_get_serial_sequence ran for
        # every id drawn, four times the cost of the nextval calls themselves.
        result = connection.exec_driver_sql(
            "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(%(t)s, 'id')::regclass AS seq) "
            "SELECT nextval(s.seq) FROM s, generate_series(1, %(n)s)",
            {"t": table.name, "n": count},
        )
        return [int(v) for v in result.scalars().all()]  # one fetch: iterating a result fetches row by row
    top = connection.exec_driver_sql(f'SELECT max(id) FROM "{table.name}"').scalar()
    start = int(top or 0) + 1
    return list(range(start, start + count))


def analyze(engine: Engine) -> None:
    """Refresh the query planner's statistics (after seeding or a large import)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


@contextmanager
def unit_of_work(
    factory: sessionmaker[Session], scope: Scope | None = None, *, write: bool = True
) -> Iterator[Session]:
    """A transaction owned by the caller: commit on success, roll back on error (write=False: reads only)."""
    session = factory()
    set_scope(session, scope)
    if write:
        writing(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
