"""Events over HTTP: signed ingest from devices, the published schemas, and staff reading the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from linli.core import outbox
from linli.core.auth.roles import Perm
from linli.core.errors import NotFound, TooLarge
from linli.core.outbox import Deliverer, deliver_outbox
from linli.core.timeutil import as_utc, utcnow
from linli.db import unit_of_work
from linli.devices import push, queries, readings, register, signing, sse, store
from linli.devices.events import json_schemas
from linli.devices.ingest_pool import IngestPool
from linli.devices.receive import handle, is_multipart, receive_media
from linli.devices.schemas import EventOut, EventPage, IngestOut, MediaOut, ReadingsOut, SeriesOut
from linli.settings import Settings
from linli.web.deps import DB, CurrentPrincipal

router = APIRouter()


@router.post("/api/v1/ingest/events", response_model=IngestOut, tags=["ingest"])
async def ingest_events(request: Request) -> JSONResponse:
    """Events from a device: one envelope, an array, or {"events": [...]}, signed with the device's secret.

    200 even if some events are rejected: the body says which (index) and why.
    """
    settings: Settings = request.app.state.settings
    # A multipart body carries pictures: it may be as large as a picture may be.
    multipart = is_multipart(request.headers.get("content-type", ""))
    limit = settings.ingest_max_bytes
    if multipart:
        limit = max(limit, settings.media_max_bytes)
    body = await _read_body(request, limit)
    headers = request.headers
    factory, bus = request.app.state.session_factory, request.app.state.bus

    signed = signing.Signed.of(headers, body, skew_seconds=settings.ingest_clock_skew_seconds)
    content_type = headers.get("content-type", "")
    pool: IngestPool | None = request.app.state.ingest_pool
    if pool is not None:  # stored by an ingest process: this one only delivers to its bus
        handled = await pool.handle(signed, content_type=content_type)
    else:
        handled = await run_in_threadpool(handle, factory, signed, content_type=content_type)
    if handled.error is not None:  # raised only now: the dead letter is committed
        raise handled.error
    deliverer: Deliverer | None = request.app.state.deliverer
    if deliverer is None:
        await run_in_threadpool(deliver_outbox, factory, bus, written=handled.written)
    elif not deliverer.submit(handled.written, block=False):  # the answer does not wait for the bus
        await run_in_threadpool(deliverer.submit, handled.written)
    assert handled.summary is not None
    return JSONResponse(handled.summary)


@router.post("/api/v1/ingest/media", response_model=MediaOut, status_code=201, tags=["ingest"])
async def ingest_media(request: Request, filename: str | None = None) -> JSONResponse:
    """A picture or clip from a device, signed like events; reference the returned `ref` in its events.

    The body is the file itself, its Content-Type the declared type (image/jpeg, image/png, image/gif,
    image/webp, video/mp4, video/webm; checked against the bytes). Stored once per content (the same
    bytes give the same ref), in the device's area; purged with the raw bodies (LINLI_RAW_RETENTION_DAYS)
    unless an event refers to it by then.
    """
    settings: Settings = request.app.state.settings
    body = await _read_body(request, settings.media_max_bytes)
    headers = request.headers
    factory = request.app.state.session_factory

    def run() -> dict[str, Any]:
        with unit_of_work(factory) as session:
            return receive_media(
                session,
                signing.Signed.of(headers, body, skew_seconds=settings.ingest_clock_skew_seconds),
                content_type=headers.get("content-type", ""),
                filename=filename,
                now=utcnow(),
            )

    return JSONResponse(await run_in_threadpool(run), status_code=201)


@router.post("/api/v1/ingest/push/{adapter}/{serial}", response_model=IngestOut, tags=["ingest"])
async def ingest_push(request: Request, adapter: str, serial: str, key: str | None = None) -> JSONResponse:
    """A vendor's own push (e.g. a Hikvision alarm-server post), translated by the named adapter.

    The device authenticates with its secret as `key` (HTTPS on untrusted networks). A body the adapter
    cannot read is answered 422 and kept as a dead letter to replay after a fix.
    """
    settings: Settings = request.app.state.settings
    body = await _read_body(request, settings.ingest_max_bytes)
    headers = dict(request.headers)
    factory, bus = request.app.state.session_factory, request.app.state.bus

    def run() -> dict[str, Any]:
        with unit_of_work(factory) as session:
            received = push.receive_push(
                session,
                adapter_name=adapter,
                serial=serial,
                key=key,
                body=body,
                headers=headers,
                now=utcnow(),
            )
            queued = outbox.written(session)
        if received.error is not None:  # raised only now: the dead letter is committed
            raise received.error
        deliver_outbox(factory, bus, written=queued)
        assert received.result is not None
        return received.result.summary()

    return JSONResponse(await run_in_threadpool(run))


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed limit bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes; send smaller batches")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"body exceeds the limit of {limit} bytes; send smaller batches")
    return bytes(data)


@router.get("/schemas/events/v1/{name}.json", tags=["ingest"])
def event_schema(name: str) -> JSONResponse:
    """The published JSON Schema of the envelope ("envelope") or of one event type's payload."""
    schemas = json_schemas()
    if name == "index":
        return JSONResponse({"version": "1", "schemas": [f"/schemas/events/v1/{n}.json" for n in schemas]})
    if name not in schemas:
        raise NotFound(f"no schema named {name}", field="name")
    return JSONResponse(schemas[name])


