"""Pull sources: devices that only answer queries, polled on a schedule, their answers ingested as usual.

One poll: read the source's config and cursor (short read transaction), ask the device page by page over
HTTP with a timeout (no transaction held open), then in one write transaction keep each answer raw, read
it with the device's adapter or mapping, ingest, and move the cursor forward. A failure (HTTP error,
timeout, a body the adapter cannot read) stores nothing of that poll, keeps the cursor, records the reason
and backs off; the next poll asks again, and dedup makes the overlap harmless.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, NotFound
from linli.core.timeutil import as_utc, to_local
from linli.db import unit_of_work
from linli.devices import adapters, deadletters, register, store
from linli.devices.adapters.common import describe_validation
from linli.devices.adapters.mapping.engine import read_records
from linli.devices.events import Envelope, EventType
from linli.devices.mappings import bindings
from linli.devices.mappings.bindings import Reader
from linli.devices.mappings.models import PullSource
from linli.devices.models import Device
from linli.devices.service import ingest

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
MAX_BODY = 5 * 1024 * 1024
DUE_PER_RUN = 50


class CursorSpec(BaseModel):
    """What is carried from one poll to the next: the latest event time seen, or the largest id."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["since", "last_id"] = "since"
    start: str = Field(default="", max_length=100, description="the first poll's cursor")
    format: str = Field(
        default="iso", max_length=40, description="since: iso | epoch_s | epoch_ms | strftime"
    )
    overlap_s: int = Field(default=60, ge=0, le=86400, description="since: ask again for this much before")


class PagingSpec(BaseModel):
    """Paged answers: pages of `size` records from page `start`; a shorter page is the last."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=100, ge=1, le=10000)
    start: int = Field(default=1, ge=0)
    max_pages: int = Field(default=20, ge=1, le=1000)


class PullConfig(BaseModel):
    """Where and how to poll a device. `{cursor}`, `{page}` and `{size}` in params are filled in."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=500)
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str] = Field(default_factory=dict, description="query (GET) or JSON body (POST)")
    adapter: str = Field(min_length=1, max_length=64, description="mapping:<name> or an adapter's name")
    interval_s: int = Field(default=60, ge=10, le=86400)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    cursor: CursorSpec = Field(default_factory=CursorSpec)
    paging: PagingSpec | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("地址必须以 http:// 或 https:// 开头")
        return value


class PollFailed(Exception):
    """A poll that stored nothing: why, and the body that could not be read (if that was the reason)."""

    def __init__(self, reason: str, body: bytes | None = None, content_type: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.body = body
        self.content_type = content_type


class PullConfigInvalid(Invalid):
    """A pull config refused: the first field in `field`, every problem by its field path in `problems`."""

    def __init__(self, message: str, *, field: str, problems: dict[str, str]) -> None:
        super().__init__(message, field=field)
        self.problems = problems


def _problem(error: Any) -> str:
    """One pydantic problem in words for the console (the API's message keeps pydantic's)."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "应为整数"
    if kind in ("float_parsing", "float_type"):
        return "应为数字"
    if kind in ("greater_than_equal", "greater_than"):
        return f"应{'不小于' if kind.endswith('equal') else '大于'} {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"应{'不大于' if kind.endswith('equal') else '小于'} {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_short":
        return f"至少 {ctx.get('min_length')} 个字符" if ctx.get("min_length", 0) > 1 else "必填"
    if kind == "string_too_long":
        return f"最多 {ctx.get('max_length')} 个字符"
    if kind == "literal_error":
        return f"应为 {ctx.get('expected')} 之一"
    if kind == "missing":
        return "必填"
    if kind == "extra_forbidden":
        return "不认识的设置项"
    if kind == "value_error":
        return str(ctx.get("error") or error.get("msg", ""))
    return str(error.get("msg", ""))


def parse_config(data: dict[str, Any]) -> PullConfig:
    """A pull config validated (PullConfigInvalid naming the first field, and each problem by field)."""
    try:
        return PullConfig.model_validate(data)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            problems.setdefault(".".join(map(str, error["loc"])) or "config", _problem(error))
        raise PullConfigInvalid(
            f"拉取配置有误: {describe_validation(exc)}", field=next(iter(problems)), problems=problems
        ) from None


def get_all(session: Session, principal: Principal) -> list[tuple[PullSource, Device]]:
    """Pull sources of devices in the caller's scope, with their devices."""
    principal.require(Perm.DEVICES_READ)
    stmt = select(PullSource, Device).join(Device, Device.id == PullSource.device_id).order_by(Device.serial)
    return [(s, d) for s, d in session.execute(stmt).all()]  # the session's scope limits the devices


def save(
    session: Session,
    principal: Principal,
    *,
    device_id: int,
    config: dict[str, Any],
    headers: dict[str, str] | None = None,
    enabled: bool = True,
    now: datetime,
) -> PullSource:
    """Create or replace a device's pull source (audited; header values are never logged)."""
    principal.require(Perm.DEVICES_WRITE)
    device = register.get_or_raise(session, device_id=device_id)
    checked = parse_config(config)
    bindings.reader_for(session, adapter=checked.adapter, community_code=device.community_code)
    source = session.scalar(select(PullSource).where(PullSource.device_id == device.id))
    if source is None:
        source = PullSource(device_id=device.id, cursor=checked.cursor.start, next_poll_at=now)
        session.add(source)
    elif source.config.get("cursor") != checked.cursor.model_dump():
        source.cursor = checked.cursor.start  # a new cursor definition starts again
    source.config = checked.model_dump()
    if headers is not None:
        source.secret_headers = json.dumps({str(k): str(v) for k, v in headers.items()}, ensure_ascii=False)
    source.enabled, source.failures, source.next_poll_at = enabled, 0, now
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="device.pull_source",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": device.serial, "url": checked.url, "adapter": checked.adapter, "enabled": enabled},
    )
    return source


