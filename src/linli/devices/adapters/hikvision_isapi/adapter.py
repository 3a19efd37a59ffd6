"""Hikvision ISAPI alarm-server push → Envelopes.

A camera, NVR or access terminal set up with an HTTP listening host (报警主机/监听主机) posts one
`EventNotificationAlert` per event: XML or JSON, alone or as the first part of a multipart/form-data
body followed by JPEG parts (ANPR: licensePlatePicture.jpg, detectionPicture.jpg; access terminals:
`event_log` JSON plus `Picture`). `parse` returns the envelopes, each picture referenced as
`upload:<part name>`; `extract_media` returns those bytes for the caller to store.

Choices:
- A malformed body (truncated XML, bad JSON, a broken boundary, a missing required field) raises
  AdapterParseError with the reason; the caller dead-letters it.
- A well-formed alert of a type we do not record (faceSnap, an unknown eventType, door status codes,
  the end of a motion period) returns [] — ignoring it is not an error, so it is neither retried nor
  dead-lettered, and a firmware update that adds event types does not flood the dead-letter queue.
- The device is the `device` argument (the authenticated sender, from the register) when given, else the
  alert's serial-like field, else its MAC address.
- Many firmwares send no stable event id, so the id is a hash of device, type, time and the key fields:
  a redelivered alert gets the same id and the store dedups it.
- `dateTime` keeps its own offset; a naive time is taken as Asia/Shanghai.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from linli.devices.adapters.common import build_envelope, content_id, media_type, parse_iso_time
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.hikvision_isapi.alert import decode_alert, text
from linli.devices.adapters.hikvision_isapi.translate import translate
from linli.devices.adapters.multipart import Part, split_multipart
from linli.devices.events import Envelope, MediaRef

SOURCE = "hikvision_isapi"
SERIAL_FIELDS = ("serialNumber", "deviceSerial", "shortSerialNumber", "deviceID")
DOCUMENT_TYPES = ("xml", "json")
MEDIA_LABELS = {"licenseplatepicture": "plate", "picture": "face", "facepicture": "face"}
MAX_MEDIA = 10


def parse(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    device: str | None = None,
    received_at: datetime | None = None,
) -> list[Envelope]:
    """The envelopes in one alarm-server push (raises AdapterParseError on a malformed body)."""
    kind, params = media_type(headers)
    if kind.startswith("multipart/"):
        parts = split_multipart(raw, params.get("boundary", ""))
        documents = [part for part in parts if _is_document(part)]
        if not documents:
            raise AdapterParseError("multipart 中没有 XML/JSON 事件部分")
        media = [_media_ref(part) for part in parts if _is_picture(part)][:MAX_MEDIA]
        alerts = [decode_alert(part.body, _document_type(part)) for part in documents]
    else:
        media, alerts = [], [decode_alert(raw, kind)]
    envelopes = []
    for alert in alerts:
        envelope = None if alert is None else _envelope(alert, headers, device, received_at, media)
        if envelope is not None:
            envelopes.append(envelope)
    return envelopes


def extract_media(raw: bytes, headers: Mapping[str, str]) -> dict[str, bytes]:
    """The pictures of a multipart push by part name (the keys of the `upload:<name>` refs)."""
    kind, params = media_type(headers)
    if not kind.startswith("multipart/"):
        return {}
    parts = split_multipart(raw, params.get("boundary", ""))
    return {_media_name(part): part.body for part in parts if _is_picture(part)}


def _envelope(
    alert: dict[str, Any],
    headers: Mapping[str, str],
    device: str | None,
    received_at: datetime | None,
    media: list[MediaRef],
) -> Envelope | None:
    meaning = translate(alert, headers)
    if meaning is None:
        return None
    stamp = text(alert, "dateTime")
    if not stamp:
        raise AdapterParseError("缺少必填字段 dateTime")
    occurred_at = parse_iso_time(stamp)
    sender = device or resolve_device(alert)
    return build_envelope(
        event_id=content_id("hik", [sender, meaning.type, occurred_at, *meaning.keys]),
        device=sender,
        event_type=meaning.type,
        occurred_at=occurred_at,
        payload=meaning.payload,
        source=SOURCE,
        received_at=received_at,
        media=media,
    )


def resolve_device(alert: dict[str, Any]) -> str:
    """The sender's serial as the alert names it, else its MAC address."""
    for key in (*SERIAL_FIELDS, "macAddress"):
        value = text(alert, key)
        if value:
            return value
    raise AdapterParseError("无法确定设备：未指定设备，且事件中没有序列号或 macAddress")


def _is_document(part: Part) -> bool:
    return _document_type(part) != ""


def _document_type(part: Part) -> str:
    for kind in DOCUMENT_TYPES:
        if kind in part.content_type or part.name.lower().endswith(f".{kind}"):
            return f"application/{kind}"
    return "application/json" if part.name == "event_log" else ""


def _is_picture(part: Part) -> bool:
    return part.content_type.startswith("image/")


def _media_name(part: Part) -> str:
    return part.name or part.filename or "picture"


def _media_ref(part: Part) -> MediaRef:
    name = _media_name(part)
    stem = name.rsplit(".", 1)[0].lower()
    content_type = "image/jpeg" if part.content_type == "image/pjpeg" else part.content_type
    label = MEDIA_LABELS.get(stem, "scene")
    return MediaRef(kind="image", ref=f"upload:{name}", content_type=content_type, label=label)
