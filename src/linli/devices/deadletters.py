"""Dead letters: every event the hub could not store, with why, kept for a person to fix and replay."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.errors import NotFound
from linli.db import Scope
from linli.devices.events import Envelope
from linli.devices.models import DeadLetter, DeadLetterStatus, Device


def as_text(item: Any) -> str:
    """The stored text of a rejected item: JSON for what parsed, the text itself otherwise."""
    if isinstance(item, Envelope):
        return item.model_dump_json()
    if isinstance(item, bytes):
        item = item.decode("utf-8", errors="backslashreplace")
    if isinstance(item, str):
        return item.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL; the raw body keeps it
    return json.dumps(item, ensure_ascii=False, default=str)


def serial_of(item: Any) -> str | None:
    """The device serial a rejected item claims, if it says one."""
    if isinstance(item, Envelope):
        return item.device
    if isinstance(item, dict) and isinstance(item.get("device"), str):
        return item["device"].replace("\x00", "")[:64]
    return None


def record(
    session: Session,
    *,
    reason: str,
    item: Any,
    source: str,
    received_at: datetime,
    device: Device | None = None,
    sender: Device | None = None,
    raw_id: int | None = None,
) -> DeadLetter:
    """Keep a rejected item; its area is its device's (or the sender's) when known, else none."""
    owner = device or sender
    letter = DeadLetter(
        received_at=received_at,
        source=source[:64],
        reason=reason[:500],
        body=as_text(item),
        device_serial=serial_of(item) or (sender.serial if sender else None),
        device_id=device.id if device else None,
        sender_id=sender.id if sender else None,
        area_code=owner.area_code if owner else None,
        status=DeadLetterStatus.NEW.value,
        attempts=0,
        raw_id=raw_id,
    )
    session.add(letter)
    session.flush()
    return letter


def _visible(stmt: Any, scope: Scope) -> Any:
    # Dead letters without an area (unknown devices) are only for the unrestricted scope.
    return stmt if scope.unrestricted else stmt.where(scope.clause(DeadLetter.area_code))


def get_all(
    session: Session,
    *,
    scope: Scope,
    status: str | None = None,
    device_serial: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[DeadLetter]:
    """Dead letters the scope may see, newest first."""
    stmt = _visible(select(DeadLetter), scope).order_by(DeadLetter.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(DeadLetter.status == status)
    if device_serial:
        stmt = stmt.where(DeadLetter.device_serial == device_serial)
    if before_id:
        stmt = stmt.where(DeadLetter.id < before_id)
    return list(session.scalars(stmt))


def get_or_raise(session: Session, *, scope: Scope, dead_letter_id: int) -> DeadLetter:
    """One dead letter the scope may see, else NotFound."""
    letter = session.scalar(_visible(select(DeadLetter).where(DeadLetter.id == dead_letter_id), scope))
    if letter is None:
        raise NotFound("异常数据不存在或不在权限范围内", field="dead_letter")
    return letter


def discard(letter: DeadLetter) -> DeadLetter:
    """Mark a dead letter as dealt with without storing it."""
    letter.status = DeadLetterStatus.DISCARDED.value
    return letter
