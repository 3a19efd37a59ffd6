"""The event store: append accepted events in one batch with their rollups and outbox messages; raw bodies."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import Table, bindparam, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from linli.core import jsonio, outbox
from linli.core.timeutil import as_utc
from linli.db import allocate_ids, insert_rows
from linli.devices.events import Envelope, subject_for
from linli.devices.models import Device, EventRollup, RawPayload, StoredEvent

CHUNK = 500


@dataclass(slots=True)
class Accepted:
    """An event that passed every check, on its way into the store."""

    index: int  # position in the incoming batch; -1 for events the hub makes itself
    envelope: Envelope
    device: Device
    occurred_at: datetime  # UTC
    payload: dict[str, Any]  # the payload as its type's model normalised it
    person_id: int | None = None
    vehicle_id: int | None = None
    stored_id: int | None = None
    media: list[dict[str, Any]] = field(default_factory=list)  # the envelope's media refs as JSON
    plate: str | None = None  # a plate read's normalised plate (as read, upper case, if not a valid one)
    key: tuple[int, str] = field(init=False)  # the dedup key: the device and its own event id
    event_type: str = field(init=False)  # the type as plain text (an enum's .value costs per access)
    # Its row and bus message as encode() wrote them, before its id was drawn; None: not yet, or changed
    # since (whoever changes an accepted event's media, links or payload sets it back to None).
    encoded: Encoded | None = None

    def __post_init__(self) -> None:
        self.key = (self.device.id, self.envelope.id)
        self.event_type = str(self.envelope.type)


class Encoded(NamedTuple):
    """An event's row and bus message without its id, which append puts in front of them (a tuple: one is
    made per event, and a frozen dataclass costs several times as much to make)."""

    row: tuple[Any, ...]  # the row's columns after id, in _COLUMNS order
    subject: str
    message: bytes  # the message's JSON object after its first member, "id" (no opening brace)
    hour: tuple[str, str, str, str]  # its rollup's key: hour (hour_key), community, device kind, type


def table(model: type[Any]) -> Table:
    """The Core table of a mapped class."""
    return cast(Table, model.__table__)


# The keys go as one JSON parameter, [[device id, event uid], ...]: psycopg writes a Python list for an
# array parameter element by element in Python (about 0.8 ms of the client's CPU for 500 keys), a JSON
# text in one piece (0.14 ms), and the server reads it as fast.
EXISTING_KEYS_PG = (
    "SELECT e.id, e.device_id, e.event_uid FROM json_array_elements(%(k)s::json) AS k(pair) "
    "CROSS JOIN LATERAL (SELECT x.id, x.device_id, x.event_uid FROM device_events x "
    "WHERE x.device_id = (k.pair->>0)::integer AND x.event_uid = k.pair->>1 OFFSET 0) e"
)


def existing_keys_params(pairs: list[tuple[int, str]]) -> dict[str, str]:
    """EXISTING_KEYS_PG's parameter for these keys."""
    return {"k": jsonio.dumps_text(pairs)}


