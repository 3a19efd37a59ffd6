"""The open event schema: one envelope for every device's data, and a payload model per event type.

This module is the project's standard (documented in docs/events.md and served as JSON Schema at
/schemas/events/v1/...). Adapters turn vendor formats into Envelopes; nothing else enters the store.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"


class EventType(StrEnum):
    """Every event type of schema v1."""

    ACCESS_GRANTED = "access.granted"
    ACCESS_DENIED = "access.denied"
    VEHICLE_ENTERED = "vehicle.entered"
    VEHICLE_EXITED = "vehicle.exited"
    PATROL_CHECKED_IN = "patrol.checked_in"
    SENSOR_READING = "sensor.reading"
    METER_READING = "meter.reading"
    ALARM_RAISED = "alarm.raised"
    ALARM_CLEARED = "alarm.cleared"
    THROW_DETECTED = "throw.detected"
    MOTION_DETECTED = "motion.detected"
    DEVICE_HEARTBEAT = "device.heartbeat"
    DEVICE_ONLINE = "device.online"
    DEVICE_OFFLINE = "device.offline"


class _Payload(BaseModel):
    # NaN and infinities are not JSON (PostgreSQL's jsonb refuses them): a payload holding one is refused.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AccessPayload(_Payload):
    """access.granted / access.denied: someone at a door."""

    credential: Literal["face", "card", "qr", "password", "fingerprint", "remote"]
    door: str = Field(default="", max_length=64)
    direction: Literal["in", "out", "unknown"] = "unknown"
    card_no: str | None = Field(default=None, max_length=32)
    person_ref: str | None = Field(default=None, max_length=64, description="the device's own person id")
    reason: str | None = Field(default=None, max_length=128, description="why access was denied")
    similarity: float | None = Field(default=None, ge=0, le=1)


class VehiclePayload(_Payload):
    """vehicle.entered / vehicle.exited: a plate read at a gate."""

    plate: str = Field(max_length=16, description="as read; the hub normalises it")
    plate_colour: Literal["blue", "yellow", "green", "white", "black", "yellow_green", "unknown"] = "unknown"
    vehicle_colour: str | None = Field(default=None, max_length=16)
    lane: str = Field(default="", max_length=32)
    confidence: float | None = Field(default=None, ge=0, le=1)


class PatrolPayload(_Payload):
    """patrol.checked_in: a guard's handset touched a checkpoint tag (checkpoint: the tag's serial or its
    registered location, which links the check-in to the tag)."""

    checkpoint: str = Field(max_length=64)
    guard: str = Field(default="", max_length=64)
    route: str | None = Field(default=None, max_length=64)


class ReadingPayload(_Payload):
    """sensor.reading / meter.reading: one measured quantity."""

    quantity: str = Field(
        max_length=32, description="e.g. temperature, humidity, pressure, water, electricity"
    )
    value: float
    unit: str = Field(max_length=16, description="SI or customary unit: °C, %, kPa, m3, kWh ...")


class AlarmPayload(_Payload):
    """alarm.raised / alarm.cleared."""

    alarm: Literal[
        "smoke",
        "gas",
        "water",
        "door_forced",
        "door_open_too_long",
        "tamper",
        "sos",
        "intrusion",
        "line_crossing",
        "elevator",
        "hydrant_pressure",
        "video_loss",
        "scene_change",
        "other",
    ]
    level: Literal["info", "warning", "critical"] = "warning"
    detail: str = Field(default="", max_length=256)


class ThrowPayload(_Payload):
    """throw.detected: an object falling from a building."""

    floor: int | None = None
    column: int | None = None
    floor_uncertainty: float | None = None
    confidence: float = Field(ge=0, le=1)
    trajectory: list[tuple[float, float, float]] = Field(
        default_factory=list, max_length=2000, description="(seconds, x, y) in image pixels"
    )
    origin: tuple[float, float] | None = Field(
        default=None, description="(x, y) in image pixels where the object was first seen"
    )
    size_px: float | None = Field(default=None, ge=0, description="apparent size of the object in pixels")
    image_size: tuple[int, int] | None = Field(
        default=None, description="(width, height) of the picture the pixels refer to"
    )


class MotionPayload(_Payload):
    """motion.detected: motion, intrusion or line crossing seen by a camera (before any rule judges it)."""

    kind: Literal["motion", "intrusion", "line_crossing", "region_entrance", "region_exit"] = "motion"
    region: str = Field(default="", max_length=64)
    target: Literal["human", "vehicle", "unknown"] = "unknown"


class DevicePayload(_Payload):
    """device.heartbeat / device.online / device.offline."""

    status: str = Field(default="", max_length=64)
    firmware: str | None = Field(default=None, max_length=64)
    last_seen: AwareDatetime | None = None


PAYLOADS: dict[EventType, type[_Payload]] = {
    EventType.ACCESS_GRANTED: AccessPayload,
    EventType.ACCESS_DENIED: AccessPayload,
    EventType.VEHICLE_ENTERED: VehiclePayload,
    EventType.VEHICLE_EXITED: VehiclePayload,
    EventType.PATROL_CHECKED_IN: PatrolPayload,
    EventType.SENSOR_READING: ReadingPayload,
    EventType.METER_READING: ReadingPayload,
    EventType.ALARM_RAISED: AlarmPayload,
    EventType.ALARM_CLEARED: AlarmPayload,
    EventType.THROW_DETECTED: ThrowPayload,
    EventType.MOTION_DETECTED: MotionPayload,
    EventType.DEVICE_HEARTBEAT: DevicePayload,
    EventType.DEVICE_ONLINE: DevicePayload,
    EventType.DEVICE_OFFLINE: DevicePayload,
}


class MediaRef(BaseModel):
    """A picture or clip that belongs to an event (stored by the hub; referenced, never inlined)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["image", "video"]
    ref: str = Field(
        max_length=256,
        description="a media key (sha256:…) from POST /api/v1/ingest/media, upload:<part> of a multipart "
        "request, or an http(s) URL kept as a reference (not fetched)",
    )
    content_type: str = Field(default="image/jpeg", max_length=64)
    label: str = Field(default="", max_length=64, description="e.g. plate, face, scene, evidence")


