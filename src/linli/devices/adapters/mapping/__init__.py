"""The declarative mapping adapter: a YAML/JSON document describes a vendor's push, no code needed."""

from __future__ import annotations

from linli.devices.adapters.mapping.compile import CompiledMapping, compile_mapping
from linli.devices.adapters.mapping.documents import builtin_mappings, load_document
from linli.devices.adapters.mapping.engine import parse_records, parse_with, preview
from linli.devices.adapters.mapping.spec import MappingDoc, MappingError

__all__ = [
    "CompiledMapping",
    "MappingDoc",
    "MappingError",
    "builtin_mappings",
    "compile_mapping",
    "load_document",
    "parse_records",
    "parse_with",
    "preview",
]
