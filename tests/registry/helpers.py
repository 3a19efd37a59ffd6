"""Register builders on top of the services (realistic addresses in the fixed world)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.registry import people, places
from linli.registry.models import House, Person


def house(
    session: Session,
    principal: Principal,
    community: str,
    building: str = "3",
    unit: str = "2",
    room: str = "501",
    grid: str | None = None,
    **facts: Any,
) -> House:
    """A house in community (building and house created if new), optionally in one of its grids."""
    b, _ = places.upsert_building(
        session, principal, community_code=community, number=building, grid_code=grid
    )
    h, _ = places.upsert_house(session, principal, building=b, unit=unit, room=room, facts=facts)
    return h


def resident(
    session: Session, principal: Principal, home: House, data: dict[str, Any], relation: str = "owner"
) -> Person:
    """A person living in home."""
    p, _ = people.upsert(session, principal, data, house=home, relation=relation)
    return p
