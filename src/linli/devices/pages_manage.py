"""Device console forms: register, edit, change state, rotate the secret, import a sheet, send commands.

Every form posts back to itself: a refused value re-renders the form with the message beside the
field it names. The device's secret is shown once, on the page that answers the registration or
the rotation, never again. Commands are followed live: the panel reloads itself on each state change
the bus announces (Server-Sent Events), and polls while one is open only when that stream is down.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, LinliError, NotFound
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import utcnow
from linli.devices import commands, importers, register, sse
from linli.devices.models import CommandStatus, Device
from linli.devices.pages_common import community_names, labels
from linli.registry import places
from linli.registry.pages_areas import map_features
from linli.registry.pages_import import Upload, read_upload, upload_limit
from linli.web.deps import DB, PagePrincipal
from linli.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
PROTOCOLS = {
    "http": "HTTP（签名上报）",
    "mqtt": "MQTT",
    "push": "厂商推送（报警主机）",
    "file": "离线导出文件",
}
VENDORS = ("海康威视", "大华", "宇视", "华为", "立林", "捷顺", "海曼")  # suggestions; any vendor may be typed
COMMAND_LABELS = {
    "open_door": "开门",
    "open_barrier": "抬杆",
    "push_credential": "下发凭证",
    "revoke_credential": "撤销凭证",
    "reboot": "重启",
}
COMMAND_STATES = {
    CommandStatus.QUEUED: "待设备取走",
    CommandStatus.SENT: "已发送",
    CommandStatus.ACKNOWLEDGED: "已确认",
    CommandStatus.FAILED: "失败",
    CommandStatus.EXPIRED: "已过期",
}
FIELDS: tuple[str, ...] = (
    "serial",
    "name",
    "kind",
    "vendor",
    "model",
    "protocol",
    "community",
    "building_id",
)
FIELDS += ("floor", "lat", "lon", "location", "installed_on", "state")
COMMAND_LIST = 20
STREAM_SECONDS = 900.0  # a command stream ends after this; the browser then opens a new one


def _form_values(form: dict[str, Any]) -> dict[str, Any]:
    """The posted device form as the register's loose facts (blank building/date: none)."""
    data: dict[str, Any] = {k: (form.get(k) or "").strip() for k in FIELDS}
    building = data.pop("building_id")
    if building and not building.isdigit():
        raise Invalid("请选择登记过的楼栋", field="building_id")
    data["building_id"] = int(building) if building else None
    installed = data.pop("installed_on")
    try:
        data["installed_on"] = date.fromisoformat(installed) if installed else None
    except ValueError:
        raise Invalid(f"安装日期“{installed}”格式应为 年-月-日", field="installed_on") from None
    return data


async def posted_form(request: Request) -> dict[str, Any]:
    """The posted form fields as text (the csrf field was already checked by the page principal)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Posted = Annotated[dict[str, Any], Depends(posted_form)]


def _form_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, Any],
    device: Device | None = None,
    error: LinliError | None = None,
) -> Response:
    community = values.get("community") or ""
    area = areas.get(session, code=community) if community else None
    buildings = places.list_buildings(session, community_code=community) if area else []
    map_data = map_features(area, buildings) if area else {"type": "FeatureCollection", "features": []}
    return render(
        request,
        "devices/device_form.html",
        status_code=error.status_code if error else 200,
        device=device,
        values=values,
        error=error,
        errors={error.field or "form": error.message} if error else {},
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
        buildings=buildings,
        protocols=PROTOCOLS,
        vendors=VENDORS,
        map_data=map_data,
        **labels(),
    )


@router.get("/devices/new", response_class=HTMLResponse)
def new_device_form(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    community: Annotated[str, Query(max_length=32)] = "",
    serial: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The registration form (kind, vendor, model, protocol, serial, where, when); serial filled in when
    given (from a dead letter of an unknown device)."""
    principal.require(Perm.DEVICES_WRITE)
    own = areas.get_all(session, level=Level.COMMUNITY.value)
    chosen = community or (own[0].code if len(own) == 1 else "")
    values = {"community": chosen, "protocol": "http", "state": "active", "kind": "camera", "serial": serial}
    return _form_page(request, session, values=values)


@router.post("/devices/new", response_class=HTMLResponse)
def create_device(request: Request, form: Posted, session: DB, principal: PagePrincipal) -> Response:
    """Register the device and show its secret, this once."""
    principal.require(Perm.DEVICES_WRITE)
    savepoint = session.begin_nested()
    try:
        device, secret = register.create(session, principal, _form_values(form), source="console")
        savepoint.commit()
    except LinliError as exc:
        savepoint.rollback()
        return _form_page(request, session, values=form, error=_named(exc))
    return _secret_page(request, session, device, secret, created=True)


