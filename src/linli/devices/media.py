"""Pictures of events: keep the ones a request carries in the media store and check every event's refs.

A request's pictures (a vendor push's parts, or the picture parts of a multipart `POST /api/v1/ingest/events`)
are referenced as `upload:<part name>`. Before the events are ingested, each referenced picture is stored
(core.media, the device's area) and its ref becomes the media key. A picture that is not a real image is
dropped from its event, which is kept: a dead letter says which picture went and why (replaying it only
finds the event already stored).

Every way in then passes its accepted events through resolve_refs: a media key must be one the device's
area holds (uploaded with `POST /api/v1/ingest/media`, or stored above); it is claimed with the event. An
`upload:` ref that no picture replaced, a key the area does not hold, or a ref of no known form is dropped
the same way; an http(s) URL is kept as a reference and never fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core import media
from linli.core.errors import LinliError
from linli.devices import deadletters
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.events import Envelope, MediaRef
from linli.devices.models import Device
from linli.devices.store import Accepted

log = logging.getLogger(__name__)
UPLOAD = "upload:"
LINKS = ("http://", "https://")
Extract = Callable[[bytes, Mapping[str, str]], Mapping[str, bytes]]


def store_pictures(
    session: Session,
    *,
    extract: Extract | None,
    body: bytes,
    headers: Mapping[str, str],
    envelopes: list[Envelope],
    device: Device,
    source: str,
    received_at: datetime,
    raw_id: int | None = None,
) -> list[Envelope]:
    """The envelopes with their upload: refs rewritten to media keys (bad pictures dropped, noted).

    extract is the adapter's `extract_media` (None if it has none: its upload: refs are all dropped).
    """
    wanted = {m.ref for e in envelopes for m in e.media if m.ref.startswith(UPLOAD)}
    if not wanted:
        return envelopes
    parts, trouble = _extract(extract, body, headers)
    stored: dict[str, MediaRef] = {}
    dropped: dict[str, str] = {}
    for ref in sorted(wanted):
        name = ref.removeprefix(UPLOAD)
        declared = next(m.content_type for e in envelopes for m in e.media if m.ref == ref)
        data = parts.get(name)
        if data is None:
            dropped[ref] = trouble or "推送中没有这个图片部分"
            continue
        try:
            key = media.put(session, data, content_type=declared, area_code=device.area_code, filename=name)
        except LinliError as exc:  # not an allowed picture, or too large
            dropped[ref] = exc.message
            continue
        actual = media.sniff(data) or declared
        stored[ref] = MediaRef(
            kind="video" if actual.startswith("video/") else "image", ref=key, content_type=actual, label=""
        )
    media.claim(session, [m.ref for m in stored.values()], area_code=device.area_code, now=received_at)
    result = []
    for envelope in envelopes:
        rewritten = _rewrite(envelope, stored, dropped)
        lost = [m.ref.removeprefix(UPLOAD) for m in envelope.media if m.ref in dropped]
        if lost:
            _note(session, rewritten, lost, dropped, device, source, received_at, raw_id)
        result.append(rewritten)
    return result


def _extract(
    extract: Extract | None, body: bytes, headers: Mapping[str, str]
) -> tuple[dict[str, bytes], str]:
    """The adapter's pictures by part name, and why there are none when extraction failed."""
    if extract is None:
        return {}, "适配器不提供图片提取（extract_media）"
    try:
        return dict(extract(body, headers)), ""
    except AdapterParseError as exc:
        return {}, f"图片提取失败：{exc}"


def _rewrite(envelope: Envelope, stored: dict[str, MediaRef], dropped: dict[str, str]) -> Envelope:
    refs = []
    for ref in envelope.media:
        if ref.ref in dropped:
            continue
        new = stored.get(ref.ref)
        refs.append(ref if new is None else new.model_copy(update={"label": ref.label}))
    return envelope.model_copy(update={"media": refs})


