"""Commands down to devices: open a door or barrier, push or revoke a credential, reboot.

A command is validated, recorded and audited in the caller's transaction. A device that speaks MQTT gets
it through the outbox (published on linli/{community}/{serial}/commands after the commit, status "sent");
any other device fetches it over signed HTTP (status "queued" until fetched). Devices answer with an ack
({"id", "status": "ok"|"failed", "detail"}); a command nobody answered in time expires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linli.core import audit, outbox, pii
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Invalid, NotFound
from linli.core.timeutil import as_utc
from linli.devices import linking, register
from linli.devices.health import UNMONITORED
from linli.devices.models import CommandStatus, Device, DeviceCommand, DeviceKind
from linli.devices.mqtt import commands_topic
from linli.registry import people, search

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "linli.commands"  # outbox subject of commands for MQTT devices: linli.commands.{community}
# Bus subject of a command's new delivery state, linli.command_states.{area}: {id, device_id, area_code,
# status}. Sent through the outbox, so only once the change has committed; the console's command panel
# follows it (Server-Sent Events) instead of polling.
STATE_SUBJECT = "linli.command_states"
DEFAULT_TTL = timedelta(minutes=5)
MIN_TTL = timedelta(seconds=10)
MAX_TTL = timedelta(days=7)
OPEN = (CommandStatus.QUEUED.value, CommandStatus.SENT.value)
EXPIRE_CHUNK = 500
# The device credential kind a pushed credential maps to: a face is known by the person's id as the
# device's person_ref, a card by its number.
CREDENTIAL_KIND = {"face": "person_ref", "card": "card"}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenDoorArgs(_Args):
    """open_door: which door of the device to open."""

    door: str = Field(min_length=1, max_length=64)


class OpenBarrierArgs(_Args):
    """open_barrier: which lane's barrier to raise."""

    lane: str = Field(min_length=1, max_length=32)


class PushCredentialArgs(_Args):
    """push_credential: enrol a person's face or card on an access terminal."""

    person_id: int = Field(gt=0)
    kind: Literal["face", "card"]
    card_no: str | None = Field(default=None, min_length=1, max_length=32, validate_default=True)

    @field_validator("card_no")
    @classmethod
    def _card_needs_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "card" and not value:
            raise ValueError("card_no is required for kind card")
        return value


class RevokeCredentialArgs(_Args):
    """revoke_credential: remove a person's face or card from an access terminal."""

    person_id: int = Field(gt=0)
    kind: Literal["face", "card"]


class RebootArgs(_Args):
    """reboot: no arguments."""


ARGS: dict[str, type[_Args]] = {
    "open_door": OpenDoorArgs,
    "open_barrier": OpenBarrierArgs,
    "push_credential": PushCredentialArgs,
    "revoke_credential": RevokeCredentialArgs,
    "reboot": RebootArgs,
}
_ACCESS = {DeviceKind.FACE_TERMINAL.value, DeviceKind.CARD_READER.value}
# Device kinds that can carry out each command (None: every kind). A patrol tag never connects
# (health.UNMONITORED): nothing can be sent to it.
KINDS: dict[str, set[str] | None] = {
    "open_door": _ACCESS,
    "open_barrier": {DeviceKind.BARRIER.value, DeviceKind.PLATE_GATE.value},
    "push_credential": _ACCESS,
    "revoke_credential": _ACCESS,
    "reboot": {kind.value for kind in DeviceKind} - UNMONITORED,
}


class AckIn(BaseModel):
    """A device's answer to a command."""

    model_config = ConfigDict(extra="ignore")

    id: int
    status: Literal["ok", "failed"]
    detail: str = Field(default="", max_length=500)