def existing_keys(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Which of these (device_id, event_uid) keys are stored already, with their event ids."""
    found: dict[tuple[int, str], int] = {}
    pairs = sorted(keys)
    if not pairs:
        return found
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One probe of the unique index per key, one round trip. The OFFSET 0 keeps the lateral subquery
        # from being flattened into a join: as a join the planner, whenever its statistics saw the store
        # small, hashed the whole table for every batch (12-20 ms per 500 keys at 50,000 events, growing
        # with the store); probing is ~2 ms whatever the store's size.
        result = connection.exec_driver_sql(EXISTING_KEYS_PG, existing_keys_params(pairs))
        return {(device_id, uid): event_id for event_id, device_id, uid in result}
    # One query per chunk of (device, uid) row values, answered from the unique index: a batch spans
    # many devices, and a query per device cost half of the ingest time.
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        stmt = select(StoredEvent.id, StoredEvent.device_id, StoredEvent.event_uid).where(
            tuple_(StoredEvent.device_id, StoredEvent.event_uid).in_(chunk)
        )
        for event_id, device_id, uid in session.execute(stmt.execution_options(skip_scope=True)):
            found[(device_id, uid)] = event_id
    return found


def append(session: Session, events: list[Accepted], *, received_at: datetime) -> dict[tuple[int, str], int]:
    """Insert events (unique within the list) with their hourly rollups and outbox messages.

    Returns the events found stored already, by key, with their ids: those are not inserted again, and
    stored_id is set on the others. The ids are drawn first, so rows, rollups and bus messages are each
    written in one pass with no read-back, and the batch's bus messages go into one outbox row.
    Events not encoded yet (encode) are encoded here; the others only get their ids put in front.
    """
    if not events:
        return {}
    events_table = table(StoredEvent)
    connection = session.connection()
    dialect = connection.dialect
    stored: dict[tuple[int, str], int] = {}
    if dialect.name != "sqlite":  # SQLite skips duplicates in the insert itself, PostgreSQL's COPY cannot
        stored = existing_keys(session, {e.key for e in events})
        events = [e for e in events if e.key not in stored]
        if not events:
            return stored
    ids = allocate_ids(session, events_table, len(events))
    encode(session, events, received_at=received_at)
    rows: list[tuple[Any, ...]] = []
    messages: list[tuple[str, bytes]] = []
    hours: list[tuple[str, str, str, str]] = []
    for event, new_id in zip(events, ids, strict=True):
        event.stored_id = new_id
        encoded = cast(Encoded, event.encoded)
        rows.append((new_id, *encoded.row))
        messages.append((encoded.subject, b'{"id":%d,%b' % (new_id, encoded.message)))
        hours.append(encoded.hour)
    inserted = insert_rows(session, events_table, _COLUMNS, rows, or_ignore=dialect.name == "sqlite")
    # SQLite: if the insert counts every row, none was stored before; otherwise read which went in.
    if dialect.name == "sqlite" and inserted != len(rows):
        stored = _skipped(session, events)
        if stored:
            kept = [e.key not in stored for e in events]
            messages = [m for m, keep in zip(messages, kept, strict=True) if keep]
            hours = [h for h, keep in zip(hours, kept, strict=True) if keep]
            events = [e for e, keep in zip(events, kept, strict=True) if keep]
    _bump_rollups(session, Counter(hours))
    # By reference: the row holds the events' ids, the messages are made again from the store's rows
    # only if the catch-up needs them (outbox_messages).
    ids = [cast(int, e.stored_id) for e in events]
    outbox.add_batch(session, messages, now=received_at, ref=(__name__, ids))
    return stored


# The columns of a stored event's row as append writes them.
_COLUMNS = (
    "id",
    "event_uid",
    "device_id",
    "device_serial",
    "community_code",
    "area_code",
    "type",
    "occurred_at",
    "source",
    "payload",
    "media",
    "person_id",
    "vehicle_id",
    "plate",
    "received_at",
)


def encode(session: Session, events: list[Accepted], *, received_at: datetime) -> None:
    """Write each event's row and bus message but for its id (Accepted.encoded), unless written already.

    Each event is encoded once: its payload's JSON goes into its row and, as it is, into its bus message
    (an orjson Fragment); the row is a tuple in the insert's column order, each value as the driver
    takes it. The ingest encodes a batch when it stages it (service.stage), so that the write transaction
    only puts the ids in front.
    """
    dialect = session.get_bind().dialect
    sqlite = dialect.name == "sqlite"
    facts: dict[int, _DeviceFacts] = {}
    subjects: dict[tuple[str, str], str] = {}
    received = as_utc(received_at).isoformat()
    # The batch's received_at in its row as the column type writes it (SQLite) or as COPY takes it.
    received_column = sqlite_times(as_utc(received_at))[0] if sqlite else received
    for event in events:
        if event.encoded is not None:
            continue
        device = facts.get(id(event.device))
        if device is None:
            device = facts[id(event.device)] = _facts(event.device)
        payload = jsonio.dumps(event.payload)
        media = jsonio.dumps(event.media) if event.media else b"[]"
        occurred = event.occurred_at
        env = event.envelope
        kind = event.event_type
        at: Any
        if sqlite:
            at, iso = sqlite_times(occurred)
        else:
            at = iso = occurred.isoformat()  # COPY takes the text (db.copy_time: faster than a datetime)
        row = (
            env.id,
            device.id,
            device.serial,
            device.community,
            device.area,
            kind,
            at,
            env.source,
            payload.decode("utf-8"),
            media.decode("utf-8"),
            event.person_id,
            event.vehicle_id,
            event.plate,
            received_column,
        )
        subject = subjects.get((device.community, kind))
        if subject is None:
            subject = subjects[device.community, kind] = subject_for(device.community, kind)
        event.encoded = Encoded(
            row,
            subject,
            _encoded_message(event, device, received, iso, payload, media),
            (iso[:13], device.community, device.kind, kind),
        )


def sqlite_times(at: datetime) -> tuple[str, str]:
    """A UTC datetime as SQLAlchemy's DateTime stores it in SQLite ("2026-12-04 08:30:00.000000", the time
    zone left out) and as at.isoformat() writes it in a bus message, from one formatting: the column
    type's bind processor and a second isoformat cost half as much again."""
    full = at.isoformat(" ", "microseconds")  # 2026-12-04 08:30:00.000000+00:00
    return full[:26], f"{full[:10]}T{full[11:] if at.microsecond else full[11:19] + '+00:00'}"