def _named(exc: LinliError) -> LinliError:
    """A community outside the caller's areas reads as a field error of the form, not a missing page."""
    if isinstance(exc, NotFound) and exc.field in ("community", "area_code", "grid", "building_id"):
        return Invalid(exc.message, field="community" if exc.field == "area_code" else exc.field)
    return exc


def _secret_page(
    request: Request, session: Session, device: Device, secret: str, *, created: bool
) -> Response:
    response = render(
        request,
        "devices/device_secret.html",
        device=device,
        secret=secret,
        created=created,
        community_names=community_names(session),
        **labels(),
    )
    response.headers["Cache-Control"] = "no-store"  # the secret must not stay in any cache
    return response


@router.get("/devices/{device_id:int}/edit", response_class=HTMLResponse)
def edit_device_form(request: Request, device_id: int, session: DB, principal: PagePrincipal) -> Response:
    """The device's facts in the form, to change (not the serial)."""
    principal.require(Perm.DEVICES_WRITE)
    device = register.get_or_raise(session, device_id=device_id)
    return _form_page(request, session, values=_values_of(device), device=device)


def _values_of(device: Device) -> dict[str, Any]:
    values = {k: getattr(device, k, None) for k in FIELDS}
    values.update(
        community=device.community_code,
        installed_on=device.installed_on.isoformat() if device.installed_on else "",
    )
    return {k: "" if v is None else v for k, v in values.items()}


@router.post("/devices/{device_id:int}/edit", response_class=HTMLResponse)
def edit_device(
    request: Request, device_id: int, form: Posted, session: DB, principal: PagePrincipal
) -> Response:
    """Save the changes (audited with old and new values) and go back to the device."""
    principal.require(Perm.DEVICES_WRITE)
    device = register.get_or_raise(session, device_id=device_id)
    savepoint = session.begin_nested()
    try:
        data = _form_values({**form, "serial": device.serial})
        data.pop("serial")
        register.update(session, principal, device_id=device.id, data=data)
        savepoint.commit()
    except LinliError as exc:
        savepoint.rollback()
        session.refresh(device)
        return _form_page(request, session, values={**form, "serial": device.serial}, device=device,
                          error=_named(exc))  # fmt: skip
    return RedirectResponse(f"/devices/{device.id}?notice=saved", status_code=303)


@router.post("/devices/{device_id:int}/state")
def change_state(
    device_id: int,
    session: DB,
    principal: PagePrincipal,
    state: Annotated[str, Form(max_length=16)],
) -> Response:
    """Put the device in use, in maintenance, or retire it (audited)."""
    register.update(session, principal, device_id=device_id, data={"state": state})
    return RedirectResponse(f"/devices/{device_id}?notice=state", status_code=303)


@router.post("/devices/{device_id:int}/secret", response_class=HTMLResponse)
def rotate_secret(request: Request, device_id: int, session: DB, principal: PagePrincipal) -> Response:
    """Give the device a new secret (the old one stops working at once), shown this once; audited."""
    device, secret = register.rotate_secret(session, principal, device_id=device_id)
    return _secret_page(request, session, device, secret, created=False)


