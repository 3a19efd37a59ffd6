"""Console pages: the mapping list and editor (history, diff, try it), export uploads, pull sources."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, UploadFile
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
from linli.devices import adapters, register
from linli.devices.mappings import bindings, preview, pull, service, upload
from linli.devices.mappings.api import read_upload
from linli.devices.mappings.service import MappingInvalid
from linli.devices.pages_manage import Posted
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
SAMPLE_TYPES = {"json": "JSON", "xml": "XML", "form": "表单 (form)", "csv": "CSV"}
# A document's `format:` (YAML, or JSON on one line or many), for the sample type the try-it panel starts
# with; comment lines do not count. The page's script follows the document as it is edited the same way.
FORMAT_KEY = re.compile(r"""(?:^|[\s{,])["']?format["']?\s*:\s*["']?([a-z]+)""")


def sample_type_of(document: str) -> str:
    """The try-it sample type a document's format reads (a table mapping reads CSV); JSON if it says none."""
    text = "\n".join(line for line in document.splitlines() if not line.lstrip().startswith("#"))
    found = FORMAT_KEY.search(text)
    fmt = found.group(1) if found else "json"
    fmt = "csv" if fmt == "table" else fmt
    return fmt if fmt in SAMPLE_TYPES else "json"


NEW_DOCUMENT = """\
name: my-device
format: json
type: {const: device.heartbeat}
device: {path: "$.sn"}
occurred_at: {path: "$.time", format: iso}
payload:
  status: {const: ok}
"""


def _communities(session: Session) -> list[Any]:
    return areas.get_all(session, level=Level.COMMUNITY.value)


@router.get("/mappings", response_class=HTMLResponse)
def mapping_list(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """Stored and built-in mappings the caller may use."""
    names = {a.code: a.name for a in _communities(session)}
    return render(
        request,
        "devices/mappings_list.html",
        mappings=service.get_all(session, principal),
        community_names=names,
        can_write=principal.can(Perm.DEVICES_WRITE),
    )


def _editor(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    document: str,
    mapping: Any = None,
    builtin: str = "",
    problems: list[Any] | None = None,
    error: str = "",
    community: str = "",
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    versions = service.versions(session, mapping=mapping) if mapping is not None else []
    return render(
        request,
        "devices/mappings_edit.html",
        status_code=status_code,
        mapping=mapping,
        builtin=builtin,
        document=document,
        versions=versions,
        problems=problems or [],
        error=error,
        community=community,
        communities=_communities(session),
        district=principal.scope.unrestricted,
        can_write=principal.can(Perm.DEVICES_WRITE) and not builtin,
        sample_types=SAMPLE_TYPES,
        sample_type=sample_type_of(document),
        saved=saved,
    )


@router.post("/mappings/try", response_class=HTMLResponse)
def try_mapping(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    document: Annotated[str, Form(max_length=service.MAX_DOCUMENT)],
    sample: Annotated[str, Form(max_length=1024 * 1024)] = "",
    content_type: Annotated[str, Form(max_length=8)] = "json",
    device: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The try-it panel (htmx partial): the envelopes or the reasons, nothing stored."""
    principal.require(Perm.DEVICES_READ)
    result = preview.try_document(
        session, document=document, sample=sample, content_type=content_type, device=device, now=utcnow()
    )
    pretty = [json.dumps(event, ensure_ascii=False, indent=2) for event in result["events"]]
    return render(request, "devices/_mappings_preview.html", result=result, pretty=pretty)


@router.get("/mappings/new", response_class=HTMLResponse)
def new_mapping(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    copy: Annotated[str, Query(max_length=48, alias="from")] = "",
) -> Response:
    """An empty editor, or a copy of a built-in mapping to change."""
    principal.require(Perm.DEVICES_WRITE)
    document = service.builtin_text(copy) if copy else NEW_DOCUMENT
    return _editor(request, session, principal, document=document)


@router.post("/mappings/new", response_class=HTMLResponse)
def create_mapping(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    document: Annotated[str, Form(max_length=service.MAX_DOCUMENT)],
    community: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Save a new mapping; a bad document comes back with each problem's field and line."""
    try:
        mapping, _ = service.create(
            session, principal, community_code=community, document=document, note=note
        )
    except MappingInvalid as exc:
        return _editor(
            request,
            session,
            principal,
            document=document,
            problems=exc.problems,
            community=community,
            status_code=422,
        )
    except LinliError as exc:
        return _editor(
            request,
            session,
            principal,
            document=document,
            error=exc.message,
            community=community,
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/mappings/{mapping.id}?saved=1", status_code=303)


@router.get("/mappings/builtin/{name}", response_class=HTMLResponse)
def builtin_mapping(request: Request, name: str, session: DB, principal: PagePrincipal) -> Response:
    """A built-in mapping, read-only (copy it to change it)."""
    principal.require(Perm.DEVICES_READ)
    return _editor(request, session, principal, document=service.builtin_text(name), builtin=name)


@router.get("/mappings/{mapping_id}", response_class=HTMLResponse)
def edit_mapping(
    request: Request, mapping_id: int, session: DB, principal: PagePrincipal, saved: int = 0
) -> Response:
    """The editor of a stored mapping, with its versions and the try-it panel."""
    mapping = service.get_or_raise(session, principal, mapping_id=mapping_id)
    document = service.version_of(session, mapping=mapping).document
    return _editor(request, session, principal, document=document, mapping=mapping, saved=bool(saved))


@router.post("/mappings/{mapping_id}", response_class=HTMLResponse)
def save_mapping(
    request: Request,
    mapping_id: int,
    session: DB,
    principal: PagePrincipal,
    document: Annotated[str, Form(max_length=service.MAX_DOCUMENT)],
    note: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Save a new version (it takes effect on the next batch); problems come back with field and line."""
    mapping = service.get_or_raise(session, principal, mapping_id=mapping_id)
    try:
        service.save(session, principal, mapping_id=mapping_id, document=document, note=note)
    except MappingInvalid as exc:
        return _editor(
            request,
            session,
            principal,
            document=document,
            mapping=mapping,
            problems=exc.problems,
            status_code=422,
        )
    except LinliError as exc:
        return _editor(
            request,
            session,
            principal,
            document=document,
            mapping=mapping,
            error=exc.message,
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/mappings/{mapping_id}?saved=1", status_code=303)


@router.post("/mappings/{mapping_id}/activate")
def activate_mapping(
    mapping_id: int, session: DB, principal: PagePrincipal, version: Annotated[int, Form()]
) -> Response:
    """Make an earlier version active again."""
    service.activate(session, principal, mapping_id=mapping_id, version=version)
    return RedirectResponse(f"/mappings/{mapping_id}?saved=1", status_code=303)


@router.get("/mappings/{mapping_id}/diff", response_class=HTMLResponse)
def diff_mapping(
    request: Request, mapping_id: int, session: DB, principal: PagePrincipal, a: int, b: int
) -> Response:
    """The changes between two versions."""
    mapping = service.get_or_raise(session, principal, mapping_id=mapping_id)
    old = service.version_of(session, mapping=mapping, version=a)
    new = service.version_of(session, mapping=mapping, version=b)
    return render(
        request, "devices/mappings_diff.html", mapping=mapping, old=old, new=new, lines=service.diff(old, new)
    )


def _upload_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    report: Any = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    devices = register.get_all(session, limit=500)
    return render(
        request,
        "devices/mappings_upload.html",
        status_code=status_code,
        devices=devices,
        mappings=[m for m in service.get_all(session, principal)],
        communities=_communities(session),
        report=report,
        error=error,
    )


@router.get("/uploads", response_class=HTMLResponse)
def upload_form(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """The upload form for old devices' exports."""
    principal.require(Perm.DEVICES_WRITE)
    return _upload_page(request, session, principal)


@router.post("/uploads", response_class=HTMLResponse)
async def upload_export(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File()],
    device_id: Annotated[str, Form(max_length=12)] = "",
    mapping: Annotated[str, Form(max_length=64)] = "",
    community: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Store an export and show the report: stored, duplicates, each rejected row."""
    try:
        data = await read_upload(request, file)
    except LinliError as exc:
        return _upload_page(request, session, principal, error=exc.message, status_code=exc.status_code)
    name = file.filename or "upload"

    def run() -> Response:
        try:
            report = upload.upload(
                session,
                principal,
                data=data,
                filename=name,
                now=utcnow(),
                device_id=int(device_id) if device_id.isdigit() else None,
                adapter=mapping or None,
                community=community or None,
            )
        except LinliError as exc:
            return _upload_page(request, session, principal, error=exc.message, status_code=exc.status_code)
        return _upload_page(request, session, principal, report=report)

    response = await run_in_threadpool(run)
    # Runs after the request's transaction has committed: the stored events reach the bus then.
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    return response


@router.get("/pull-sources", response_class=HTMLResponse)
def pull_sources(
    request: Request, session: DB, principal: PagePrincipal, notice: Annotated[str, Query(max_length=16)] = ""
) -> Response:
    """Devices polled on a schedule and how their last polls went; a device to configure one for."""
    sources = pull.get_all(session, principal)
    configured = {d.id for _, d in sources}
    can_write = principal.can(Perm.DEVICES_WRITE)
    devices = [d for d in register.get_all(session, limit=500) if d.id not in configured] if can_write else []
    return render(
        request,
        "devices/mappings_pull.html",
        sources=sources,
        devices=devices,
        can_write=can_write,
        notice=PULL_NOTICES.get(notice, ""),
        notice_ok=notice != "failed",
    )


PULL_NOTICES = {"saved": "拉取源已保存", "polled": "已拉取，设备已应答", "failed": "已拉取，但没有成功"}
PULL_FIELDS = ("url", "method", "adapter", "interval_s", "timeout_s")
CURSOR_FIELDS = ("kind", "start", "format", "overlap_s")
PAGING_FIELDS = ("size", "start", "max_pages")
ADAPTER_FIELDS = ("adapter", "mapping")  # an unknown adapter or mapping is the form's adapter field


@router.get("/pull-sources/new")
def new_pull_source(device_id: Annotated[int, Query(ge=1)]) -> Response:
    """The pull-source form of the device chosen in the list."""
    return RedirectResponse(f"/devices/{device_id}/pull-source", status_code=303)


def _lines(text: str, sep: str, *, field: str) -> dict[str, str]:
    """name<sep>value per line (blank lines skipped); Invalid naming the field and the line otherwise."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, got, value = line.partition(sep)
        if not got or not name.strip():
            raise Invalid(f"第 {number} 行应写成 名称{sep}值：{line.strip()[:60]}", field=field)
        found[name.strip()] = value.strip()
    return found


def posted_pull(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str] | None, bool]:
    """The posted form as (config, headers, enabled) for pull.save, which judges every value.

    Blank numbers are left out (the defaults apply); headers are None (kept as stored) when left blank.
    """
    config: dict[str, Any] = {k: form[k].strip() for k in PULL_FIELDS if form.get(k, "").strip()}
    config["params"] = _lines(form.get("params", ""), "=", field="params")
    config["cursor"] = {
        k: form[f"cursor.{k}"].strip() for k in CURSOR_FIELDS if form.get(f"cursor.{k}", "").strip()
    }
    if form.get("paging"):
        config["paging"] = {k: form[f"paging.{k}"].strip() for k in PAGING_FIELDS if form.get(f"paging.{k}")}
    headers = _lines(form.get("headers", ""), ":", field="headers") or None
    if form.get("clear_headers") and headers is None:
        headers = {}
    return config, headers, bool(form.get("enabled"))


def _pull_values(source: Any) -> dict[str, Any]:
    """The form's values of a stored source (or a new one's defaults)."""
    if source is not None:
        config = source.config
    else:
        defaults = {k: f.default for k, f in pull.PullConfig.model_fields.items() if k in PULL_FIELDS}
        config = {**defaults, "url": "", "adapter": "", "cursor": pull.CursorSpec().model_dump()}
    values: dict[str, Any] = {k: config.get(k, "") for k in PULL_FIELDS}
    values["params"] = "\n".join(f"{k}={v}" for k, v in (config.get("params") or {}).items())
    values.update({f"cursor.{k}": v for k, v in (config.get("cursor") or {}).items()})
    paging = config.get("paging")
    values["paging"] = "1" if paging else ""
    values.update({f"paging.{k}": v for k, v in (paging or pull.PagingSpec().model_dump()).items()})
    values["enabled"] = "1" if source is None or source.enabled else ""
    return values


def _adapter_choices(session: Session, principal: Principal) -> list[tuple[str, str, str]]:
    """(value, name, what it is) of the mappings and vendor adapters a source may be read with."""
    choices = [
        (f"{bindings.MAPPING_PREFIX}{m.name}", m.name, "内置映射" if m.builtin else "映射")
        for m in service.get_all(session, principal)
    ]
    names = [name for name in adapters.names() if name != bindings.NEEDS_DOCUMENT]
    return choices + [(name, name, "适配器") for name in names]


def _pull_form(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    device: Any,
    source: Any,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    headers_dropped: bool = False,
    status_code: int = 200,
) -> Response:
    response = render(
        request,
        "devices/pull_source_form.html",
        headers_dropped=headers_dropped,
        status_code=status_code,
        device=device,
        source=source,
        values=values,
        errors=errors or {},
        header_names=pull.header_names(source),
        adapter_choices=_adapter_choices(session, principal),
        cursor_formats=("iso", "epoch_s", "epoch_ms", "%Y-%m-%d %H:%M:%S"),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/devices/{device_id:int}/pull-source", response_class=HTMLResponse)
def pull_source_form(request: Request, device_id: int, session: DB, principal: PagePrincipal) -> Response:
    """The device's pull source in a form: where and how to poll it, its headers masked."""
    principal.require(Perm.DEVICES_WRITE)
    source, device = pull.for_device(session, principal, device_id=device_id)
    return _pull_form(request, session, principal, device=device, source=source, values=_pull_values(source))


def _form_problems(exc: LinliError) -> dict[str, str]:
    """A refusal as messages by form field (a parameter's problem shows at the parameters)."""
    if isinstance(exc, pull.PullConfigInvalid):
        problems = exc.problems
    else:
        problems = {"adapter" if exc.field in ADAPTER_FIELDS else exc.field or "form": exc.message}
    shown: dict[str, str] = {}
    for where, message in problems.items():
        shown.setdefault("params" if where.startswith("params.") else where, message)
    return shown


@router.post("/devices/{device_id:int}/pull-source", response_class=HTMLResponse)
def save_pull_source(
    request: Request, device_id: int, form: Posted, session: DB, principal: PagePrincipal
) -> Response:
    """Save the pull source (pull.save: the API's checks and audit); a refusal names each field."""
    principal.require(Perm.DEVICES_WRITE)
    source, device = pull.for_device(session, principal, device_id=device_id)
    savepoint = session.begin_nested()
    try:
        config, headers, enabled = posted_pull(form)
        pull.save(
            session,
            principal,
            device_id=device.id,
            config=config,
            headers=headers,
            enabled=enabled,
            now=utcnow(),
        )
        savepoint.commit()
    except (Invalid, NotFound) as exc:
        savepoint.rollback()
        if isinstance(exc, NotFound) and exc.field not in ADAPTER_FIELDS:
            raise  # the device itself: not in the caller's scope
        problems = _form_problems(exc)
        return _pull_form(
            request,
            session,
            principal,
            device=device,
            source=source,
            values=form,
            errors=problems,
            headers_dropped=bool(form.get("headers", "").strip()),
            status_code=422,
        )
    return RedirectResponse("/pull-sources?notice=saved", status_code=303)


@router.post("/devices/{device_id:int}/pull-source/poll")
def poll_pull_source(
    request: Request, device_id: int, session: DB, principal: PagePrincipal, background: BackgroundTasks
) -> Response:
    """Poll the device now (audited) and go back to the list, which shows how it went."""
    source = pull.request_poll(session, principal, device_id=device_id, now=utcnow())
    session.commit()  # the poll writes in transactions of its own: the request's must not hold the lock
    factory = request.app.state.session_factory
    with httpx.Client(follow_redirects=False) as client:
        ok = pull.poll_one(factory, source_id=source.id, now=utcnow(), client=client)
    # Runs after the response: the stored events reach the bus then.
    background.add_task(deliver_outbox, factory, request.app.state.bus)
    return RedirectResponse(f"/pull-sources?notice={'polled' if ok else 'failed'}", status_code=303)
