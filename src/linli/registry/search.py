"""Search the register: name, pinyin initials, last digits of ID or phone, address text, tags, area.

Every branch is an index look-up (prefix ranges, tails, keyed hashes, address-code prefixes), so search
stays fast with a million people; the caller's scope is applied by the session like everywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.orm import Session

from linli.areas.models import Area, Level
from linli.core import pii
from linli.core.text import is_latin_query
from linli.db import starts_with
from linli.registry import places, validation
from linli.registry.models import House, Person, PersonTag, Residence
from linli.registry.people import id_hash

_ADDRESS = re.compile(
    r"^(?P<community>[\u4e00-\u9fff]*?)\s*(?P<building>[0-9]{1,4})\s*(?:号楼|栋|幢|#|号|-)\s*"
    r"(?:(?P<unit>[0-9]{1,2})\s*(?:单元|-))?\s*(?:(?P<room>[0-9]{2,5})\s*(?:室|号)?)?$"
)
_TAIL = re.compile(r"^[0-9]{3,17}[0-9Xx]?$")


@dataclass(frozen=True)
class AddressQuery:
    """A typed address split into parts: community text, building, unit, room."""

    community: str
    building: str
    unit: str | None
    room: str | None


def parse_address(text: str) -> AddressQuery | None:
    """'天府和苑3号楼2单元501' / '3-2-501' / '3号楼501' → parts; None if it does not look like an address."""
    match = _ADDRESS.match(text.replace(" ", ""))
    if not match:
        return None
    return AddressQuery(
        community=match.group("community") or "",
        building=match.group("building").lstrip("0") or "0",
        unit=(match.group("unit") or "").lstrip("0") or None,
        room=(match.group("room") or "").lstrip("0") or None,
    )


def _address_prefixes(session: Session, query: AddressQuery, community_code: str | None) -> list[str]:
    stmt = select(Area.area_code).where(Area.level == Level.COMMUNITY.value)
    if query.community:
        stmt = stmt.where(Area.name.contains(query.community))
    if community_code:
        stmt = stmt.where(starts_with(Area.area_code, community_code))
    codes = list(session.scalars(stmt.limit(50)))
    prefixes = []
    for code in codes:
        prefix = places.building_code(code, query.building)
        if query.unit and query.room:
            prefixes.append(places.house_code(prefix, query.unit, query.room))
        elif query.unit:
            prefixes.append(f"{prefix}-{query.unit.zfill(2)}-")
        else:  # a room without a unit is filtered on House.room
            prefixes.append(f"{prefix}-")
    return prefixes


def _people_at(prefixes: list[str], room: str | None) -> Select[Person]:
    houses = select(House.id).where(_any_prefix(House.address_code, prefixes))
    if room:
        houses = houses.where(House.room == room)
    living = select(Residence.person_id).where(Residence.house_id.in_(houses), Residence.move_out.is_(None))
    return select(Person).where(Person.id.in_(living))


def _any_prefix(column: Any, prefixes: list[str]) -> ColumnElement[bool]:
    return or_(*(starts_with(column, p) for p in prefixes)) if prefixes else false()


def build_query(
    session: Session,
    *,
    text: str = "",
    tags: list[str] | None = None,
    community_code: str | None = None,
) -> Select[Person]:
    """The SELECT of people matching a free-text query, tags and area (scope applies on execution)."""
    text = validation.fold_width(text).strip()
    stmt = select(Person).where(Person.merged_into_id.is_(None))
    if text:
        stmt = _text_clause(session, stmt, text, community_code)
    for tag in tags or []:
        stmt = stmt.where(Person.id.in_(select(PersonTag.person_id).where(PersonTag.tag == tag)))
    if community_code:
        stmt = stmt.where(starts_with(Person.area_code, community_code))
    return stmt


def _text_clause(
    session: Session, stmt: Select[Person], text: str, community_code: str | None
) -> Select[Person]:
    compact = text.replace(" ", "")
    if _TAIL.match(compact):
        return stmt.where(_digits_clause(compact))
    if is_latin_query(compact):
        key = compact.lower()
        return stmt.where(or_(starts_with(Person.name_initials, key), starts_with(Person.name_pinyin, key)))
    address = parse_address(compact)
    if address is not None:
        prefixes = _address_prefixes(session, address, community_code)
        by_address = _people_at(prefixes, address.room if not address.unit else None)
        return stmt.where(Person.id.in_(by_address.with_only_columns(Person.id)))
    return stmt.where(starts_with(Person.name, text))


def _digits_clause(digits: str) -> ColumnElement[bool]:
    upper = digits.upper()
    if len(upper) == 18:
        return Person.id_hash == id_hash("resident_id", upper)
    if len(upper) == 11 and upper.startswith("1"):
        return Person.phone_hash == pii.lookup_hash("phone", upper)
    tail = upper[-4:]
    return or_(Person.id_tail == tail, Person.phone_tail == tail)


def _search_pinyin(
    session: Session, key: str, tags: list[str] | None, community_code: str | None, limit: int, offset: int
) -> list[Person]:
    """Initials matches first (zs → 张三, 张淑...), then full-pinyin matches (zhang → 张...).

    Two queries, each walking its own index in order and stopping at limit: one query with
    "initials OR pinyin" would have to collect and sort every match (tens of ms at district scale).
    """
    base = build_query(session, tags=tags, community_code=community_code)
    need = offset + limit
    by_initials = base.where(starts_with(Person.name_initials, key)).order_by(
        Person.name_initials, Person.name, Person.id
    )
    by_pinyin = base.where(starts_with(Person.name_pinyin, key)).order_by(Person.name_pinyin, Person.id)
    found: dict[int, Person] = {}
    for stmt in (by_initials, by_pinyin):
        for person in session.scalars(stmt.limit(need)):
            found.setdefault(person.id, person)
    return list(found.values())[offset:need]


def search(
    session: Session,
    *,
    text: str = "",
    tags: list[str] | None = None,
    community_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Person]:
    """People matching the query in the caller's scope, by name; a tail longer than 4 digits is checked
    against the decrypted number (only for the few rows the indexed tail found)."""
    compact = validation.fold_width(text).replace(" ", "").upper()
    if is_latin_query(compact):
        return _search_pinyin(session, compact.lower(), tags, community_code, limit, offset)
    stmt = build_query(session, text=text, tags=tags, community_code=community_code)
    long_tail = bool(_TAIL.match(compact)) and 4 < len(compact) < 11
    stmt = stmt.order_by(Person.name, Person.id)
    if not long_tail:
        return list(session.scalars(stmt.limit(limit).offset(offset)))
    found = [
        p
        for p in session.scalars(stmt.limit(2000))
        if p.id_number.endswith(compact) or (p.phone or "").endswith(compact)
    ]
    return found[offset : offset + limit]
