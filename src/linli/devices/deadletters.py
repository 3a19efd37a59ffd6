"""Dead letters: every event the hub could not store, with why, kept for a person to fix and replay."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from linli.core import media
from linli.core.errors import NotFound
from linli.db import Scope
from linli.devices import store
from linli.devices.events import Envelope
from linli.devices.models import DeadLetter, DeadLetterStatus, Device, StoredEvent


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


# What a letter whose item the adapter or mapping could not read keeps to read it again (replay_via):
RECORD = "record"  # one record of a table, page or push (body: the row with its headers, or the record)
BODY = "body"  # a whole body (body: its text; the raw payload raw_id keeps its bytes while retained)


def replay_via(
    kind: str,
    *,
    origin: str,
    adapter: str,
    bound: bool,
    community: str,
    content_type: str = "",
    label: str = "",
) -> dict[str, Any]:
    """How to read a refused record or body again: through which origin's path, with which adapter.

    origin is the way in (upload, push, pull) and makes the ingest source "<origin>:<adapter>";
    bound: the adapter was the device's binding, so a replay reads with the binding of the moment.
    """
    via: dict[str, Any] = {"kind": kind, "origin": origin, "adapter": adapter, "bound": bound}
    via["community"] = community
    if kind == BODY:
        via["content_type"] = content_type[:128]
    if label:
        via["label"] = label[:40]  # "第5行": the record's place, named again if a replay still fails
    return via


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
    via: dict[str, Any] | None = None,
) -> DeadLetter:
    """Keep a rejected item; its area is its device's (or the sender's) when known, else none.

    via (replay_via) marks an item the adapter or mapping could not read: a replay reads it again.
    """
    owner = device or sender
    body = as_text(item)
    if via is not None and via.get("kind") == BODY:
        # the text is the body itself when it was UTF-8 without NUL: it can stand in for a purged raw body
        via = {**via, "exact": isinstance(item, bytes) and body.encode("utf-8") == item}
    letter = DeadLetter(
        received_at=received_at,
        source=source[:64],
        reason=reason[:500],
        body=body,
        device_serial=serial_of(item) or (sender.serial if sender else None),
        device_id=device.id if device else None,
        sender_id=sender.id if sender else None,
        area_code=owner.area_code if owner else None,
        status=DeadLetterStatus.NEW.value,
        attempts=0,
        raw_id=raw_id,
        replay_via=via,
    )
    session.add(letter)
    session.flush()
    return letter


def record_unread_body(
    session: Session,
    *,
    reason: str,
    body: bytes,
    source: str,
    received_at: datetime,
    device: Device,
    raw_id: int,
    origin: str,
    adapter: str,
    bound: bool,
    content_type: str,
    replayable: bool = True,
) -> DeadLetter:
    """Keep a device's body that its adapter or mapping could not read as one dead letter, linked from its
    raw payload (raw_id, kept already); replayable: read again through the same way in (BODY)."""
    via = None
    if replayable:
        via = replay_via(
            BODY,
            origin=origin,
            adapter=adapter,
            bound=bound,
            community=device.community_code,
            content_type=content_type,
        )
    letter = record(
        session,
        reason=reason,
        item=body,
        source=source,
        received_at=received_at,
        device=device,
        sender=device,
        raw_id=raw_id,
        via=via,
    )
    store.link_raw(session, raw_id, event_ids=[], dead_letter_id=letter.id)
    return letter


def _visible(stmt: Any, scope: Scope) -> Any:
    # Dead letters without an area (unknown devices) are only for the unrestricted scope.
    return stmt if scope.unrestricted else stmt.where(scope.clause(DeadLetter.area_code))


@dataclass(frozen=True)
class Matching:
    """Which dead letters: by status, device serial, way in (source) and kind of reason (a REASONS code);
    empty or None: any."""

    status: str | None = None
    device_serial: str | None = None
    source: str | None = None
    reason: str | None = None

    def apply(self, stmt: Any) -> Any:
        """stmt narrowed to the matching letters."""
        if self.status:
            stmt = stmt.where(DeadLetter.status == self.status)
        if self.device_serial:
            stmt = stmt.where(DeadLetter.device_serial == self.device_serial)
        if self.source:
            stmt = stmt.where(DeadLetter.source == self.source)
        if self.reason:
            stmt = stmt.where(DeadLetter.reason.startswith(REASONS[self.reason], autoescape=True))
        return stmt


# The kinds of refusal, by how their reason begins (the hub's own words, in English for device
# developers: service._device_refusal, schema_reason, receive.MalformedJson, mqtt_ingest; a mapping's
# refusals name their row or record in Chinese, "第3行: …"). Their words for staff: pages_common.
REASONS: dict[str, str] = {
    "schema": "schema:",
    "future": "future:",
    "too_old": "too old:",
    "unknown_device": "unknown device:",
    "retired_device": "retired device:",
    "wrong_device": "wrong device:",
    "oversized": "oversized:",
    "malformed": "malformed JSON",
    "adapter": "adapter:",
    "device": "device:",
    "mapping": "第",
}
_MAPPING_REFUSAL = re.compile(r"^第\d+(条记录|行)")


def reason_code(reason: str) -> str | None:
    """The kind of a dead letter's reason (a REASONS code), None if it is of none (e.g. a picture's note)."""
    for code, prefix in REASONS.items():
        if code != "mapping" and reason.startswith(prefix):
            return code
    return "mapping" if _MAPPING_REFUSAL.match(reason) else None


ANY = Matching()


def get_all(
    session: Session,
    *,
    scope: Scope,
    match: Matching = ANY,
    before_id: int | None = None,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[DeadLetter]:
    """Dead letters the scope may see that match, newest first (or oldest first)."""
    order = DeadLetter.id.asc() if oldest_first else DeadLetter.id.desc()
    stmt = match.apply(_visible(select(DeadLetter), scope))
    if before_id:
        stmt = stmt.where(DeadLetter.id < before_id)
    return list(session.scalars(stmt.order_by(order).limit(limit)))


def count(session: Session, *, scope: Scope, match: Matching) -> int:
    """How many dead letters the scope may see match."""
    stmt = match.apply(_visible(select(func.count()).select_from(DeadLetter), scope))
    return int(session.scalar(stmt) or 0)


def sources(session: Session, *, scope: Scope) -> list[str]:
    """The ways in (http, mqtt, an adapter, an upload ...) of the dead letters the scope may see."""
    stmt = _visible(select(DeadLetter.source).distinct(), scope)
    return sorted(session.scalars(stmt))


def get_or_raise(session: Session, *, scope: Scope, dead_letter_id: int) -> DeadLetter:
    """One dead letter the scope may see, else NotFound."""
    letter = session.scalar(_visible(select(DeadLetter).where(DeadLetter.id == dead_letter_id), scope))
    if letter is None:
        raise NotFound("异常数据不存在或不在权限范围内", field="dead_letter")
    return letter


def discard(session: Session, letter: DeadLetter) -> DeadLetter:
    """Mark a dead letter as dealt with without storing it; its pictures nothing else uses are let go.

    A picture stored with an event that was then refused (too old, a device not registered …) was claimed
    when it was stored: once the letter is discarded nobody will store that event, so each of its media
    keys that no stored event and no other open dead letter of the area refers to is released, and the
    media purge removes it.
    """
    letter.status = DeadLetterStatus.DISCARDED.value
    if letter.area_code:
        keys = [key for key in media_keys(letter.body) if not _still_used(session, key, letter)]
        media.release(session, keys, area_code=letter.area_code)
    return letter


def media_keys(body: str) -> list[str]:
    """The media store keys (sha256:…) a dead letter's event refers to (none if it is not an event)."""
    try:
        item = json.loads(body)
    except ValueError:
        return []
    refs = item.get("media") if isinstance(item, dict) else None
    if not isinstance(refs, list):
        return []
    found = {r.get("ref") for r in refs if isinstance(r, dict)}
    return sorted(k for k in found if isinstance(k, str) and media.is_key(k))


def _still_used(session: Session, key: str, letter: DeadLetter) -> bool:
    """True if a stored event or another open dead letter of the letter's area refers to key."""
    event = (
        select(StoredEvent.id)
        .where(StoredEvent.area_code == letter.area_code, cast(StoredEvent.media, Text).contains(key))
        .limit(1)
    )
    if session.scalar(event.execution_options(skip_scope=True)) is not None:
        return True
    other = (
        select(DeadLetter.id)
        .where(
            DeadLetter.area_code == letter.area_code,
            DeadLetter.status == DeadLetterStatus.NEW.value,
            DeadLetter.id != letter.id,
            DeadLetter.body.contains(key),
        )
        .limit(1)
    )
    return session.scalar(other) is not None
