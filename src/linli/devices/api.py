"""Device hub staff JSON API: register, import, dead letters (events: api_events, commands: api_commands)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from linli.core.auth.roles import Perm
from linli.core.errors import Invalid, TooLarge
from linli.core.outbox import deliver_outbox
from linli.core.pagination import Limit, Offset
from linli.core.timeutil import utcnow
from linli.devices import deadletters, health, importers, register, service
from linli.devices.api_commands import router as commands_router
from linli.devices.api_events import router as events_router
from linli.devices.mappings.api import router as mappings_router
from linli.devices.mappings.pages import router as mappings_pages
from linli.devices.schemas import (
    BulkReplayOut,
    DeadLetterOut,
    DeviceCreated,
    DeviceDetail,
    DeviceIn,
    DeviceOut,
    DevicePatch,
    IngestOut,
    ReplayOut,
    SecretOut,
)
from linli.web.deps import DB, CurrentPrincipal

staff = APIRouter(prefix="/api/v1", tags=["devices"])
REASON_PATTERN = "^(" + "|".join(deadletters.REASONS) + ")?$"


@staff.get("/devices", response_model=list[DeviceOut])
def list_devices(
    session: DB,
    principal: CurrentPrincipal,
    area: Annotated[str | None, Query(max_length=32, description="community or grid code")] = None,
    kind: str | None = None,
    state: str | None = None,
    online: bool | None = None,
    serial: Annotated[str | None, Query(max_length=64, description="serial prefix")] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="words, each in the serial, name, model or location")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DeviceOut]:
    """Devices in the caller's areas, by serial."""
    principal.require(Perm.DEVICES_READ)
    rows = register.get_all(
        session,
        area=area,
        kind=kind,
        state=state,
        online=online,
        serial_prefix=serial,
        text=q,
        limit=limit,
        offset=offset,
    )
    return [DeviceOut.of(d) for d in rows]


@staff.post("/devices", response_model=DeviceCreated, status_code=201)
def create_device(body: DeviceIn, session: DB, principal: CurrentPrincipal) -> DeviceCreated:
    """Register a device; the answer holds its secret, shown this once."""
    device, secret = register.create(session, principal, body.model_dump())
    return DeviceCreated(**DeviceOut.of(device).model_dump(), secret=secret)


@staff.get("/devices/import-template.xlsx")
def device_template(principal: CurrentPrincipal) -> Response:
    """An empty device sheet with the expected Chinese headers."""
    principal.require(Perm.DEVICES_WRITE)
    return Response(
        importers.template(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote('设备导入模板.xlsx')}"},
    )


@staff.get("/devices/{device_id}", response_model=DeviceDetail)
def get_device(device_id: int, session: DB, principal: CurrentPrincipal) -> DeviceDetail:
    """One device with its uptime over the last 7 and 30 days."""
    principal.require(Perm.DEVICES_READ)
    device = register.get_or_raise(session, device_id=device_id)
    now = utcnow()
    return DeviceDetail(
        **DeviceOut.of(device).model_dump(),
        uptime_7d=health.uptime(session, device_id=device.id, now=now, days=7),
        uptime_30d=health.uptime(session, device_id=device.id, now=now, days=30),
    )


@staff.patch("/devices/{device_id}", response_model=DeviceOut)
def edit_device(device_id: int, body: DevicePatch, session: DB, principal: CurrentPrincipal) -> DeviceOut:
    """Change a device's facts or state (audited)."""
    data = body.model_dump(exclude_unset=True)
    return DeviceOut.of(register.update(session, principal, device_id=device_id, data=data))


@staff.delete("/devices/{device_id}", status_code=204)
def delete_device(device_id: int, session: DB, principal: CurrentPrincipal) -> Response:
    """Remove a device registered by mistake (one with events must be retired instead)."""
    register.delete(session, principal, device_id=device_id)
    return Response(status_code=204)


@staff.post("/devices/{device_id}/secret", response_model=SecretOut)
def rotate_secret(device_id: int, session: DB, principal: CurrentPrincipal) -> SecretOut:
    """Give the device a new secret (the old one stops working); shown this once."""
    device, secret = register.rotate_secret(session, principal, device_id=device_id)
    return SecretOut(id=device.id, serial=device.serial, secret=secret)


