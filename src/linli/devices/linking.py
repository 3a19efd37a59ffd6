"""Links events to the register by id: a plate to its vehicle, a card or device person id to a person,
a patrol check-in to the checkpoint tag its handset touched.

Nothing of the register is copied into an event. A vehicle event links the vehicle only; its owner is
reached through the vehicle (the events query follows that link), so a change of owner needs no rewrite.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from linli.core.errors import Invalid
from linli.devices.events import EventType
from linli.devices.models import Device, DeviceCredential, DeviceKind, DeviceState
from linli.devices.store import Accepted
from linli.registry import vehicles

VEHICLE_TYPES = {EventType.VEHICLE_ENTERED, EventType.VEHICLE_EXITED}
ACCESS_TYPES = {EventType.ACCESS_GRANTED, EventType.ACCESS_DENIED}
# Payload field -> credential kind in device_credentials.
CREDENTIAL_FIELDS = {"card_no": "card", "person_ref": "person_ref"}


def link(session: Session, events: list[Accepted]) -> None:
    """Fill vehicle_id and person_id of events from plates and credentials (the session must be unscoped)."""
    _link_vehicles(session, [e for e in events if e.envelope.type in VEHICLE_TYPES])
    _link_people(session, [e for e in events if e.envelope.type in ACCESS_TYPES])


def touched_tags(session: Session, events: list[Accepted]) -> list[tuple[Device, datetime]]:
    """The registered patrol tags the batch's patrol.checked_in events touched, with when: a check-in's
    `checkpoint` names a tag of the handset's community by its serial, or by its location when exactly one
    tag there has it. A tag never sends anything itself, so this is when it was last patrolled (health
    moves its last-seen time; it stays "not monitored"). A checkpoint that names no tag links to nothing."""
    checks = [e for e in events if e.event_type == EventType.PATROL_CHECKED_IN]
    names = {str(e.payload.get("checkpoint") or "") for e in checks} - {""}
    if not names:
        return []
    communities = {e.device.community_code for e in checks}
    stmt = select(Device).where(
        Device.kind == DeviceKind.PATROL_TAG,
        Device.state != DeviceState.RETIRED,
        Device.community_code.in_(communities),
        or_(Device.serial.in_(names), Device.location.in_(names)),
    )
    by_serial: dict[tuple[str, str], Device] = {}
    by_location: dict[tuple[str, str], list[Device]] = {}
    for found in session.scalars(stmt.execution_options(skip_scope=True)):
        by_serial[(found.community_code, found.serial)] = found
        by_location.setdefault((found.community_code, found.location), []).append(found)
    touched: list[tuple[Device, datetime]] = []
    for event in checks:
        where = (event.device.community_code, str(event.payload.get("checkpoint") or ""))
        tag = by_serial.get(where)
        if tag is None and len(by_location.get(where, [])) == 1:
            tag = by_location[where][0]
        if tag is not None and tag.id != event.device.id:
            touched.append((tag, event.occurred_at))
    return touched


def _link_vehicles(session: Session, events: list[Accepted]) -> None:
    numbers: dict[str, str | None] = {}  # plate as read -> normalised number (None: not a valid plate)
    for event in events:
        plate = str(event.payload.get("plate") or "")
        if plate not in numbers:
            try:
                numbers[plate] = vehicles.normalise_plate(plate).number
            except Invalid:  # a misread plate is still an event; it just links to nothing
                numbers[plate] = None
    found = vehicles.ids_by_plates(session, plates={n for n in numbers.values() if n})
    for event in events:
        read = str(event.payload.get("plate") or "")
        number = numbers[read]
        event.vehicle_id = found.get(number) if number else None
        # Kept for look-ups by plate, registered or not; a misread as read, so it can be found as seen.
        event.plate = number or ("".join(read.split()).upper()[:16] or None)


def _link_people(session: Session, events: list[Accepted]) -> None:
    wanted: set[tuple[str, str]] = set()
    for event in events:
        for field, kind in CREDENTIAL_FIELDS.items():
            if event.payload.get(field):
                wanted.add((kind, str(event.payload[field])))
    if not wanted:
        return
    communities = {e.device.community_code for e in events}
    c = DeviceCredential
    stmt = select(c.area_code, c.device_id, c.kind, c.value, c.person_id).where(
        c.area_code.in_(communities),
        c.kind.in_({k for k, _ in wanted}),
        c.value.in_({v for _, v in wanted}),
    )
    # (community, device_id or None, kind, value) -> person; a device's own mapping wins over the community's.
    # Plain rows, not ORM objects: a batch of access events can match a hundred credentials.
    known = {
        (area, device_id, kind, value): person
        for area, device_id, kind, value, person in session.execute(stmt.execution_options(skip_scope=True))
    }
    for event in events:
        for field, kind in CREDENTIAL_FIELDS.items():
            value = event.payload.get(field)
            if not value:
                continue
            community, device_id = event.device.community_code, event.device.id
            person = known.get((community, device_id, kind, str(value)))
            person = person or known.get((community, None, kind, str(value)))
            if person:
                event.person_id = person
                break


def find_person(
    session: Session, *, community: str, device_id: int | None, kind: str, value: str
) -> int | None:
    """The person a credential means on a device (its own mapping first, then the community's)."""
    stmt = select(DeviceCredential.device_id, DeviceCredential.person_id).where(
        DeviceCredential.area_code == community,
        DeviceCredential.kind == kind,
        DeviceCredential.value == value,
    )
    rows: dict[int | None, int] = {
        device: person for device, person in session.execute(stmt.execution_options(skip_scope=True))
    }
    if device_id is not None and device_id in rows:
        return rows[device_id]
    return rows.get(None)


def add_credential(
    session: Session, *, community: str, kind: str, value: str, person_id: int, device_id: int | None = None
) -> DeviceCredential:
    """Map a credential to a person (device_id None: on every device of the community)."""
    if kind not in CREDENTIAL_FIELDS.values():
        raise Invalid(f"未知的凭证类型：{kind}", field="kind")
    credential = DeviceCredential(
        area_code=community, device_id=device_id, kind=kind, value=value.strip()[:64], person_id=person_id
    )
    session.add(credential)
    session.flush()
    return credential


def set_device_credential(
    session: Session, *, community: str, device_id: int, kind: str, value: str, person_id: int
) -> DeviceCredential:
    """Map a credential on one device to a person, replacing what that device's value meant before."""
    value = value.strip()[:64]
    stmt = select(DeviceCredential).where(
        DeviceCredential.device_id == device_id,
        DeviceCredential.kind == kind,
        DeviceCredential.value == value,
    )
    current = list(session.scalars(stmt.execution_options(skip_scope=True)))
    for credential in current:
        if credential.person_id == person_id:
            return credential
        session.delete(credential)
    session.flush()
    return add_credential(
        session, community=community, kind=kind, value=value, person_id=person_id, device_id=device_id
    )


def remove_device_credentials(session: Session, *, device_id: int, person_id: int, kind: str) -> int:
    """Forget a person's credentials of one kind on one device; returns how many mappings went."""
    stmt = select(DeviceCredential).where(
        DeviceCredential.device_id == device_id,
        DeviceCredential.person_id == person_id,
        DeviceCredential.kind == kind,
    )
    found = list(session.scalars(stmt.execution_options(skip_scope=True)))
    for credential in found:
        session.delete(credential)
    session.flush()
    return len(found)
