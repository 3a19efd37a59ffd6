"""Counts of the register in the caller's scope, for overview pages."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli.db import starts_with
from linli.registry.models import Building, House, Organisation, Person, PersonTag, Vehicle


def counts(session: Session, *, under: str | None = None) -> dict[str, int]:
    """How many buildings, houses, people, organisations and vehicles the caller sees (under one area)."""
    out: dict[str, int] = {}
    for key, model in (
        ("楼栋", Building),
        ("房屋", House),
        ("人口", Person),
        ("单位", Organisation),
        ("车辆", Vehicle),
    ):
        stmt = select(func.count()).select_from(model)
        if model is Person:
            stmt = stmt.where(Person.merged_into_id.is_(None))
        if under:
            stmt = stmt.where(starts_with(model.area_code, under))
        out[key] = session.scalar(stmt) or 0
    return out


def tag_counts(session: Session, *, under: str | None = None) -> dict[str, int]:
    """People per care tag in scope."""
    stmt = select(PersonTag.tag, func.count()).group_by(PersonTag.tag)
    if under:
        stmt = stmt.where(starts_with(PersonTag.area_code, under))
    return {tag: n for tag, n in session.execute(stmt).all()}
