"""The outbox: messages written in the caller's transaction and published on the bus after it commits.

A service never publishes directly: if its transaction rolled back, subscribers would have reacted to
something that did not happen. It adds outbox rows instead; whoever owns the transaction (a request, a
worker loop) runs deliver_outbox after the commit, and any later run delivers what an earlier one missed.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from linli.core.bus import Bus
from linli.core.timeutil import utcnow
from linli.db import Base, bulk_insert, writing

logger = logging.getLogger(__name__)

BATCH = 500
# One delivery at a time per process: SQLite has no SKIP LOCKED, and two request threads delivering the
# same rows would publish them twice. Across processes PostgreSQL's SKIP LOCKED keeps workers apart.
_delivering = threading.RLock()  # re-entrant: an in-process handler may deliver what it caused


class OutboxMessage(Base):
    """One message waiting for (or done with) publication."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    subject: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    attempts: Mapped[int] = mapped_column(default=0)


def add(session: Session, messages: list[tuple[str, dict[str, Any]]], *, now: datetime | None = None) -> None:
    """Queue (subject, data) messages in the caller's transaction."""
    rows = [{"subject": subject, "data": data} for subject, data in messages]
    bulk_insert(
        session,
        OutboxMessage.__table__,  # type: ignore[arg-type]
        rows,
        constants={"created_at": now or utcnow(), "delivered_at": None, "attempts": 0},
    )


def deliver_outbox(
    session_factory: sessionmaker[Session],
    bus: Bus,
    *,
    limit: int = 100_000,
    older_than: timedelta | None = None,
) -> int:
    """Publish undelivered messages in order, each batch in its own transaction; returns how many.

    older_than leaves younger messages to the transaction that wrote them (the catch-up job uses it).
    Stops at the first message the bus refuses (it stays queued, its attempts counted) so order is kept.
    Rows are claimed with SKIP LOCKED on PostgreSQL, so several workers may run this at once. Delivery is
    at least once: a crash between publishing and marking publishes again, so subscribers must be idempotent.
    """
    with _delivering:
        return _deliver(session_factory, bus, limit, older_than)


def _deliver(
    session_factory: sessionmaker[Session], bus: Bus, limit: int, older_than: timedelta | None
) -> int:
    delivered = 0
    while delivered < limit:
        with session_factory() as session:
            writing(session)
            stmt = (
                select(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(min(BATCH, limit - delivered))
                .with_for_update(skip_locked=True)
            )
            if older_than is not None:
                stmt = stmt.where(OutboxMessage.created_at < utcnow() - older_than)
            batch = list(session.scalars(stmt))
            if not batch:
                return delivered
            failed = False
            for message in batch:
                try:
                    bus.publish(message.subject, message.data)
                except Exception:  # the bus is down: keep the message for the next run
                    logger.exception("outbox: publishing %s failed", message.subject)
                    message.attempts += 1
                    failed = True
                    break
                message.delivered_at = utcnow()
                delivered += 1
            session.commit()
            if failed:
                return delivered
    return delivered


def pending(session: Session) -> int:
    """How many messages wait for delivery."""
    stmt = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
    return int(session.scalar(stmt) or 0)


def purge_delivered(session: Session, *, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Delete messages delivered before now - keep; returns how many."""
    stmt = delete(OutboxMessage).where(OutboxMessage.delivered_at < now - keep)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
