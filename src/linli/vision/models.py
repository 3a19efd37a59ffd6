"""Tables of high-altitude throw detection: each watched camera's vision set-up, and what it detected."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.pii import EncryptedText
from linli.core.timeutil import utcnow
from linli.db import AreaScoped, Base, Timestamped

BigId = BigInteger().with_variant(Integer(), "sqlite")


class StreamState(StrEnum):
    """What the runner last saw of a camera's picture (the detector's CameraState, plus not yet seen)."""

    UNKNOWN = "unknown"
    OK = "ok"
    BLACK = "black"
    FROZEN = "frozen"
    MOVED = "moved"
    NO_SIGNAL = "no_signal"
    UNREADABLE = "unreadable"  # the file is missing or not a video
    BAD_CODEC = "bad_codec"  # a video whose codec cannot be decoded


class VisionCamera(AreaScoped, Timestamped, Base):
    """A camera of the device register watched for falling objects; area_code is the device's.

    calibration holds Calibration.to_json() (None until someone calibrates the camera on a still frame);
    sensitivity is kept in step with the calibration's own value.
    """

    __tablename__ = "vision_cameras"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), unique=True)
    # RTSP URLs carry the camera's password: encrypted at rest like device secrets.
    stream_url: Mapped[str | None] = mapped_column(EncryptedText(), default=None)
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    enabled: Mapped[bool] = mapped_column(default=True)
    sensitivity: Mapped[float] = mapped_column(Float, default=0.5)
    state: Mapped[str] = mapped_column(String(16), default=StreamState.UNKNOWN.value)
    state_reason: Mapped[str] = mapped_column(String(200), default="")
    state_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The still frame the calibration was drawn on (a media store key) and its size in pixels.
    reference_frame: Mapped[str | None] = mapped_column(String(100), default=None)
    reference_width: Mapped[int | None] = mapped_column(default=None)
    reference_height: Mapped[int | None] = mapped_column(default=None)
    reference_taken_at: Mapped[datetime | None] = mapped_column(default=None)


class VisionDetection(AreaScoped, Base):
    """One detected falling object, linked to its throw.detected event and its evidence in the media store."""

    __tablename__ = "vision_detections"
    __table_args__ = (
        UniqueConstraint("camera_id", "event_uid", name="uq_vision_detections_camera_uid"),
        Index("ix_vision_detections_camera_started", "camera_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("vision_cameras.id", ondelete="CASCADE"))
    event_uid: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    started_at: Mapped[datetime] = mapped_column()
    start_frame: Mapped[int] = mapped_column()
    end_frame: Mapped[int] = mapped_column()
    origin_x: Mapped[float] = mapped_column(Float)
    origin_y: Mapped[float] = mapped_column(Float)
    floor: Mapped[int | None] = mapped_column(default=None)
    floor_uncertainty: Mapped[float | None] = mapped_column(Float, default=None)
    column: Mapped[int | None] = mapped_column(default=None)
    confidence: Mapped[float] = mapped_column(Float)
    size_px: Mapped[float] = mapped_column(Float, default=0.0)
    trajectory: Mapped[list[list[float]]] = mapped_column(JSON, default=list)  # [[seconds, x, y], ...]
    keyframe_ref: Mapped[str | None] = mapped_column(String(100), default=None)
    clip_ref: Mapped[str | None] = mapped_column(String(100), default=None)
    clip_type: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
