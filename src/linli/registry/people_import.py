"""Batched import of people rows: validate in Python, write new records in bulk, the rest one by one.

Per chunk of rows: rows that fail validation are rejected with their row number and field; rows whose
person is not registered yet are written in a few bulk statements; rows that touch existing records
(or carry a plate, or repeat an ID number of the same file) go through the same per-row service path
as a single form entry, each in its own savepoint. A re-imported unchanged row costs no write at all.
If a bulk write fails the chunk falls back to the per-row path, so one bad row never loses the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.core.errors import Invalid, LinliError
from linli.core.tabular import SourceRow
from linli.registry import bulk, people, places
from linli.registry.models import Building, House, Person, PersonTag, Residence
from linli.registry.vocab import RELATION, to_code

CHUNK = 2000
log = logging.getLogger(__name__)
_PLAIN = ("name", "birth_date", "sex", "phone", "hukou_place", "ethnicity", "notes")


@dataclass
class Planned:
    """A validated row."""

    row: SourceRow
    facts: people.CleanPerson
    spec: bulk.HouseSpec | None
    relation: str
    move_in: date | None
    id_hash: str


@dataclass
class Context:
    """One import's state across chunks."""

    session: Session
    principal: Principal
    community: str
    source: str
    read_date: Callable[[str | None, str], date | None]
    buildings: dict[str, Building]
    seen: set[str]


def house_spec(values: dict[str, str | None]) -> bulk.HouseSpec | None:
    """The house a row names (None when it names none); Invalid when half an address is given."""
    if not values.get("building") and not values.get("room"):
        return None
    if not values.get("building"):
        raise Invalid("填写了房号但缺少楼栋号", field="building")
    if not values.get("room"):
        raise Invalid("填写了楼栋号但缺少房号", field="room")
    facts = places.house_values({k: values.get(k) for k in ("area_m2", "use", "ownership", "occupancy")})
    return bulk.HouseSpec(
        building=places.normalise_building_number(values["building"] or ""),
        unit=places.normalise_unit(values.get("unit")),
        room=places.normalise_room(values["room"] or ""),
        facts=tuple(sorted(facts.items())),
    )


def plan(ctx: Context, row: SourceRow) -> Planned:
    """Validate one row (no database access); LinliError names the field."""
    values = row.values
    facts = people.clean({**values, "birth_date": ctx.read_date(values.get("birth_date"), "birth_date")})
    return Planned(
        row=row,
        facts=facts,
        spec=house_spec(values),
        relation=to_code(RELATION, values.get("relation"), field="relation") or "family",
        move_in=ctx.read_date(values.get("move_in"), "move_in"),
        id_hash=people.id_hash(facts.id_type, facts.id_number),
    )


def split(
    ctx: Context, chunk: list[SourceRow], rejected: Callable[[int, LinliError], None]
) -> tuple[list[Planned], list[Planned], list[SourceRow]]:
    """(new people for the bulk path, existing people to check, rows for the per-row path)."""
    fresh: list[Planned] = []
    existing: list[Planned] = []
    slow: list[SourceRow] = []
    planned: list[Planned] = []
    for row in chunk:
        if row.values.get("plate"):
            slow.append(row)
            continue
        try:
            item = plan(ctx, row)
        except LinliError as exc:
            rejected(row.row, exc)
            continue
        if item.id_hash in ctx.seen:
            slow.append(row)  # the same person twice in one file: the second row updates the first
            continue
        ctx.seen.add(item.id_hash)
        planned.append(item)
    known = people.find_many_by_hash(ctx.session, hashes=[p.id_hash for p in planned])
    for item in planned:
        (existing if item.id_hash in known else fresh).append(item)
    return fresh, existing, slow


def write_new(ctx: Context, fresh: list[Planned]) -> int:
    """Bulk-create the houses and people of fresh rows; returns how many people were created."""
    specs = {p.spec for p in fresh if p.spec is not None}
    refs = bulk.ensure_houses(
        ctx.session,
        ctx.principal,
        community_code=ctx.community,
        specs=specs,
        buildings=ctx.buildings,
        source=ctx.source,
    )
    for spec, ref in refs.items():
        given = dict(spec.facts)
        if given and any(dict(ref.facts).get(k) != v for k, v in given.items()):
            building = ctx.buildings[spec.building]
            places.upsert_house(
                ctx.session,
                ctx.principal,
                building=building,
                unit=spec.unit,
                room=spec.room,
                facts=given,
                source=ctx.source,
            )
    residents = [
        bulk.NewResident(p.facts, refs[p.spec] if p.spec else None, p.relation, p.move_in, p.id_hash)
        for p in fresh
    ]
    return len(
        bulk.create_people(
            ctx.session, ctx.principal, residents, community_code=ctx.community, source=ctx.source
        )
    )