def hour_of(key: str) -> datetime:
    """The start of the hour (a rollup's) from its key, the first 13 characters of a UTC time's isoformat()
    ("2026-12-04T08"): encode keys each event's rollup by text, which hashes and compares in a fraction of
    a datetime's time and needs no datetime of its own; a batch's few distinct hours are made here."""
    return datetime.fromisoformat(f"{key}:00:00+00:00")


def _skipped(session: Session, events: list[Accepted]) -> dict[tuple[int, str], int]:
    """After an INSERT OR IGNORE of events with drawn ids: those stored before (the key's id), by key."""
    ids = [e.stored_id for e in events if e.stored_id is not None]
    inserted = set(
        session.connection()
        .exec_driver_sql("SELECT id FROM device_events WHERE id BETWEEN ? AND ?", (min(ids), max(ids)))
        .scalars()
    )
    missing = [e for e in events if e.stored_id not in inserted]
    if not missing:
        return {}
    found = existing_keys(session, {e.key for e in missing})
    unexplained = [e.key for e in missing if e.key not in found]
    if unexplained:  # a row skipped for another reason than its key: never drop an event silently
        raise RuntimeError(f"events not stored and not stored before: {unexplained[:3]}")
    for event in missing:
        event.stored_id = None
    return found


@dataclass(frozen=True)
class _DeviceFacts:
    """What rows and messages need of a device, read once per batch (ORM attributes cost per access)."""

    id: int
    serial: str
    kind: str
    community: str
    area: str


def _facts(device: Device) -> _DeviceFacts:
    return _DeviceFacts(device.id, device.serial, device.kind, device.community_code, device.area_code)


def _message(event: Accepted, device: _DeviceFacts, received_at: str, occurred_at: str) -> dict[str, Any]:
    """The bus message of a stored event but for its first member, "id" (the stored id, which append puts
    in front): the envelope as stored, with the hub's ids and links."""
    env = event.envelope
    return {
        "event_uid": env.id,
        "device": device.serial,
        "device_id": device.id,
        "device_kind": device.kind,
        "community": device.community,
        "area_code": device.area,
        "type": event.event_type,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "source": env.source,
        "payload": event.payload,
        "media": event.media,
        "person_id": event.person_id,
        "vehicle_id": event.vehicle_id,
    }


def _encoded_message(
    event: Accepted, device: _DeviceFacts, received_at: str, occurred_at: str, payload: bytes, media: bytes
) -> bytes:
    """The bus message of a stored event as UTF-8 JSON after its id (see _message), without the opening
    brace: append writes `{"id":N,` in front. Its payload and media go in as the row's own JSON (orjson
    Fragments), not encoded a second time."""
    data = _message(event, device, received_at, occurred_at)
    data["payload"] = orjson.Fragment(payload)
    data["media"] = orjson.Fragment(media)
    return orjson.dumps(data)[1:]


