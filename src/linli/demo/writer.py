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
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from linli.demo.data import Community
from linli.demo.generator import LINKS, Batch, Ids
from linli.registry.models import Building, House, Organisation, Person, PersonTag, Residence, Vehicle

CHUNK = 5_000
# The batch attribute of each table, parents before children (foreign keys are checked as rows arrive).
TABLES: tuple[tuple[str, Table], ...] = tuple(
    (name, cast(Table, model.__table__))
    for name, model in (
        ("buildings", Building),
        ("houses", House),
        ("people", Person),
        ("residences", Residence),
        ("tags", PersonTag),
        ("organisations", Organisation),
        ("vehicles", Vehicle),
    )
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
    """A batch as SQLite driver rows: per table the column names and the rows (lists, renumbered in place)."""

    community: Community
    start: Ids
    columns: dict[str, tuple[str, ...]]
    rows: dict[str, list[list[Any]]]

    @property
    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(rows) for name, rows in self.rows.items()}

    def end(self) -> Ids:
        """The ids that follow this batch."""
        counts = self.counts
        return Ids(
            **{f.name: getattr(self.start, f.name) + counts[_TABLE_OF_ID[f.name]] for f in fields(Ids)}
        )

    def shift(self, start: Ids) -> None:
        """Renumber rows and links so the batch begins at start."""
        delta = {f.name: getattr(start, f.name) - getattr(self.start, f.name) for f in fields(Ids)}
        for name, links in LINKS.items():
            for column, kind in links.items():
                if not delta[kind] or not self.rows[name]:
                    continue
                i, d = self.columns[name].index(column), delta[kind]
                for row in self.rows[name]:
                    if row[i] is not None:
                        row[i] += d
        self.start = replace(start)


_TABLE_OF_ID = {
    "building": "buildings",
    "house": "houses",
    "person": "people",
    "residence": "residences",
    "tag": "tags",
    "organisation": "organisations",
    "vehicle": "vehicles",
}


def _processor(table: Table, key: str) -> Any:
    dialect = _dialect()
    return table.c[key].type.dialect_impl(dialect).bind_processor(dialect)


def _fixed_values(table: Table, keys: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """Driver values of the columns rows leave out: the timestamps, and scalar Python-side defaults."""
    fixed: dict[str, Any] = {}
    for column in table.columns:
        if column.key in keys:
            continue
        if column.key in _STAMPS:
            value: Any = now
        elif column.default is not None and getattr(column.default, "is_scalar", False):
            value = getattr(column.default, "arg", None)
        else:
            continue  # the database default (or NULL) applies
        process = _processor(table, column.key)
        fixed[column.key] = process(value) if process else value
    return fixed


def prepare(batch: Batch, now: datetime) -> Prepared:
    """Turn a batch into SQLite driver rows with the columns' bind processors (needs no connection)."""
    columns: dict[str, tuple[str, ...]] = {}
    rows: dict[str, list[list[Any]]] = {}
    for name, table in TABLES:
        source = getattr(batch, name)
        keys = tuple(source[0]) if source else ()
        fixed = _fixed_values(table, keys, now)
        processors = [(i, p) for i, k in enumerate(keys) if (p := _processor(table, k)) is not None]
        tail = list(fixed.values())
        out = []
        if keys:
            pick = itemgetter(*keys)
            for row in source:
                values = list(pick(row))
                for i, process in processors:
                    values[i] = process(values[i])
                values += tail
                out.append(values)
        columns[name] = (*keys, *fixed)
        rows[name] = out
    return Prepared(community=batch.community, start=replace(batch.start), columns=columns, rows=rows)


@lru_cache(maxsize=64)
def _sql(table: Table, columns: tuple[str, ...]) -> str:
    quote = _dialect().identifier_preparer.quote
    names = ", ".join(quote(table.c[k].name) for k in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"


def insert_prepared(session: Session, prepared: Prepared) -> None:
    """Write a prepared batch with the driver's executemany, chunk by chunk, in the session's transaction."""
    connection = session.connection()
    for name, table in TABLES:
        rows = prepared.rows[name]
        sql = _sql(table, prepared.columns[name])
        for i in range(0, len(rows), CHUNK):
            connection.exec_driver_sql(sql, list(map(tuple, rows[i : i + CHUNK])))
