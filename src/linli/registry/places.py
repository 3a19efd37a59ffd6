"""标准地址 and 实有房屋: buildings and houses, one record per address code."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, NotFound
from linli.registry import history
from linli.registry.models import Building, House
from linli.registry.vocab import HOUSE_USE, OCCUPANCY, OWNERSHIP, to_code

_NUMBER = re.compile(r"^\s*(?:第)?([0-9A-Za-z]{1,6})\s*(?:号楼|栋|幢|号|#|楼)?\s*$")
_UNIT = re.compile(r"^\s*(?:第)?([0-9A-Za-z]{1,4})\s*(?:单元)?\s*$")
_ROOM = re.compile(r"^\s*([0-9]{3,5}|[A-Za-z]?[0-9]{1,5}[A-Za-z]?)\s*(?:室|号)?\s*$")


def normalise_building_number(raw: str, *, field: str = "building") -> str:
    """'3号楼', '3栋', '03', '3#' → '3'; Invalid otherwise."""
    match = _NUMBER.match(str(raw))
    if not match:
        raise Invalid(f"楼栋号格式不正确：{raw}", field=field)
    return match.group(1).upper().lstrip("0") or "0"


def normalise_unit(raw: str | None, *, field: str = "unit") -> str:
    """'2单元', '02', '2' → '2'; a blank unit is '1' (single-unit buildings)."""
    if raw is None or not str(raw).strip():
        return "1"
    match = _UNIT.match(str(raw))
    if not match:
        raise Invalid(f"单元号格式不正确：{raw}", field=field)
    return match.group(1).upper().lstrip("0") or "0"


def normalise_room(raw: str, *, field: str = "room") -> str:
    """'501室', '0501', '501' → '501'; Invalid otherwise."""
    match = _ROOM.match(str(raw))
    if not match:
        raise Invalid(f"房号格式不正确：{raw}", field=field)
    return match.group(1).upper().lstrip("0") or "0"


def floor_of_room(room: str) -> int:
    """The floor a room number implies: 501 → 5, 1203 → 12, 12 → 1."""
    digits = re.sub(r"\D", "", room)
    return max(int(digits[:-2]), 1) if len(digits) >= 3 else 1


def building_code(community_code: str, number: str) -> str:
    """Stable address code of a building: community code + zero-padded building number."""
    return f"{community_code}-{number.zfill(3)}"


def house_code(building_address_code: str, unit: str, room: str) -> str:
    """Stable address code of a house: building code + unit + room."""
    return f"{building_address_code}-{unit.zfill(2)}-{room.zfill(4)}"


def get_building(session: Session, *, building_id: int) -> Building:
    """A building in scope, else NotFound."""
    building = session.scalar(select(Building).where(Building.id == building_id))
    if building is None:
        raise NotFound("楼栋不存在或不在权限范围内", field="building")
    return building


def find_building(session: Session, *, community_code: str, number: str) -> Building | None:
    """The building with that number in a community (in scope)."""
    code = building_code(community_code, number)
    return session.scalar(select(Building).where(Building.address_code == code))


def building_numbers(session: Session, *, building_ids: set[int]) -> dict[int, str]:
    """The numbers of buildings (in scope), by id: what a sheet's 楼栋 column holds."""
    stmt = select(Building.id, Building.number).where(Building.id.in_(sorted(building_ids)))
    return {building_id: number for building_id, number in session.execute(stmt)}


def upsert_building(
    session: Session,
    principal: Principal,
    *,
    community_code: str,
    number: str,
    floors: int | None = None,
    units: int | None = None,
    grid_code: str | None = None,
    **extra: Any,
) -> tuple[Building, str]:
    """The building at (community, number), created if new; returns (building, outcome).

    A building may be placed in one of the community's grids: its houses and residents then carry the
    grid's code, so the grid worker sees them.
    """
    principal.require(Perm.HOUSES_WRITE)
    community = areas.get_community_or_raise(session, code=community_code)
    area_code = community.code
    if grid_code:
        grid = areas.get_or_raise(session, code=grid_code, field="grid")
        if grid.parent_code != community.code:
            raise Invalid(f"网格 {grid_code} 不属于社区 {community.code}", field="grid")
        area_code = grid.code
    number = normalise_building_number(number)
    building = find_building(session, community_code=community.code, number=number)
    if building is None:
        building = Building(
            area_code=area_code,
            community_code=community.code,
            number=number,
            name=f"{number}号楼",
            address_code=building_code(community.code, number),
            full_address=f"{community.name}{number}号楼",
            floors=floors,
            units=units,
            **extra,
        )
        session.add(building)
        session.flush()
        history.log(
            session,
            principal.actor,
            building,
            "building",
            "create",
            {"address_code": [None, building.address_code]},
        )
        return building, "created"
    sizes = {"floors": floors, "units": units}
    changes = history.apply(building, {k: v for k, v in sizes.items() if v is not None})
    if changes:
        history.log(session, principal.actor, building, "building", "update", changes)
    return building, "updated" if changes else "unchanged"


