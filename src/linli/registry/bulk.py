"""Bulk registration for large imports: many new houses and people in a few statements.

Used by the importer for rows whose records do not exist yet (the common case of a first import). The
values written are built by the same functions the one-by-one services use (people.columns,
places.house_code ...), so a record looks the same however it entered the register.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.core.timeutil import local_today, utcnow
from linli.db import bulk_insert
from linli.registry import history, people, places
from linli.registry.models import Building, ChangeRecord, House, Person, PersonTag, Residence


@dataclass(frozen=True)
class HouseSpec:
    """A house named in a sheet row: normalised building number, unit, room and its facts."""

    building: str
    unit: str
    room: str
    facts: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class HouseRef:
    """What linking a person needs of a house."""

    id: int
    area_code: str
    full_address: str
    facts: tuple[tuple[str, Any], ...] = ()


@dataclass
class NewResident:
    """A validated new person and where they live."""

    facts: people.CleanPerson
    house: HouseRef | None
    relation: str
    move_in: date | None
    id_hash: str | None = None  # when the caller has already computed it


def ensure_houses(
    session: Session,
    principal: Principal,
    *,
    community_code: str,
    specs: set[HouseSpec],
    buildings: dict[str, Building],
    source: str,
) -> dict[HouseSpec, HouseRef]:
    """The houses of specs, creating missing buildings (one by one: few) and houses (in bulk)."""
    for number in sorted({s.building for s in specs} - buildings.keys()):
        buildings[number], _ = places.upsert_building(
            session, principal, community_code=community_code, number=number
        )
    code_of = {s: places.house_code(buildings[s.building].address_code, s.unit, s.room) for s in specs}
    found: dict[str, House] = {}
    codes = sorted(set(code_of.values()))
    for start in range(0, len(codes), 500):
        for house in session.scalars(select(House).where(House.address_code.in_(codes[start : start + 500]))):
            found[house.address_code] = house
    refs = {
        s: HouseRef(h.id, h.area_code, h.full_address, _facts_of(h))
        for s, code in code_of.items()
        if (h := found.get(code)) is not None
    }
    missing = {code: s for s, code in code_of.items() if code not in found}
    if missing:
        rows = [_house_row(buildings[s.building], s, code) for code, s in missing.items()]
        ids = _insert_returning_ids(session, House, rows)
        log = []
        for new_id, row, spec in zip(ids, rows, missing.values(), strict=True):
            refs[spec] = HouseRef(new_id, row["area_code"], row["full_address"], spec.facts)
            log.append(
                _change(
                    principal,
                    "house",
                    new_id,
                    row["area_code"],
                    "create",
                    source,
                    history.diff({}, {"address_code": row["address_code"], **dict(spec.facts)}),
                )
            )
        bulk_insert(session, _table(ChangeRecord), log, {"at": utcnow()})
    return refs


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def _insert_returning_ids(
    session: Session, model: type[House] | type[Person], rows: list[dict[str, Any]]
) -> list[int]:
    """Insert rows with Core (no ORM bulk layer) and return their new ids in order.

    PostgreSQL batches INSERT ... RETURNING well and must keep its sequences right, so it uses that.
    SQLite turns a RETURNING executemany into one statement per row; there the ids are assigned after
    max(id) and written with one executemany. A concurrent writer taking the same ids makes the insert
    fail on the primary key, and the importer then falls back to its per-row path: nothing is lost.
    """
    table = _table(model)
    stamps = _stamps(utcnow())
    if session.get_bind().dialect.name != "sqlite":
        stmt = insert(table).values(**stamps).returning(table.c.id, sort_by_parameter_order=True)
        return [row[0] for row in session.execute(stmt, rows)]
    first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    ids = list(range(first, first + len(rows)))
    rows = [{"id": new_id, **row} for row, new_id in zip(rows, ids, strict=True)]
    bulk_insert(session, table, rows, stamps)
    return ids


def _stamps(now: datetime) -> dict[str, datetime]:
    return {"created_at": now, "updated_at": now}


def _facts_of(house: House) -> tuple[tuple[str, Any], ...]:
    return tuple((k, getattr(house, k)) for k in ("area_m2", "use", "ownership", "occupancy"))


def _house_row(building: Building, spec: HouseSpec, code: str) -> dict[str, Any]:
    return {
        "area_code": building.area_code,
        "building_id": building.id,
        "community_code": building.community_code,
        "unit": spec.unit,
        "room": spec.room,
        "floor": places.floor_of_room(spec.room),
        "address_code": code,
        "full_address": f"{building.full_address}{spec.unit}单元{spec.room}室",
        "area_m2": None,
        "use": "residence",
        "ownership": "resettlement",
        "occupancy": "owner_occupied",
        **dict(spec.facts),
    }


def _change(
    principal: Principal,
    entity: str,
    entity_id: int,
    area_code: str,
    action: str,
    source: str,
    changes: dict[str, Any],
) -> dict[str, Any]:
    return {
        "actor_id": principal.actor.id,
        "actor": principal.actor.name,
        "entity": entity,
        "entity_id": entity_id,
        "area_code": area_code,
        "action": action,
        "changes": changes,
        "source": source,
    }


def create_people(
    session: Session, principal: Principal, residents: list[NewResident], *, community_code: str, source: str
) -> list[int]:
    """Insert new people with their residence, tags and history; returns their ids in order."""
    if not residents:
        return []
    now = utcnow()
    rows = []
    for r in residents:
        home = r.house.area_code if r.house else community_code
        columns = people.columns(r.facts, home=home, hashed_id=r.id_hash)
        rows.append(columns)
    ids = _insert_returning_ids(session, Person, rows)
    residences: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    today = local_today()
    for person_id, r, row in zip(ids, residents, rows, strict=True):
        home = row["area_code"]
        log.append(
            _change(principal, "person", person_id, home, "create", source, people.creation_changes(r.facts))
        )
        tags.extend({"person_id": person_id, "tag": t, "area_code": home} for t in r.facts.tags)
        if r.house is not None:
            residences.append(
                {
                    "person_id": person_id,
                    "house_id": r.house.id,
                    "relation": r.relation,
                    "area_code": home,
                    "move_in": r.move_in or today,
                    "move_out": None,
                }
            )
            log.append(
                _change(
                    principal,
                    "person",
                    person_id,
                    home,
                    "move_in",
                    source,
                    {"house": [None, r.house.full_address], "relation": [None, r.relation]},
                )
            )
    for model, values in ((Residence, residences), (PersonTag, tags), (ChangeRecord, log)):
        if values:
            stamps = {} if model is PersonTag else {"at": now} if model is ChangeRecord else _stamps(now)
            bulk_insert(session, _table(model), values, stamps)
    return ids
