"""Serving stored media: /media/{key} for pages (session) and /api/v1/media/{key} (bearer), area-scoped.

A key names immutable bytes, so the answer may be cached for a year; it is private because who may
see it depends on the caller's areas (another area's key answers 404, as if it did not exist).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from linli.core import media
from linli.core.auth.service import Principal
from linli.core.errors import Forbidden
from linli.web.deps import DB, CurrentPrincipal, PagePrincipal

router = APIRouter()
CACHE = "private, max-age=31536000, immutable"


def _serve(request: Request, session: DB, principal: Principal, key: str) -> Response:
    if not principal.perms:  # residents see their own media through their own pages, not by key
        raise Forbidden("没有权限查看文件")
    found = media.get_or_raise(session, key)
    etag = f'"{key.removeprefix(media.KEY_PREFIX)}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    wanted = request.headers.get("if-none-match", "")
    if etag in [tag.strip().removeprefix("W/") for tag in wanted.split(",")]:
        return Response(status_code=304, headers=headers)
    return FileResponse(media.path(key), media_type=found.content_type, headers=headers)


@router.get("/media/{key}", include_in_schema=False)
def page_media(key: str, request: Request, session: DB, principal: PagePrincipal) -> Response:
    """A stored picture or clip for a console page (session cookie)."""
    return _serve(request, session, principal, key)


@router.get("/api/v1/media/{key}", tags=["media"])
def api_media(key: str, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """A stored picture or clip (bearer token); 404 outside the caller's areas."""
    return _serve(request, session, principal, key)