def unchanged(ctx: Context, existing: list[Planned]) -> tuple[list[Planned], list[Planned]]:
    """(rows that would change nothing, rows that need the per-row path)."""
    if not existing:
        return [], []
    known = people.find_many_by_hash(ctx.session, hashes=[p.id_hash for p in existing])
    ids = [p.id for p in known.values()]
    visible = set(ctx.session.scalars(select(Person.id).where(Person.id.in_(ids))))
    current = {
        (r.person_id, r.house_id): r.relation
        for r in ctx.session.scalars(
            select(Residence)
            .where(Residence.person_id.in_(ids), Residence.move_out.is_(None))
            .execution_options(skip_scope=True)
        )
    }
    tags: dict[int, set[str]] = {}
    for t in ctx.session.scalars(
        select(PersonTag).where(PersonTag.person_id.in_(ids)).execution_options(skip_scope=True)
    ):
        tags.setdefault(t.person_id, set()).add(t.tag)
    houses = _existing_houses(ctx, {p.spec for p in existing if p.spec is not None})
    same: list[Planned] = []
    changed: list[Planned] = []
    for item in existing:
        person = known[item.id_hash]
        house = houses.get(item.spec) if item.spec else None
        ok = (
            person.id in visible
            and all(getattr(item.facts, f) in (None, getattr(person, f)) for f in _PLAIN)
            and set(item.facts.tags) <= tags.get(person.id, set())
            and (
                item.spec is None
                or (
                    house is not None
                    and current.get((person.id, house.id)) == item.relation
                    and all(getattr(house, k) == v for k, v in item.spec.facts)
                )
            )
        )
        (same if ok else changed).append(item)
    return same, changed


def _existing_houses(ctx: Context, specs: set[bulk.HouseSpec]) -> dict[bulk.HouseSpec, House]:
    codes = {}
    for spec in specs:
        building = ctx.buildings.get(spec.building) or places.find_building(
            ctx.session, community_code=ctx.community, number=spec.building
        )
        if building is not None:
            ctx.buildings[spec.building] = building
            codes[places.house_code(building.address_code, spec.unit, spec.room)] = spec
    found = ctx.session.scalars(select(House).where(House.address_code.in_(list(codes))))
    return {codes[h.address_code]: h for h in found}


def run_chunk(
    ctx: Context,
    chunk: list[SourceRow],
    *,
    one_by_one: Callable[[SourceRow], None],
    rejected: Callable[[int, LinliError], None],
    count: Callable[[str, int], None],
) -> None:
    """Import one chunk: bulk where possible, per row where needed, per row for all if bulk fails."""
    fresh, existing, slow = split(ctx, chunk, rejected)
    same, changed = unchanged(ctx, existing)
    count("unchanged", len(same))
    savepoint = ctx.session.begin_nested()
    try:
        count_created = write_new(ctx, fresh)
        savepoint.commit()
        count("created", count_created)
        count("bulk", count_created)
    except (LinliError, SQLAlchemyError) as exc:
        savepoint.rollback()
        log.warning("bulk import of %d rows failed (%s); importing them one by one", len(fresh), exc)
        ctx.buildings.clear()
        for item in fresh:
            ctx.seen.discard(item.id_hash)
        slow.extend(p.row for p in fresh)
    for row in sorted([*slow, *(p.row for p in changed)], key=lambda r: r.row):
        one_by_one(row)


def context(
    session: Session,
    principal: Principal,
    community: str,
    source: str,
    read_date: Callable[[str | None, str], date | None],
) -> Context:
    """A fresh import context."""
    return Context(
        session=session,
        principal=principal,
        community=community,
        source=source,
        read_date=read_date,
        buildings={},
        seen=set(),
    )
