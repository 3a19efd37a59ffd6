"""Compiling a validated mapping document into accessors, and evaluating its fields on one record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.mapping.paths import (
    Accessor,
    RecordsPath,
    field_accessor,
    records_path,
    with_root_fallback,
)
from linli.devices.adapters.mapping.spec import FieldSpec, Format, MappingDoc, MappingError, validate_document
from linli.devices.adapters.mapping.units import converter
from linli.devices.events import PAYLOADS, EventType

SPECIAL_HASH_FIELDS = ("device", "type", "occurred_at")
TRUE_TEXT = {"1", "true", "yes", "y", "on", "是"}
FALSE_TEXT = {"0", "false", "no", "n", "off", "否"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CompiledField:
    """One output field: its spec, its accessor (None for a constant) and its unit converter."""

    key: str
    spec: FieldSpec
    read: Accessor | None
    convert: Callable[[float], float] | None


@dataclass(frozen=True)
class CompiledMapping:
    """A mapping ready to parse payloads: the validated document plus its compiled paths."""

    doc: MappingDoc
    records: RecordsPath | None
    type_read: Accessor | None
    id_read: Accessor | None
    time_read: Accessor | None
    device: CompiledField | None
    payload: dict[str, CompiledField]
    payload_by_type: dict[EventType, dict[str, CompiledField]]

    @property
    def name(self) -> str:
        """The mapping's name."""
        return self.doc.name

    @property
    def source(self) -> str:
        """The envelope source of events this mapping produces."""
        return f"mapping:{self.doc.name}"

    def fields_for(self, event_type: EventType) -> dict[str, CompiledField]:
        """The payload fields used for one event type."""
        return self.payload_by_type.get(event_type, self.payload)

    def required_paths(self) -> list[tuple[str, str]]:
        """(path, output key) of every value each record must carry."""
        fields = [self.device, *self.payload.values()]
        needed = [
            (f.spec.path, f.key)
            for f in fields
            if f is not None and f.spec.path and f.spec.required and not f.spec.has_default
        ]
        doc = self.doc
        if doc.type.path and doc.type.default is None:
            needed.append((doc.type.path, "type"))
        if doc.occurred_at:
            needed.append((doc.occurred_at.path, "occurred_at"))
        if doc.id and doc.id.path:
            needed.append((doc.id.path, "id"))
        return needed


def compile_mapping(doc: dict[str, Any] | MappingDoc) -> CompiledMapping:
    """A mapping document validated and compiled (raises MappingError naming the offending key)."""
    spec = doc if isinstance(doc, MappingDoc) else validate_document(doc)
    fmt = spec.format
    compiled = CompiledMapping(
        doc=spec,
        records=records_path(spec.records, fmt, where="records") if spec.records else None,
        type_read=_accessor(spec.type.path, fmt, "type.path"),
        id_read=_accessor(spec.id.path if spec.id else None, fmt, "id.path"),
        time_read=_accessor(spec.occurred_at.path if spec.occurred_at else None, fmt, "occurred_at.path"),
        device=_field("device", spec.device, fmt) if spec.device else None,
        payload={key: _field(f"payload.{key}", item, fmt) for key, item in spec.payload.items()},
        payload_by_type={
            event_type: {
                key: _field(f"payload_by_type.{event_type.value}.{key}", item, fmt)
                for key, item in fields.items()
            }
            for event_type, fields in spec.payload_by_type.items()
        },
    )
    _check_payloads(compiled)
    _check_hash_fields(compiled)
    return compiled


def _accessor(path: str | None, fmt: Format, where: str) -> Accessor | None:
    return with_root_fallback(field_accessor(path, fmt, where=where), fmt) if path else None


def _field(key: str, spec: FieldSpec, fmt: Format) -> CompiledField:
    convert = converter(spec.unit.source, spec.unit.target, where=f"{key}.unit") if spec.unit else None
    return CompiledField(key=key, spec=spec, read=_accessor(spec.path, fmt, f"{key}.path"), convert=convert)


def _reachable(doc: MappingDoc) -> set[EventType] | None:
    if doc.type.const is not None:
        return {doc.type.const}
    if doc.type.map is None:
        return None  # the field holds event type names: checked per record
    return set(doc.type.map.values()) | ({doc.type.default} if doc.type.default else set())


