"""The mapping document: a declarative description of a vendor's push, validated before it is used."""

from __future__ import annotations

import codecs
import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from linli.devices.events import EventType

Format = Literal["json", "xml", "form", "csv", "table"]  # table: a CSV or .xlsx sheet via core/tabular
Cast = Literal["str", "int", "float", "bool"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,47}$"


class MappingError(ValueError):
    """A mapping document that cannot be used; the message names the offending key."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _string_keys(value: Any) -> Any:
    """YAML reads `{1: vehicle.entered}` with int keys; vendors' codes are compared as text."""
    if isinstance(value, dict):
        return {_key_text(key): item for key, item in value.items()}
    return value


def _string_items(value: Any) -> Any:
    """Ignored codes are compared as text too."""
    return [_key_text(item) for item in value] if isinstance(value, list) else value


def _key_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class UnitSpec(_Spec):
    """A named unit conversion, e.g. {from: "°F", to: "°C"}."""

    source: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)


class FieldSpec(_Spec):
    """Where one value comes from (a path or a constant) and how it is turned into the output value.

    `default` is the output when the value is absent or not in `map`; it is used as written (not scaled).
    """

    path: str | None = Field(default=None, min_length=1)
    const: Any = None
    map: dict[str, Any] | None = None
    default: Any = None
    required: bool = True
    scale: float | None = None
    offset: float | None = None
    unit: UnitSpec | None = None
    round: int | None = Field(default=None, ge=0, le=9)
    type: Cast | None = None

    _normalise_map = field_validator("map", mode="before")(_string_keys)

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.path is None) == ("const" not in self.model_fields_set):
            raise ValueError("需要且只能有 path 或 const 其中之一")
        return self

    @property
    def has_default(self) -> bool:
        """Whether the document set a default (None is a legitimate default)."""
        return "default" in self.model_fields_set


class TypeSpec(_Spec):
    """Which event type a record is: a constant, or a field's value mapped onto event types."""

    path: str | None = Field(default=None, min_length=1)
    const: EventType | None = None
    map: dict[str, EventType] | None = None
    default: EventType | None = None
    ignore: list[str] = Field(default_factory=list, description="values whose records are skipped")

    _normalise_map = field_validator("map", mode="before")(_string_keys)
    _normalise_ignore = field_validator("ignore", mode="before")(_string_items)

    @model_validator(mode="after")
    def _one_source(self) -> TypeSpec:
        if (self.path is None) == (self.const is None):
            raise ValueError("需要且只能有 path 或 const 其中之一")
        return self


class IdSpec(_Spec):
    """The event id: the device's own (a path) or a hash of named output fields."""

    path: str | None = None
    hash: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> IdSpec:
        if (self.path is None) == (self.hash is None):
            raise ValueError("需要且只能有 path 或 hash 其中之一")
        return self


class TimeSpec(_Spec):
    """When it happened: a path and its format(s): iso, epoch_s, epoch_ms or strftime patterns."""

    path: str
    format: list[str] = Field(default_factory=lambda: ["iso"], min_length=1)
    tz: str = "Asia/Shanghai"

    @field_validator("format", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知时区 {value!r}") from exc
        return value


class CsvSpec(_Spec):
    """CSV layout: the delimiter and how many title lines come before the header row."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    skip_rows: int = Field(default=0, ge=0, le=50)


class MappingDoc(_Spec):
    """A whole mapping document."""

    name: str = Field(pattern=NAME_PATTERN)
    format: Format
    encoding: str | None = Field(default=None, description="utf-8, gbk, gb18030 …; csv defaults to auto")
    records: str | None = None
    csv: CsvSpec = Field(default_factory=CsvSpec)
    type: TypeSpec
    id: IdSpec | None = None
    device: FieldSpec | None = None
    occurred_at: TimeSpec | None = None
    payload: dict[str, FieldSpec] = Field(default_factory=dict)
    payload_by_type: dict[EventType, dict[str, FieldSpec]] = Field(default_factory=dict)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None and value != "auto":
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"未知编码 {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _records_fit_format(self) -> MappingDoc:
        if self.records is not None and self.format in ("form", "csv", "table"):
            raise ValueError(f"format {self.format} 每行/每次推送即一条记录，不能设置 records")
        return self


def validate_document(doc: Any) -> MappingDoc:
    """The document validated (raises MappingError naming each offending key)."""
    if not isinstance(doc, dict):
        raise MappingError("映射文档必须是一个对象（键值对）")
    try:
        return MappingDoc.model_validate(doc)
    except ValidationError as exc:
        raise MappingError("映射文档有误: " + _describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if not _is_union_tag(part))
        message = re.sub(r"^Value error, ", "", error["msg"])
        problems.append(f"{where or '(文档)'}: {message}")
    return "; ".join(problems)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith("function-")
