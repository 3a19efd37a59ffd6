"""Reading a dead letter again that the adapter or mapping could not read, with the one of the moment.

A record of an upload or a pull answer that the mapping refused keeps the record itself (a sheet row with
its headers, a JSON record, an XML element's text); a push or pull body the adapter could not read keeps
the body (its bytes stay in the raw payload while raw_retention_days keeps it; the letter's text stands in
for a UTF-8 body after that). Their `replay_via` says how they came in and with which adapter. Replaying
one reads it again through that adapter, or the device's binding of the moment when the binding chose it,
so that once a mapping is fixed (a new version activated) the letter becomes events (service.replay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.errors import Invalid, NotFound
from linli.core.timeutil import as_utc
from linli.devices import adapters, deadletters, media, register
from linli.devices.adapters.mapping import CompiledMapping
from linli.devices.adapters.mapping.engine import parse_with, read_again
from linli.devices.events import Envelope
from linli.devices.mappings import bindings
from linli.devices.mappings.bindings import Reader
from linli.devices.models import DeadLetter, Device, RawPayload


class Unread(Exception):
    """The letter still cannot be read (or is refused before ingest); reason is its new reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Reread:
    """What the letter's item became with the current adapter: the envelopes to ingest, from where."""

    source: str  # "<origin>:<adapter>", as the way in names its events
    items: list[Envelope]
    raw_id: int | None


def read_letter(session: Session, letter: DeadLetter, *, sender: Device | None, now: Any) -> Reread:
    """The envelopes a letter with replay_via becomes now (Unread with the reason if it still cannot)."""
    via: dict[str, Any] = letter.replay_via or {}
    adapter = _adapter(session, via, sender)
    community = sender.community_code if sender is not None else str(via.get("community", ""))
    try:
        reader = bindings.reader_for(session, adapter=adapter, community_code=community)
    except (NotFound, Invalid) as exc:
        raise Unread(f"适配器/映射不可用: {exc.message}") from None
    source = f"{via.get('origin', '')}:{adapter}"[:64]
    serial = sender.serial if sender is not None else None
    raw_id: int | None = None
    if via.get("kind") == deadletters.RECORD:
        items = _record(letter, via, reader, serial=serial, now=now)
    elif via.get("kind") == deadletters.BODY:
        raw = session.get(RawPayload, letter.raw_id) if letter.raw_id is not None else None
        raw_id = raw.id if raw is not None else None
        items = _body(session, letter, via, reader, raw, sender=sender, source=source, now=now)
    else:
        raise Unread(f"无法识别的重放方式: {via.get('kind')!r}")
    if via.get("origin") == "upload" and sender is None:
        _same_community(session, items, community, label=str(via.get("label") or ""))
    return Reread(source, items, raw_id)


def _adapter(session: Session, via: dict[str, Any], sender: Device | None) -> str:
    """The adapter recorded, or the device's binding of the moment if the binding had chosen it."""
    if via.get("bound") and sender is not None:
        bound = bindings.adapter_of(session, device=sender)
        if bound:
            return bound
    return str(via.get("adapter", ""))


def _mapping(reader: Reader) -> CompiledMapping | None:
    """The reader's mapping, or the one a vendor adapter reads its exports with (patrol_csv's MAPPING)."""
    if reader.mapping is not None:
        return reader.mapping
    found = getattr(adapters.get(reader.adapter).module, "MAPPING", None)
    return found if isinstance(found, CompiledMapping) else None


def _record(
    letter: DeadLetter, via: dict[str, Any], reader: Reader, *, serial: str | None, now: Any
) -> list[Envelope]:
    mapping = _mapping(reader)
    label = str(via.get("label") or "该记录")
    if mapping is None:
        raise Unread(f"{label}: 适配器 {reader.adapter} 不能读取单条记录，请选择映射")
    try:
        kept = json.loads(letter.body)
    except ValueError:
        kept = letter.body  # an XML record is kept as its text
    result = read_again(mapping, kept, label=label, device=serial, received_at=as_utc(now))
    if result.reason is not None:
        raise Unread(f"{label}: {result.reason}")
    return [result.envelope] if result.envelope is not None else []  # none: the mapping now ignores it


def _body(
    session: Session,
    letter: DeadLetter,
    via: dict[str, Any],
    reader: Reader,
    raw: RawPayload | None,
    *,
    sender: Device | None,
    source: str,
    now: Any,
) -> list[Envelope]:
    if raw is not None:
        body = raw.content
    elif via.get("exact"):
        body = letter.body.encode("utf-8")
    else:
        raise Unread("原始报文已超过保留期被清除，且异常数据中的文本不是原样内容，无法重放")
    headers = {"content-type": str(via.get("content_type") or (raw.content_type if raw else ""))}
    mapping, serial = _mapping(reader), sender.serial if sender is not None else None
    try:
        if mapping is not None:  # every record must be read now: the first that cannot is named
            envelopes = parse_with(mapping, body, headers, device=serial, received_at=now)
        else:
            envelopes = reader.parse(body, headers, device=serial, received_at=now)
    except adapters.AdapterParseError as exc:
        raise Unread(f"adapter: {exc}") from None
    if via.get("origin") != "push" or sender is None:
        return list(envelopes)
    return media.store_pictures(
        session,
        extract=reader.extract,
        body=body,
        headers=headers,
        envelopes=list(envelopes),
        device=sender,
        source=source,
        received_at=now,
        raw_id=raw.id if raw is not None else None,
    )


def _same_community(session: Session, items: list[Envelope], community: str, *, label: str) -> None:
    """An upload by community names its devices row by row: each must be of that community."""
    devices = register.by_serials(session, {e.device for e in items})
    for envelope in items:
        owner = devices.get(envelope.device)
        if owner is not None and owner.community_code != community:
            reason = f"device: 设备 {envelope.device} 不属于所选社区"
            raise Unread(f"{label}: {reason}" if label else reason)


def sender_of(session: Session, letter: DeadLetter) -> Device | None:
    """The device that sent the letter's item, whatever the caller's scope (None if unknown or removed)."""
    if letter.sender_id is None:
        return None
    stmt = select(Device).where(Device.id == letter.sender_id).execution_options(skip_scope=True)
    return session.scalar(stmt)
