"""Accounts: create users, check passwords with lockout, issue and verify API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core import audit
from linli.core.audit import Actor
from linli.core.auth.models import ApiToken, User, UserArea
from linli.core.auth.roles import ROLE_PERMS, Perm, Role
from linli.core.errors import Forbidden, Invalid, NotFound, Unauthorized
from linli.core.timeutil import as_utc, utcnow
from linli.db import Scope

_hasher = PasswordHash.recommended()
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who, what role, which areas; travels into every service call."""

    user_id: int | None
    username: str
    role: str
    area_codes: tuple[str, ...]
    root_codes: tuple[str, ...] = ()
    lang: str = "zh"
    ip: str = ""
    perms: frozenset[Perm] = field(default_factory=frozenset)

    @property
    def scope(self) -> Scope:
        """The caller's area scope (unrestricted for the system and for users bound to a whole district)."""
        if self.is_system or any(code in self.root_codes for code in self.area_codes):
            return Scope.everything()
        return Scope(codes=self.area_codes)

    @property
    def actor(self) -> Actor:
        """The caller as an audit/history actor."""
        return Actor(id=self.user_id, name=self.username, ip=self.ip)

    def can(self, perm: Perm) -> bool:
        """True if the caller holds perm."""
        return perm in self.perms

    def require(self, perm: Perm) -> None:
        """Raise Forbidden unless the caller holds perm."""
        if perm not in self.perms:
            raise Forbidden(f"没有权限：{perm.value}")

    @classmethod
    def system(cls) -> Principal:
        """An all-powerful principal for CLI commands, the demo generator and jobs."""
        return cls(
            user_id=None, username="system", role=Role.DISTRICT_ADMIN, area_codes=(), perms=frozenset(Perm)
        )

    @property
    def is_system(self) -> bool:
        """True for the system principal."""
        return self.user_id is None and self.username == "system"


def hash_password(password: str) -> str:
    """An argon2 hash of password."""
    return _hasher.hash(password)


def principal_for(user: User, *, root_codes: tuple[str, ...], ip: str = "") -> Principal:
    """The principal of a signed-in user."""
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        area_codes=user.area_codes,
        root_codes=root_codes,
        lang=user.lang,
        ip=ip,
        perms=ROLE_PERMS.get(Role(user.role), frozenset()),
    )


def get_by_username(session: Session, *, username: str) -> User | None:
    """The user with that name, if any."""
    return session.scalar(select(User).where(User.username == username))


def get(session: Session, *, user_id: int) -> User | None:
    """The user with that id, if any."""
    return session.get(User, user_id)


def create(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    area_codes: list[str],
    display_name: str = "",
    actor: Actor | None = None,
) -> User:
    """Create a user bound to area_codes; validates role, password strength and uniqueness."""
    if role not in {r.value for r in Role}:
        raise Invalid(f"未知角色：{role}", field="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"密码至少 {MIN_PASSWORD_LENGTH} 位", field="password")
    if not area_codes:
        raise Invalid("用户必须绑定至少一个区域", field="area")
    if get_by_username(session, username=username):
        raise Invalid(f"用户名已存在：{username}", field="username")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        areas=[UserArea(area_code=c) for c in area_codes],
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor or Actor.system(),
        action="user.create",
        target_type="user",
        target_id=user.id,
        area_code=area_codes[0],
        detail={"username": username, "role": role, "areas": area_codes},
    )
    return user


def set_role(session: Session, *, user: User, role: str, area_codes: list[str], actor: Actor) -> User:
    """Change a user's role and areas (a permission change: audited, old sessions end)."""
    if role not in {r.value for r in Role}:
        raise Invalid(f"未知角色：{role}", field="role")
    old = {"role": user.role, "areas": list(user.area_codes)}
    user.role = role
    # Keep the rows of areas that stay: replacing them would insert before deleting and hit the unique key.
    kept = [a for a in user.areas if a.area_code in area_codes]
    user.areas = kept + [UserArea(area_code=c) for c in area_codes if c not in {a.area_code for a in kept}]
    user.session_version += 1
    audit.record(
        session,
        actor=actor,
        action="user.permissions",
        target_type="user",
        target_id=user.id,
        area_code=area_codes[0] if area_codes else None,
        detail={"old": old, "new": {"role": role, "areas": area_codes}},
    )
    return user


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    max_failures: int,
    lockout: timedelta,
    ip: str = "",
    now: datetime | None = None,
) -> User:
    """Check a password; counts failures and locks the account after max_failures. Audited either way."""
    now = now or utcnow()
    user = get_by_username(session, username=username)
    who = Actor(id=user.id if user else None, name=username, ip=ip)
    if user is None or not user.active:
        _hasher.hash(password)  # same work as a real check, so timing does not reveal which names exist
        audit.record(session, actor=who, action="login.failed", detail={"why": "unknown"})
        raise Unauthorized("用户名或密码错误")
    if user.locked_until and as_utc(user.locked_until) > now:
        audit.record(session, actor=who, action="login.locked", target_type="user", target_id=user.id)
        raise Unauthorized("账户已锁定，请稍后再试")
    if not _hasher.verify(password, user.password_hash):
        user.failed_logins += 1
        detail: dict[str, object] = {"why": "password", "failures": user.failed_logins}
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
            detail["locked_until"] = user.locked_until.isoformat()
        audit.record(
            session, actor=who, action="login.failed", target_type="user", target_id=user.id, detail=detail
        )
        raise Unauthorized("用户名或密码错误")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, actor=who, action="login", target_type="user", target_id=user.id)
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, user: User, name: str = "", ttl: timedelta | None = None) -> str:
    """A new bearer token for user; the plaintext is returned once and never stored."""
    token = "lnl_" + secrets.token_urlsafe(32)
    expires = utcnow() + ttl if ttl else None
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_token_digest(token), expires_at=expires))
    return token


def user_for_token(session: Session, *, token: str) -> User:
    """The active user owning a valid bearer token, else Unauthorized."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(token)))
    if row is None or row.revoked or (row.expires_at and as_utc(row.expires_at) < utcnow()):
        raise Unauthorized("令牌无效或已过期")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthorized("令牌无效或已过期")
    row.last_used_at = utcnow()
    return user


def get_or_raise(session: Session, *, user_id: int) -> User:
    """The user with that id, else NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    return user
