"""Running a compiled mapping over a payload: strict, record-by-record, and the console's "try it" preview."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from linli.devices.adapters.common import build_envelope, content_id
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.mapping.compile import (
    CompiledField,
    CompiledMapping,
    as_text,
    compile_mapping,
    evaluate,
    parse_time,
)
from linli.devices.adapters.mapping.decode import Decoded, Record, decode, kept_of, read_kept
from linli.devices.adapters.mapping.documents import load_document
from linli.devices.adapters.mapping.spec import MappingError
from linli.devices.events import Envelope, EventType


def parse_with(
    mapping: CompiledMapping,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    device: str | None = None,
    received_at: datetime | None = None,
) -> list[Envelope]:
    """Every record's envelope; the first bad record raises AdapterParseError naming it."""
    envelopes, errors = parse_records(mapping, raw, headers, device=device, received_at=received_at)
    if errors:
        index, reason = errors[0]
        raise AdapterParseError(reason, record=index)
    return envelopes


def parse_records(
    mapping: CompiledMapping,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    device: str | None = None,
    received_at: datetime | None = None,
    encoding: str | None = None,
) -> tuple[list[Envelope], list[tuple[int, str]]]:
    """Good records' envelopes and (record index, reason) per bad record; an unreadable payload raises."""
    results = read_records(mapping, raw, headers, device=device, received_at=received_at, encoding=encoding)
    envelopes = [r.envelope for r in results if r.envelope is not None]
    errors = [(r.index, f"{r.label}: {r.reason}") for r in results if r.reason is not None]
    return envelopes, errors


@dataclass(frozen=True)
class RecordResult:
    """What became of one record: its envelope, nothing (an ignored code), or the reason it was refused."""

    index: int
    label: str  # "第3条记录" / "第7行"
    row: int | None  # the CSV line or sheet row, for tabular payloads
    data: Any
    envelope: Envelope | None = None
    reason: str | None = None
    kept: Any = None  # what a dead letter keeps of it, to read it again once the mapping is fixed

    @property
    def field(self) -> str:
        """The field the refusal names ("occurred_at", "payload.checkpoint" …), "" if none."""
        return field_of(self.reason or "")


def read_records(
    mapping: CompiledMapping,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    device: str | None = None,
    received_at: datetime | None = None,
    encoding: str | None = None,
) -> list[RecordResult]:
    """Every record's outcome, in order (for batch uploads' row reports); an unreadable payload raises."""
    decoded = decode(mapping.doc, raw, headers, mapping.records, encoding=encoding)
    _check_columns(mapping, decoded, device_given=device is not None)
    results: list[RecordResult] = []
    for record in decoded.records:
        outcome = RecordResult(record.index, record.label, record.row, record.data, kept=kept_of(record))
        try:
            envelope = _record_envelope(mapping, record, decoded.root, device, received_at)
        except AdapterParseError as exc:
            results.append(replace(outcome, reason=exc.reason))
            continue
        results.append(replace(outcome, envelope=envelope))
    return results


def read_again(
    mapping: CompiledMapping,
    kept: Any,
    *,
    label: str = "该记录",
    device: str | None = None,
    received_at: datetime | None = None,
) -> RecordResult:
    """One record a dead letter kept (RecordResult.kept) read with mapping, e.g. a fixed version of it.

    The record is read on its own: a value the mapping would find outside it (a serial sent once
    beside the records of a JSON answer) is not there, so the device should be given.
    """
    outcome = RecordResult(0, label, None, kept, kept=kept)
    try:
        data = read_kept(mapping.doc, kept)
        outcome = replace(outcome, data=data)
        envelope = _record_envelope(mapping, Record(0, label, data), data, device, received_at)
    except AdapterParseError as exc:
        return replace(outcome, reason=exc.reason)
    return replace(outcome, envelope=envelope)


_FIELD = re.compile(r"^(?P<field>[A-Za-z_][\w.]*): ")
_PAYLOAD_FIELD = re.compile(r"字段不合规: (?P<field>[A-Za-z_][\w.]*): ")


def field_of(reason: str) -> str:
    """The field a refusal reason starts with (payload validation errors name payload.<key>)."""
    match = _PAYLOAD_FIELD.search(reason)
    if match:
        return f"payload.{match['field']}"
    match = _FIELD.match(reason)
    return match["field"] if match else ""


