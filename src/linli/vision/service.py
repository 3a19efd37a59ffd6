"""Throw detection's rules: which cameras are watched, their calibration and state, and their detections.

A detection is stored twice over, on purpose: as a `throw.detected` event of the device hub (ingested
in-process, so rules and alerts see it like any device's event) and as a vision_detections row that keeps
what only this domain needs (frames, origin in pixels, size). Evidence pictures and clips go to the
shared media store. The caller owns the transaction and delivers the outbox after committing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core import audit, media
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, NotFound
from linli.core.timeutil import as_utc
from linli.devices import register
from linli.devices import service as hub
from linli.devices.models import Device, DeviceKind
from linli.vision import hub_events
from linli.vision.calibration import Calibration, CalibrationError
from linli.vision.models import StreamState, VisionCamera, VisionDetection

SOURCE = hub_events.SOURCE
WATCHABLE_KINDS = (DeviceKind.THROW_CAMERA.value, DeviceKind.CAMERA.value)
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "file")
MAX_URL = 160  # encrypted it must fit the 255 characters of the column


@dataclass(frozen=True)
class Evidence:
    """What a detection is stored with: a key frame JPEG and a short clip (either may be missing)."""

    keyframe: bytes | None = None
    clip: bytes | None = None
    clip_type: str = "video/webm"


def get_all(session: Session, principal: Principal, *, area: str | None = None) -> list[VisionCamera]:
    """Watched cameras in the caller's scope (and under area when given), by id."""
    principal.require(Perm.DEVICES_READ)
    stmt = select(VisionCamera).order_by(VisionCamera.id)
    if area:
        stmt = stmt.where(VisionCamera.area_code.startswith(area))
    return list(session.scalars(stmt))


def get_or_raise(session: Session, *, camera_id: int) -> VisionCamera:
    """A watched camera in the caller's scope, else NotFound."""
    camera = session.scalar(select(VisionCamera).where(VisionCamera.id == camera_id))
    if camera is None:
        raise NotFound("摄像机不存在或不在权限范围内", field="camera")
    return camera


def device_of(session: Session, camera: VisionCamera) -> Device:
    """The register device a watched camera is."""
    return register.get_or_raise(session, device_id=camera.device_id)


def get_by_device(session: Session, *, device_id: int) -> VisionCamera | None:
    """The vision set-up of a device, if it has one (in the caller's scope)."""
    return session.scalar(select(VisionCamera).where(VisionCamera.device_id == device_id))


def find_by_serial(session: Session, *, serial: str) -> tuple[Device, VisionCamera | None]:
    """The device with that serial and its vision set-up; NotFound if no such device in scope."""
    device = register.find_by_serial(session, serial=serial)
    if device is None:
        raise NotFound(f"设备未登记或不在权限范围内：{serial}", field="camera")
    return device, get_by_device(session, device_id=device.id)


def check_stream_url(url: str | None, *, field: str = "stream_url") -> str | None:
    """A stream URL as stored (None for empty); Invalid if it is not an rtsp/http/file URL."""
    text = (url or "").strip()
    if not text:
        return None
    if len(text) > MAX_URL:
        raise Invalid(f"视频流地址过长（最多 {MAX_URL} 个字符）", field=field)
    parts = urlsplit(text)
    if parts.scheme.lower() not in STREAM_SCHEMES or not (parts.netloc or parts.path):
        raise Invalid(f"视频流地址应以 {'、'.join(s + '://' for s in STREAM_SCHEMES)} 开头", field=field)
    return text


