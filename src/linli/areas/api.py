"""Areas JSON API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from linli.areas import service
from linli.core.auth.roles import Perm
from linli.web.deps import DB, CurrentPrincipal

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


class AreaOut(BaseModel):
    """An area with its facts."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    level: str
    parent_code: str | None
    name: str
    resettlement: bool
    lat: float | None
    lon: float | None
    buildings: int | None
    floor_area: float | None
    plot_ratio: float | None
    green_ratio: float | None
    households: int | None


class AreaDetail(AreaOut):
    """An area with its boundary and its chain of ancestors."""

    boundary: dict[str, Any] | None
    ancestors: list[AreaOut]


@router.get("", response_model=list[AreaOut])
def list_areas(
    session: DB, principal: CurrentPrincipal, parent: str | None = None, level: str | None = None
) -> list[AreaOut]:
    """Children of parent (the caller's own areas when no parent is given), or all of one level."""
    principal.require(Perm.AREAS_READ)
    if level:
        rows = service.get_all(session, level=level, under=parent)
    elif parent:
        rows = service.children(session, code=parent)
    else:
        rows = service.roots(session, codes=() if principal.scope.unrestricted else principal.area_codes)
    return [AreaOut.model_validate(a) for a in rows]


@router.get("/{code}", response_model=AreaDetail)
def get_area(code: str, session: DB, principal: CurrentPrincipal) -> AreaDetail:
    """One area (404 outside the caller's areas)."""
    principal.require(Perm.AREAS_READ)
    area = service.get_or_raise(session, code=code)
    chain = [AreaOut.model_validate(a) for a in service.ancestors(session, code=code)]
    return AreaDetail(**AreaOut.model_validate(area).model_dump(), boundary=area.boundary, ancestors=chain)
