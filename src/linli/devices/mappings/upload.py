"""Batch uploads of old offline devices' exports (patrol wands, access and attendance controllers).

The worker picks a device (read with its binding, or a mapping they name) or a mapping and a community
(each row then names its device), and the file: CSV or .xlsx. Each row goes through the mapping and the
normal ingest: dedup makes a second upload of the same file store nothing new. A row that cannot be read
is reported with its row number, field and reason and kept as a dead letter; the good rows are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid
from linli.devices import adapters, deadletters, register, service, store
from linli.devices.adapters.mapping import CompiledMapping
from linli.devices.adapters.mapping.engine import RecordResult, field_of, read_records
from linli.devices.events import Envelope
from linli.devices.mappings import bindings
from linli.devices.models import DeadLetter, Device
from linli.devices.service import ingest

# A patrol wand or an offline controller is read out every few weeks or months: its export may hold a
# year of records, older than what live devices may send (service.MAX_AGE). Dedup keeps re-uploads harmless.
UPLOAD_MAX_AGE = service.UPLOAD_MAX_AGE  # replays of an upload's dead letters use it too (service.max_age_of)

CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class RowRejection:
    """A row that was not stored: its sheet row (or record label), the field at fault and why."""

    row: int | None
    label: str
    field: str
    reason: str


@dataclass
class UploadReport:
    """What an upload did."""

    filename: str
    adapter: str
    community: str
    device: str | None
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    file_error: str = ""
    dead_letter_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON answer."""
        return {
            "filename": self.filename,
            "adapter": self.adapter,
            "community": self.community,
            "device": self.device,
            "rows": self.rows,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": [
                {"row": r.row, "label": r.label, "field": r.field, "reason": r.reason} for r in self.rejected
            ],
            "file_error": self.file_error,
        }


@dataclass(frozen=True)
class _Target:
    device: Device | None
    community: str
    adapter: str
    bound: bool = False  # the adapter is the device's binding (a replay reads with its binding then)


def _target(
    session: Session, *, device_id: int | None, adapter: str | None, community: str | None
) -> _Target:
    """The device (in the caller's scope) or the community, and the adapter to read the file with."""
    if device_id is not None:
        device = register.get_or_raise(session, device_id=device_id)
        chosen = (adapter or "").strip() or bindings.adapter_of(session, device=device)
        if not chosen:
            raise Invalid(f"设备 {device.serial} 没有绑定映射，请选择映射", field="mapping")
        return _Target(device, device.community_code, chosen, bound=not (adapter or "").strip())
    if not community:
        raise Invalid("请选择设备，或选择社区和映射", field="community")
    areas.get_community_or_raise(session, code=community)
    if not (adapter or "").strip():
        raise Invalid("请选择映射", field="mapping")
    return _Target(None, community, str(adapter).strip())


def upload(
    session: Session,
    principal: Principal,
    *,
    data: bytes,
    filename: str,
    now: datetime,
    device_id: int | None = None,
    adapter: str | None = None,
    community: str | None = None,
) -> UploadReport:
    """Read an export with the device's (or the named) mapping and ingest its rows; report each row."""
    principal.require(Perm.DEVICES_WRITE)
    target = _target(session, device_id=device_id, adapter=adapter, community=community)
    reader = bindings.reader_for(session, adapter=target.adapter, community_code=target.community)
    mapping = reader.mapping or _mapping_of(target.adapter)
    serial = target.device.serial if target.device else None
    report = UploadReport(filename, target.adapter, target.community, serial)
    source = f"{service.UPLOAD_SOURCE}{target.adapter}"[:64]
    kind = filename.rsplit(".", 1)[-1].lower()
    raw_id = store.save_raw(
        session,
        received_at=now,
        source=source,
        body=data,
        content_type=CONTENT_TYPES.get(kind, "application/octet-stream"),
        device_serial=serial or "",
    )
    try:
        if mapping is None:
            raise Invalid(f"适配器 {target.adapter} 不能读取表格导出，请选择映射", field="mapping")
        results = read_records(mapping, data, {}, device=serial, received_at=now)
    except adapters.AdapterParseError as exc:
        report.file_error = exc.reason
        letter = deadletters.record(
            session,
            reason=f"上传文件无法读取: {exc.reason}",
            item=data,
            source=source,
            received_at=now,
            device=target.device,
            sender=target.device,
            raw_id=raw_id,
            via=_via(target, deadletters.BODY, content_type=CONTENT_TYPES.get(kind, "")),
        )
        letter.area_code = letter.area_code or target.community
        report.dead_letter_ids.append(letter.id)
        store.link_raw(session, raw_id, event_ids=[], dead_letter_id=letter.id)
        return _audited(session, principal, report)
    report.rows = len(results)
    _ingest_rows(session, report, results, target, source=source, raw_id=raw_id, now=now)
    return _audited(session, principal, report)


