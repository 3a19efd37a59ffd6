"""Patrol wand CSV exports → patrol.checked_in, one per row, via the built-in mapping (loaded at import)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from linli.devices.adapters.mapping import CompiledMapping, builtin_mappings, parse_records, parse_with
from linli.devices.events import Envelope

MAPPING: CompiledMapping = builtin_mappings()["patrol_wand_csv"]


def parse(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    device: str | None = None,
    received_at: datetime | None = None,
) -> list[Envelope]:
    """Every row's check-in; the first bad row raises AdapterParseError naming its row number."""
    return parse_with(MAPPING, raw, headers, device=device, received_at=received_at)


def parse_rows(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    device: str | None = None,
    received_at: datetime | None = None,
) -> tuple[list[Envelope], list[tuple[int, str]]]:
    """The good rows' check-ins and (record index, "第N行: reason") for each bad row, for batch uploads."""
    return parse_records(MAPPING, raw, headers, device=device, received_at=received_at)