def _check_payloads(mapping: CompiledMapping) -> None:
    reachable = _reachable(mapping.doc)
    if reachable is None:
        return
    for event_type in mapping.payload_by_type:
        if event_type not in reachable:
            raise MappingError(f"payload_by_type.{event_type.value}: type 不会产生这种事件类型")
    for event_type in sorted(reachable):
        fields = mapping.fields_for(event_type)
        where = f"payload_by_type.{event_type.value}" if event_type in mapping.payload_by_type else "payload"
        model_fields = PAYLOADS[event_type].model_fields
        unknown = sorted(set(fields) - set(model_fields))
        if unknown:
            raise MappingError(f"{where}: {event_type.value} 没有字段 {', '.join(unknown)}")
        missing = sorted(
            name for name, info in model_fields.items() if info.is_required() and name not in fields
        )
        if missing:
            raise MappingError(f"{where}: {event_type.value} 缺少必填字段 {', '.join(missing)}")


def _check_hash_fields(mapping: CompiledMapping) -> None:
    if mapping.doc.id is None or mapping.doc.id.hash is None:
        return
    known = set(SPECIAL_HASH_FIELDS) | set(mapping.payload)
    known |= {key for fields in mapping.payload_by_type.values() for key in fields}
    unknown = [name for name in mapping.doc.id.hash if name not in known]
    if unknown:
        raise MappingError(
            f"id.hash: 未知字段 {', '.join(unknown)}（可用 device, type, occurred_at 或 payload 的键）"
        )


def evaluate(field: CompiledField, record: Any, root: Any) -> tuple[bool, Any]:
    """(present, value) of one field on one record (raises AdapterParseError naming the field)."""
    spec = field.spec
    value = spec.const if field.read is None else field.read(record, root)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if spec.has_default:
            return True, spec.default
        if spec.required:
            raise AdapterParseError(f"{field.key}: 缺少必填值（路径 {spec.path}）")
        return False, None
    if spec.map is not None:
        code = as_text(value)
        if code not in spec.map:
            if spec.has_default:
                return True, spec.default
            raise AdapterParseError(f"{field.key}: 值 {code!r} 不在映射表 map 中")
        value = spec.map[code]
    return True, _cast(field, _numeric(field, value))


def _numeric(field: CompiledField, value: Any) -> Any:
    spec = field.spec
    if spec.scale is None and spec.offset is None and field.convert is None and spec.round is None:
        return value
    number = as_number(value, field.key)
    number = number * (spec.scale if spec.scale is not None else 1) + (spec.offset or 0)
    if field.convert is not None:
        number = field.convert(number)
    return round(number, spec.round if spec.round is not None else 9)


def _cast(field: CompiledField, value: Any) -> Any:
    kind = field.spec.type
    if kind is None:
        return value
    if kind == "str":
        return as_text(value)
    if kind == "bool":
        text = as_text(value).lower()
        if text in TRUE_TEXT | FALSE_TEXT:
            return text in TRUE_TEXT
        raise AdapterParseError(f"{field.key}: {value!r} 不是布尔值")
    number = as_number(value, field.key)
    if kind == "int":
        if not number.is_integer():
            raise AdapterParseError(f"{field.key}: {value!r} 不是整数")
        return int(number)
    return number


def as_text(value: Any) -> str:
    """A value as the text vendors' codes are compared with (1, 1.0 and "1" all give "1")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def as_number(value: Any, key: str) -> float:
    """A value as a float (raises AdapterParseError naming the field)."""
    if isinstance(value, bool):
        raise AdapterParseError(f"{key}: {value!r} 不是数字")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AdapterParseError(f"{key}: {value!r} 不是数字") from None


def parse_time(value: Any, formats: list[str], tz: str) -> datetime:
    """A time in one of the formats (iso, epoch_s, epoch_ms, strftime); naive times are in `tz`."""
    zone, text = ZoneInfo(tz), as_text(value)
    for fmt in formats:
        try:
            if fmt in ("epoch_s", "epoch_ms"):
                return _from_epoch(text, 1000 if fmt == "epoch_ms" else 1).astimezone(zone)
            moment = datetime.fromisoformat(text) if fmt == "iso" else datetime.strptime(text, fmt)
        except (ValueError, OverflowError, ArithmeticError):
            continue
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
    raise AdapterParseError(f"occurred_at: 时间 {text!r} 不符合格式 {', '.join(formats)}")


def _from_epoch(text: str, per_second: int) -> datetime:
    micros = (Decimal(text) * 1_000_000 / per_second).to_integral_value()
    return EPOCH + timedelta(microseconds=int(micros))
