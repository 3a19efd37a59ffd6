"""Registry console pages: people search, profile, reveal, export; the other entities' routers join here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from linli.areas import service as areas
from linli.core.auth.roles import Perm
from linli.core.pagination import PageWindow
from linli.core.timeutil import local_today
from linli.registry import exports, history, people, search, vehicles
from linli.registry.pages_areas import router as areas_router
from linli.registry.pages_import import router as import_router
from linli.registry.pages_orgs import router as orgs_router
from linli.registry.pages_places import router as places_router
from linli.registry.vocab import CARE_TAGS
from linli.web.deps import DB, PagePrincipal
from linli.web.render import is_htmx, render, xlsx_download

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/people", response_class=HTMLResponse)
def people_list(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    q: Annotated[str, Query(max_length=64)] = "",
    tag: str = "",
    community: str = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    """Search people: name, pinyin initials, ID/phone tail, address; filter by tag and community."""
    principal.require(Perm.PEOPLE_READ)
    window = PageWindow(page, PAGE_SIZE)
    found = search.search(
        session,
        text=q,
        tags=[tag] if tag else None,
        community_code=community or None,
        limit=window.limit,
        offset=window.offset,
    )
    communities = areas.get_all(session, level="community")
    shown, has_more = window.split(found)
    template = "registry/people_rows.html" if is_htmx(request) else "registry/people.html"
    return render(
        request,
        template,
        people=shown,
        has_more=has_more,
        q=q,
        tag=tag,
        community=community,
        page=page,
        communities=communities,
        care_tags=CARE_TAGS,
    )


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, person_id: int, session: DB, principal: PagePrincipal) -> Response:
    """A person's profile: facts (masked), where they live, tags, vehicles, history."""
    principal.require(Perm.PEOPLE_READ)
    person = people.get_or_raise(session, person_id=person_id)
    return render(
        request,
        "registry/person.html",
        person=person,
        merged_into=person.merged_into_id,
        tags=people.current_tags(session, person_id=person.id),
        residences=people.residences(session, person_id=person.id),
        vehicles=vehicles.of_owner(session, person_id=person.id),
        changes=history.get_all(session, entity="person", entity_id=person.id, limit=50),
        can_reveal=principal.can(Perm.PII_REVEAL),
        area=areas.get(session, code=person.area_code),
        can_merge=principal.can(Perm.RECORDS_MERGE) and person.merged_into_id is None,
        can_events=principal.can(Perm.EVENTS_READ),  # the device hub's part of the page (htmx)
        duplicates=people.likely_duplicates(session, person=person),
    )


@router.post("/people/{person_id}/merge")
def merge_into(
    person_id: int,
    session: DB,
    principal: PagePrincipal,
    drop_id: Annotated[int, Form()],
    reason: Annotated[str, Form(max_length=255)],
) -> Response:
    """Fold a duplicate record into this one (links and history kept); back to the kept record."""
    people.merge(session, principal, keep_id=person_id, drop_id=drop_id, reason=reason)
    return RedirectResponse(f"/people/{person_id}", status_code=303)


@router.post("/people/{person_id}/reveal", response_class=HTMLResponse)
def reveal_field(
    request: Request,
    person_id: int,
    session: DB,
    principal: PagePrincipal,
    field: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=255)],
) -> Response:
    """Reveal one masked field (htmx partial); audited with the reason."""
    value = people.reveal(session, principal, person_id=person_id, field=field, reason=reason)
    return render(request, "registry/revealed.html", field=field, value=value)


@router.get("/export/people.xlsx")
def export_people(
    session: DB,
    principal: PagePrincipal,
    q: Annotated[str, Query(max_length=64)] = "",
    tag: str = "",
    community: str = "",
) -> Response:
    """The people of a search as .xlsx (masked, audited), named in Chinese."""
    data, _ = exports.people_xlsx(
        session, principal, text=q, community_code=community or None, tags=[tag] if tag else None
    )
    return xlsx_download(data, f"实有人口-{local_today():%Y%m%d}.xlsx", fallback="people.xlsx")


for _sub in (places_router, orgs_router, import_router, areas_router):
    router.include_router(_sub)
