"""Registry pages of an area: where it sits, its facts and the register's counts; a community's map.

(Here rather than in areas/, because the page composes the register: registry uses areas, not the reverse.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from linli.areas import service as areas
from linli.areas.models import Area, Level
from linli.core.auth.roles import Perm
from linli.registry import overview, places
from linli.registry.models import Building
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/areas/{code}", response_class=HTMLResponse)
def area_page(request: Request, code: str, session: DB, principal: PagePrincipal) -> Response:
    """One area: where it sits, its facts, the register's counts, its children; a community's map."""
    principal.require(Perm.AREAS_READ)
    area = areas.get_or_raise(session, code=code)
    is_community = area.level == Level.COMMUNITY.value
    buildings = places.list_buildings(session, community_code=area.code) if is_community else []
    tags = sorted(overview.tag_counts(session, under=area.code).items(), key=lambda kv: -kv[1])
    return render(
        request,
        "registry/area.html",
        area=area,
        ancestors=areas.ancestors(session, code=area.code),
        children=areas.children(session, code=area.code),
        counts=overview.counts(session, under=area.code),
        tag_counts=tags,
        buildings=buildings,
        map_data=map_features(area, buildings) if is_community else None,
        roots=areas.roots(session, codes=() if principal.scope.unrestricted else principal.area_codes),
    )


def map_features(area: Area, buildings: list[Building]) -> dict[str, Any]:
    """The community boundary and building footprints as one GeoJSON FeatureCollection for Leaflet."""
    features = []
    if area.boundary:
        features.append(_feature(area.boundary, kind="boundary", name=area.name))
    for b in buildings:
        shape = b.footprint or ({"type": "Point", "coordinates": [b.lon, b.lat]} if b.lat and b.lon else None)
        if shape:
            features.append(_feature(shape, kind="building", name=b.name, url=f"/buildings/{b.id}"))
    centre = [area.lat, area.lon] if area.lat is not None and area.lon is not None else None
    return {"type": "FeatureCollection", "features": features, "centre": centre}


def _feature(shape: dict[str, Any], **properties: Any) -> dict[str, Any]:
    geometry = shape.get("geometry") if shape.get("type") == "Feature" else shape
    return {"type": "Feature", "geometry": geometry, "properties": properties}
