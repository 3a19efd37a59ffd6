"""Throw detection console pages (under the device console): cameras, a camera's detections, calibration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from linli.core.auth.roles import Perm
from linli.core.errors import TooLarge
from linli.core.timeutil import utcnow
from linli.devices import register
from linli.devices.models import Device
from linli.devices.vocab import KIND_LABELS
from linli.vision import service, stills
from linli.vision.models import VisionCamera
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
MAX_STILL = 16 * 1024 * 1024
RECENT = 20

STATE_LABELS: dict[str, str] = {
    "unknown": "未运行",
    "ok": "正常",
    "black": "画面全黑",
    "frozen": "画面冻结",
    "moved": "摄像机移位",
    "no_signal": "无信号",
    "unreadable": "视频无法读取",
    "bad_codec": "编码不受支持",
}


def _labels() -> dict[str, Any]:
    return {"vision_states": STATE_LABELS, "kind_labels": KIND_LABELS}


@router.get("/devices/vision", response_class=HTMLResponse)
def camera_list(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """Cameras watched for falling objects in the caller's areas, with their state."""
    cameras = service.get_all(session, principal)
    devices = {c.id: service.device_of(session, c) for c in cameras}
    watched = {d.id for d in devices.values()}
    candidates: list[Device] = []
    if principal.can(Perm.DEVICES_WRITE):
        for kind in service.WATCHABLE_KINDS:
            candidates += [d for d in register.get_all(session, kind=kind, limit=500) if d.id not in watched]
    return render(
        request,
        "vision/cameras.html",
        cameras=cameras,
        devices=devices,
        candidates=candidates,
        can_write=principal.can(Perm.DEVICES_WRITE),
        **_labels(),
    )


@router.post("/devices/vision")
def add_camera(
    session: DB,
    principal: PagePrincipal,
    device_id: Annotated[int, Form()],
    stream_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Start watching a registered camera; on to its page."""
    camera = service.configure(session, principal, device_id=device_id, stream_url=stream_url or None)
    return RedirectResponse(f"/devices/vision/{camera.id}", status_code=303)


def _camera_page(
    request: Request, session: DB, principal: PagePrincipal, camera: VisionCamera, **extra: Any
) -> Response:
    can_events = principal.can(Perm.EVENTS_READ)
    detections = service.recent_detections(session, camera_id=camera.id, limit=RECENT) if can_events else []
    return render(
        request,
        "vision/camera.html",
        camera=camera,
        device=service.device_of(session, camera),
        stream=service.shown_url(camera.stream_url),
        detections=detections,
        can_events=can_events,
        can_write=principal.can(Perm.DEVICES_WRITE),
        **_labels(),
        **extra,
    )


@router.get("/devices/vision/{camera_id}", response_class=HTMLResponse)
def camera_page(request: Request, camera_id: int, session: DB, principal: PagePrincipal) -> Response:
    """A watched camera: state, set-up, and its latest detections with key frame and clip."""
    principal.require(Perm.DEVICES_READ)
    camera = service.get_or_raise(session, camera_id=camera_id)
    return _camera_page(request, session, principal, camera)


@router.post("/devices/vision/{camera_id}")
def edit_camera(
    camera_id: int,
    session: DB,
    principal: PagePrincipal,
    stream_url: Annotated[str, Form(max_length=500)] = "",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Change the stream URL (empty keeps it) and whether the camera is watched."""
    camera = service.get_or_raise(session, camera_id=camera_id)
    service.configure(
        session,
        principal,
        device_id=camera.device_id,
        stream_url=stream_url or None,
        enabled=enabled == "on",
    )
    return RedirectResponse(f"/devices/vision/{camera.id}", status_code=303)


@router.get("/devices/vision/{camera_id}/calibrate", response_class=HTMLResponse)
def calibrate_page(request: Request, camera_id: int, session: DB, principal: PagePrincipal) -> Response:
    """The calibration editor on the camera's still frame."""
    principal.require(Perm.DEVICES_READ)
    camera = service.get_or_raise(session, camera_id=camera_id)
    return render(
        request,
        "vision/calibrate.html",
        camera=camera,
        device=service.device_of(session, camera),
        can_write=principal.can(Perm.DEVICES_WRITE),
        **_labels(),
    )


@router.post("/devices/vision/{camera_id}/reference")
async def upload_reference(
    camera_id: int,
    session: DB,
    principal: PagePrincipal,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Store an uploaded still picture of the camera; back to the editor."""
    camera = service.get_or_raise(session, camera_id=camera_id)
    data = await file.read(MAX_STILL + 1)
    if len(data) > MAX_STILL:
        raise TooLarge(f"图片过大（上限 {MAX_STILL // (1024 * 1024)} MB）", field="file")
    jpeg, width, height = stills.from_bytes(data)
    service.store_reference_frame(
        session, principal, camera=camera, jpeg=jpeg, width=width, height=height, now=utcnow()
    )
    return RedirectResponse(f"/devices/vision/{camera.id}/calibrate", status_code=303)
