"""The envelopes throw detection sends to the device hub: throw.detected, heartbeats, camera alarms.

Pure functions (no I/O): service.py ingests what they build. Camera states map onto the open schema as
alarms, raised when the picture goes wrong and cleared when it comes back; a stream that is lost also
stops the heartbeats, so the hub's own health check marks the camera offline (device.offline).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from linli.devices.events import Envelope, EventType, MediaRef
from linli.devices.models import Device

SOURCE = "linli.vision"
MAX_POINTS = 2000  # ThrowPayload.trajectory's limit

# What each bad picture is called in the alarm vocabulary of docs/events.md, and how it is described.
STATE_ALARMS: dict[str, tuple[str, str]] = {
    "black": ("tamper", "画面全黑（镜头被遮挡或红外失效）"),
    "frozen": ("video_loss", "画面冻结"),
    "no_signal": ("video_loss", "视频信号丢失"),
    "moved": ("scene_change", "摄像机移位，标定不再适用，暂停报告楼层"),
    "unreadable": ("video_loss", "视频无法读取"),
    "bad_codec": ("video_loss", "视频编码不受支持"),
}


def throw_uid(device: Device, *, started_at: datetime, start_frame: int) -> str:
    """The event id of a detection: the camera, when it started and at which frame (stable on re-sending)."""
    return f"throw:{device.serial}:{started_at.isoformat()}:{start_frame}"


def trajectory_seconds(
    points: list[tuple[int, float, float]], *, start_frame: int, fps: float
) -> list[list[float]]:
    """(frame, x, y) points as [seconds since the start, x, y], thinned evenly to the schema's limit."""
    rows = [[round((f - start_frame) / fps, 3), round(float(x), 1), round(float(y), 1)] for f, x, y in points]
    if len(rows) <= MAX_POINTS:
        return rows
    step = (len(rows) - 1) / (MAX_POINTS - 1)
    return [rows[round(i * step)] for i in range(MAX_POINTS)]


def throw_detected(
    device: Device,
    detection: Any,
    *,
    uid: str,
    started_at: datetime,
    fps: float,
    media: list[dict[str, str]],
    size: tuple[int, int] | None = None,
) -> Envelope:
    """The throw.detected envelope of a linli.vision.detector.Detection."""
    payload: dict[str, Any] = {
        "floor": detection.floor,
        "column": detection.column,
        "floor_uncertainty": round(float(detection.floor_uncertainty), 2)
        if detection.floor is not None
        else None,
        "confidence": round(min(max(float(detection.confidence), 0.0), 1.0), 3),
        "trajectory": trajectory_seconds(detection.trajectory, start_frame=detection.start_frame, fps=fps),
        "origin": [round(float(detection.origin[0]), 1), round(float(detection.origin[1]), 1)],
        "size_px": round(float(detection.size_px), 1),
    }
    if size is not None:
        payload["image_size"] = [int(size[0]), int(size[1])]
    return Envelope(
        id=uid,
        device=device.serial,
        type=EventType.THROW_DETECTED,
        occurred_at=started_at,
        source=SOURCE,
        payload={k: v for k, v in payload.items() if v is not None},
        media=[MediaRef.model_validate(m) for m in media],
    )


def heartbeat(device: Device, *, state: str, at: datetime) -> Envelope:
    """A device.heartbeat whose status is what the runner sees of the picture."""
    return Envelope(
        id=f"vision:heartbeat:{at.isoformat()}",
        device=device.serial,
        type=EventType.DEVICE_HEARTBEAT,
        occurred_at=at,
        source=SOURCE,
        payload={"status": f"vision {state}"},
    )


def state_change(
    device: Device, *, old: str, new: str, reason: str, at: datetime
) -> list[Envelope | dict[str, Any]]:
    """The alarms a change of camera state means: the old trouble cleared, the new one raised."""
    before, after = STATE_ALARMS.get(old), STATE_ALARMS.get(new)
    if before and after and before[0] == after[0]:
        return []  # e.g. frozen → no signal: the same alarm is still up
    out: list[Envelope | dict[str, Any]] = []
    if before:
        out.append(_alarm(device, EventType.ALARM_CLEARED, before[0], f"恢复：{before[1]}", at, new))
    if after:
        detail = f"{after[1]}：{reason}" if reason else after[1]
        out.append(_alarm(device, EventType.ALARM_RAISED, after[0], detail, at, new))
    return out


def _alarm(
    device: Device, event_type: EventType, alarm: str, detail: str, at: datetime, state: str
) -> Envelope:
    return Envelope(
        id=f"vision:{event_type.value}:{alarm}:{at.isoformat()}",
        device=device.serial,
        type=event_type,
        occurred_at=at,
        source=SOURCE,
        payload={"alarm": alarm, "level": "warning", "detail": f"{detail} [{state}]"[:256]},
    )
