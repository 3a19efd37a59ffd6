"""Throw detection JSON API: watched cameras, their calibration and reference frame, their detections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Query, UploadFile

from linli.core.auth.roles import Perm
from linli.core.errors import TooLarge
from linli.core.timeutil import utcnow
from linli.vision import service, stills
from linli.vision.schemas import CameraIn, CameraOut, DetectionOut
from linli.web.deps import DB, CurrentPrincipal

router = APIRouter(prefix="/api/v1/vision", tags=["vision"])
MAX_STILL = 16 * 1024 * 1024


@router.get("/cameras", response_model=list[CameraOut])
def list_cameras(
    session: DB,
    principal: CurrentPrincipal,
    area: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9]*$")] = None,
) -> list[CameraOut]:
    """Cameras watched for falling objects in the caller's areas."""
    cameras = service.get_all(session, principal, area=area)
    return [CameraOut.of(c, service.device_of(session, c)) for c in cameras]


@router.post("/cameras", response_model=CameraOut)
def configure_camera(body: CameraIn, session: DB, principal: CurrentPrincipal) -> CameraOut:
    """Watch a registered camera, or change its stream URL and enabled flag."""
    camera = service.configure(
        session, principal, device_id=body.device_id, stream_url=body.stream_url, enabled=body.enabled
    )
    return CameraOut.of(camera, service.device_of(session, camera))


@router.get("/cameras/{camera_id}", response_model=CameraOut)
def get_camera(camera_id: int, session: DB, principal: CurrentPrincipal) -> CameraOut:
    """One watched camera with its calibration."""
    principal.require(Perm.DEVICES_READ)
    camera = service.get_or_raise(session, camera_id=camera_id)
    return CameraOut.of(camera, service.device_of(session, camera))


@router.put("/cameras/{camera_id}/calibration", response_model=CameraOut)
def save_calibration(
    camera_id: int, session: DB, principal: CurrentPrincipal, body: Annotated[dict[str, Any], Body()]
) -> CameraOut:
    """Store a calibration (Calibration JSON, see docs/vision.md); 422 names the wrong field."""
    camera = service.save_calibration(session, principal, camera_id=camera_id, data=body)
    return CameraOut.of(camera, service.device_of(session, camera))


@router.put("/cameras/{camera_id}/reference-frame", response_model=CameraOut)
async def upload_reference_frame(
    camera_id: int, session: DB, principal: CurrentPrincipal, file: Annotated[UploadFile, File()]
) -> CameraOut:
    """Upload a still picture of the camera (JPEG or PNG, full resolution) to calibrate on."""
    camera = service.get_or_raise(session, camera_id=camera_id)
    data = await file.read(MAX_STILL + 1)
    if len(data) > MAX_STILL:
        raise TooLarge(f"图片过大（上限 {MAX_STILL // (1024 * 1024)} MB）", field="file")
    jpeg, width, height = stills.from_bytes(data)
    service.store_reference_frame(
        session, principal, camera=camera, jpeg=jpeg, width=width, height=height, now=utcnow()
    )
    return CameraOut.of(camera, service.device_of(session, camera))


@router.get("/cameras/{camera_id}/detections", response_model=list[DetectionOut])
def list_detections(
    camera_id: int,
    session: DB,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DetectionOut]:
    """A camera's latest detections, newest first."""
    principal.require(Perm.EVENTS_READ)
    camera = service.get_or_raise(session, camera_id=camera_id)
    return [DetectionOut.of(d) for d in service.recent_detections(session, camera_id=camera.id, limit=limit)]
