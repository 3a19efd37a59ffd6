"""Accounts JSON API: tokens, the caller, users, the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from linli.core import audit
from linli.core.auth import service as accounts
from linli.core.auth.models import User
from linli.core.auth.roles import Perm
from linli.core.errors import NotFound
from linli.web.deps import DB, CurrentPrincipal, client_ip

router = APIRouter(prefix="/api/v1", tags=["accounts"])


class TokenIn(BaseModel):
    """Credentials exchanged for a bearer token."""

    username: str = Field(max_length=64)
    password: str = Field(max_length=256)
    name: str = Field(default="api", max_length=64)


class TokenOut(BaseModel):
    """A bearer token, shown once."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    """The caller."""

    username: str
    role: str
    areas: list[str]
    permissions: list[str]


class UserIn(BaseModel):
    """A new user."""

    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: str
    areas: list[str] = Field(min_length=1, max_length=20)
    display_name: str = Field(default="", max_length=64)


class UserOut(BaseModel):
    """A user."""

    @classmethod
    def of(cls, user: User) -> UserOut:
        """The API view of a user."""
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            areas=list(user.area_codes),
            active=user.active,
        )

    id: int
    username: str
    display_name: str
    role: str
    areas: list[str]
    active: bool


class AuditOut(BaseModel):
    """An audit entry."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    area_code: str | None
    reason: str
    detail: dict[str, Any]
    ip: str


@router.post("/auth/token", response_model=TokenOut)
def token(body: TokenIn, request: Request, session: DB) -> TokenOut:
    """Exchange a username and password for a bearer token (lockout after repeated failures)."""
    settings = request.app.state.settings
    user = accounts.authenticate(
        session,
        username=body.username,
        password=body.password,
        max_failures=settings.login_max_failures,
        lockout=timedelta(minutes=settings.login_lockout_minutes),
        ip=client_ip(request),
    )
    ttl = timedelta(hours=settings.session_hours)
    return TokenOut(
        access_token=accounts.issue_token(session, user=user, name=body.name, ttl=ttl),
        expires_in=int(ttl.total_seconds()),
    )


@router.get("/me", response_model=MeOut)
def me(principal: CurrentPrincipal) -> MeOut:
    """Who the caller is and what they may do."""
    return MeOut(
        username=principal.username,
        role=principal.role,
        areas=list(principal.area_codes),
        permissions=sorted(p.value for p in principal.perms),
    )


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, session: DB, principal: CurrentPrincipal) -> UserOut:
    """Create a user bound to areas inside the caller's own (users.manage)."""
    principal.require(Perm.USERS_MANAGE)
    for code in body.areas:
        if not principal.scope.allows(code):
            raise NotFound(f"区域不存在或不在权限范围内：{code}", field="areas")
    user = accounts.create(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        area_codes=body.areas,
        display_name=body.display_name,
        actor=principal.actor,
    )
    return UserOut.of(user)


class PermissionsIn(BaseModel):
    """A user's new role and areas."""

    role: str
    areas: list[str] = Field(min_length=1, max_length=20)


@router.put("/users/{user_id}/permissions", response_model=UserOut)
def set_permissions(user_id: int, body: PermissionsIn, session: DB, principal: CurrentPrincipal) -> UserOut:
    """Change a user's role and areas (audited; the user's page sessions end)."""
    principal.require(Perm.USERS_MANAGE)
    user = accounts.get_or_raise(session, user_id=user_id)
    for code in (*body.areas, *user.area_codes):
        if not principal.scope.allows(code):
            raise NotFound(f"区域不存在或不在权限范围内：{code}", field="areas")
    accounts.set_role(session, user=user, role=body.role, area_codes=body.areas, actor=principal.actor)
    return UserOut.of(user)


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    session: DB,
    principal: CurrentPrincipal,
    action: str | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditOut]:
    """The audit log in the caller's areas, newest first; page with before_id."""
    principal.require(Perm.AUDIT_READ)
    rows = audit.query(
        session,
        scope=principal.scope,
        action=action,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        before_id=before_id,
    )
    return [AuditOut.model_validate(r) for r in rows]
