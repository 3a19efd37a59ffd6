"""The mapping adapter's entry point: parse a push with a compiled mapping the caller supplies.

How the hub uses it: a device registered as "mapping" names its mapping (the register's mapping field,
or the `X-Linli-Mapping` header of its push). The mapping documents will live in the database (one row
per name and version, edited and tried in the console with `preview`); the hub loads a document when it
is saved or first used, compiles it with `compile_mapping` (cached by name and version), and calls
`parse(raw, headers, mapping=compiled, device=…, received_at=…)`. `builtin_mappings()` supplies the
ready-made ones shipped with Linli. Keeping the look-up with the caller keeps `parse` pure: no database,
no files, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from linli.devices.adapters.common import header
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.mapping.compile import CompiledMapping
from linli.devices.adapters.mapping.engine import parse_with
from linli.devices.events import Envelope

MAPPING_HEADER = "X-Linli-Mapping"


def parse(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    mapping: CompiledMapping,
    device: str | None = None,
    received_at: datetime | None = None,
) -> list[Envelope]:
    """The envelopes of one push read with `mapping` (raises AdapterParseError on a bad payload or record)."""
    named = header(headers, MAPPING_HEADER)
    if named and named != mapping.name:
        raise AdapterParseError(f"推送指定映射 {named!r}，但提供的映射是 {mapping.name!r}")
    return parse_with(mapping, raw, headers, device=device, received_at=received_at)