class Envelope(BaseModel):
    """One event as any device or adapter sends it to the hub (schema v1)."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[
        str, Field(min_length=1, max_length=128, description="the device's own event id (dedup key)")
    ]
    device: Annotated[
        str, Field(min_length=1, max_length=64, description="the device's serial in the register")
    ]
    type: EventType
    occurred_at: AwareDatetime
    received_at: AwareDatetime | None = Field(default=None, description="set by the hub")
    community: str | None = Field(default=None, max_length=32, description="set by the hub from the register")
    source: str = Field(default="linli", max_length=64, description="the adapter that produced the event")
    payload: dict[str, Any]
    media: list[MediaRef] = Field(default_factory=list, max_length=10)

    def typed_payload(self) -> _Payload:
        """The payload validated against its type's model (raises pydantic.ValidationError)."""
        return PAYLOADS[self.type].model_validate(self.payload)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schemas: the envelope and one payload schema per event type."""
    out = {"envelope": Envelope.model_json_schema()}
    for event_type, model in PAYLOADS.items():
        out[event_type.value] = model.model_json_schema()
    return out


def content_hash(
    envelope: Envelope,
    *,
    occurred_utc: datetime | None = None,
    media: list[dict[str, Any]] | None = None,
) -> str:
    """SHA-256 of what an event says (device, type, time, payload, media), ignoring ids and hub fields.

    Adapters of devices without stable event ids use it as the envelope id, so a redelivered event
    dedups like any other. occurred_utc and media save the work when the caller has them already.
    """
    occurred = occurred_utc if occurred_utc is not None else envelope.occurred_at.astimezone(UTC)
    facts = {
        "device": envelope.device,
        "type": envelope.type.value,
        "occurred_at": occurred.isoformat(),
        "payload": envelope.payload,
        "media": media if media is not None else [m.model_dump(mode="json") for m in envelope.media],
    }
    return hashlib.sha256(_canonical(facts)).hexdigest()


def _canonical(facts: dict[str, Any]) -> bytes:
    """Sorted compact JSON as json.dumps(sort_keys=True, ensure_ascii=False) writes it, the hash's input.

    orjson writes the same bytes for text, integers, booleans, null, lists and objects with text keys
    and is ten times faster; a finite float goes in as the standard library writes it (its repr, as an
    orjson.Fragment). Anything else (NaN, a str subclass, a tuple...) goes to the standard library.
    """
    ready = _orjson_ready(facts)
    if ready is not None:
        try:
            return orjson.dumps(ready, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits
            pass
    text = json.dumps(facts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8")


_SCALARS = frozenset({str, int, bool, type(None)})
_NOT_READY = object()


def _orjson_ready(value: Any) -> Any:
    """value with its finite floats as Fragments of their repr, or None if orjson cannot write it alike.

    Exact types on purpose (a str subclass goes the standard library's way), and plain loops: this runs
    for every stored event. Containers without floats are returned as they are, not copied.
    """
    out = _ready(value)
    return None if out is _NOT_READY else out


def _ready(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        return orjson.Fragment(repr(value)) if math.isfinite(value) else _NOT_READY
    if kind is dict:
        changed: dict[str, Any] | None = None
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_READY
            if type(item) in _SCALARS:
                continue
            done = _ready(item)
            if done is _NOT_READY:
                return _NOT_READY
            if done is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = done
        return value if changed is None else changed
    if kind is list:
        items: list[Any] | None = None
        for index, item in enumerate(value):
            if type(item) in _SCALARS:
                continue
            done = _ready(item)
            if done is _NOT_READY:
                return _NOT_READY
            if done is not item:
                if items is None:
                    items = list(value)
                items[index] = done
        return value if items is None else items
    return _NOT_READY


def subject_for(community: str, event_type: str) -> str:
    """The bus subject of a stored event: linli.events.{community}.{type}."""
    return f"linli.events.{community}.{event_type}"
