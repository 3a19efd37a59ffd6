"""Areas: look-ups within the caller's scope, the tree, ancestors and creation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli.areas.models import CODE_LENGTH, LEVEL_OF_LENGTH, LEVEL_ORDER, Area, Level
from linli.core.errors import Invalid, NotFound
from linli.db import starts_with


def level_of(code: str) -> Level:
    """The level an area code belongs to, from its length; Invalid if the length fits no level."""
    level = LEVEL_OF_LENGTH.get(len(code))
    if level is None or not code.isdigit():
        raise Invalid(f"区域代码格式不正确：{code}", field="area_code")
    return level


def parent_code_of(code: str) -> str | None:
    """The parent's code (None for a district)."""
    level = level_of(code)
    index = LEVEL_ORDER.index(level)
    return None if index == 0 else code[: CODE_LENGTH[LEVEL_ORDER[index - 1]]]


def get(session: Session, *, code: str) -> Area | None:
    """The area with that code if the caller may see it."""
    return session.scalar(select(Area).where(Area.area_code == code))


def get_or_raise(session: Session, *, code: str, field: str = "area_code") -> Area:
    """The area with that code in the caller's scope, else NotFound naming the field."""
    area = get(session, code=code)
    if area is None:
        raise NotFound(f"区域不存在或不在权限范围内：{code}", field=field)
    return area


def get_community_or_raise(session: Session, *, code: str, field: str = "community") -> Area:
    """The community with that code in scope, else NotFound/Invalid naming the field."""
    area = get_or_raise(session, code=code, field=field)
    if area.level != Level.COMMUNITY:
        raise Invalid(f"{code} 不是社区代码", field=field)
    return area


def children(session: Session, *, code: str | None) -> list[Area]:
    """The direct children of an area (the top level when code is None), in code order."""
    stmt = select(Area).order_by(Area.area_code)
    stmt = stmt.where(Area.parent_code == code) if code else stmt.where(Area.parent_code.is_(None))
    return list(session.scalars(stmt))


def roots(session: Session, *, codes: tuple[str, ...]) -> list[Area]:
    """The areas a caller is bound to (the tops of their visible tree)."""
    if not codes:
        return children(session, code=None)
    return list(session.scalars(select(Area).where(Area.area_code.in_(codes)).order_by(Area.area_code)))


def ancestors(session: Session, *, code: str) -> list[Area]:
    """The chain from the district down to (not including) code; names only, so shown unscoped."""
    codes = []
    parent = parent_code_of(code)
    while parent:
        codes.append(parent)
        parent = parent_code_of(parent)
    if not codes:
        return []
    stmt = select(Area).where(Area.area_code.in_(codes)).order_by(Area.area_code)
    return list(session.scalars(stmt.execution_options(skip_scope=True)))


def get_all(session: Session, *, level: str | None = None, under: str | None = None) -> list[Area]:
    """All areas in scope, optionally of one level and under one area."""
    stmt = select(Area).order_by(Area.area_code)
    if level:
        stmt = stmt.where(Area.level == level)
    if under:
        stmt = stmt.where(starts_with(Area.area_code, under))
    return list(session.scalars(stmt))


def count_by_level(session: Session, *, under: str | None = None) -> dict[str, int]:
    """How many areas of each level are in scope (under one area if given)."""
    stmt = select(Area.level, func.count()).group_by(Area.level)
    if under:
        stmt = stmt.where(starts_with(Area.area_code, under))
    return {level: n for level, n in session.execute(stmt).all()}


def root_codes(session: Session) -> tuple[str, ...]:
    """Codes of the top-level areas (districts): a user bound to one sees everything."""
    stmt = select(Area.area_code).where(Area.parent_code.is_(None)).execution_options(skip_scope=True)
    return tuple(session.scalars(stmt))


def create(session: Session, *, code: str, name: str, **facts: Any) -> Area:
    """Add an area; its level and parent follow from the code, and the parent must exist."""
    level = level_of(code)
    parent = parent_code_of(code)
    if parent is not None:
        get_or_raise(session, code=parent, field="parent_code")
    if session.scalar(select(Area.id).where(Area.area_code == code).execution_options(skip_scope=True)):
        raise Invalid(f"区域代码已存在：{code}", field="area_code")
    area = Area(code=code, level=level.value, parent_code=parent, name=name, **facts)
    session.add(area)
    session.flush()
    return area
