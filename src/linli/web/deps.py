"""Request dependencies: the unit of work, who is calling (bearer token or page session), CSRF."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core.auth import service as accounts
from linli.core.auth.models import User
from linli.core.auth.service import Principal
from linli.core.errors import Forbidden, Unauthorized
from linli.db import set_scope, writing

SESSION_USER = "uid"
SESSION_VERSION = "sv"
SESSION_CSRF = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_db(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the handler returns, rolled back if it raises."""
    session: Session = request.app.state.session_factory()
    if request.method not in SAFE_METHODS:
        writing(session)  # a write request takes the write lock up front (SQLite), reads never do
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DB = Annotated[Session, Depends(get_db, scope="function")]


def client_ip(request: Request) -> str:
    """The caller's address (as seen by this process)."""
    return request.client.host if request.client else ""


def root_codes(request: Request, session: Session) -> tuple[str, ...]:
    """Codes of the districts (cached per process: districts are created once)."""
    cached: tuple[str, ...] | None = getattr(request.app.state, "root_codes", None)
    if not cached:
        cached = areas.root_codes(session)
        request.app.state.root_codes = cached
    return cached


def _user_from_request(request: Request, session: Session) -> tuple[User, bool]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return accounts.user_for_token(session, token=header[7:].strip()), False
    uid = request.session.get(SESSION_USER)
    if uid is None:
        raise Unauthorized("请先登录")
    user = accounts.get(session, user_id=int(uid))
    if user is None or not user.active or user.session_version != request.session.get(SESSION_VERSION):
        request.session.clear()
        raise Unauthorized("会话已失效，请重新登录")
    return user, True


def check_csrf(request: Request) -> None:
    """Unsafe requests authenticated by the session cookie must carry the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(SESSION_CSRF)
    sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "form_csrf", None)
    if not expected or not sent or not secrets.compare_digest(str(expected), str(sent)):
        raise Forbidden("CSRF 校验失败，请刷新页面后重试")


def current_principal(request: Request, session: DB) -> Principal:
    """The authenticated caller; binds their area scope to the request's session."""
    user, via_cookie = _user_from_request(request, session)
    if via_cookie:
        check_csrf(request)
    principal = accounts.principal_for(user, root_codes=root_codes(request, session), ip=client_ip(request))
    set_scope(session, principal.scope)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def read_form_csrf(request: Request) -> None:
    """Make a posted form's csrf field available to the CSRF check (htmx sends a header instead)."""
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/")
    ):
        form = await request.form()
        token = form.get("csrf")
        request.state.form_csrf = token if isinstance(token, str) else None


def page_principal(
    request: Request,
    session: Annotated[Session, Depends(get_db, scope="function")],
    _: Annotated[None, Depends(read_form_csrf)] = None,
) -> Principal:
    """The signed-in user of a page (Unauthorized sends the browser to the login page)."""
    return current_principal(request, session)


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(24)
        request.session[SESSION_CSRF] = token
    return str(token)