def preview(
    doc: dict[str, Any] | str | bytes,
    sample: str | bytes,
    *,
    headers: Mapping[str, str] | None = None,
    device: str | None = None,
    received_at: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Try a mapping on a pasted sample: {"events": [envelope dicts], "errors": [{"record", "reason"}]}."""
    try:
        mapping = compile_mapping(load_document(doc) if isinstance(doc, str | bytes) else doc)
    except MappingError as exc:
        return {"events": [], "errors": [{"record": None, "reason": str(exc)}]}
    raw, encoding = _sample_bytes(mapping, sample)
    try:
        envelopes, errors = parse_records(
            mapping, raw, headers or {}, device=device, received_at=received_at, encoding=encoding
        )
    except AdapterParseError as exc:
        return {"events": [], "errors": [{"record": None, "reason": exc.reason}]}
    return {
        "events": [envelope.model_dump(mode="json") for envelope in envelopes],
        "errors": [{"record": index, "reason": reason} for index, reason in errors],
    }


def _sample_bytes(mapping: CompiledMapping, sample: str | bytes) -> tuple[bytes, str | None]:
    """Pasted text back to bytes: in the device's declared encoding (so form escapes agree), else UTF-8."""
    if isinstance(sample, bytes):
        return sample, None
    declared = mapping.doc.encoding
    if declared and declared != "auto":
        try:
            return sample.encode(declared), None
        except UnicodeEncodeError:
            pass
    return sample.encode("utf-8"), "utf-8"


def _check_columns(mapping: CompiledMapping, decoded: Decoded, *, device_given: bool) -> None:
    if decoded.columns is None:
        return
    missing = [
        f"{path}（{key}）"
        for path, key in mapping.required_paths()
        if path not in decoded.columns and not (key == "device" and device_given)
    ]
    if missing:
        raise AdapterParseError(f"CSV 表头缺少列: {', '.join(missing)}")


def _record_envelope(
    mapping: CompiledMapping,
    record: Record,
    root: Any,
    device: str | None,
    received_at: datetime | None,
) -> Envelope | None:
    if record.problem:
        raise AdapterParseError(record.problem)
    event_type = _event_type(mapping, record.data, root)
    if event_type is None:
        return None
    sender = device or _device(mapping, record.data, root)
    occurred_at = _occurred_at(mapping, record.data, root, received_at)
    payload = _payload(mapping.fields_for(event_type), record.data, root)
    return build_envelope(
        event_id=_event_id(mapping, record.data, root, sender, event_type, occurred_at, payload),
        device=sender,
        event_type=event_type,
        occurred_at=occurred_at,
        payload=payload,
        source=mapping.source,
        received_at=received_at,
    )


def _event_type(mapping: CompiledMapping, data: Any, root: Any) -> EventType | None:
    spec = mapping.doc.type
    if spec.const is not None:
        return spec.const
    value = mapping.type_read(data, root) if mapping.type_read else None
    code = "" if value is None else as_text(value)
    if code in spec.ignore:
        return None
    if spec.map is not None and code in spec.map:
        return spec.map[code]
    if spec.map is None and code in {member.value for member in EventType}:
        return EventType(code)
    if spec.default is not None:
        return spec.default
    if not code:
        raise AdapterParseError(f"type: 缺少事件类型（路径 {spec.path}）")
    raise AdapterParseError(f"type: 值 {code!r} 不在映射表 map 中")


def _device(mapping: CompiledMapping, data: Any, root: Any) -> str:
    if mapping.device is None:
        raise AdapterParseError("device: 未指定设备，映射中也没有 device")
    present, value = evaluate(mapping.device, data, root)
    if not present or value is None or not as_text(value):
        raise AdapterParseError("device: 缺少设备编号")
    return as_text(value)


def _occurred_at(mapping: CompiledMapping, data: Any, root: Any, received_at: datetime | None) -> datetime:
    spec = mapping.doc.occurred_at
    if spec is None or mapping.time_read is None:
        if received_at is None:
            raise AdapterParseError("occurred_at: 映射没有时间字段，且未提供接收时间")
        return received_at
    value = mapping.time_read(data, root)
    if value is None or not as_text(value):
        raise AdapterParseError(f"occurred_at: 缺少时间（路径 {spec.path}）")
    return parse_time(value, spec.format, spec.tz)


def _payload(fields: dict[str, CompiledField], data: Any, root: Any) -> dict[str, Any]:
    payload = {}
    for key, field in fields.items():
        present, value = evaluate(field, data, root)
        if present:
            payload[key] = value
    return payload


def _event_id(
    mapping: CompiledMapping,
    data: Any,
    root: Any,
    device: str,
    event_type: EventType,
    occurred_at: datetime,
    payload: dict[str, Any],
) -> str:
    spec = mapping.doc.id
    if spec is not None and spec.path is not None and mapping.id_read is not None:
        value = mapping.id_read(data, root)
        if value is None or not as_text(value):
            raise AdapterParseError(f"id: 缺少事件编号（路径 {spec.path}）")
        return as_text(value)
    known: dict[str, Any] = {"device": device, "type": event_type, "occurred_at": occurred_at, **payload}
    names = spec.hash if spec is not None and spec.hash is not None else [*known]
    return content_id(mapping.name, [[name, known.get(name)] for name in names])
