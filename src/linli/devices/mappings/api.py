"""JSON API of stored mappings, device bindings, batch uploads, pull sources and mapped vendor pushes."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from linli.core.auth.roles import Perm
from linli.core.errors import Invalid, TooLarge
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import utcnow
from linli.db import unit_of_work
from linli.devices.mappings import bindings, preview, pull, service, upload
from linli.devices.mappings.models import MappingVersion, PullSource, StoredMapping
from linli.devices.models import Device
from linli.web.deps import DB, CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["mappings"])


class MappingIn(BaseModel):
    """A new mapping: its scope ("" = the whole district) and its document (YAML or JSON text)."""

    community: str = Field(default="", max_length=32)
    document: str = Field(min_length=1, max_length=service.MAX_DOCUMENT)
    note: str = Field(default="", max_length=200)


class VersionIn(BaseModel):
    """A new version of a mapping's document."""

    document: str = Field(min_length=1, max_length=service.MAX_DOCUMENT)
    note: str = Field(default="", max_length=200)


class PreviewIn(BaseModel):
    """A document and a pasted sample to try it on."""

    document: str = Field(min_length=1, max_length=service.MAX_DOCUMENT)
    sample: str = Field(max_length=1024 * 1024)
    content_type: str = Field(default="json", pattern="^(json|xml|form|csv)$")
    device: str | None = Field(default=None, max_length=64)


class BindingIn(BaseModel):
    """The adapter a device is read with: an adapter's name or mapping:<name>; "" unbinds."""

    adapter: str = Field(max_length=64)


class PullSourceIn(BaseModel):
    """A device's pull source; headers (tokens, passwords) are kept encrypted and never shown back."""

    config: dict[str, Any]
    headers: dict[str, str] | None = None
    enabled: bool = True


def _mapping_out(mapping: StoredMapping, version: MappingVersion) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "name": mapping.name,
        "community": mapping.community_code,
        "active_version": mapping.active_version,
        "document": version.document,
        "updated_at": mapping.updated_at,
    }


def _source_out(source: PullSource, device: Device) -> dict[str, Any]:
    return {
        "id": source.id,
        "device": device.serial,
        "config": source.config,
        "headers": sorted(json.loads(source.secret_headers) if source.secret_headers else {}),
        "enabled": source.enabled,
        "cursor": source.cursor,
        "next_poll_at": source.next_poll_at,
        "last_poll_at": source.last_poll_at,
        "last_ok_at": source.last_ok_at,
        "failures": source.failures,
        "last_error": source.last_error,
        "last_stored": source.last_stored,
        "last_duplicates": source.last_duplicates,
        "last_rejected": source.last_rejected,
    }


