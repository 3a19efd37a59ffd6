"""Loading mapping documents (YAML or JSON text) and the mappings shipped with Linli."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from linli.devices.adapters.mapping.compile import CompiledMapping, compile_mapping
from linli.devices.adapters.mapping.spec import MappingError

BUILTIN_SUFFIXES = (".yaml", ".yml", ".json")


def load_document(text: str | bytes) -> dict[str, Any]:
    """A mapping document from YAML or JSON text (raises MappingError if it is not a YAML/JSON object)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"映射文档不是有效的 YAML/JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MappingError("映射文档必须是一个对象（键值对）")
    return doc


def builtin_mappings() -> dict[str, CompiledMapping]:
    """The ready-made mappings shipped in mapping/builtin/, compiled, by name."""
    return dict(_builtin())


@functools.cache
def _builtin() -> dict[str, CompiledMapping]:
    found: dict[str, CompiledMapping] = {}
    folder = resources.files("linli.devices.adapters.mapping") / "builtin"
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(BUILTIN_SUFFIXES):
            continue
        try:
            mapping = compile_mapping(load_document(entry.read_bytes()))
        except MappingError as exc:
            raise MappingError(f"builtin/{entry.name}: {exc}") from exc
        if mapping.name in found:
            raise MappingError(f"builtin/{entry.name}: 映射名称 {mapping.name!r} 重复")
        found[mapping.name] = mapping
    return found
