"""Vehicles: one record per normalised plate, linked to the owner's record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Invalid, NotFound
from linli.registry import history, validation
from linli.registry.models import Person, Vehicle
from linli.registry.vocab import VEHICLE_TYPE, to_code

_FIELDS = ("plate_kind", "vehicle_type", "colour", "owner_person_id", "parking_space")


def normalise_plate(raw: str) -> validation.Plate:
    """The normalised plate, or Invalid naming the plate field."""
    try:
        return validation.parse_plate(raw)
    except validation.InvalidValue as exc:
        raise Invalid(exc.reason, field=exc.field) from None


def get(session: Session, *, vehicle_id: int) -> Vehicle | None:
    """A vehicle in scope, else None."""
    return session.scalar(select(Vehicle).where(Vehicle.id == vehicle_id))


def get_or_raise(session: Session, *, vehicle_id: int) -> Vehicle:
    """A vehicle in scope, else NotFound."""
    vehicle = get(session, vehicle_id=vehicle_id)
    if vehicle is None:
        raise NotFound("车辆不存在或不在权限范围内", field="vehicle")
    return vehicle


def find_by_plate(session: Session, *, plate: str) -> Vehicle | None:
    """The vehicle with that plate, if in scope (the plate is normalised first)."""
    number = normalise_plate(plate).number
    return session.scalar(select(Vehicle).where(Vehicle.plate == number))


def ids_by_plates(session: Session, *, plates: set[str]) -> dict[str, int]:
    """Vehicle ids by normalised plate number, for many plates in one query (scoped like any query)."""
    found: dict[str, int] = {}
    ordered = sorted(plates)
    for start in range(0, len(ordered), 500):
        stmt = select(Vehicle.plate, Vehicle.id).where(Vehicle.plate.in_(ordered[start : start + 500]))
        found.update({plate: vehicle_id for plate, vehicle_id in session.execute(stmt)})
    return found


def upsert(
    session: Session,
    principal: Principal,
    data: dict[str, Any],
    *,
    community_code: str,
    owner: Person | None = None,
    source: str = "",
) -> tuple[Vehicle, str]:
    """Create the vehicle or update the one with the same plate; returns (vehicle, outcome)."""
    principal.require(Perm.VEHICLES_WRITE)
    plate = normalise_plate(str(data.get("plate") or ""))
    community = areas.get_community_or_raise(session, code=community_code)
    new: dict[str, Any] = {
        "plate_kind": plate.kind,
        "vehicle_type": to_code(VEHICLE_TYPE, data.get("vehicle_type"), field="vehicle_type"),
        "colour": " ".join(str(data.get("colour") or "").split())[:16] or None,
        "owner_person_id": owner.id if owner else None,
        "parking_space": " ".join(str(data.get("parking_space") or "").split())[:32] or None,
    }
    new = {k: v for k, v in new.items() if v is not None}
    vehicle = session.scalar(
        select(Vehicle).where(Vehicle.plate == plate.number).execution_options(skip_scope=True)
    )
    if vehicle is None:
        vehicle = Vehicle(area_code=community.code, plate=plate.number, **new)
        session.add(vehicle)
        session.flush()
        history.log(
            session,
            principal.actor,
            vehicle,
            "vehicle",
            "create",
            history.diff({}, {"plate": plate.number, **new}),
            source=source,
        )
        return vehicle, "created"
    if not principal.scope.allows(vehicle.area_code):
        raise Conflict("该车牌已在其他辖区登记", field="plate")
    changes = history.apply(vehicle, new)
    if changes:
        history.log(session, principal.actor, vehicle, "vehicle", "update", changes, source=source)
    return vehicle, "updated" if changes else "unchanged"


def of_owner(session: Session, *, person_id: int) -> list[Vehicle]:
    """A person's vehicles (in scope)."""
    return list(session.scalars(select(Vehicle).where(Vehicle.owner_person_id == person_id)))


def get_all(
    session: Session,
    *,
    community_code: str | None = None,
    plate_prefix: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Vehicle]:
    """Vehicles in scope, by plate."""
    stmt = select(Vehicle).order_by(Vehicle.plate).limit(limit).offset(offset)
    if community_code:
        stmt = stmt.where(Vehicle.area_code == community_code)
    if plate_prefix:
        stmt = stmt.where(Vehicle.plate.startswith(plate_prefix.upper()))
    return list(session.scalars(stmt))
