"""Area console pages: the caller's area tree, the list of communities, one area with its facts and map.

The area page shows the register's counts and a community's buildings, so this page module reads
registry services (pages compose domains; the areas *service* still imports nothing from registry).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
Code = Annotated[str, Query(max_length=32, pattern=r"^[0-9]*$")]


@router.get("/areas", response_class=HTMLResponse)
def area_index(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """The caller's area tree and the communities in it, with their facts."""
    principal.require(Perm.AREAS_READ)
    roots = areas.roots(session, codes=() if principal.scope.unrestricted else principal.area_codes)
    communities = areas.get_all(session, level=Level.COMMUNITY.value)
    return render(request, "areas/index.html", roots=roots, communities=communities)


@router.get("/areas/tree", response_class=HTMLResponse)
def area_tree(
    request: Request, session: DB, principal: PagePrincipal, code: Code, current: Code = ""
) -> Response:
    """The children of one node of the tree (an htmx partial)."""
    principal.require(Perm.AREAS_READ)
    return render(request, "areas/tree.html", children=areas.children(session, code=code), current=current)
