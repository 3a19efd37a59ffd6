"""Registry console pages for 实有单位 and vehicles: lists and details (owners linked, never copied)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.errors import NotFound
from linli.core.pagination import PageWindow
from linli.registry import history, organisations, people, places, vehicles
from linli.registry.models import House, Organisation, Person
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
Community = Annotated[str, Query(max_length=32, pattern=r"^[0-9]*$")]
Page = Annotated[int, Query(ge=1, le=10000)]


@router.get("/organisations", response_class=HTMLResponse)
def organisation_list(
    request: Request, session: DB, principal: PagePrincipal, community: Community = "", page: Page = 1
) -> Response:
    """Organisations in the caller's areas, by name, a page at a time."""
    principal.require(Perm.ORGS_READ)
    window = PageWindow(page, PAGE_SIZE)
    found = organisations.get_all(
        session, community_code=community or None, limit=window.limit, offset=window.offset
    )
    shown, has_more = window.split(found)
    return render(
        request,
        "registry/organisations.html",
        orgs=shown,
        has_more=has_more,
        page=page,
        community=community,
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
    )


@router.get("/organisations/{org_id}", response_class=HTMLResponse)
def organisation_page(request: Request, org_id: int, session: DB, principal: PagePrincipal) -> Response:
    """An organisation: its facts (contact phone masked), its address and history."""
    principal.require(Perm.ORGS_READ)
    org = organisations.get_or_raise(session, org_id=org_id)
    return render(
        request,
        "registry/organisation.html",
        org=org,
        area=areas.get(session, code=org.area_code),
        house=_house(session, org.house_id),
        changes=history.get_all(session, entity="organisation", entity_id=org.id, limit=50),
    )


@router.get("/vehicles", response_class=HTMLResponse)
def vehicle_list(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    community: Community = "",
    plate: Annotated[str, Query(max_length=16)] = "",
    page: Page = 1,
) -> Response:
    """Vehicles in the caller's areas, by plate (prefix search), a page at a time."""
    principal.require(Perm.VEHICLES_READ)
    window = PageWindow(page, PAGE_SIZE)
    found = vehicles.get_all(
        session,
        community_code=community or None,
        plate_prefix=plate.strip() or None,
        limit=window.limit,
        offset=window.offset,
    )
    shown, has_more = window.split(found)
    return render(
        request,
        "registry/vehicles.html",
        vehicles=shown,
        has_more=has_more,
        page=page,
        community=community,
        plate=plate,
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
    )


@router.get("/vehicles/{vehicle_id}", response_class=HTMLResponse)
def vehicle_page(request: Request, vehicle_id: int, session: DB, principal: PagePrincipal) -> Response:
    """A vehicle (一车一档): its facts, a link to its owner's profile, its history."""
    principal.require(Perm.VEHICLES_READ)
    vehicle = vehicles.get_or_raise(session, vehicle_id=vehicle_id)
    owner = _person(session, vehicle.owner_person_id) if principal.can(Perm.PEOPLE_READ) else None
    return render(
        request,
        "registry/vehicle.html",
        vehicle=vehicle,
        owner=owner,
        owner_org=_org(session, vehicle.owner_org_id) if principal.can(Perm.ORGS_READ) else None,
        area=areas.get(session, code=vehicle.area_code),
        changes=history.get_all(session, entity="vehicle", entity_id=vehicle.id, limit=50),
        can_events=principal.can(Perm.EVENTS_READ),  # the device hub's part of the page (htmx)
    )


# A linked record outside the caller's scope is simply not shown (never an error on the page itself).


def _person(session: Session, person_id: int | None) -> Person | None:
    try:
        return people.get_or_raise(session, person_id=person_id) if person_id else None
    except NotFound:
        return None


def _org(session: Session, org_id: int | None) -> Organisation | None:
    try:
        return organisations.get_or_raise(session, org_id=org_id) if org_id else None
    except NotFound:
        return None


def _house(session: Session, house_id: int | None) -> House | None:
    try:
        return places.get_house(session, house_id=house_id) if house_id else None
    except NotFound:
        return None
