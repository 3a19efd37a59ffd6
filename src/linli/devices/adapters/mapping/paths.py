"""Field paths, compiled once per mapping: a safe JSONPath subset, XML element paths, form keys, CSV columns.

JSON: `$.a.b`, `$.a[0]`, `$['key.with.dots']`, and `[*]` in `records` only. Inside a record `$` is the
record; a path not found there is looked up from the payload's root, so a serial sent once beside the
records (`$.sn`) still works. XML: `Event/Plate/Number`, `Reading/@unit`, `@seq`, namespaces ignored,
relative to the record (then to the root element; a leading root element name may be written or not).
Form: the key. CSV: the column header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.mapping.spec import Format, MappingError

Accessor = Callable[[Any, Any], Any]  # (record, root) -> value or None
RecordsPath = Callable[[Any], list[Any]]  # root -> records
Segment = tuple[str, Any]  # ("key", name) | ("index", n) | ("star", None)

_JSON_TOKEN = re.compile(
    r"""\.(?P<name>[^.\[\]]+)|\[(?P<index>-?\d+)\]|\[(?P<star>\*)\]|\[(?P<q>['"])(?P<quoted>.*?)(?P=q)\]"""
)
_XML_NAME = re.compile(r"^@?[^\s/@\[\]]+$")


def field_accessor(expr: str, fmt: Format, *, where: str) -> Accessor:
    """A function reading one value from a record (None when absent)."""
    if fmt == "json":
        segments = json_segments(expr, where=where)
        if any(kind == "star" for kind, _ in segments):
            raise MappingError(f"{where}: 字段路径 {expr!r} 不能含 [*]（[*] 只用于 records）")
        return lambda record, root: _first(_walk(record, segments))
    if fmt == "xml":
        steps = xml_steps(expr, where=where)
        return lambda record, root: _xml_value(record, steps)
    key = expr.strip()
    if not key:
        raise MappingError(f"{where}: 路径不能为空")
    return lambda record, root: record.get(key)


def json_segments(expr: str, *, where: str) -> list[Segment]:
    """`$.a[0].b` as its segments (raises MappingError naming the key on bad syntax)."""
    text = expr.strip()
    text = text[1:] if text.startswith("$") else text if text.startswith((".", "[")) else "." + text
    segments: list[Segment] = []
    position = 0
    while position < len(text):
        match = _JSON_TOKEN.match(text, position)
        if match is None:
            raise MappingError(f"{where}: 路径 {expr!r} 在第{position + 1}个字符处无法解析")
        if match["name"] is not None:
            segments.append(("key", match["name"].strip()))
        elif match["index"] is not None:
            segments.append(("index", int(match["index"])))
        elif match["star"] is not None:
            segments.append(("star", None))
        else:
            segments.append(("key", match["quoted"]))
        position = match.end()
    return segments


def xml_steps(expr: str, *, where: str) -> list[str]:
    """`A/B/@attr` as its steps; only the last may be an attribute."""
    steps = [step.strip() for step in expr.strip().strip("/").split("/")]
    if not steps or not all(_XML_NAME.match(step) for step in steps):
        raise MappingError(f"{where}: XML 路径 {expr!r} 无法解析（形如 Event/Plate/Number 或 Value/@unit）")
    if any(step.startswith("@") for step in steps[:-1]):
        raise MappingError(f"{where}: XML 路径 {expr!r} 只有最后一段可以是 @属性")
    return steps


def records_path(expr: str, fmt: Format, *, where: str) -> RecordsPath:
    """A function listing the records of a payload (raises AdapterParseError if their container is absent)."""
    if fmt == "json":
        segments = json_segments(expr, where=where)
        return lambda root: _json_records(root, segments, expr)
    steps = xml_steps(expr, where=where)
    if steps[-1].startswith("@"):
        raise MappingError(f"{where}: records 必须指向元素，不能是属性")
    return lambda root: _xml_records(root, steps, expr)


def _walk(value: Any, segments: list[Segment]) -> list[Any]:
    current = [value]
    for kind, arg in segments:
        found: list[Any] = []
        for item in current:
            if _has(item, kind, arg):
                found.append(item[arg])
            elif kind == "star" and isinstance(item, list | dict):
                found.extend(item if isinstance(item, list) else item.values())
        current = found
    return current


def _has(item: Any, kind: str, arg: Any) -> bool:
    if kind == "key":
        return isinstance(item, dict) and arg in item
    return kind == "index" and isinstance(item, list) and -len(item) <= arg < len(item)


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _json_records(root: Any, segments: list[Segment], expr: str) -> list[Any]:
    stars = [i for i, (kind, _) in enumerate(segments) if kind == "star"]
    if not stars:
        found = _walk(root, segments)
        if not found:
            raise AdapterParseError(f"找不到记录列表 records: {expr}")
        return found[0] if isinstance(found[0], list) else [found[0]]
    if not _walk(root, segments[: stars[0]]):
        raise AdapterParseError(f"找不到记录列表 records: {expr}")
    return _walk(root, segments)


def local_name(tag: Any) -> str:
    """An element's name without its namespace."""
    return str(tag).rsplit("}", 1)[-1]


def _xml_children(elements: list[Any], name: str) -> list[Any]:
    return [child for element in elements for child in element if local_name(child.tag) == name]


def _xml_find(element: Any, steps: list[str]) -> list[Any]:
    found = [element]
    for step in steps:
        found = _xml_children(found, step)
    return found


def _xml_from(element: Any, steps: list[str]) -> list[Any]:
    found = _xml_find(element, steps)
    if not found and len(steps) > 1 and steps[0] == local_name(element.tag):
        found = _xml_find(element, steps[1:])
    return found


def _xml_value(element: Any, steps: list[str]) -> str | None:
    if steps[-1].startswith("@"):
        owners = _xml_from(element, steps[:-1]) if len(steps) > 1 else [element]
        attribute = steps[-1][1:]
        for owner in owners:
            for key, value in owner.attrib.items():
                if local_name(key) == attribute:
                    return str(value)
        return None
    found = _xml_from(element, steps)
    return (found[0].text or "").strip() if found else None


def _xml_records(root: Any, steps: list[str], expr: str) -> list[Any]:
    found = _xml_from(root, steps)
    if not found and (len(steps) == 1 or _xml_from(root, steps[:-1])):
        return []
    if not found:
        raise AdapterParseError(f"找不到记录 records: {expr}")
    return found


def with_root_fallback(accessor: Accessor, fmt: Format) -> Accessor:
    """For JSON and XML, a value missing from the record is looked up from the root."""
    if fmt not in ("json", "xml"):
        return accessor

    def read(record: Any, root: Any) -> Any:
        value = accessor(record, root)
        if _is_missing(value) and record is not root:
            value = accessor(root, root)
        return value

    return read


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