def shown_url(url: str | None) -> str:
    """A stream URL for display: the password replaced by ***."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def configure(
    session: Session,
    principal: Principal,
    *,
    device_id: int,
    stream_url: str | None = None,
    enabled: bool | None = None,
) -> VisionCamera:
    """Watch a camera of the register for falling objects (or change its stream / enabled flag)."""
    principal.require(Perm.DEVICES_WRITE)
    device = register.get_or_raise(session, device_id=device_id)
    if device.kind not in WATCHABLE_KINDS:
        raise Invalid("只有摄像机或高空抛物摄像机可以做抛物检测", field="device")
    camera = get_by_device(session, device_id=device.id)
    created = camera is None
    if camera is None:
        camera = VisionCamera(device_id=device.id, area_code=device.area_code, enabled=True)
        session.add(camera)
    camera.area_code = device.area_code
    if stream_url is not None:
        camera.stream_url = check_stream_url(stream_url)
    if enabled is not None:
        camera.enabled = enabled
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="vision.camera.create" if created else "vision.camera.update",
        target_type="vision_camera",
        target_id=camera.id,
        area_code=camera.area_code,
        detail={"device": device.serial, "enabled": camera.enabled, "stream": shown_url(camera.stream_url)},
    )
    return camera


def validate_calibration(data: Any, *, width: int | None = None, height: int | None = None) -> dict[str, Any]:
    """Calibration JSON as stored (normalised by Calibration); CalibrationError (Invalid) names the field."""
    calibration = Calibration.from_json(data)
    if (
        width is not None
        and height is not None
        and (calibration.width, calibration.height) != (width, height)
    ):
        raise CalibrationError(
            "width", f"标定画面尺寸 {calibration.width}×{calibration.height} 与参考帧 {width}×{height} 不一致"
        )
    return calibration.to_json()


def save_calibration(session: Session, principal: Principal, *, camera_id: int, data: Any) -> VisionCamera:
    """Store a camera's calibration (drawn on its reference frame); its sensitivity goes along."""
    principal.require(Perm.DEVICES_WRITE)
    camera = get_or_raise(session, camera_id=camera_id)
    stored = validate_calibration(data, width=camera.reference_width, height=camera.reference_height)
    camera.calibration = stored
    camera.sensitivity = float(stored.get("sensitivity", camera.sensitivity))
    floors = max(len(stored.get("floor_lines", [])) - 1, 0)
    columns = max(len(stored.get("columns", [])) - 1, 0)
    audit.record(
        session,
        actor=principal.actor,
        action="vision.calibrate",
        target_type="vision_camera",
        target_id=camera.id,
        area_code=camera.area_code,
        detail={"floors": floors, "columns": columns, "sensitivity": camera.sensitivity},
    )
    return camera


def store_reference_frame(
    session: Session,
    principal: Principal,
    *,
    camera: VisionCamera,
    jpeg: bytes,
    width: int,
    height: int,
    now: datetime,
) -> VisionCamera:
    """Keep a still frame of the camera (JPEG, full resolution) for the calibration editor."""
    principal.require(Perm.DEVICES_WRITE)
    key = media.put(
        session, jpeg, content_type="image/jpeg", area_code=camera.area_code, filename="reference.jpg"
    )
    media.claim(session, [key], area_code=camera.area_code, now=now)
    camera.reference_frame = key
    camera.reference_width, camera.reference_height = width, height
    camera.reference_taken_at = now
    audit.record(
        session,
        actor=principal.actor,
        action="vision.reference_frame",
        target_type="vision_camera",
        target_id=camera.id,
        area_code=camera.area_code,
        detail={"width": width, "height": height, "key": key},
    )
    return camera


def set_state(
    session: Session, *, camera: VisionCamera, device: Device, state: str, reason: str, now: datetime
) -> bool:
    """Record what the runner sees of the camera; on a change tell the hub (alarm raised or cleared).

    Returns True if the state changed.
    """
    state = StreamState(state).value
    old = camera.state
    if old == state and camera.state_reason == reason[:200]:
        return False
    camera.state_reason = reason[:200]
    if old == state:
        return False
    camera.state = state
    camera.state_changed_at = now
    envelopes = hub_events.state_change(device, old=old, new=state, reason=reason, at=now)
    if envelopes:
        hub.ingest(session, envelopes, source=SOURCE, received_at=now)
    return True


