"""Vendor pictures: keep what an adapter extracted in the media store and point the envelopes at it.

An adapter references a picture of a push as `upload:<part name>` and offers `extract_media(raw, headers)`.
Before the events are ingested, each referenced picture is stored (core.media, the device's area) and its
ref becomes the media key. A picture that is not a real image is dropped from its event, which is kept:
a dead letter says which picture went and why (replaying it only finds the event already stored).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from linli.core import media
from linli.core.errors import LinliError
from linli.devices import deadletters
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.events import Envelope, MediaRef
from linli.devices.models import Device

log = logging.getLogger(__name__)
UPLOAD = "upload:"
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