def for_device(session: Session, principal: Principal, *, device_id: int) -> tuple[PullSource | None, Device]:
    """A device in the caller's scope (else NotFound) and its pull source, if it has one."""
    principal.require(Perm.DEVICES_READ)
    device = register.get_or_raise(session, device_id=device_id)
    return session.scalar(select(PullSource).where(PullSource.device_id == device.id)), device


def header_names(source: PullSource | None) -> list[str]:
    """The names of a source's stored request headers (their values are never shown back)."""
    if source is None or not source.secret_headers:
        return []
    return sorted(json.loads(source.secret_headers))


def request_poll(session: Session, principal: Principal, *, device_id: int, now: datetime) -> PullSource:
    """Ask for a poll of a device's source now (audited); run it with poll_one once this has committed."""
    principal.require(Perm.DEVICES_WRITE)
    source, device = for_device(session, principal, device_id=device_id)
    if source is None:
        raise NotFound("该设备没有配置拉取源", field="pull_source")
    source.next_poll_at = now  # also due for the scheduled job, should the poll asked for here not run
    audit.record(
        session,
        actor=principal.actor,
        action="device.pull_poll",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": device.serial, "source_id": source.id},
    )
    return source


def get_or_raise(session: Session, principal: Principal, *, source_id: int) -> tuple[PullSource, Device]:
    """A pull source of a device in the caller's scope, else NotFound."""
    principal.require(Perm.DEVICES_READ)
    stmt = select(PullSource, Device).join(Device, Device.id == PullSource.device_id)
    row = session.execute(stmt.where(PullSource.id == source_id)).first()
    if row is None:
        raise NotFound("拉取源不存在或不在权限范围内", field="pull_source")
    return row[0], row[1]


@dataclass
class Page:
    """One answer of the device: its raw body, the envelopes read from it, and its refused records."""

    body: bytes
    content_type: str
    envelopes: list[Envelope | dict[str, Any]]
    rejected: list[tuple[str, str, Any]] = field(default_factory=list)  # (label, reason, kept record)
    records: int = 0


@dataclass(frozen=True)
class _Job:
    source_id: int
    device_id: int
    serial: str
    community: str
    config: PullConfig
    headers: dict[str, str]
    cursor: str
    failures: int


def render_cursor(config: PullConfig, cursor: str) -> str:
    """The cursor as the device expects it in the request."""
    spec = config.cursor
    if spec.kind == "last_id" or not cursor:
        return cursor
    moment = as_utc(datetime.fromisoformat(cursor)) - timedelta(seconds=spec.overlap_s)
    if spec.format == "epoch_s":
        return str(int(moment.timestamp()))
    if spec.format == "epoch_ms":
        return str(int(moment.timestamp() * 1000))
    local = to_local(moment)
    return local.isoformat(timespec="seconds") if spec.format == "iso" else local.strftime(spec.format)