def _mapping_of(adapter: str) -> CompiledMapping | None:
    """A vendor adapter that reads exports through a mapping (patrol_csv) exposes it as MAPPING."""
    module = adapters.get(adapter).module
    found = getattr(module, "MAPPING", None)
    return found if isinstance(found, CompiledMapping) else None


def _ingest_rows(
    session: Session,
    report: UploadReport,
    results: list[RecordResult],
    target: _Target,
    *,
    source: str,
    raw_id: int,
    now: datetime,
) -> None:
    devices = register.by_serials(session, {r.envelope.device for r in results if r.envelope is not None})
    good: list[tuple[RecordResult, Envelope]] = []
    for result in results:
        envelope = result.envelope
        if result.reason is not None:
            _reject(session, report, result, result.field, result.reason, target, source, raw_id, now)
        elif envelope is None:
            report.ignored += 1
        elif (owner := devices.get(envelope.device)) is not None and owner.community_code != target.community:
            reason = f"device: 设备 {envelope.device} 不属于所选社区"
            _reject(session, report, result, "device", reason, target, source, raw_id, now)
        else:
            good.append((result, envelope))
    outcome = ingest(
        session,
        [envelope for _, envelope in good],
        source=source,
        received_at=now,
        sender=target.device,
        raw_id=raw_id,
        max_age=UPLOAD_MAX_AGE,
    )
    report.stored, report.duplicates = outcome.stored, outcome.duplicates
    report.dead_letter_ids += outcome.dead_letter_ids
    for letter_id in outcome.dead_letter_ids:  # e.g. an unknown device: the uploader's community sees it
        refused = session.get(DeadLetter, letter_id)
        if refused is not None and not refused.area_code:
            refused.area_code = target.community
    for index, reason in outcome.rejected:
        result = good[index][0]
        report.rejected.append(RowRejection(result.row, result.label, _ingest_field(reason), reason))
    report.rejected.sort(key=lambda r: (r.row is None, r.row or 0))


def _reject(
    session: Session,
    report: UploadReport,
    result: RecordResult,
    field_name: str,
    reason: str,
    target: _Target,
    source: str,
    raw_id: int,
    now: datetime,
) -> None:
    report.rejected.append(RowRejection(result.row, result.label, field_name, reason))
    letter = deadletters.record(
        session,
        reason=f"{result.label}: {reason}",
        item=result.kept,  # the whole row with its headers, for a replay through the fixed mapping
        source=source,
        received_at=now,
        device=target.device,
        sender=target.device,
        raw_id=raw_id,
        via=_via(target, deadletters.RECORD, label=result.label),
    )
    letter.area_code = letter.area_code or target.community  # the uploader's community sees its rows
    report.dead_letter_ids.append(letter.id)


def _via(target: _Target, kind: str, *, content_type: str = "", label: str = "") -> dict[str, Any]:
    """How a replay reads this upload's refused row (or unreadable file) again: deadletters.replay_via."""
    return deadletters.replay_via(
        kind,
        origin=service.UPLOAD_SOURCE.rstrip(":"),
        adapter=target.adapter,
        bound=target.bound,
        community=target.community,
        content_type=content_type,
        label=label,
    )


def _ingest_field(reason: str) -> str:
    """The field an ingest refusal is about (its reasons are short English texts)."""
    if reason.startswith("schema:"):
        return field_of(reason.removeprefix("schema: ")) or "payload"
    return "occurred_at" if "occurred_at" in reason else "device"


def _audited(session: Session, principal: Principal, report: UploadReport) -> UploadReport:
    audit.record(
        session,
        actor=principal.actor,
        action="device.upload",
        target_type="upload",
        target_id=report.filename[:64],
        area_code=report.community,
        detail={
            "adapter": report.adapter,
            "device": report.device,
            "rows": report.rows,
            "stored": report.stored,
            "duplicates": report.duplicates,
            "rejected": len(report.rejected),
        },
    )
    return report