def heartbeat(session: Session, *, camera: VisionCamera, device: Device, now: datetime) -> None:
    """Tell the hub the camera's stream is alive (what the runner sees is the heartbeat's status)."""
    hub.ingest(
        session, [hub_events.heartbeat(device, state=camera.state, at=now)], source=SOURCE, received_at=now
    )


def record_detection(
    session: Session,
    *,
    camera: VisionCamera,
    device: Device,
    detection: Any,
    started_at: datetime,
    fps: float,
    evidence: Evidence,
    now: datetime,
) -> VisionDetection:
    """Store a detection: its evidence in the media store, its throw.detected event, and its row.

    detection is a linli.vision.detector.Detection. Idempotent per (camera, start time, start frame):
    the same detection stored twice is one event and one row.
    """
    started_at = as_utc(started_at)
    uid = hub_events.throw_uid(device, started_at=started_at, start_frame=detection.start_frame)
    known = session.scalar(
        select(VisionDetection).where(
            VisionDetection.camera_id == camera.id, VisionDetection.event_uid == uid
        )
    )
    if known is not None:
        return known
    keyframe_ref = clip_ref = None
    refs: list[dict[str, str]] = []
    if evidence.keyframe:
        keyframe_ref = media.put(
            session,
            evidence.keyframe,
            content_type="image/jpeg",
            area_code=camera.area_code,
            filename="keyframe.jpg",
        )
        refs.append({"kind": "image", "ref": keyframe_ref, "content_type": "image/jpeg", "label": "keyframe"})
    if evidence.clip:
        clip_ref = media.put(
            session,
            evidence.clip,
            content_type=evidence.clip_type,
            area_code=camera.area_code,
            filename="evidence",
        )
        refs.append(
            {"kind": "video", "ref": clip_ref, "content_type": evidence.clip_type, "label": "evidence"}
        )
    media.claim(session, [r["ref"] for r in refs], area_code=camera.area_code, now=now)
    envelope = hub_events.throw_detected(
        device, detection, uid=uid, started_at=started_at, fps=fps, media=refs, size=_size(camera)
    )
    result = hub.ingest(session, [envelope], source=SOURCE, received_at=now)
    if result.rejected:
        raise Invalid(f"抛物事件未能入库：{result.rejected[0][1]}", field="event")
    event_ids = result.event_ids or result.duplicate_ids
    row = VisionDetection(
        camera_id=camera.id,
        area_code=camera.area_code,
        event_uid=uid,
        event_id=event_ids[0] if event_ids else None,
        started_at=started_at,
        start_frame=detection.start_frame,
        end_frame=detection.end_frame,
        origin_x=float(detection.origin[0]),
        origin_y=float(detection.origin[1]),
        floor=detection.floor,
        floor_uncertainty=_finite(detection.floor_uncertainty) if detection.floor is not None else None,
        column=detection.column,
        confidence=float(detection.confidence),
        size_px=float(detection.size_px),
        trajectory=envelope.payload["trajectory"],
        keyframe_ref=keyframe_ref,
        clip_ref=clip_ref,
        clip_type=evidence.clip_type if clip_ref else "",
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _size(camera: VisionCamera) -> tuple[int, int] | None:
    if camera.calibration:
        return int(camera.calibration["width"]), int(camera.calibration["height"])
    if camera.reference_width and camera.reference_height:
        return camera.reference_width, camera.reference_height
    return None


def _finite(value: float) -> float | None:
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def recent_detections(session: Session, *, camera_id: int, limit: int = 20) -> list[VisionDetection]:
    """A camera's latest detections, newest first."""
    stmt = (
        select(VisionDetection)
        .where(VisionDetection.camera_id == camera_id)
        .order_by(VisionDetection.started_at.desc(), VisionDetection.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def detections_since(session: Session, *, camera_id: int, since: datetime) -> list[VisionDetection]:
    """A camera's detections that started at or after since, oldest first."""
    stmt = (
        select(VisionDetection)
        .where(VisionDetection.camera_id == camera_id, VisionDetection.started_at >= since)
        .order_by(VisionDetection.started_at, VisionDetection.id)
    )
    return list(session.scalars(stmt))
