"""Fast JSON for hot paths (ingest, outbox, bus): orjson, with the standard library as the fallback.

dumps writes compact UTF-8 JSON like `json.dumps(..., ensure_ascii=False, separators=(",", ":"),
default=str)`; what orjson cannot encode (integers beyond 64 bits) goes through the standard library.
Two differences from the standard library remain: NaN and infinities are written as null (the ingest
refuses them before they get here), and loads reads integers beyond 64 bits as floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# Datetimes go through default=str like the standard library's, not orjson's own ISO format.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """value as compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def dumps_text(value: Any) -> str:
    """value as compact JSON text."""
    return dumps(value).decode("utf-8")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises ValueError (json.JSONDecodeError) with line, column and position, as json does.

    orjson parses first; what it refuses is parsed again by the standard library, which either accepts it
    (NaN, Infinity, integers beyond 64 bits) or says precisely where and why it failed.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        if isinstance(data, bytes | bytearray | memoryview):
            return json.loads(bytes(data))
        return json.loads(data)


def has_non_finite(value: Any) -> bool:
    """True if a number inside value is NaN or infinite (not JSON; PostgreSQL's jsonb refuses them)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_non_finite(v) for v in value)
    return False