@router.get("/devices/buildings", response_class=HTMLResponse)
def building_options(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    community: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The building choices of a community (the form reloads them when the community changes)."""
    principal.require(Perm.DEVICES_WRITE)
    buildings = places.list_buildings(session, community_code=community) if community else []
    return render(request, "devices/_building_options.html", buildings=buildings, selected="")


@router.get("/devices/import", response_class=HTMLResponse)
def import_form(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """The device sheet import form (.xlsx/.csv; a dry run first is the default)."""
    principal.require(Perm.DEVICES_WRITE)
    return _import_page(request, session, Upload("", b"", "devices", "", True, False))


@router.post("/devices/import", response_class=HTMLResponse)
def import_run(
    request: Request,
    upload: Annotated[Upload, Depends(read_upload)],  # first: refuse a large body before anything reads it
    session: DB,
    principal: PagePrincipal,
) -> Response:
    """Import (or try) the sheet; the report lists each rejected row with its field and reason."""
    principal.require(Perm.DEVICES_WRITE)
    if upload.too_large:
        return _import_page(request, session, upload, status_code=413, problem="文件过大，请拆分后分批导入")
    if not upload.data:
        return _import_page(request, session, upload, status_code=422, problem="请选择要导入的文件")
    if not upload.community:
        return _import_page(request, session, upload, status_code=422, problem="请选择设备所在社区")
    try:
        table = importers.read(upload.data, upload.filename, max_bytes=upload_limit(request))
        report = importers.import_table(
            session,
            principal,
            table,
            community_code=upload.community,
            filename=upload.filename,
            dry_run=upload.dry_run,
        )
    except (Invalid, NotFound) as exc:
        return _import_page(request, session, upload, status_code=exc.status_code, problem=exc.message)
    response = _import_page(request, session, upload, report=report)
    response.headers["Cache-Control"] = "no-store"  # new devices' secrets are on it
    return response


def _import_page(
    request: Request, session: Session, upload: Upload, *, status_code: int = 200, **context: object
) -> Response:
    return render(
        request,
        "devices/device_import.html",
        status_code=status_code,
        upload=upload,
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
        max_mb=request.app.state.settings.max_upload_mb,
        **context,
    )


def command_context(session: Session, principal: Principal, device: Device) -> dict[str, Any]:
    """What the device page's command panel shows: the recent commands and whether to keep polling."""
    rows = commands.get_all(session, principal, device_id=device.id, limit=COMMAND_LIST)
    return {
        "commands": rows,
        "polling": any(r.status in commands.OPEN for r in rows),
        "command_labels": COMMAND_LABELS,
        "command_states": COMMAND_STATES,
        "usable_commands": {
            name: label
            for name, label in COMMAND_LABELS.items()
            if commands.KINDS[name] is None or device.kind in (commands.KINDS[name] or ())
        },
    }


@router.get("/devices/{device_id:int}/commands", response_class=HTMLResponse)
def command_list(request: Request, device_id: int, session: DB, principal: PagePrincipal) -> Response:
    """The device's recent commands and their delivery state (htmx polls this while one is open)."""
    principal.require(Perm.DEVICES_READ)
    device = register.get_or_raise(session, device_id=device_id)
    return render(
        request, "devices/_commands.html", device=device, **command_context(session, principal, device)
    )


@router.get("/devices/{device_id:int}/commands/stream")
async def command_stream(
    request: Request,
    device_id: int,
    session: DB,
    principal: PagePrincipal,
    timeout: Annotated[float, Query(gt=0, le=3600)] = STREAM_SECONDS,
) -> Response:
    """Server-Sent Events: a `command` event each time one of the device's commands changes state.

    The panel fetches itself again on each; the browser reconnects when the stream ends.
    """
    principal.require(Perm.DEVICES_READ)
    device = await run_in_threadpool(register.get_or_raise, session, device_id=device_id)
    scope, wanted = principal.scope, device.id

    def pick(data: dict[str, Any]) -> tuple[str, str] | None:
        if data.get("device_id") != wanted or not scope.allows(data.get("area_code")):
            return None
        return "command", f"{data.get('id')}:{data.get('status')}"

    pattern = f"{commands.STATE_SUBJECT}.>"
    return sse.stream(request, request.app.state.bus, pattern, pick, timeout=timeout, limit=10_000)


def command_args(command: str, form: dict[str, Any]) -> dict[str, Any]:
    """The arguments a command form posts, for commands.validate_args to judge."""
    pick = {
        "open_door": ("door",),
        "open_barrier": ("lane",),
        "push_credential": ("person_id", "kind", "card_no"),
        "revoke_credential": ("person_id", "kind"),
    }.get(command, ())
    args: dict[str, Any] = {}
    for key in pick:
        value = (form.get(key) or "").strip()
        if value:
            args[key] = value
    return args


@router.post("/devices/{device_id:int}/commands", response_class=HTMLResponse)
def send_command(
    request: Request,
    device_id: int,
    form: Posted,
    session: DB,
    principal: PagePrincipal,
    background: BackgroundTasks,
) -> Response:
    """Send a command (audited); the panel then follows its delivery state."""
    principal.require(Perm.DEVICES_COMMAND)
    device = register.get_or_raise(session, device_id=device_id)
    name = (form.get("command") or "").strip()
    error: LinliError | None = None
    savepoint = session.begin_nested()
    try:
        args = command_args(name, form)
        typed = (form.get("person") or "").strip()
        if name in ("push_credential", "revoke_credential") and typed and "person_id" not in args:
            args["person_id"] = commands.find_person(
                session, principal, text=typed, community_code=device.community_code
            )
        commands.send(
            session,
            principal,
            device_id=device.id,
            command=name,
            args=args,
            ttl=timedelta(seconds=_ttl(form.get("ttl_seconds"))),
            now=utcnow(),
        )
        savepoint.commit()
    except LinliError as exc:
        savepoint.rollback()
        error = exc
    # Runs after the request's transaction has committed: the command leaves (MQTT) then.
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    if not is_htmx(request):
        if error is not None:
            raise error
        return RedirectResponse(f"/devices/{device.id}#commands", status_code=303)
    context = command_context(session, principal, device)
    return render(
        request,
        "devices/_commands.html",
        status_code=200,
        device=device,
        command_error=error,
        form=form if error else {},
        **context,
    )


def _ttl(raw: Any) -> int:
    text = str(raw or "").strip()
    if not text:
        return int(commands.DEFAULT_TTL.total_seconds())
    if not text.isdigit():
        raise Invalid("有效期应为秒数", field="ttl_seconds")
    return int(text)
