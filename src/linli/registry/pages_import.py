"""Registry console: import a spreadsheet and read its report; download templates and error reports.

The error report (.xlsx: the sheet back with an error column) is kept in this process for
REPORT_TTL_SECONDS, for the user who ran the import only, under a random token. It holds the uploaded
personal data, so it is never written to disk; with several workers, or after a restart, the link
may say "expired" and the user simply runs the import (or a dry run) again.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, NotFound, TooLarge
from linli.registry import importers
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render, xlsx_download

router = APIRouter(include_in_schema=False)
ENTITY_LABELS = {
    "auto": "自动识别",
    "people": "人口",
    "houses": "房屋",
    "organisations": "单位",
    "vehicles": "车辆",
}
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields around the file
REPORT_TTL_SECONDS = 30 * 60


@dataclass(frozen=True)
class _Stored:
    owner: int | None
    filename: str
    data: bytes
    expires: float


class ReportStore:
    """Error reports of recent imports, in memory, each readable by its owner until it expires."""

    def __init__(self, *, ttl: float = REPORT_TTL_SECONDS, capacity: int = 32) -> None:
        self.ttl, self.capacity = ttl, capacity
        self._items: dict[str, _Stored] = {}
        self._lock = threading.Lock()

    def put(self, *, owner: int | None, filename: str, data: bytes) -> str:
        """Keep a report; returns its token."""
        token = secrets.token_urlsafe(18)
        now = time.monotonic()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v.expires > now}
            while len(self._items) >= self.capacity:
                self._items.pop(next(iter(self._items)))
            self._items[token] = _Stored(owner, filename, data, now + self.ttl)
        return token

    def get(self, *, owner: int | None, token: str) -> _Stored | None:
        """The report under token if it is the owner's and has not expired."""
        with self._lock:
            item = self._items.get(token)
        if item is None or item.owner != owner or item.expires <= time.monotonic():
            return None
        return item


REPORTS = ReportStore()


@dataclass(frozen=True)
class Upload:
    """The posted import form."""

    filename: str
    data: bytes
    entity: str
    community: str
    dry_run: bool
    too_large: bool


def upload_limit(request: Request) -> int:
    """The largest accepted upload in bytes (settings.max_upload_mb)."""
    return int(request.app.state.settings.max_upload_mb) * 1024 * 1024


async def read_upload(request: Request) -> Upload:
    """Read the import form; a body declared larger than the limit is refused before it is read at all."""
    limit = upload_limit(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise TooLarge(
            f"文件过大：上限 {request.app.state.settings.max_upload_mb} MB，请拆分后分批导入", field="file"
        )
    form = await request.form()
    file = form.get("file")
    data, name = b"", ""
    if isinstance(file, UploadFile):
        data, name = await file.read(limit + 1), PurePath(file.filename or "upload.xlsx").name
    return Upload(
        filename=name,
        data=data[: limit + 1],
        entity=str(form.get("entity") or "auto"),
        community=str(form.get("community") or ""),
        dry_run=str(form.get("dry_run") or "") in ("1", "on", "true"),
        too_large=len(data) > limit,
    )


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request, session: DB, principal: PagePrincipal) -> Response:
    """The import page: what, where, which file, dry run or not."""
    principal.require(Perm.IMPORT)
    return _page(request, session, Upload("", b"", "auto", "", True, False))


@router.post("/import", response_class=HTMLResponse)
def import_run(
    request: Request,
    upload: Annotated[Upload, Depends(read_upload)],  # first: refuse a large body before anything reads it
    session: DB,
    principal: PagePrincipal,
) -> Response:
    """Import the sheet (or try it, dry run) and show the report with the rejected rows."""
    principal.require(Perm.IMPORT)
    if upload.too_large:
        return _page(request, session, upload, status_code=413, problem="too_large")
    if not upload.data:
        return _page(request, session, upload, status_code=422, problem="no_file")
    try:
        report, errors_xlsx = run_import(session, principal, upload, max_bytes=upload_limit(request))
    except (Invalid, NotFound) as exc:
        return _page(request, session, upload, status_code=exc.status_code, error=exc)
    token = None
    if errors_xlsx:
        stem = PurePath(upload.filename).stem
        token = REPORTS.put(owner=principal.user_id, filename=f"{stem}-错误报告.xlsx", data=errors_xlsx)
    return _page(request, session, upload, report=report, token=token)


def run_import(
    session: Session, principal: Principal, upload: Upload, *, max_bytes: int
) -> tuple[importers.ImportReport, bytes | None]:
    """Read and apply the sheet in a savepoint (rolled back for a dry run); the report and error sheet."""
    entity = (
        importers.detect_entity(upload.data, upload.filename) if upload.entity == "auto" else upload.entity
    )
    table = importers.read(upload.data, upload.filename, entity=entity, max_bytes=max_bytes)
    savepoint = session.begin_nested()
    try:
        report = importers.import_table(
            session,
            principal,
            table,
            entity=entity,
            community_code=upload.community,
            filename=upload.filename,
            dry_run=upload.dry_run,
        )
    except BaseException:
        savepoint.rollback()
        raise
    if upload.dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    return report, importers.error_report(table, report) if report.rejected else None


def _page(
    request: Request, session: Session, upload: Upload, *, status_code: int = 200, **context: object
) -> Response:
    return render(
        request,
        "registry/import.html",
        status_code=status_code,
        upload=upload,
        entities=ENTITY_LABELS,
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
        max_mb=request.app.state.settings.max_upload_mb,
        **context,
    )


@router.get("/import/errors/{token}")
def import_errors(token: str, principal: PagePrincipal) -> Response:
    """The error report of the caller's recent import (.xlsx, rejected rows marked)."""
    principal.require(Perm.IMPORT)
    item = REPORTS.get(owner=principal.user_id, token=token)
    if item is None:
        raise NotFound("错误报告已过期，请重新导入（或试导入）以重新生成", field="token")
    return xlsx_download(item.data, item.filename, fallback="import-errors.xlsx")


@router.get("/import/templates/{entity}.xlsx")
def import_template(entity: str, principal: PagePrincipal) -> Response:
    """An empty template of entity with the expected Chinese headers."""
    principal.require(Perm.IMPORT)
    data = importers.template(entity)
    return xlsx_download(
        data, f"{ENTITY_LABELS.get(entity, entity)}导入模板.xlsx", fallback=f"{entity}-template.xlsx"
    )
