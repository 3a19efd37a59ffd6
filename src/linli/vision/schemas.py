"""Throw detection API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from linli.core.timeutil import as_utc
from linli.devices.models import Device
from linli.vision.models import VisionCamera, VisionDetection
from linli.vision.service import shown_url


class CameraIn(BaseModel):
    """Watch a registered camera (or change its stream and enabled flag)."""

    device_id: int
    stream_url: str | None = Field(default=None, max_length=500, description="rtsp://… (stored encrypted)")
    enabled: bool | None = None


class CameraOut(BaseModel):
    """A watched camera: its device, stream (password hidden), state and calibration."""

    id: int
    device_id: int
    serial: str
    name: str
    community_code: str
    stream_url: str
    enabled: bool
    sensitivity: float
    state: str
    state_reason: str
    state_changed_at: datetime | None
    calibrated: bool
    calibration: dict[str, Any] | None
    reference_frame: str | None
    reference_size: tuple[int, int] | None

    @classmethod
    def of(cls, camera: VisionCamera, device: Device) -> CameraOut:
        """The API shape of a camera and its device."""
        size = None
        if camera.reference_width and camera.reference_height:
            size = (camera.reference_width, camera.reference_height)
        return cls(
            id=camera.id,
            device_id=device.id,
            serial=device.serial,
            name=device.name or device.location,
            community_code=device.community_code,
            stream_url=shown_url(camera.stream_url),
            enabled=camera.enabled,
            sensitivity=camera.sensitivity,
            state=camera.state,
            state_reason=camera.state_reason,
            state_changed_at=as_utc(camera.state_changed_at) if camera.state_changed_at else None,
            calibrated=camera.calibration is not None,
            calibration=camera.calibration,
            reference_frame=camera.reference_frame,
            reference_size=size,
        )


class DetectionOut(BaseModel):
    """One detection with its event and evidence keys (fetch them from /api/v1/media/{key})."""

    id: int
    camera_id: int
    event_id: int | None
    started_at: datetime
    floor: int | None
    floor_uncertainty: float | None
    column: int | None
    origin: tuple[float, float]
    confidence: float
    size_px: float
    trajectory: list[list[float]]
    keyframe: str | None
    clip: str | None
    clip_type: str

    @classmethod
    def of(cls, row: VisionDetection) -> DetectionOut:
        """The API shape of a detection row."""
        return cls(
            id=row.id,
            camera_id=row.camera_id,
            event_id=row.event_id,
            started_at=as_utc(row.started_at),
            floor=row.floor,
            floor_uncertainty=row.floor_uncertainty,
            column=row.column,
            origin=(row.origin_x, row.origin_y),
            confidence=row.confidence,
            size_px=row.size_px,
            trajectory=row.trajectory,
            keyframe=row.keyframe_ref,
            clip=row.clip_ref,
            clip_type=row.clip_type,
        )