@router.get("/mappings")
def list_mappings(session: DB, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Mappings the caller may use: stored (community and district-wide) and built-in."""
    return [
        {
            "id": m.mapping.id if m.mapping else None,
            "name": m.name,
            "community": m.community_code,
            "builtin": m.builtin,
            "overridden": m.overridden,
            "format": m.format,
            "active_version": m.mapping.active_version if m.mapping else None,
        }
        for m in service.get_all(session, principal)
    ]


@router.post("/mappings", status_code=201)
def create_mapping(body: MappingIn, session: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new mapping (version 1); a document that does not compile is refused naming field and line."""
    mapping, version = service.create(
        session, principal, community_code=body.community, document=body.document, note=body.note
    )
    return _mapping_out(mapping, version)


@router.get("/mappings/{mapping_id}")
def get_mapping(mapping_id: int, session: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """A stored mapping, its active document and its versions."""
    mapping = service.get_or_raise(session, principal, mapping_id=mapping_id)
    out = _mapping_out(mapping, service.version_of(session, mapping=mapping))
    out["versions"] = [
        {"version": v.version, "note": v.note, "created_by": v.created_by, "created_at": v.created_at}
        for v in service.versions(session, mapping=mapping)
    ]
    return out


@router.post("/mappings/{mapping_id}/versions", status_code=201)
def save_version(
    mapping_id: int, body: VersionIn, session: DB, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Save a new version and make it active: it takes effect on the next batch."""
    version = service.save(session, principal, mapping_id=mapping_id, document=body.document, note=body.note)
    mapping = service.get_or_raise(session, principal, mapping_id=mapping_id)
    return _mapping_out(mapping, version)


@router.post("/mappings/{mapping_id}/activate")
def activate_version(
    mapping_id: int, version: int, session: DB, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Make another version active again (e.g. roll back a bad fix)."""
    mapping = service.activate(session, principal, mapping_id=mapping_id, version=version)
    return _mapping_out(mapping, service.version_of(session, mapping=mapping))


@router.post("/mappings/preview")
def preview_mapping(body: PreviewIn, session: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """Try a document on a pasted sample: envelopes, refused records, document problems. Stores nothing."""
    principal.require(Perm.DEVICES_READ)
    return preview.try_document(
        session,
        document=body.document,
        sample=body.sample,
        content_type=body.content_type,
        device=body.device,
        now=utcnow(),
    )


@router.put("/devices/{device_id}/adapter")
def bind_device(device_id: int, body: BindingIn, session: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """Bind a device to an adapter or mapping:<name> (pushes, uploads and polls then use it)."""
    binding = bindings.bind(session, principal, device_id=device_id, adapter=body.adapter)
    return {"device_id": device_id, "adapter": binding.adapter if binding else ""}


@router.post("/uploads")
async def upload_export(
    request: Request,
    session: DB,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="CSV or .xlsx export of an offline device")],
    device_id: Annotated[int | None, Form()] = None,
    mapping: Annotated[str, Form(max_length=64)] = "",
    community: Annotated[str, Form(max_length=32)] = "",
) -> dict[str, Any]:
    """Store an old device's export: stored, duplicates, and each rejected row with row, field, reason."""
    data = await read_upload(request, file)
    name = file.filename or "upload"

    def run() -> dict[str, Any]:
        report = upload.upload(
            session,
            principal,
            data=data,
            filename=name,
            now=utcnow(),
            device_id=device_id,
            adapter=mapping or None,
            community=community or None,
        )
        return report.summary()

    result = await run_in_threadpool(run)
    # Runs after the request's transaction has committed: the stored events reach the bus then.
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return result


async def read_upload(request: Request, file: UploadFile) -> bytes:
    """An uploaded file's bytes within the size limit (TooLarge / Invalid naming the file field)."""
    limit = request.app.state.settings.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"文件过大：上限 {request.app.state.settings.max_upload_mb} MB", field="file")
    if not data:
        raise Invalid("文件为空", field="file")
    return data


@router.get("/pull-sources")
def list_pull_sources(session: DB, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Pull sources of the caller's devices, with how their last polls went."""
    return [_source_out(s, d) for s, d in pull.get_all(session, principal)]


@router.put("/devices/{device_id}/pull-source")
def save_pull_source(
    device_id: int, body: PullSourceIn, session: DB, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Create or replace a device's pull source; it is polled from the next run of the jobs."""
    source = pull.save(
        session,
        principal,
        device_id=device_id,
        config=body.config,
        headers=body.headers,
        enabled=body.enabled,
        now=utcnow(),
    )
    _, device = pull.get_or_raise(session, principal, source_id=source.id)
    return _source_out(source, device)


@router.post("/devices/{device_id}/pull-source/poll")
def poll_pull_source(
    device_id: int, request: Request, session: DB, principal: CurrentPrincipal, background: BackgroundTasks
) -> dict[str, Any]:
    """Poll the device's source once now (audited); ok says whether its answer was stored."""
    source = pull.request_poll(session, principal, device_id=device_id, now=utcnow())
    session.commit()  # the poll writes in transactions of its own: the request's must not hold the lock
    factory = request.app.state.session_factory
    with httpx.Client(follow_redirects=False) as client:
        ok = pull.poll_one(factory, source_id=source.id, now=utcnow(), client=client)
    background.add_task(deliver_outbox, factory, request.app.state.bus)  # the stored events, to the bus
    session.refresh(source)
    _, device = pull.get_or_raise(session, principal, source_id=source.id)
    return {"ok": ok, "source": _source_out(source, device)}


@router.post("/ingest/mapped/{serial}", tags=["ingest"])
async def ingest_mapped(request: Request, serial: str, key: str | None = None) -> JSONResponse:
    """A vendor push read with the device's bound adapter or mapping (X-Linli-Mapping may name it).

    The device authenticates with its secret as `key`. A body that cannot be read is answered 422 and
    kept as a dead letter.
    """
    body = await request.body()
    if len(body) > request.app.state.settings.ingest_max_bytes:
        raise TooLarge("body exceeds the ingest limit; send smaller batches")
    headers = dict(request.headers)
    factory, bus = request.app.state.session_factory, request.app.state.bus

    def run() -> dict[str, Any]:
        with unit_of_work(factory) as session:
            received = bindings.receive_mapped(
                session,
                serial=serial,
                key=key,
                mapping_name=headers.get("x-linli-mapping", ""),
                body=body,
                headers=headers,
                now=utcnow(),
            )
        if received.error is not None:  # raised only now: the dead letter is committed
            raise received.error
        deliver_outbox(factory, bus)
        assert received.result is not None
        return received.result.summary()

    return JSONResponse(await run_in_threadpool(run))
