"""Small pure helpers every adapter shares: headers, times, content-hash ids, validated envelopes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from pydantic import ValidationError

from linli.core.timeutil import LOCAL_TZ
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.events import PAYLOADS, Envelope, EventType, MediaRef


def header(headers: Mapping[str, str], name: str) -> str:
    """One header's value, looked up case-insensitively ('' when absent)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return ""


def media_type(headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The Content-Type split into its lower-case type and its parameters."""
    kind, _, rest = header(headers, "content-type").partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def parse_iso_time(text: str, *, naive_tz: tzinfo = LOCAL_TZ) -> datetime:
    """An ISO 8601 time kept with its own offset; a naive one is taken as local (Asia/Shanghai)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise AdapterParseError(f"时间格式无法识别: {text!r}") from exc
    return value.replace(tzinfo=naive_tz) if value.tzinfo is None else value


def content_id(prefix: str, parts: Sequence[Any]) -> str:
    """A stable event id from the event's content, so a redelivered event dedups."""
    canonical = json.dumps([_canonical(part) for part in parts], ensure_ascii=False, sort_keys=True)
    return f"{prefix}:{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


def _canonical(part: Any) -> Any:
    if isinstance(part, datetime):
        return part.astimezone(UTC).isoformat()
    if isinstance(part, EventType):
        return part.value
    if isinstance(part, list | tuple):
        return [_canonical(item) for item in part]
    return part


def build_envelope(
    *,
    event_id: str,
    device: str,
    event_type: EventType,
    occurred_at: datetime,
    payload: Mapping[str, Any],
    source: str,
    received_at: datetime | None = None,
    media: Sequence[MediaRef] = (),
) -> Envelope:
    """An envelope whose payload has passed its type's model (raises AdapterParseError naming the field)."""
    try:
        typed = PAYLOADS[event_type].model_validate(dict(payload))
        return Envelope(
            id=event_id,
            device=device,
            type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            source=source,
            payload=typed.model_dump(mode="json", exclude_none=True),
            media=list(media),
        )
    except ValidationError as exc:
        raise AdapterParseError(f"{event_type.value} 字段不合规: {describe_validation(exc)}") from exc


def describe_validation(exc: ValidationError) -> str:
    """A pydantic error as one line, each problem named by its field path."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