@staff.post("/import/devices")
async def import_devices(
    request: Request,
    session: DB,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description=".xlsx or .csv")],
    community: Annotated[str, Form(max_length=32)],
    dry_run: Annotated[bool, Form()] = False,
) -> dict[str, object]:
    """Import a device sheet: created/updated/unchanged, rejected rows (row, field, reason), secrets."""
    principal.require(Perm.DEVICES_WRITE)
    data = await _read_upload(request, file)
    name = file.filename or "upload"

    def run() -> dict[str, object]:
        table = importers.read(data, name, max_bytes=len(data) + 1)
        report = importers.import_table(
            session, principal, table, community_code=community, filename=name, dry_run=dry_run
        )
        return report.summary()

    return await run_in_threadpool(run)


async def _read_upload(request: Request, file: UploadFile) -> bytes:
    limit = request.app.state.settings.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"文件过大：上限 {request.app.state.settings.max_upload_mb} MB", field="file")
    if not data:
        raise Invalid("文件为空", field="file")
    return data


@staff.get("/dead-letters", response_model=list[DeadLetterOut])
def list_dead_letters(
    session: DB,
    principal: CurrentPrincipal,
    status: str | None = None,
    device: Annotated[str | None, Query(max_length=64, description="device serial")] = None,
    reason: Annotated[
        str | None, Query(pattern=REASON_PATTERN, description="kind of refusal: unknown_device, schema, …")
    ] = None,
    before: int | None = None,
    limit: Limit = 100,
) -> list[DeadLetterOut]:
    """Rejected events in the caller's areas, newest first (those of unknown devices: district only)."""
    principal.require(Perm.DEVICES_READ)
    matching = deadletters.Matching(status=status, device_serial=device, reason=reason)
    rows = deadletters.get_all(session, scope=principal.scope, match=matching, before_id=before, limit=limit)
    return [DeadLetterOut.of(r) for r in rows]


@staff.post("/dead-letters/replay", response_model=BulkReplayOut)
def replay_dead_letters(
    request: Request,
    session: DB,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
    device: Annotated[str | None, Query(max_length=64, description="device serial")] = None,
    source: Annotated[
        str | None, Query(max_length=64, description="way in: http, mqtt, an adapter …")
    ] = None,
    reason: Annotated[
        str | None, Query(pattern=REASON_PATTERN, description="kind of refusal: unknown_device, schema, …")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.BULK_REPLAY)] = service.BULK_REPLAY,
) -> BulkReplayOut:
    """Replay the new dead letters of a device, a way in or a kind of refusal (all, if none), oldest first,
    at most limit; `remaining` says how many matching letters are still new (refused again, or past it)."""
    done = service.replay_many(
        session, principal, now=utcnow(), device_serial=device, source=source, reason=reason, limit=limit
    )
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return BulkReplayOut(replayed=done.replayed, refused=done.refused, remaining=done.remaining)


@staff.post("/dead-letters/{dead_letter_id}/replay", response_model=ReplayOut)
def replay_dead_letter(
    dead_letter_id: int,
    request: Request,
    session: DB,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
) -> ReplayOut:
    """Ingest a dead letter again (e.g. after registering its device); stays "new" if refused again."""
    letter, result = service.replay(session, principal, dead_letter_id=dead_letter_id, now=utcnow())
    # Background tasks run after the request's transaction has committed: the events reach the bus then.
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return ReplayOut(dead_letter=DeadLetterOut.of(letter), result=IngestOut(**result.summary()))


@staff.post("/dead-letters/{dead_letter_id}/discard", response_model=DeadLetterOut)
def discard_dead_letter(dead_letter_id: int, session: DB, principal: CurrentPrincipal) -> DeadLetterOut:
    """Mark a dead letter as dealt with, without storing it."""
    principal.require(Perm.DEVICES_WRITE)
    letter = deadletters.get_or_raise(session, scope=principal.scope, dead_letter_id=dead_letter_id)
    return DeadLetterOut.of(deadletters.discard(session, letter))


router = APIRouter()
router.include_router(staff)
router.include_router(events_router)
router.include_router(commands_router)
router.include_router(mappings_router)
router.include_router(mappings_pages)  # console pages of mappings, uploads and pull sources
