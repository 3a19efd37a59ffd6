"""Console shell pages: sign in and out, language switch, the overview."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from linli.areas import service as areas
from linli.core.auth import service as accounts
from linli.core.errors import Forbidden, Unauthorized
from linli.db import writing
from linli.registry import overview
from linli.web.deps import (
    DB,
    SESSION_CSRF,
    SESSION_USER,
    SESSION_VERSION,
    PagePrincipal,
    client_ip,
)
from linli.web.render import LANG_COOKIE, render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in page."""
    return render(request, "login.html", next=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password (lockout after repeated failures) and start a page session."""
    expected = request.session.get(SESSION_CSRF)
    if not expected or not secrets.compare_digest(str(expected), csrf):
        raise Forbidden("CSRF 校验失败，请刷新页面后重试")
    settings = request.app.state.settings

    def check() -> tuple[int, int] | str:
        with request.app.state.session_factory() as session:
            writing(session)  # failures are counted and audited
            try:
                user = accounts.authenticate(
                    session,
                    username=username,
                    password=password,
                    max_failures=settings.login_max_failures,
                    lockout=timedelta(minutes=settings.login_lockout_minutes),
                    ip=client_ip(request),
                )
                result: tuple[int, int] | str = (user.id, user.session_version)
            except Unauthorized as exc:
                result = exc.message
            session.commit()  # failures are counted and audited too
            return result

    outcome = await run_in_threadpool(check)
    if isinstance(outcome, str):
        return render(request, "login.html", status_code=401, message=outcome, username=username, next=next)
    request.session.clear()
    request.session[SESSION_USER], request.session[SESSION_VERSION] = outcome
    request.session[SESSION_CSRF] = secrets.token_urlsafe(24)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, principal: PagePrincipal) -> Response:
    """End the page session."""
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{lang}")
def switch_lang(lang: str, next: str = "/") -> Response:
    """Switch the page language (中文 / English)."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, "en" if lang == "en" else "zh", max_age=365 * 86400, samesite="lax")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """Overview: the caller's areas and the register's size within them."""
    roots = areas.roots(session, codes=() if principal.scope.unrestricted else principal.area_codes)
    numbers = {"社区": areas.count_by_level(session).get("community", 0), **overview.counts(session)}
    stats = [(key, value, _STAT_LINKS.get(key, "/")) for key, value in numbers.items()]
    tags = sorted(overview.tag_counts(session).items(), key=lambda kv: -kv[1])
    return render(request, "home.html", roots=roots, stats=stats, tag_counts=tags)


_STAT_LINKS = {
    "社区": "/areas",
    "楼栋": "/buildings",
    "房屋": "/houses",
    "人口": "/people",
    "单位": "/organisations",
    "车辆": "/vehicles",
}