def check_same_community(community_code: str | None, actual: str, *, field: str) -> None:
    """Invalid when a record is said to be in one community but its building is in another."""
    if community_code and community_code != actual:
        raise Invalid(f"所选楼栋/房屋属于社区 {actual}，不属于 {community_code}", field=field)


def get_house(session: Session, *, house_id: int) -> House:
    """A house in scope, else NotFound."""
    house = session.scalar(select(House).where(House.id == house_id))
    if house is None:
        raise NotFound("房屋不存在或不在权限范围内", field="house")
    return house


def find_house(session: Session, *, building: Building, unit: str, room: str) -> House | None:
    """The house at (building, unit, room) if registered (in scope)."""
    code = house_code(building.address_code, unit, room)
    return session.scalar(select(House).where(House.address_code == code))


def house_values(data: dict[str, Any]) -> dict[str, Any]:
    """Validated optional house facts from loose input (labels or codes; area as number)."""
    values: dict[str, Any] = {}
    if data.get("area_m2") not in (None, ""):
        try:
            area = float(str(data["area_m2"]).replace("㎡", "").replace("m2", "").strip())
        except ValueError:
            raise Invalid(f"面积不是数字：{data['area_m2']}", field="area_m2") from None
        if not 0 < area < 10000:
            raise Invalid(f"面积超出合理范围：{area}", field="area_m2")
        values["area_m2"] = round(area, 2)
    for key, vocab in (("use", HOUSE_USE), ("ownership", OWNERSHIP), ("occupancy", OCCUPANCY)):
        code = to_code(vocab, data.get(key), field=key)
        if code:
            values[key] = code
    return values


def upsert_house(
    session: Session,
    principal: Principal,
    *,
    building: Building,
    unit: str | None,
    room: str,
    facts: dict[str, Any] | None = None,
    source: str = "",
) -> tuple[House, str]:
    """The house at (building, unit, room), created or updated with facts; returns (house, outcome)."""
    principal.require(Perm.HOUSES_WRITE)
    unit_n, room_n = normalise_unit(unit), normalise_room(room)
    values = house_values(facts or {})
    house = find_house(session, building=building, unit=unit_n, room=room_n)
    if house is None:
        house = House(
            area_code=building.area_code,
            building_id=building.id,
            community_code=building.community_code,
            unit=unit_n,
            room=room_n,
            floor=floor_of_room(room_n),
            address_code=house_code(building.address_code, unit_n, room_n),
            full_address=f"{building.full_address}{unit_n}单元{room_n}室",
            **values,
        )
        session.add(house)
        session.flush()
        history.log(
            session,
            principal.actor,
            house,
            "house",
            "create",
            history.diff({}, {"address_code": house.address_code, **values}),
            source=source,
        )
        return house, "created"
    changes = history.apply(house, values)
    if changes:
        history.log(session, principal.actor, house, "house", "update", changes, source=source)
    return house, "updated" if changes else "unchanged"


def list_buildings(
    session: Session, *, community_code: str | None = None, limit: int = 500
) -> list[Building]:
    """Buildings in scope, by community and number."""
    stmt = select(Building).order_by(Building.community_code, func.length(Building.number), Building.number)
    if community_code:
        stmt = stmt.where(Building.community_code == community_code)
    return list(session.scalars(stmt.limit(limit)))


def list_houses(
    session: Session,
    *,
    building_id: int | None = None,
    community_code: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[House]:
    """Houses in scope, in address order."""
    stmt = select(House).order_by(House.address_code).limit(limit).offset(offset)
    if building_id:
        stmt = stmt.where(House.building_id == building_id)
    if community_code:
        stmt = stmt.where(House.community_code == community_code)
    return list(session.scalars(stmt))
