"""Vendor pushes: devices that speak their vendor's protocol post to the hub, an adapter translates.

An old camera or gate cannot sign our HMAC headers, but it can be given a URL: its alarm-server address
is set to /api/v1/ingest/push/{adapter}/{serial}?key={secret} (over HTTPS on any untrusted network: the
key is the device's secret). The body is kept raw, the adapter turns it into envelopes, and they go
through the same ingest as everything else; a body the adapter cannot read becomes a dead letter.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from linli.core.errors import Forbidden, Invalid, NotFound, Unauthorized
from linli.devices import adapters, deadletters, media, register, store
from linli.devices.events import Envelope
from linli.devices.models import Device
from linli.devices.receive import Received
from linli.devices.service import ingest

# Adapters that need more than the body to parse (the mapping adapter needs a stored mapping document).
NOT_PUSHABLE = {"mapping"}


def authenticate_key(session: Session, *, serial: str, key: str | None) -> Device:
    """The registered device whose secret is key, else Unauthorized (Forbidden if it is retired)."""
    device = register.by_serials(session, {serial}, with_secrets=True).get(serial)
    if device is None or not key or not hmac.compare_digest(device.secret.encode(), key.encode()):
        raise Unauthorized(f"unknown device or wrong key for {serial}", field="key")
    if register.is_retired(device):
        raise Forbidden(f"device {serial} is retired", field="device")
    return device


def receive_push(
    session: Session,
    *,
    adapter_name: str,
    serial: str,
    key: str | None,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
) -> Received:
    """Authenticate, keep the raw body, translate it with the adapter and ingest the events."""
    try:
        adapter = adapters.get(adapter_name)
    except adapters.AdapterError:
        raise NotFound(f"no such adapter: {adapter_name}", field="adapter") from None
    if adapter_name in NOT_PUSHABLE:
        raise Invalid(
            f"adapter {adapter_name} cannot take pushes yet (it needs a stored mapping)", field="adapter"
        )
    device = authenticate_key(session, serial=serial, key=key)
    return translate(
        session,
        device=device,
        source=f"push:{adapter_name}"[:64],
        name=adapter_name,
        parse=adapter.parse,
        extract=getattr(adapter.module, "extract_media", None),
        body=body,
        headers=headers,
        now=now,
    )


def translate(
    session: Session,
    *,
    device: Device,
    source: str,
    name: str,
    parse: Callable[..., list[Any]],
    extract: Callable[..., dict[str, bytes]] | None,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
    bound: bool = False,
    replayable: bool = True,
) -> Received:
    """Keep the raw body, read it with parse, store its pictures and ingest: what every vendor push does.

    A body parse cannot read becomes a dead letter, and the error comes back for the caller to raise once
    the dead letter is committed. The letter keeps how to read the body again (name: the adapter or
    mapping:<name>; bound: it was the device's binding), so that it can be replayed once that is fixed;
    replayable False when no adapter reads it (a signed multipart body the device itself got wrong).
    """
    raw_id = store.save_raw(
        session,
        received_at=now,
        source=source,
        body=body,
        content_type=headers.get("content-type", ""),
        device_serial=device.serial,
    )
    try:
        envelopes = parse(body, headers, device=device.serial, received_at=now)
    except adapters.AdapterParseError as exc:
        deadletters.record_unread_body(
            session,
            reason=f"adapter: {exc}",
            body=body,
            source=source,
            received_at=now,
            device=device,
            raw_id=raw_id,
            origin="push",
            adapter=name,
            bound=bound,
            content_type=headers.get("content-type", ""),
            replayable=replayable,
        )
        return Received(None, Invalid(f"{name} could not read the body: {exc}", field="body"))
    items: list[Any] = list(envelopes)  # Envelopes; a parse may leave items it could not read to ingest
    pictured = iter(
        media.store_pictures(
            session,
            extract=extract,
            body=body,
            headers=headers,
            envelopes=[e for e in items if isinstance(e, Envelope)],
            device=device,
            source=source,
            received_at=now,
            raw_id=raw_id,
        )
    )
    items = [next(pictured) if isinstance(e, Envelope) else e for e in items]
    result = ingest(session, items, source=source, received_at=now, sender=device, raw_id=raw_id)
    return Received(result)
