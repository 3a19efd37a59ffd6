"""Audit log: logins, exports, imports, reveals and permission changes. Append-only, queryable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from linli.core.timeutil import utcnow
from linli.db import Base, Scope, starts_with, write_after_read

if TYPE_CHECKING:
    from linli.core.auth.service import Principal


class AuditEntry(Base):
    """One audited action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(default=None, index=True)
    actor: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32), index=True)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    area_code: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    reason: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")


@dataclass(frozen=True)
class Actor:
    """Who is acting, for audit and history (a user, or the system)."""

    id: int | None
    name: str
    ip: str = ""

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """A non-human actor (CLI, demo generator, jobs)."""
        return cls(id=None, name=name)


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    area_code: str | None = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an audit entry in the caller's transaction."""
    entry = AuditEntry(
        actor_id=actor.id,
        actor=actor.name,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        area_code=area_code,
        reason=reason[:255],
        detail=detail or {},
        ip=actor.ip,
    )
    session.add(entry)
    return entry


def record_export(
    session: Session, principal: Principal, *, target_type: str, area_code: str | None, detail: dict[str, Any]
) -> AuditEntry:
    """An export of target_type rows by principal, in area_code (what it was limited to), else in the
    principal's first area: a district-wide export is recorded where its author works. An export is a
    long read: its row goes in a write transaction of its own (db.write_after_read)."""
    write_after_read(session)
    area = area_code or (principal.area_codes[0] if principal.area_codes else None)
    return record(
        session,
        actor=principal.actor,
        action="export",
        target_type=target_type,
        area_code=area,
        detail=detail,
    )


def query(
    session: Session,
    *,
    scope: Scope,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Audit entries visible in scope, newest first (entries without an area only for the unrestricted)."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if not scope.unrestricted:
        stmt = stmt.where(scope.clause(AuditEntry.area_code))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor:
        stmt = stmt.where(starts_with(AuditEntry.actor, actor))
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt))