def outbox_messages(session: Session, ids: list[int]) -> list[tuple[str, bytes]]:
    """The bus messages of stored events, in the order of ids, made again from their rows as append made
    them (the outbox's catch-up: append queues its batches by reference). An id not stored is left out."""
    events = table(StoredEvent)
    devices = table(Device)
    columns = [events.c[name] for name in _COLUMNS if name != "plate"]
    stmt = (
        select(*columns, devices.c.kind)
        .join(devices, devices.c.id == events.c.device_id)
        .execution_options(skip_scope=True)
    )
    found: dict[int, tuple[str, bytes]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for row in session.execute(stmt.where(events.c.id.in_(chunk))):
            (event_id, uid, device_id, serial, community, area, kind, occurred, source, payload, media,
             person_id, vehicle_id, received, device_kind) = row  # fmt: skip
            data = {
                "id": event_id,
                "event_uid": uid,
                "device": serial,
                "device_id": device_id,
                "device_kind": device_kind,
                "community": community,
                "area_code": area,
                "type": kind,
                "occurred_at": as_utc(occurred).isoformat(),
                "received_at": as_utc(received).isoformat(),
                "source": source,
                "payload": payload,
                "media": media,
                "person_id": person_id,
                "vehicle_id": vehicle_id,
            }
            found[event_id] = (subject_for(community, kind), orjson.dumps(data))
    return [found[i] for i in ids if i in found]


outbox.register_loader(__name__, outbox_messages)


_ROLLUP_UPSERT = {
    "postgresql": (
        "INSERT INTO event_rollups (hour, area_code, device_kind, type, count) "
        "SELECT * FROM unnest(%(h)s::timestamptz[], %(a)s::text[], %(k)s::text[], %(t)s::text[], "
        "%(n)s::integer[]) "
        "ON CONFLICT (hour, area_code, device_kind, type) "
        "DO UPDATE SET count = event_rollups.count + excluded.count"
    ),
    "sqlite": (
        "INSERT INTO event_rollups (hour, area_code, device_kind, type, count) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (hour, area_code, device_kind, type) "
        "DO UPDATE SET count = event_rollups.count + excluded.count"
    ),
}


def _bump_rollups(session: Session, counts: Counter[tuple[str, str, str, str]]) -> None:
    """Add the batch's counts per (hour key, community, device kind, type), counted by append: one upsert."""
    # One order for every writer: concurrent upserts cannot deadlock (the keys' text sorts as their hours).
    hours = {key[0]: hour_of(key[0]) for key in counts}
    keyed = [((hours[h], a, k, t), n) for (h, a, k, t), n in sorted(counts.items())]
    if not keyed:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        columns = list(zip(*(key for key, _ in keyed), strict=True))
        params = {"h": list(columns[0]), "a": list(columns[1]), "k": list(columns[2]), "t": list(columns[3])}
        connection.exec_driver_sql(_ROLLUP_UPSERT["postgresql"], {**params, "n": [n for _, n in keyed]})
        return
    hour = table(EventRollup).c.hour.type.dialect_impl(dialect).bind_processor(dialect)
    rows = [(hour(h) if hour else h, a, k, t, n) for (h, a, k, t), n in keyed]
    connection.exec_driver_sql(_ROLLUP_UPSERT["sqlite"], rows)


def rollups(
    session: Session, *, area: str | None = None, since: datetime, until: datetime
) -> list[EventRollup]:
    """Hourly counts in the caller's scope, in hour order."""
    stmt = (
        select(EventRollup)
        .where(EventRollup.hour >= since, EventRollup.hour < until)
        .order_by(EventRollup.hour, EventRollup.area_code, EventRollup.device_kind, EventRollup.type)
    )
    if area:
        stmt = stmt.where(EventRollup.area_code.startswith(area))
    return list(session.scalars(stmt))


def hourly_counts(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    area: str | None = None,
    types: list[str] | None = None,
) -> dict[datetime, int]:
    """Events per hour in the caller's scope (of an area and types, if given), summed by the database
    from the rollups: the hours with any, as the column reads them."""
    stmt = (
        select(EventRollup.hour, func.sum(EventRollup.count))
        .where(EventRollup.hour >= since, EventRollup.hour < until)
        .group_by(EventRollup.hour)
    )
    if area:
        stmt = stmt.where(EventRollup.area_code.startswith(area))
    if types:
        stmt = stmt.where(EventRollup.type.in_(types))
    return {hour: int(total) for hour, total in session.execute(stmt)}


def save_raw(
    session: Session,
    *,
    received_at: datetime,
    source: str,
    body: bytes,
    content_type: str = "",
    device_serial: str = "",
) -> int:
    """Keep a received body (compressed if large, kept_body); returns its id (linked to its events or dead
    letter later)."""
    stored, encoding = kept_body(body)
    raw = RawPayload(
        received_at=received_at,
        source=source[:64],
        content_type=content_type[:128],
        device_serial=device_serial[:64],
        body=stored,
        body_encoding=encoding,
        event_ids=[],
    )
    session.add(raw)
    session.flush()
    return raw.id


def save_raws(
    session: Session,
    raws: list[tuple[int, bytes | Kept, str, tuple[list[int], int | None]]],
    *,
    received_at: datetime,
    source: str,
    content_type: str = "application/json",
) -> None:
    """Keep many bodies in one insert: (id from allocate_raw_ids, body, device serial, (event ids, dead
    letter id or None)), linked already to what each became.

    Rows are written as the driver takes them (insert_rows): bytes for the body, JSON text for the ids,
    as the columns' own processors would make them (an MQTT batch keeps a body per message). Large bodies
    are compressed (kept_body)."""
    dumps = jsonio.dumps_text
    rows = [
        (raw_id, *kept_body(body), serial[:64], dumps(event_ids) if event_ids else "[]", dead)
        for raw_id, body, serial, (event_ids, dead) in raws
    ]
    constants = {"received_at": received_at, "source": source[:64], "content_type": content_type[:128]}
    insert_rows(session, table(RawPayload), _RAW_COLUMNS, rows, constants=constants)


_RAW_COLUMNS = ("id", "body", "body_encoding", "device_serial", "event_ids", "dead_letter_id")

# Bodies from this size on are kept compressed: a gateway's 500 JSON events (~110 KB) become ~13 KB for
# 0.4 ms of zlib's fastest level, and the write transaction that stores them writes that much less. A
# single MQTT message (a few hundred bytes) would gain little for the time.
RAW_COMPRESS_AT = 4096


class Kept(NamedTuple):
    """A received body as the raw payloads keep it (see kept_body)."""

    body: bytes
    encoding: str  # RawPayload.body_encoding


def kept_body(body: bytes | Kept) -> Kept:
    """A received body as stored: zlib-compressed if large and it shrinks, else as is (a Kept already made,
    e.g. before the write transaction, as it is)."""
    if isinstance(body, Kept):
        return body
    if len(body) < RAW_COMPRESS_AT:
        return Kept(body, "")
    packed = zlib.compress(body, 1)
    return Kept(packed, "zlib") if len(packed) < len(body) else Kept(body, "")


def allocate_raw_ids(session: Session, count: int) -> list[int]:
    """Ids for raw bodies that save_raws inserts later in the same transaction (nothing else may insert
    raw bodies in between: on SQLite the ids are max(id) + 1 ...)."""
    return allocate_ids(session, table(RawPayload), count)


def link_raw(
    session: Session, raw_id: int, *, event_ids: list[int], dead_letter_id: int | None = None
) -> None:
    """Record which events (or which dead letter) a raw body became."""
    values: dict[str, Any] = {"event_ids": event_ids}
    if dead_letter_id is not None:
        values["dead_letter_id"] = dead_letter_id
    session.execute(update(RawPayload).where(RawPayload.id == raw_id).values(**values))


def link_raws(session: Session, links: dict[int, tuple[list[int], int | None]]) -> None:
    """link_raw for many bodies in one statement: raw id -> (event ids, dead letter id or None)."""
    if not links:
        return
    raws = table(RawPayload)
    stmt = (
        update(raws)
        .where(raws.c.id == bindparam("raw_id"))
        .values(
            event_ids=bindparam("ids", type_=raws.c.event_ids.type),
            dead_letter_id=bindparam("dead", type_=raws.c.dead_letter_id.type),
        )
    )
    rows = [{"raw_id": raw_id, "ids": ids, "dead": dead} for raw_id, (ids, dead) in links.items()]
    session.execute(stmt, rows)


def purge_raw(session: Session, *, now: datetime, days: int) -> int:
    """Delete raw bodies received more than days ago; returns how many."""
    result = session.execute(delete(RawPayload).where(RawPayload.received_at < now - timedelta(days=days)))
    return int(getattr(result, "rowcount", 0) or 0)