def validate_args(command: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """The command's arguments checked against its model; Invalid names the field (args.door …)."""
    model = ARGS.get(command)
    if model is None:
        raise Invalid(f"未知命令：{command}（可用：{', '.join(ARGS)}）", field="command")
    try:
        parsed = model.model_validate(args or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise Invalid(f"命令参数不合法：{error['msg']}", field=f"args.{where}" if where else "args") from None
    return parsed.model_dump(mode="json", exclude_none=True)


def uses_mqtt(device: Device) -> bool:
    """True if the device receives commands over MQTT (else it fetches them over HTTP)."""
    return device.protocol.strip().lower() == "mqtt"


def wire(command: DeviceCommand) -> dict[str, Any]:
    """The command as the device receives it."""
    return {
        "id": command.id,
        "command": command.command,
        "args": command.args,
        "expires_at": as_utc(command.expires_at).isoformat(),
    }


def send(
    session: Session,
    principal: Principal,
    *,
    device_id: int,
    command: str,
    args: dict[str, Any] | None,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime,
) -> DeviceCommand:
    """Record a command for a device in the caller's scope, queue its delivery, audit it."""
    principal.require(Perm.DEVICES_COMMAND)
    device = register.get_or_raise(session, device_id=device_id)
    if register.is_retired(device):
        raise Conflict(f"设备 {device.serial} 已停用，不能下发命令", field="device")
    clean = validate_args(command, args)
    kinds = KINDS[command]
    if kinds is not None and device.kind not in kinds:
        raise Invalid(f"设备类型 {device.kind} 不支持命令 {command}", field="command")
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise Invalid(f"有效期应在 {int(MIN_TTL.total_seconds())} 秒到 7 天之间", field="ttl_seconds")
    if command in ("push_credential", "revoke_credential"):
        _apply_credential(session, device, command, clean)
    mqtt = uses_mqtt(device)
    row = DeviceCommand(
        device_id=device.id,
        area_code=device.area_code,
        command=command,
        args=clean,
        status=(CommandStatus.SENT if mqtt else CommandStatus.QUEUED).value,
        created_at=now,
        sent_at=now if mqtt else None,
        expires_at=now + ttl,
        result="",
        requested_by=principal.username[:64],
    )
    session.add(row)
    session.flush()
    if mqtt:
        topic = commands_topic(device.community_code, device.serial)
        message = {"topic": topic, "message": wire(row)}
        outbox.add(session, [(f"{SUBJECT_PREFIX}.{device.community_code}", message)], now=now)
    announce(session, [row], now=now)
    audit.record(
        session,
        actor=principal.actor,
        action="device.command",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": device.serial, "command_id": row.id, "command": command, "args": clean},
    )
    return row


PERSON_CHOICES = 5  # people named when a typed person matches several


def find_person(session: Session, principal: Principal, *, text: str, community_code: str) -> int:
    """The person a credential command means, from what staff type: a name, an ID or phone number (or its
    last digits), an address ("3-2-501"), or "#id". The device's community's people come first: one there
    is the one; else one in the caller's areas. Invalid naming the field `person` for none, or for several
    (naming up to PERSON_CHOICES with the tail of their ID number, so the next try can be exact)."""
    principal.require(Perm.PEOPLE_READ)
    typed = text.strip()
    if typed.startswith("#") and typed[1:].isdigit():
        return int(typed[1:])
    if not typed:
        raise Invalid("请填写人员：姓名、身份证号或住址", field="person")
    for community in (community_code, None):
        found = search.search(session, text=typed, community_code=community, limit=50)
        exact = [p for p in found if p.name == typed]
        if len(exact) == 1 or len(found) == 1:
            return (exact or found)[0].id
        if found:
            named = found[:PERSON_CHOICES]
            shown = "、".join(f"{p.name}（{pii.mask_id_number(p.id_number)}）" for p in named)
            more = "等" if len(found) > PERSON_CHOICES else ""
            raise Invalid(
                f"“{typed}”对应 {len(found)}{'+' if len(found) == 50 else ''} 位人员：{shown}{more}；"
                "请填写身份证号、住址或更完整的姓名",
                field="person",
            )
    raise Invalid(f"没有找到“{typed}”：请填写姓名、身份证号或住址", field="person")


def _apply_credential(session: Session, device: Device, command: str, args: dict[str, Any]) -> None:
    """Keep the device credential table in step, so later access events link to the person."""
    if device.kind == DeviceKind.CARD_READER and args["kind"] == "face":
        raise Invalid("读卡器不支持人脸凭证", field="args.kind")
    try:
        person = people.get_or_raise(session, person_id=args["person_id"])
    except NotFound:
        raise Invalid("人员不存在或不在权限范围内", field="args.person_id") from None
    kind = CREDENTIAL_KIND[args["kind"]]
    if command == "revoke_credential":
        linking.remove_device_credentials(session, device_id=device.id, person_id=person.id, kind=kind)
        return
    value = args["card_no"] if args["kind"] == "card" else str(person.id)
    linking.set_device_credential(
        session,
        community=device.community_code,
        device_id=device.id,
        kind=kind,
        value=value,
        person_id=person.id,
    )


def get_all(
    session: Session, principal: Principal, *, device_id: int, before_id: int | None = None, limit: int = 100
) -> list[DeviceCommand]:
    """A device's commands, newest first (the device must be in the caller's scope)."""
    principal.require(Perm.DEVICES_READ)
    device = register.get_or_raise(session, device_id=device_id)
    stmt = select(DeviceCommand).where(DeviceCommand.device_id == device.id)
    if before_id:
        stmt = stmt.where(DeviceCommand.id < before_id)
    return list(session.scalars(stmt.order_by(DeviceCommand.id.desc()).limit(limit)))


def fetch_pending(session: Session, *, device: Device, now: datetime, limit: int = 50) -> list[DeviceCommand]:
    """The queued, unexpired commands of an HTTP device, oldest first, marked sent."""
    stmt = (
        select(DeviceCommand)
        .where(
            DeviceCommand.device_id == device.id,
            DeviceCommand.status == CommandStatus.QUEUED.value,
            DeviceCommand.expires_at > now,
        )
        .order_by(DeviceCommand.id)
        .limit(limit)
    )
    rows = list(session.scalars(stmt.execution_options(skip_scope=True)))
    for row in rows:
        row.status, row.sent_at = CommandStatus.SENT.value, now
    announce(session, rows, now=now)
    return rows


def announce(session: Session, rows: Sequence[DeviceCommand], *, now: datetime) -> None:
    """Queue each command's new state on the bus (STATE_SUBJECT), delivered after the commit."""
    _announce(session, [(r.id, r.device_id, r.area_code, r.status) for r in rows], now=now)


def _announce(session: Session, states: list[tuple[int, int, str, str]], *, now: datetime) -> None:
    messages = [
        (f"{STATE_SUBJECT}.{area}", {"id": id_, "device_id": device_id, "area_code": area, "status": status})
        for id_, device_id, area, status in states
    ]
    if messages:
        outbox.add(session, messages, now=now)


def acknowledge(session: Session, *, device: Device, ack: AckIn, now: datetime) -> DeviceCommand | None:
    """Record a device's answer; a late one keeps "expired" but keeps the detail; None if unknown."""
    stmt = select(DeviceCommand).where(DeviceCommand.id == ack.id, DeviceCommand.device_id == device.id)
    row = session.scalar(stmt.execution_options(skip_scope=True))
    if row is None:
        log.warning("ack from %s for unknown command %s ignored", device.serial, ack.id)
        return None
    if row.status in (CommandStatus.ACKNOWLEDGED, CommandStatus.FAILED):
        return row  # a redelivered ack (QoS 1 is at least once)
    row.acked_at = now
    if row.status == CommandStatus.EXPIRED or as_utc(row.expires_at) <= now:
        row.status = CommandStatus.EXPIRED.value
        row.result = f"late ack ({ack.status}): {ack.detail}"[:500]
    else:
        row.status = (CommandStatus.ACKNOWLEDGED if ack.status == "ok" else CommandStatus.FAILED).value
        row.result = ack.detail[:500]
    _audit_ack(session, device, row, ack)
    announce(session, [row], now=now)
    return row


def _audit_ack(session: Session, device: Device, row: DeviceCommand, ack: AckIn) -> None:
    """The device's answer joins the command's audit trail (who asked is in device.command)."""
    audit.record(
        session,
        actor=audit.Actor.system(f"device:{device.serial}"[:64]),
        action="device.command_ack",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={
            "serial": device.serial,
            "command_id": row.id,
            "command": row.command,
            "answer": ack.status,
            "status": row.status,
            "detail": ack.detail[:200],
        },
    )


def expire_commands(session: Session, now: datetime) -> int:
    """Mark every queued or sent command past its expiry expired (announced); returns how many."""
    due = select(DeviceCommand.id).where(DeviceCommand.status.in_(OPEN), DeviceCommand.expires_at <= now)
    ids = list(session.scalars(due.execution_options(skip_scope=True)))
    expired: list[tuple[int, int, str, str]] = []
    for start in range(0, len(ids), EXPIRE_CHUNK):
        stmt = (
            update(DeviceCommand)
            .where(DeviceCommand.id.in_(ids[start : start + EXPIRE_CHUNK]), DeviceCommand.status.in_(OPEN))
            .values(status=CommandStatus.EXPIRED.value)
            .returning(DeviceCommand.id, DeviceCommand.device_id, DeviceCommand.area_code)
            .execution_options(skip_scope=True, synchronize_session=False)
        )  # an ack that came in meanwhile keeps its state: only the rows still open are returned
        expired += [(i, d, a, CommandStatus.EXPIRED.value) for i, d, a in session.execute(stmt).all()]
    _announce(session, sorted(expired), now=now)
    return len(expired)
