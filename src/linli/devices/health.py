"""Device health: last seen, online/offline with a timeout per kind, and uptime from the stored events.

The hub records every change of a device's link as a device.online / device.offline event of its own
(source "linli.health"), so uptime is computed from the event store and rules can react to the change.
The clock is always passed in, so a test can move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from linli.core import jsonio
from linli.core.timeutil import as_utc
from linli.devices import store
from linli.devices.events import DevicePayload, Envelope, EventType
from linli.devices.models import Device, DeviceKind, DeviceState, StoredEvent
from linli.devices.store import Accepted

HEALTH_SOURCE = "linli.health"
# Reports about a device's link are not signs of life from the device itself.
LINK_TYPES = {EventType.DEVICE_ONLINE, EventType.DEVICE_OFFLINE}
LINK_TYPE_NAMES = {str(t) for t in LINK_TYPES}

_MIN = timedelta(minutes=1)
# How long a device of each kind may stay silent before it counts as offline (None: never).
# Streaming devices send heartbeats every minute or so; battery sensors report every 10-15 minutes;
# meters once or a few times a day; a patrol tag only speaks when a guard touches it.
OFFLINE_AFTER: dict[str, timedelta | None] = {
    DeviceKind.CAMERA: 5 * _MIN,
    DeviceKind.THROW_CAMERA: 5 * _MIN,
    DeviceKind.FACE_TERMINAL: 5 * _MIN,
    DeviceKind.PLATE_GATE: 5 * _MIN,
    DeviceKind.GATEWAY: 5 * _MIN,
    DeviceKind.CARD_READER: 10 * _MIN,
    DeviceKind.BARRIER: 10 * _MIN,
    DeviceKind.ELEVATOR_MONITOR: 10 * _MIN,
    DeviceKind.SMOKE_SENSOR: 30 * _MIN,
    DeviceKind.GAS_SENSOR: 30 * _MIN,
    DeviceKind.WATER_SENSOR: 30 * _MIN,
    DeviceKind.DOOR_SENSOR: 30 * _MIN,
    DeviceKind.SOS_BUTTON: 30 * _MIN,
    DeviceKind.HYDRANT_PRESSURE: 30 * _MIN,
    DeviceKind.WATER_METER: timedelta(hours=24),
    DeviceKind.ELECTRICITY_METER: timedelta(hours=24),
    DeviceKind.GAS_METER: timedelta(hours=24),
    DeviceKind.PATROL_HANDSET: timedelta(hours=24),
    DeviceKind.PATROL_TAG: None,
}


# Kinds whose online state the hub does not track (they never connect: a patrol tag is touched, not
# heard from). Pages and the API say "not monitored" for them, and "offline" never lists them.
UNMONITORED: frozenset[str] = frozenset(kind for kind, limit in OFFLINE_AFTER.items() if limit is None)


def offline_after(kind: str) -> timedelta | None:
    """The silence after which a device of this kind is offline (None: never)."""
    return OFFLINE_AFTER.get(kind, 30 * _MIN)


def _fresh(kind: str, seen: datetime, now: datetime) -> bool:
    limit = offline_after(kind)
    return limit is None or now - seen <= limit


def status_event(
    device: Device, event_type: EventType, *, at: datetime, last_seen: datetime | None
) -> Accepted:
    """A device.online / device.offline event made by the hub."""
    status = "online" if event_type == EventType.DEVICE_ONLINE else "offline"
    payload = DevicePayload(status=status, last_seen=last_seen).model_dump(mode="json", exclude_none=True)
    envelope = Envelope(
        id=f"{HEALTH_SOURCE}:{status}:{at.isoformat()}",
        device=device.serial,
        type=event_type,
        occurred_at=at,
        received_at=at,
        community=device.community_code,
        source=HEALTH_SOURCE,
        payload=payload,
    )
    return Accepted(index=-1, envelope=envelope, device=device, occurred_at=at, payload=payload)


@dataclass(frozen=True)
class Sightings:
    """When a batch saw each of its devices, worked out before its write transaction (sightings): the write
    (touch) then only sends the statements."""

    latest: dict[int, tuple[Device, datetime]]  # each device's latest sign of life in the batch
    moved: dict[int, tuple[datetime, Any]]  # the devices whose last_seen moves forward: the time, as bound


def sightings(
    session: Session,
    events: list[Accepted],
    *,
    received_at: datetime,
    touched: Sequence[tuple[Device, datetime]] = (),
) -> Sightings:
    """When the batch saw its devices (see touch); reads nothing, so a batch staged before its write
    transaction (service.stage) works this out there. The devices as loaded take their new last_seen.
    touched: patrol tags the batch's check-ins touched, and when (linking.touched_tags): a tag is seen
    then, as if it had spoken."""
    latest: dict[int, tuple[Device, datetime]] = {}
    for event in events:
        if event.event_type in LINK_TYPE_NAMES:
            continue
        seen = min(event.occurred_at, received_at)
        device_id = event.key[0]
        known = latest.get(device_id)
        if known is None or seen > known[1]:
            latest[device_id] = (event.device, seen)
    for tag, at in touched:
        seen = min(at, received_at)
        known = latest.get(tag.id)
        if known is None or seen > known[1]:
            latest[tag.id] = (tag, seen)
    dialect = session.get_bind().dialect
    # SQLite takes the time as the column type's text, PostgreSQL as ISO text inside one JSON parameter.
    bind = store.table(Device).c.last_seen_at.type.dialect_impl(dialect).bind_processor(dialect)
    sqlite = dialect.name == "sqlite"
    moved: dict[int, tuple[datetime, Any]] = {}
    for device_id, (device, seen) in latest.items():
        last = as_utc(device.last_seen_at) if device.last_seen_at else None
        if last is None or seen > last:
            moved[device_id] = (seen, (bind(seen) if bind else seen) if sqlite else seen.isoformat())
            if device in session:  # not a device kept between batches: its last_seen stays as loaded
                set_committed_value(device, "last_seen_at", seen)  # written by touch, not by a flush
    return Sightings(latest, moved)


def touch(
    session: Session, events: list[Accepted], *, received_at: datetime, seen: Sightings | None = None
) -> list[Accepted]:
    """Move each device's last_seen forward once per batch; device.online events for devices coming back.

    A device is seen at its event's time (never later than received_at): a backlog of old events that a
    device uploads after an outage does not make it look online at the time they happened.
    last_seen only moves forward, in the database's own comparison: two batches of one device written
    one after the other in either order leave the later time. One statement for the batch, not an ORM
    update per device (a batch of a gateway's 500 events names a hundred devices).
    seen: sightings() of these events at received_at, worked out already.
    """
    if seen is None:
        seen = sightings(session, events, received_at=received_at)
    latest, moved_to = seen.latest, seen.moved
    # Rows are written in device order, whichever statement writes them: two batches writing at once
    # (PostgreSQL) take their devices' row locks in one order, and cannot deadlock on them.
    back = _offline_among(session, latest, received_at)
    came_back: list[Accepted] = []
    run: list[tuple[int, Any]] = []  # last_seen moves, written together up to a device coming back
    for device_id in sorted(moved_to.keys() | back) if back else moved_to:
        if device_id in back:
            _move_last_seen(session, run)
            run = []
            device, at = latest[device_id]
            if _mark_online(session, device, at):
                came_back.append(status_event(device, EventType.DEVICE_ONLINE, at=at, last_seen=at))
        if device_id in moved_to:
            run.append((device_id, moved_to[device_id][1]))
    _move_last_seen(session, run)
    return came_back


_LAST_SEEN_SQLITE = (
    "UPDATE devices SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)"
)
_LAST_SEEN_POSTGRES = (
    "WITH v AS (SELECT (p->>0)::integer AS id, (p->>1)::timestamptz AS seen "
    "FROM json_array_elements(%(moved)s::json) AS p), "
    "locked AS (SELECT d.id FROM devices d JOIN v ON v.id = d.id ORDER BY d.id FOR NO KEY UPDATE OF d) "
    "UPDATE devices SET last_seen_at = v.seen FROM v JOIN locked ON locked.id = v.id "
    "WHERE devices.id = v.id AND (devices.last_seen_at IS NULL OR devices.last_seen_at < v.seen)"
)
_OFFLINE_AMONG = {
    "sqlite": "SELECT id FROM devices WHERE online = 0 AND id IN (SELECT value FROM json_each(?))",
    "postgresql": (
        "SELECT id FROM devices WHERE NOT online "
        "AND id IN (SELECT json_array_elements_text(%(ids)s::json)::integer)"
    ),
}


def _move_last_seen(session: Session, moved: list[tuple[int, Any]]) -> None:
    """Set last_seen_at of (device id, time as Sightings binds it) where it is older (or unset): one
    statement for the batch."""
    if not moved:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":  # the driver's executemany: SQLAlchemy's per-row work cost more
        connection.exec_driver_sql(_LAST_SEEN_SQLITE, [(at, device_id, at) for device_id, at in moved])
        return
    # PostgreSQL: one statement for the batch (an executemany sent a statement per device), whose rows are
    # locked in device order first, as the statements of a run would take them one by one. The lock is an
    # UPDATE's own, FOR NO KEY UPDATE: FOR UPDATE would also wait for other batches' foreign-key checks of
    # their event rows (FOR KEY SHARE on the same devices), and two MQTT workers deadlocked on it.
    # The pairs go as one JSON text: psycopg writes list parameters element by element in Python.
    connection.exec_driver_sql(_LAST_SEEN_POSTGRES, {"moved": jsonio.dumps_text(moved)})


def _offline_among(
    session: Session, latest: dict[int, tuple[Device, datetime]], received_at: datetime
) -> set[int]:
    """The batch's devices that are offline in the database and fresh again (their last event within
    their kind's timeout).

    Read from the database, not from the devices as loaded: the batch may have been judged before its
    write transaction (service.stage), and another process may have marked a device since.
    """
    if not latest:
        return set()
    connection = session.connection()
    dialect = connection.dialect.name
    ids = sorted(latest)
    # One parameter for the batch's devices, not one per device (SQLite and PostgreSQL, as the store).
    param: Any = (jsonio.dumps_text(ids),) if dialect == "sqlite" else {"ids": jsonio.dumps_text(ids)}
    offline = set(connection.exec_driver_sql(_OFFLINE_AMONG[dialect], param).scalars())
    # A kind whose online state is not tracked (a patrol tag) never comes "back": its last-seen time moves.
    return {
        d
        for d in offline
        if latest[d][0].kind not in UNMONITORED and _fresh(latest[d][0].kind, latest[d][1], received_at)
    }


def _mark_online(session: Session, device: Device, seen: datetime) -> bool:
    """Mark a device online since seen if it is still offline: of two batches writing at once
    (PostgreSQL), only one says it came back."""
    devices = store.table(Device)
    marked = session.execute(
        update(devices)
        .where(devices.c.id == device.id, devices.c.online.is_(False))
        .values(online=True, online_changed_at=seen)
    )
    if getattr(marked, "rowcount", 0) != 1:
        return False
    set_committed_value(device, "online", True)
    set_committed_value(device, "online_changed_at", seen)
    return True


def check_offline(session: Session, now: datetime) -> list[Device]:
    """Mark online devices silent past their kind's timeout offline, storing one device.offline each."""
    now = as_utc(now)
    by_limit: dict[timedelta, list[str]] = {}
    for kind, limit in OFFLINE_AFTER.items():
        if limit is not None:
            by_limit.setdefault(limit, []).append(kind)
    silent = or_(
        *(
            and_(Device.kind.in_(kinds), Device.last_seen_at < now - limit)
            for limit, kinds in by_limit.items()
        )
    )
    stmt = select(Device).where(Device.online.is_(True), Device.state == DeviceState.ACTIVE.value, silent)
    devices = list(session.scalars(stmt.order_by(Device.id).execution_options(skip_scope=True)))
    events = []
    for device in devices:
        device.online = False
        device.online_changed_at = now
        last_seen = as_utc(device.last_seen_at) if device.last_seen_at else None
        events.append(status_event(device, EventType.DEVICE_OFFLINE, at=now, last_seen=last_seen))
    store.append(session, events, received_at=now)
    return devices


def uptime(session: Session, *, device_id: int, now: datetime, days: int) -> float | None:
    """Share of the last days the device was online (0..1), from its stored online/offline events.

    Time before the device's first known state is not counted; None if nothing is known.
    """
    now = as_utc(now)
    start = now - timedelta(days=days)
    link = [t.value for t in LINK_TYPES]
    base = select(StoredEvent.type, StoredEvent.occurred_at).where(
        StoredEvent.device_id == device_id, StoredEvent.type.in_(link)
    )
    base = base.execution_options(skip_scope=True)
    before = session.execute(
        base.where(StoredEvent.occurred_at < start).order_by(StoredEvent.occurred_at.desc()).limit(1)
    ).first()
    changes = session.execute(
        base.where(StoredEvent.occurred_at >= start, StoredEvent.occurred_at <= now).order_by(
            StoredEvent.occurred_at, StoredEvent.id
        )
    ).all()
    online: bool | None = before.type == EventType.DEVICE_ONLINE if before else None
    since, up, observed = start, 0.0, 0.0
    for event_type, at in changes:
        at = as_utc(at)
        if online is not None:
            span = (at - since).total_seconds()
            observed += span
            up += span if online else 0.0
        online, since = event_type == EventType.DEVICE_ONLINE, at
    if online is None:
        return None
    span = (now - since).total_seconds()
    observed += span
    up += span if online else 0.0
    return up / observed if observed > 0 else None