def next_cursor(config: PullConfig, cursor: str, envelopes: list[Envelope]) -> str:
    """The cursor after a poll: the latest event time (UTC ISO) or the largest id seen, never backwards."""
    if not envelopes:
        return cursor
    if config.cursor.kind == "since":
        latest = max(as_utc(e.occurred_at) for e in envelopes)
        if cursor and as_utc(datetime.fromisoformat(cursor)) >= latest:
            return cursor
        return latest.isoformat()
    ids = [e.id for e in envelopes] + ([cursor] if cursor else [])
    if all(i.isdigit() for i in ids):
        return max(ids, key=int)
    return max(ids)


def fetch_pages(job: _Job, reader: Reader, client: httpx.Client, *, now: datetime) -> list[Page]:
    """Ask the device for everything since the cursor, page by page (PollFailed on any failure)."""
    config, paging = job.config, job.config.paging
    pages: list[Page] = []
    numbers = range(paging.start, paging.start + paging.max_pages) if paging else range(1)
    for number in numbers:
        values = {"cursor": render_cursor(config, job.cursor), "page": str(number)}
        values["size"] = str(paging.size) if paging else ""
        params = {key: value.format(**values) for key, value in config.params.items()}
        try:
            if config.method == "GET":
                response = client.get(
                    config.url, params=params, headers=job.headers, timeout=config.timeout_s
                )
            else:
                response = client.post(config.url, json=params, headers=job.headers, timeout=config.timeout_s)
        except httpx.TimeoutException:
            raise PollFailed(f"超时：{config.timeout_s:g} 秒内没有应答") from None
        except httpx.HTTPError as exc:
            raise PollFailed(f"连接失败：{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise PollFailed(f"HTTP {response.status_code}: {response.text[:200]}")
        if len(response.content) > MAX_BODY:
            raise PollFailed(f"应答超过 {MAX_BODY // 1024 // 1024} MB")
        page = read_page(reader, response.content, dict(response.headers), serial=job.serial, now=now)
        pages.append(page)
        if paging is None or page.records < paging.size:
            break
    return pages


def read_page(reader: Reader, body: bytes, headers: dict[str, str], *, serial: str, now: datetime) -> Page:
    """One answer read with the device's adapter (PollFailed, keeping the body, if it is unreadable)."""
    content_type = headers.get("content-type", "")
    try:
        if reader.mapping is None:
            parsed: list[Envelope | dict[str, Any]] = [
                *reader.parse(body, headers, device=serial, received_at=now)
            ]
            return Page(body, content_type, parsed, records=len(parsed))
        results = read_records(reader.mapping, body, headers, device=serial, received_at=now)
    except adapters.AdapterParseError as exc:
        raise PollFailed(f"应答无法读取: {exc.reason}", body, content_type) from None
    envelopes: list[Envelope | dict[str, Any]] = [r.envelope for r in results if r.envelope]
    page = Page(body, content_type, envelopes, records=len(results))
    page.rejected = [(r.label, f"{r.label}: {r.reason}", r.kept) for r in results if r.reason is not None]
    return page


def poll_due(factory: sessionmaker[Session], *, now: datetime, client: httpx.Client | None = None) -> int:
    """Poll every enabled source whose time has come; returns how many were polled (failures included)."""
    with unit_of_work(factory, write=False) as session:
        stmt = (
            select(PullSource.id)
            .where(PullSource.enabled.is_(True), PullSource.next_poll_at <= now)
            .order_by(PullSource.next_poll_at)
            .limit(DUE_PER_RUN)
        )
        due = list(session.scalars(stmt))
    owned = client is None
    client = client or httpx.Client(follow_redirects=False)
    try:
        for source_id in due:
            poll_one(factory, source_id=source_id, now=now, client=client)
    finally:
        if owned:
            client.close()
    return len(due)


def poll_one(factory: sessionmaker[Session], *, source_id: int, now: datetime, client: httpx.Client) -> bool:
    """Poll one source now; True if its answer was stored. The device's faults are recorded, never raised."""
    try:
        with unit_of_work(factory, write=False) as session:
            job, reader = _load(session, source_id)
        pages = fetch_pages(job, reader, client, now=now)
        with unit_of_work(factory) as session:
            _store(session, job, reader, pages, now=now)
        return True
    except PollFailed as exc:
        with unit_of_work(factory) as session:
            _failed(session, source_id, exc, now=now)
        return False
    except Exception as exc:  # a broken mapping or config must not stop the other sources
        log.exception("pull source %s failed", source_id)
        with unit_of_work(factory) as session:
            _failed(session, source_id, PollFailed(f"{type(exc).__name__}: {exc}"), now=now)
        return False


def _load(session: Session, source_id: int) -> tuple[_Job, Reader]:
    source = session.get(PullSource, source_id)
    device = session.get(Device, source.device_id) if source else None
    if source is None or device is None:
        raise PollFailed("拉取源或设备已删除")
    config = PullConfig.model_validate(source.config)
    headers = json.loads(source.secret_headers) if source.secret_headers else {}
    job = _Job(
        source.id,
        device.id,
        device.serial,
        device.community_code,
        config,
        headers,
        source.cursor,
        source.failures,
    )
    try:
        reader = bindings.reader_for(session, adapter=config.adapter, community_code=device.community_code)
    except (NotFound, Invalid) as exc:
        raise PollFailed(f"适配器/映射不可用: {exc.message}") from None
    return job, reader


def _store(session: Session, job: _Job, reader: Reader, pages: list[Page], *, now: datetime) -> None:
    source = session.get(PullSource, job.source_id)
    device = session.get(Device, job.device_id)
    assert source is not None and device is not None
    ingest_source = f"pull:{job.config.adapter}"[:64]
    stored = duplicates = rejected = 0
    for page in pages:
        raw_id = store.save_raw(
            session,
            received_at=now,
            source=ingest_source,
            body=page.body,
            content_type=page.content_type,
            device_serial=device.serial,
        )
        result = ingest(
            session, page.envelopes, source=ingest_source, received_at=now, sender=device, raw_id=raw_id
        )
        stored, duplicates = stored + result.stored, duplicates + result.duplicates
        rejected += len(result.rejected) + len(page.rejected)
        for label, reason, record in page.rejected:
            deadletters.record(
                session,
                reason=reason,
                item=record,
                source=ingest_source,
                received_at=now,
                device=device,
                sender=device,
                raw_id=raw_id,
                via=deadletters.replay_via(
                    deadletters.RECORD,
                    origin="pull",
                    adapter=job.config.adapter,
                    bound=False,
                    community=device.community_code,
                    label=label,
                ),
            )
    if stored == 0:  # the device answered: that is a sign of life even when it had nothing new
        beat = Envelope(
            id=f"pull:{job.source_id}:{now.isoformat()}",
            device=device.serial,
            type=EventType.DEVICE_HEARTBEAT,
            occurred_at=now,
            source=ingest_source,
            payload={"status": "ok"},
        )
        ingest(session, [beat], source=ingest_source, received_at=now, sender=device)
    source.cursor = next_cursor(
        job.config, job.cursor, [e for p in pages for e in p.envelopes if isinstance(e, Envelope)]
    )
    source.last_poll_at = source.last_ok_at = now
    source.failures, source.last_error = 0, ""
    source.last_stored, source.last_duplicates, source.last_rejected = stored, duplicates, rejected
    source.next_poll_at = now + timedelta(seconds=job.config.interval_s)


def backoff(interval_s: int, failures: int) -> timedelta:
    """How long to wait after the n-th failure in a row: the interval doubled each time, at most an hour."""
    return min(
        timedelta(seconds=interval_s * 2 ** min(failures, 16)),
        max(MAX_BACKOFF, timedelta(seconds=interval_s)),
    )


def _failed(session: Session, source_id: int, failure: PollFailed, *, now: datetime) -> None:
    source = session.get(PullSource, source_id)
    if source is None:
        return
    device = session.get(Device, source.device_id)
    source.failures += 1
    source.last_poll_at = now
    source.last_error = failure.reason[:500]
    interval = int(source.config.get("interval_s", 60))
    source.next_poll_at = now + backoff(interval, source.failures)
    if failure.body is not None and device is not None:  # keep what could not be read, to fix and replay
        ingest_source = f"pull:{source.config.get('adapter', '')}"[:64]
        adapter = str(source.config.get("adapter", ""))
        raw_id = store.save_raw(
            session,
            received_at=now,
            source=ingest_source,
            body=failure.body,
            content_type=failure.content_type,
            device_serial=device.serial,
        )
        deadletters.record_unread_body(
            session,
            reason=failure.reason,
            body=failure.body,
            source=ingest_source,
            received_at=now,
            device=device,
            raw_id=raw_id,
            origin="pull",
            adapter=adapter,
            bound=False,
            content_type=failure.content_type,
        )
