"""Console pages: the mapping list and editor (history, diff, try it), export uploads, pull sources."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import LinliError
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import utcnow
from linli.devices import register
from linli.devices.mappings import preview, pull, service, upload
from linli.devices.mappings.api import read_upload
from linli.devices.mappings.service import MappingInvalid
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
SAMPLE_TYPES = {"json": "JSON", "xml": "XML", "form": "表单 (form)", "csv": "CSV"}
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
def pull_sources(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """Devices polled on a schedule and how their last polls went."""
    return render(request, "devices/mappings_pull.html", sources=pull.get_all(session, principal))
