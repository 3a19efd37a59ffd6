"""Commands over HTTP: staff send and list them; HTTP-only devices fetch theirs and answer (signed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from pydantic import ValidationError

from linli.core.errors import Invalid, NotFound, TooLarge
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import utcnow
from linli.devices import commands, signing
from linli.devices.models import Device
from linli.devices.schemas import AckBody, CommandIn, CommandOut
from linli.web.deps import DB, CurrentPrincipal

router = APIRouter()
MAX_ACK_BYTES = 16 * 1024


@router.post(
    "/api/v1/devices/{device_id}/commands", response_model=CommandOut, status_code=201, tags=["devices"]
)
def send_command(
    device_id: int,
    body: CommandIn,
    request: Request,
    session: DB,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
) -> CommandOut:
    """Send a command to a device (audited); MQTT devices get it at once, others when they next poll."""
    row = commands.send(
        session,
        principal,
        device_id=device_id,
        command=body.command,
        args=body.args,
        ttl=timedelta(seconds=body.ttl_seconds),
        now=utcnow(),
    )
    # Background tasks run after the request's transaction has committed: the command leaves then.
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return CommandOut.of(row)


@router.get("/api/v1/devices/{device_id}/commands", response_model=list[CommandOut], tags=["devices"])
def list_commands(
    device_id: int,
    session: DB,
    principal: CurrentPrincipal,
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CommandOut]:
    """A device's commands, newest first."""
    rows = commands.get_all(session, principal, device_id=device_id, before_id=before, limit=limit)
    return [CommandOut.of(r) for r in rows]


async def _signed_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ACK_BYTES:
        raise TooLarge(f"body exceeds the limit of {MAX_ACK_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_ACK_BYTES:
        raise TooLarge(f"body exceeds the limit of {MAX_ACK_BYTES} bytes")
    return body


def _device(request: Request, session: DB, body: bytes) -> Device:
    """The device that signed this request (the same headers as the event ingest)."""
    skew = request.app.state.settings.ingest_clock_skew_seconds
    return signing.Signed.of(request.headers, body, skew_seconds=skew).authenticate(session, now=utcnow())


@router.get("/api/v1/ingest/commands", tags=["ingest"])
def fetch_commands(request: Request, session: DB, background: BackgroundTasks) -> dict[str, Any]:
    """A device's pending commands, oldest first, now marked sent (sign the empty body)."""
    device = _device(request, session, b"")
    rows = commands.fetch_pending(session, device=device, now=utcnow())
    if rows:  # after the commit: their new state reaches the bus (the console follows it)
        background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return {"commands": [commands.wire(r) for r in rows]}


@router.post("/api/v1/ingest/commands/{command_id}/ack", response_model=CommandOut, tags=["ingest"])
def ack_command(
    command_id: int,
    request: Request,
    session: DB,
    body: Annotated[bytes, Depends(_signed_body)],
    background: BackgroundTasks,
) -> CommandOut:
    """A device's answer to one of its commands: {"status": "ok"|"failed", "detail": "..."}."""
    device = _device(request, session, body)
    try:
        answer = AckBody.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        raise Invalid(f"ack 不合法：{error['msg']}", field=field) from None
    ack = commands.AckIn(id=command_id, status=answer.status, detail=answer.detail)
    row = commands.acknowledge(session, device=device, ack=ack, now=utcnow())
    if row is None:
        raise NotFound(f"device {device.serial} has no command {command_id}", field="command")
    # After the commit: the new state reaches the bus (the console follows it).
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return CommandOut.of(row)