def _note(
    session: Session,
    envelope: Envelope,
    lost: list[str],
    dropped: dict[str, str],
    device: Device,
    source: str,
    received_at: datetime,
    raw_id: int | None,
) -> None:
    """A dead letter saying which pictures an event lost (the event itself goes on to the store)."""
    why = "；".join(f"{name}：{dropped[UPLOAD + name]}" for name in lost)
    log.warning("picture(s) of %s dropped: %s", device.serial, why)
    deadletters.record(
        session,
        reason=f"图片无效已丢弃，事件已保留。{why}",
        item=envelope,
        source=source,
        received_at=received_at,
        device=device,
        sender=device,
        raw_id=raw_id,
    )


class _Origin(Protocol):
    @property
    def sender(self) -> Device | None: ...

    @property
    def raw_id(self) -> int | None: ...


def resolve_refs(
    session: Session,
    accepted: list[Accepted],
    *,
    origins: Sequence[_Origin],
    source: str,
    received_at: datetime,
) -> None:
    """Check the media refs of accepted events in place; claim the keys they keep (see the module doc).

    A batch without media costs one pass over the events and no query.
    """
    with_media = [event for event in accepted if event.media]
    if not with_media:
        return
    keys = sorted({m["ref"] for event in with_media for m in event.media if media.is_key(m["ref"])})
    held = _held(session, keys)
    claims: dict[str, set[str]] = {}
    for event in with_media:
        origin = origins[event.index] if 0 <= event.index < len(origins) else None
        # The device's own area, or the sender's (a gateway uploads the pictures of its devices).
        areas = [event.device.area_code]
        if origin is not None and origin.sender is not None:
            areas.append(origin.sender.area_code)
        kept: list[dict[str, Any]] = []
        lost: dict[str, str] = {}
        for ref in event.media:
            area = next((a for a in areas if (ref["ref"], a) in held), None)
            why = _problem(ref["ref"], area)
            if why:
                lost[ref["ref"]] = why
                continue
            kept.append(ref)
            if area is not None:
                claims.setdefault(area, set()).add(ref["ref"])
        if lost:
            event.media = kept
            event.encoded = None  # its row and message change with its media
            event.envelope = event.envelope.model_copy(update={"media": [MediaRef(**m) for m in kept]})
            _note_refs(session, event, lost, source, received_at, origin)
    for area, area_keys in claims.items():
        media.claim(session, area_keys, area_code=area, now=received_at)


def _held(session: Session, keys: list[str]) -> set[tuple[str, str]]:
    """The (key, area) pairs of media_objects among keys."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), media.CHUNK):
        stmt = select(media.MediaObject.key, media.MediaObject.area_code).where(
            media.MediaObject.key.in_(keys[start : start + media.CHUNK])
        )
        found.update((key, area) for key, area in session.execute(stmt.execution_options(skip_scope=True)))
    return found


def _problem(ref: str, area: str | None) -> str:
    """Why an event may not keep ref ("" if it may); area is where its key is held (None: nowhere)."""
    if media.is_key(ref):
        if area is not None:
            return ""
        return "媒体库中本社区没有这个文件（先用 POST /api/v1/ingest/media 上传，再引用返回的 ref）"
    if ref.startswith(UPLOAD):
        return "请求中没有这个图片部分（upload: 引用只用于同一 multipart 请求中的图片）"
    if ref.startswith(LINKS):
        return ""
    return "不是媒体键（sha256:…）、upload: 图片部分或 http(s) 链接"


def _note_refs(
    session: Session,
    event: Accepted,
    lost: dict[str, str],
    source: str,
    received_at: datetime,
    origin: _Origin | None,
) -> None:
    """A dead letter saying which refs an event lost (the event itself goes on to the store)."""
    why = "；".join(f"{ref[:80]}：{reason}" for ref, reason in lost.items())
    log.warning("media ref(s) of %s dropped: %s", event.device.serial, why)
    deadletters.record(
        session,
        reason=f"媒体引用无效已去掉，事件已保留。{why}",
        item=event.envelope,
        source=source,
        received_at=received_at,
        device=event.device,
        sender=origin.sender if origin else event.device,
        raw_id=origin.raw_id if origin else None,
    )
