"""Change history of register records: who changed what, when, old and new values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.audit import Actor
from linli.registry.models import ChangeRecord


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Fields whose value differs, as {field: [old, new]} (values made JSON-friendly)."""
    out: dict[str, list[Any]] = {}
    for key, value in new.items():
        before = old.get(key)
        if before != value:
            out[key] = [_jsonable(before), _jsonable(value)]
    return out


def apply(obj: object, new: dict[str, Any]) -> dict[str, list[Any]]:
    """Set new values on obj where they differ; returns the changes as {field: [old, new]}."""
    changes = diff({key: getattr(obj, key) for key in new}, new)
    for key in changes:
        setattr(obj, key, new[key])
    return changes


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def record(
    session: Session,
    *,
    actor: Actor,
    entity: str,
    entity_id: int,
    area_code: str,
    action: str,
    changes: dict[str, Any] | None = None,
    source: str = "",
) -> ChangeRecord:
    """Append a history entry in the caller's transaction."""
    entry = ChangeRecord(
        actor_id=actor.id,
        actor=actor.name,
        entity=entity,
        entity_id=entity_id,
        area_code=area_code,
        action=action,
        changes=changes or {},
        source=source,
    )
    session.add(entry)
    return entry


def log(
    session: Session,
    actor: Actor,
    row: Any,
    entity: str,
    action: str,
    changes: dict[str, Any] | None = None,
    source: str = "",
) -> ChangeRecord:
    """Append a history entry about row (anything with an id and an area_code)."""
    return record(
        session,
        actor=actor,
        entity=entity,
        entity_id=row.id,
        area_code=row.area_code,
        action=action,
        changes=changes,
        source=source,
    )


def get_all(session: Session, *, entity: str, entity_id: int, limit: int = 200) -> list[ChangeRecord]:
    """A record's history, newest first (scoped like everything else)."""
    stmt = (
        select(ChangeRecord)
        .where(ChangeRecord.entity == entity, ChangeRecord.entity_id == entity_id)
        .order_by(ChangeRecord.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
