"""Writing generated rows: Core bulk inserts anywhere, and a faster path for SQLite.

The SQLite path turns each row into a list of driver values with the columns' own bind processors (so
ID numbers and phones are encrypted by EncryptedText exactly as on any insert, dates and JSON formatted
as SQLAlchemy stores them) and hands whole chunks to the driver's executemany. That preparation is plain
Python without a connection, so a worker process can do it while the main process writes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from linli.demo.data import Community
from linli.demo.generator import LINKS, Batch, Ids
from linli.registry.models import Building, House, Organisation, Person, PersonTag, Residence, Vehicle

CHUNK = 5_000
# The batch attribute of each table, parents before children (foreign keys are checked as rows arrive).
TABLES: tuple[tuple[str, Table], ...] = (
    ("buildings", Building.__table__),
    ("houses", House.__table__),
    ("people", Person.__table__),
    ("residences", Residence.__table__),
    ("tags", PersonTag.__table__),
    ("organisations", Organisation.__table__),
    ("vehicles", Vehicle.__table__),
)
_STAMPS = ("created_at", "updated_at")


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], now: datetime | None) -> None:
    """Core bulk insert of dict rows in chunks; now fills created_at/updated_at when the table has them."""
    if not rows:
        return
    stmt = insert(table)
    if now is not None and "created_at" in table.c:
        stmt = stmt.values(created_at=now, updated_at=now)
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i : i + CHUNK])


def insert_batch(session: Session, batch: Batch, now: datetime) -> None:
    """Every table of a batch through Core inserts (any database)."""
    for name, table in TABLES:
        insert_rows(session, table, getattr(batch, name), now)


def fast_path(session: Session) -> bool:
    """True if the session writes to SQLite through the standard driver (the prepared-rows path)."""
    dialect = session.get_bind().dialect
    return dialect.name == "sqlite" and dialect.driver == "pysqlite"


@lru_cache(maxsize=1)
def _dialect() -> Dialect:
    return sqlite.dialect()


@dataclass
class Prepared:
    """A batch as driver-ready SQLite rows (lists, so ids can be renumbered in place)."""

    community: Community
    start: Ids
    counts: dict[str, int]
    rows: dict[str, list[list[Any]]]

    def end(self) -> Ids:
        """The ids that follow this batch."""
        return Ids(**{
            f.name: getattr(self.start, f.name) + self.counts[_TABLE_OF_ID[f.name]] for f in fields(Ids)
        })

    def shift(self, start: Ids) -> None:
        """Renumber rows and links so the batch begins at start."""
        delta = {f.name: getattr(start, f.name) - getattr(self.start, f.name) for f in fields(Ids)}
        for name, table in TABLES:
            positions = [(_position(table, column), delta[kind]) for column, kind in LINKS[name].items()]
            positions = [(p, d) for p, d in positions if d]
            for row in self.rows[name]:
                for p, d in positions:
                    if row[p] is not None:
                        row[p] += d
        self.start = replace(start)


_TABLE_OF_ID = {"building": "buildings", "house": "houses", "person": "people", "residence": "residences",
                "tag": "tags", "organisation": "organisations", "vehicle": "vehicles"}


def _position(table: Table, column: str) -> int:
    return [c.key for c in table.columns].index(column)


def prepare(batch: Batch, now: datetime) -> Prepared:
    """Turn a batch into SQLite driver rows (runs anywhere: needs no connection)."""
    dialect = _dialect()
    rows: dict[str, list[list[Any]]] = {}
    for name, table in TABLES:
        keys: list[str] = []
        processors: list[Any] = []
        for column in table.columns:
            keys.append(column.key)
            processors.append(column.type.dialect_impl(dialect).bind_processor(dialect))
        stamp = {k: p(now) if p else now for k, p in zip(keys, processors, strict=True) if k in _STAMPS}
        plan = [(k, None if k in stamp else p) for k, p in zip(keys, processors, strict=True)]
        out = []
        for row in getattr(batch, name):
            out.append([stamp[k] if k in stamp else p(row[k]) if p else row[k] for k, p in plan])
        rows[name] = out
    counts = {name: len(rows[name]) for name, _ in TABLES}
    return Prepared(community=batch.community, start=replace(batch.start), counts=counts, rows=rows)


@lru_cache(maxsize=16)
def _sql(table: Table) -> str:
    quote = _dialect().identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in table.columns)
    marks = ", ".join("?" for _ in table.columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"


def insert_prepared(session: Session, prepared: Prepared) -> None:
    """Write a prepared batch with the driver's executemany, chunk by chunk, in the session's transaction."""
    connection = session.connection()
    for name, table in TABLES:
        rows = prepared.rows[name]
        for i in range(0, len(rows), CHUNK):
            connection.exec_driver_sql(_sql(table), rows[i : i + CHUNK])
