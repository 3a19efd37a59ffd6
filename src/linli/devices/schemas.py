"""Device hub API shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from linli.core.timeutil import as_utc
from linli.devices.health import UNMONITORED
from linli.devices.models import DeadLetter, Device, DeviceCommand, StoredEvent
from linli.devices.vocab import KIND_LABELS, STATE_LABELS


class DeviceIn(BaseModel):
    """A device to register."""

    serial: str = Field(max_length=64)
    kind: str = Field(max_length=32, description="a kind code (camera, plate_gate …) or its Chinese name")
    community: str = Field(max_length=32)
    grid: str | None = Field(default=None, max_length=32)
    name: str = Field(default="", max_length=64)
    vendor: str = Field(default="", max_length=64)
    model: str = Field(default="", max_length=64)
    protocol: str = Field(default="http", max_length=32)
    building_id: int | None = None
    floor: int | None = None
    lat: float | None = None
    lon: float | None = None
    location: str = Field(default="", max_length=200)
    installed_on: date | None = None
    state: str = Field(default="active", max_length=16)


class DevicePatch(BaseModel):
    """Changes to a device (the serial is fixed)."""

    kind: str | None = Field(default=None, max_length=32)
    community: str | None = Field(default=None, max_length=32)
    grid: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=64)
    vendor: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=64)
    protocol: str | None = Field(default=None, max_length=32)
    building_id: int | None = None
    floor: int | None = None
    lat: float | None = None
    lon: float | None = None
    location: str | None = Field(default=None, max_length=200)
    installed_on: date | None = None
    state: str | None = Field(default=None, max_length=16)


class DeviceOut(BaseModel):
    """A device as lists show it (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    serial: str
    name: str
    kind: str
    kind_label: str = ""
    vendor: str
    model: str
    protocol: str
    community_code: str
    area_code: str
    building_id: int | None
    floor: int | None
    lat: float | None
    lon: float | None
    location: str
    installed_on: date | None
    state: str
    state_label: str = ""
    online: bool
    monitored: bool = True  # false: a kind that never connects (a patrol tag); its online says nothing
    last_seen_at: datetime | None

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        """The public view of a device."""
        out = cls.model_validate(device)
        out.kind_label = KIND_LABELS.get(device.kind, device.kind)
        out.state_label = STATE_LABELS.get(device.state, device.state)
        out.monitored = device.kind not in UNMONITORED
        return out


class DeviceDetail(DeviceOut):
    """One device with its uptime (share of time online; null when nothing is known yet)."""

    uptime_7d: float | None = None
    uptime_30d: float | None = None


class DeviceCreated(DeviceOut):
    """A new device and its secret: shown this once, keep it in the device's configuration."""

    secret: str


class SecretOut(BaseModel):
    """A device's new secret, shown once."""

    id: int
    serial: str
    secret: str


class IngestOut(BaseModel):
    """What the hub did with a batch: stored, duplicates, and each rejected event's index and reason."""

    stored: int
    duplicates: int
    rejected: list[dict[str, Any]]


class MediaOut(BaseModel):
    """A stored picture or clip: the ref to put in an event's media, its checked type and size."""

    ref: str
    content_type: str
    size: int


class EventOut(BaseModel):
    """A stored event."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_uid: str
    device_id: int
    device_serial: str
    community_code: str
    area_code: str
    type: str
    occurred_at: datetime
    received_at: datetime
    source: str
    payload: dict[str, Any]
    media: list[dict[str, Any]]
    person_id: int | None
    vehicle_id: int | None
    plate: str | None = Field(default=None, description="a plate read's normalised plate")

    @classmethod
    def of(cls, event: StoredEvent) -> EventOut:
        """The view of a stored event."""
        return cls.model_validate(event)


class SeriesOut(BaseModel):
    """One quantity's readings of a device in a window (a sensor's values, or a meter's counter)."""

    quantity: str
    unit: str
    type: str = Field(description="sensor.reading or meter.reading")
    count: int = Field(description="readings in the window")
    first: float
    last: float
    min: float
    max: float
    first_at: datetime
    last_at: datetime
    usage: float | None = Field(description="a meter's count over the window (last - first); null otherwise")
    points: list[tuple[datetime, float]] = Field(
        description="oldest first; a long window is thinned to the points asked for, each a slice's mean"
    )


class ReadingsOut(BaseModel):
    """A device's readings between since (inclusive) and until (exclusive)."""

    device_id: int
    since: datetime
    until: datetime
    series: list[SeriesOut]


class EventPage(BaseModel):
    """A page of events, newest first, with cursors: before= the next older page, after= newer events."""

    items: list[EventOut]
    before: int | None = Field(description="pass as before= for the next older page (null: no more)")
    after: int | None = Field(description="pass as after= to get what arrived since")


class DeadLetterOut(BaseModel):
    """A rejected event."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: datetime
    source: str
    reason: str
    body: str
    device_serial: str | None
    device_id: int | None
    area_code: str | None
    status: str
    attempts: int
    replayed_at: datetime | None
    event_id: int | None
    replay_via: dict[str, Any] | None = Field(
        default=None, description="set when the adapter/mapping could not read it: replay reads it again"
    )

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        """The view of a dead letter."""
        return cls.model_validate(letter)


class BulkReplayOut(BaseModel):
    """What a bulk replay did: letters stored now, refused again, and matching letters left for another."""

    replayed: int
    refused: int
    remaining: int


class ReplayOut(BaseModel):
    """The dead letter after a replay, and what the replay did."""

    dead_letter: DeadLetterOut
    result: IngestOut


class CommandIn(BaseModel):
    """A command for a device: what, its arguments, and how long it may wait for the device."""

    command: str = Field(max_length=32, description="open_door, open_barrier, push_credential, …")
    args: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600, description="expires unanswered after")


class CommandOut(BaseModel):
    """A command and what became of it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    command: str
    args: dict[str, Any]
    status: str
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    expires_at: datetime
    result: str
    requested_by: str

    @classmethod
    def of(cls, command: DeviceCommand) -> CommandOut:
        """The view of a command (times in UTC)."""
        out = cls.model_validate(command)
        for name in ("created_at", "sent_at", "acked_at", "expires_at"):
            value = getattr(out, name)
            if value is not None:
                setattr(out, name, as_utc(value))
        return out


class AckBody(BaseModel):
    """An HTTP device's answer to one of its commands."""

    status: Literal["ok", "failed"]
    detail: str = Field(default="", max_length=500)
