"""Tables of the device hub: register, credentials, events, raw payloads, dead letters, rollups, commands."""

from __future__ import annotations

import zlib
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.pii import EncryptedText
from linli.core.timeutil import utcnow
from linli.db import AreaScoped, Base, Timestamped

BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys
Json = JSON().with_variant(JSONB(), "postgresql")


class DeviceKind(StrEnum):
    """What a device is."""

    CAMERA = "camera"
    FACE_TERMINAL = "face_terminal"
    CARD_READER = "card_reader"
    PLATE_GATE = "plate_gate"
    BARRIER = "barrier"
    PATROL_TAG = "patrol_tag"
    PATROL_HANDSET = "patrol_handset"
    SMOKE_SENSOR = "smoke_sensor"
    GAS_SENSOR = "gas_sensor"
    WATER_SENSOR = "water_sensor"
    DOOR_SENSOR = "door_sensor"
    SOS_BUTTON = "sos_button"
    WATER_METER = "water_meter"
    ELECTRICITY_METER = "electricity_meter"
    GAS_METER = "gas_meter"
    ELEVATOR_MONITOR = "elevator_monitor"
    HYDRANT_PRESSURE = "hydrant_pressure"
    THROW_CAMERA = "throw_camera"
    GATEWAY = "gateway"


class DeviceState(StrEnum):
    """A device's life-cycle state."""

    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class DeadLetterStatus(StrEnum):
    """What became of a rejected event."""

    NEW = "new"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class CommandStatus(StrEnum):
    """Where a command to a device stands."""

    QUEUED = "queued"  # waiting for an HTTP-only device to fetch it
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    EXPIRED = "expired"


class Device(AreaScoped, Timestamped, Base):
    """One registered device; area_code is its community or the grid it stands in."""

    __tablename__ = "devices"
    __table_args__ = (Index("ix_devices_online_seen", "online", "last_seen_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(32), index=True)
    vendor: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(64), default="")
    protocol: Mapped[str] = mapped_column(String(32), default="http")
    community_code: Mapped[str] = mapped_column(String(32), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), default=None)
    floor: Mapped[int | None] = mapped_column(default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    location: Mapped[str] = mapped_column(String(200), default="")
    installed_on: Mapped[date | None] = mapped_column(Date, default=None)
    state: Mapped[str] = mapped_column(String(16), default=DeviceState.ACTIVE.value)
    # Needed in plain text to verify HMAC signatures, so encrypted rather than hashed.
    secret: Mapped[str] = mapped_column(EncryptedText())
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    online: Mapped[bool] = mapped_column(default=False)
    online_changed_at: Mapped[datetime | None] = mapped_column(default=None)


class DevicesVersion(Base):
    """One row: a token set anew by the database whenever the register of devices changes (a device added,
    removed, or any column but its last-seen time, link state and update time changed; triggers of
    migration 0013). register.live_by_serials keeps the devices it loaded while the token stays the same.
    A column the hub comes to read from a kept device must be one the triggers watch."""

    __tablename__ = "devices_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class DeviceCredential(AreaScoped, Base):
    """A card number or a device's own person id that means a registered person (area_code: the community).

    device_id None: valid on every device of the community; a device's own mapping wins over it.
    """

    __tablename__ = "device_credentials"
    __table_args__ = (Index("ix_device_credentials_lookup", "area_code", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), default=None, index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredEvent(AreaScoped, Base):
    """One normalised event, append-only; links to the register by id and never copies it."""

    __tablename__ = "device_events"
    __table_args__ = (
        UniqueConstraint("device_id", "event_uid", name="uq_device_events_device_uid"),
        Index("ix_device_events_area_time", "area_code", "occurred_at"),
        Index("ix_device_events_device_time", "device_id", "occurred_at"),
        Index("ix_device_events_type_time", "type", "occurred_at"),
        # Plate reads by plate, registered or not (a visitor's car has no vehicle_id); only rows with a plate.
        Index(
            "ix_device_events_plate_time",
            "plate",
            "occurred_at",
            sqlite_where=text("plate IS NOT NULL"),
            postgresql_where=text("plate IS NOT NULL"),
        ),
        # Events of a person or a vehicle; only the rows linked to one (most events are not: an index
        # entry per row costs every insert). A query for `person_id = ?` uses the partial index.
        Index(
            "ix_device_events_person_id",
            "person_id",
            sqlite_where=text("person_id IS NOT NULL"),
            postgresql_where=text("person_id IS NOT NULL"),
        ),
        Index(
            "ix_device_events_vehicle_id",
            "vehicle_id",
            sqlite_where=text("vehicle_id IS NOT NULL"),
            postgresql_where=text("vehicle_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_uid: Mapped[str] = mapped_column(String(128))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    device_serial: Mapped[str] = mapped_column(String(64))
    community_code: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str] = mapped_column(String(32))  # no index of its own: (area_code, occurred_at) serves
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    media: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    # No foreign keys: the store is history; a merged person is followed through people.merged_into_id.
    person_id: Mapped[int | None] = mapped_column(default=None)
    vehicle_id: Mapped[int | None] = mapped_column(default=None)
    plate: Mapped[str | None] = mapped_column(String(16), default=None)  # the read's normalised plate


class RawPayload(Base):
    """A request body as received, kept raw_retention_days for diagnosis and re-processing."""

    __tablename__ = "raw_payloads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(128), default="")
    device_serial: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)  # as stored: see body_encoding, and content
    event_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    dead_letter_id: Mapped[int | None] = mapped_column(default=None)
    # "" : body is the bytes received; "zlib": compressed (store.kept_body: bodies of RAW_COMPRESS_AT
    # bytes and more, a gateway's batch of JSON events shrinks about eight times)
    body_encoding: Mapped[str] = mapped_column(String(8), default="", server_default="")

    @property
    def content(self) -> bytes:
        """The body as it was received."""
        body = bytes(self.body)
        return zlib.decompress(body) if self.body_encoding == "zlib" else body


class DeadLetter(Base):
    """An event the hub could not store, with the reason; area_code is the device's when known."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_area_status", "area_code", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    device_serial: Mapped[str | None] = mapped_column(String(64), default=None)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), default=None)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), default=None)
    area_code: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16), default=DeadLetterStatus.NEW.value, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    replayed_at: Mapped[datetime | None] = mapped_column(default=None)
    event_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    raw_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Set when the adapter or mapping could not read the item (body: the raw record or body, not an
    # envelope): how to read it again through the device's current one (deadletters.replay_via).
    replay_via: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class EventRollup(AreaScoped, Base):
    """Events per hour, community (area_code), device kind and type; incremented with each batch."""

    __tablename__ = "event_rollups"
    __table_args__ = (
        UniqueConstraint("hour", "area_code", "device_kind", "type", name="uq_event_rollups_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hour: Mapped[datetime] = mapped_column()
    device_kind: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(default=0)


class DeviceCommand(AreaScoped, Base):
    """One command sent down to a device (open a door, push a credential …) and what became of it."""

    __tablename__ = "device_commands"
    __table_args__ = (
        Index("ix_device_commands_device_created", "device_id", "created_at"),
        Index("ix_device_commands_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    command: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    acked_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column()
    result: Mapped[str] = mapped_column(String(500), default="")
    requested_by: Mapped[str] = mapped_column(String(64), default="")
