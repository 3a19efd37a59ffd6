"""Registry console pages for 标准地址 and 实有房屋: buildings per community, a building's houses, houses."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.pagination import PageWindow
from linli.registry import history, organisations, people, places
from linli.registry.models import House
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
Community = Annotated[str, Query(max_length=32, pattern=r"^[0-9]*$")]
Page = Annotated[int, Query(ge=1, le=10000)]

# unit -> [(floor, [houses on that floor, by room])], top floor first, as staff read a building.
FloorPlan = list[tuple[str, list[tuple[int, list[House]]]]]


@router.get("/buildings", response_class=HTMLResponse)
def building_list(
    request: Request, session: DB, principal: PagePrincipal, community: Community = ""
) -> Response:
    """Buildings in the caller's areas, optionally of one community."""
    principal.require(Perm.HOUSES_READ)
    return render(
        request,
        "registry/buildings.html",
        community=community,
        buildings=places.list_buildings(session, community_code=community or None),
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
    )


@router.get("/buildings/{building_id}", response_class=HTMLResponse)
def building_page(request: Request, building_id: int, session: DB, principal: PagePrincipal) -> Response:
    """A building: its facts and its houses laid out by unit and floor."""
    principal.require(Perm.HOUSES_READ)
    building = places.get_building(session, building_id=building_id)
    houses = places.list_houses(session, building_id=building.id, limit=5000)
    return render(
        request,
        "registry/building.html",
        building=building,
        plan=floor_plan(houses),
        house_count=len(houses),
        community=areas.get(session, code=building.community_code),
        changes=history.get_all(session, entity="building", entity_id=building.id, limit=20),
    )


@router.get("/houses", response_class=HTMLResponse)
def house_list(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    community: Community = "",
    building: Annotated[int | None, Query(ge=1)] = None,
    page: Page = 1,
) -> Response:
    """Houses in the caller's areas in address order, by community or building, a page at a time."""
    principal.require(Perm.HOUSES_READ)
    window = PageWindow(page, PAGE_SIZE)
    found = places.list_houses(
        session,
        building_id=building,
        community_code=community or None,
        limit=window.limit,
        offset=window.offset,
    )
    shown, has_more = window.split(found)
    return render(
        request,
        "registry/houses.html",
        houses=shown,
        has_more=has_more,
        page=page,
        community=community,
        building=building,
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
    )


@router.get("/houses/{house_id}", response_class=HTMLResponse)
def house_page(request: Request, house_id: int, session: DB, principal: PagePrincipal) -> Response:
    """A house: its facts, who lives and lived there, organisations at the address, its history."""
    principal.require(Perm.HOUSES_READ)
    house = places.get_house(session, house_id=house_id)
    occupants = people.occupants(session, house_id=house.id)
    return render(
        request,
        "registry/house.html",
        house=house,
        building=places.get_building(session, building_id=house.building_id),
        current=[(r, p) for r, p in occupants if r.move_out is None],
        past=[(r, p) for r, p in occupants if r.move_out is not None],
        orgs=organisations.at_house(session, house_id=house.id),
        can_read_people=principal.can(Perm.PEOPLE_READ),
        changes=history.get_all(session, entity="house", entity_id=house.id, limit=50),
    )


def _natural(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (10**6, text)


def floor_plan(houses: Iterable[House]) -> FloorPlan:
    """Houses grouped by unit (in number order), then floor from the top down, rooms in order."""
    ordered = sorted(houses, key=lambda h: (_natural(h.unit), -h.floor, _natural(h.room)))
    plan: FloorPlan = []
    for unit, in_unit in groupby(ordered, key=lambda h: h.unit):
        floors = [(floor, list(rooms)) for floor, rooms in groupby(in_unit, key=lambda h: h.floor)]
        plan.append((unit, floors))
    return plan