@router.get("/api/v1/events", response_model=EventPage, tags=["events"])
def list_events(
    session: DB,
    principal: CurrentPrincipal,
    area: Annotated[str | None, Query(max_length=32, description="community or grid code")] = None,
    community: Annotated[str | None, Query(max_length=32)] = None,
    device_id: int | None = None,
    type: Annotated[list[str] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    person_id: int | None = None,
    vehicle_id: int | None = None,
    plate: Annotated[str | None, Query(max_length=32, description="a plate, registered or not")] = None,
    after: int | None = None,
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    """Stored events in the caller's areas, newest first; page with before= (older) or after= (newer)."""
    principal.require(Perm.EVENTS_READ)
    rows = queries.get_events(
        session,
        area=area or community,
        device_id=device_id,
        types=type,
        since=since,
        until=until,
        person_id=person_id,
        vehicle_id=vehicle_id,
        plate=plate,
        after=after,
        before=before,
        limit=limit,
    )
    items = [EventOut.of(e) for e in rows]
    older = items[-1].id if len(items) == limit else None
    newest = items[0].id if items else after
    return EventPage(items=items, before=older, after=newest)


@router.get("/api/v1/devices/{device_id}/readings", response_model=ReadingsOut, tags=["events"])
def device_readings(
    device_id: int,
    session: DB,
    principal: CurrentPrincipal,
    since: datetime | None = None,
    until: datetime | None = None,
    points: Annotated[int, Query(ge=2, le=2000, description="points per series at most")] = 240,
) -> ReadingsOut:
    """A sensor's or meter's readings over time, one series per quantity (default: the last 24 hours)."""
    principal.require(Perm.EVENTS_READ)
    device = register.get_or_raise(session, device_id=device_id)
    until = until or utcnow()
    since = since or until - timedelta(hours=24)
    found = readings.get_series(session, device_id=device.id, since=since, until=until, points=points)
    return ReadingsOut(
        device_id=device.id,
        since=as_utc(since),
        until=as_utc(until),
        series=[
            SeriesOut(
                quantity=s.quantity,
                unit=s.unit,
                type=readings.READING_TYPES[1] if s.meter else readings.READING_TYPES[0],
                count=s.count,
                first=s.first,
                last=s.last,
                min=s.low,
                max=s.high,
                first_at=s.first_at,
                last_at=s.last_at,
                usage=s.usage,
                points=s.points,
            )
            for s in found
        ],
    )


@router.get("/api/v1/events/hourly", tags=["events"])
def hourly_counts(
    session: DB,
    principal: CurrentPrincipal,
    since: datetime,
    until: datetime | None = None,
    area: Annotated[str | None, Query(max_length=32)] = None,
) -> list[dict[str, Any]]:
    """Events per hour, community, device kind and type, in the caller's areas."""
    principal.require(Perm.EVENTS_READ)
    until = until or utcnow() + timedelta(hours=1)
    rows = store.rollups(session, area=area, since=since, until=until)
    return [
        {
            "hour": r.hour,
            "community": r.area_code,
            "device_kind": r.device_kind,
            "type": r.type,
            "count": r.count,
        }
        for r in rows
    ]


@router.get("/api/v1/events/stream", tags=["events"])
async def stream_events(
    request: Request,
    principal: CurrentPrincipal,
    type: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="close after this many events")] = 10_000,
    timeout: Annotated[float, Query(gt=0, le=3600, description="close after this many seconds")] = 900,
) -> StreamingResponse:
    """Server-Sent Events: each newly stored event in the caller's areas as it reaches the bus."""
    principal.require(Perm.EVENTS_READ)
    scope, wanted = principal.scope, set(type or ())

    def pick(data: dict[str, Any]) -> tuple[str, str] | None:
        if scope.allows(data.get("area_code")) and (not wanted or data.get("type") in wanted):
            return str(data.get("type")), str(data.get("id"))
        return None

    return sse.stream(request, request.app.state.bus, "linli.events.>", pick, timeout=timeout, limit=limit)
