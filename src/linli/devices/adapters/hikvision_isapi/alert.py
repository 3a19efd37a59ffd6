"""Decoding one EventNotificationAlert, XML or JSON, into plain nested dicts with namespaces dropped."""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from linli.devices.adapters.errors import AdapterParseError

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
ALERT_ROOT = "EventNotificationAlert"
SKIPPED_ROOTS = frozenset({"SubscribeEventResponse"})  # first part of an alertStream, not an event


def decode_alert(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The alert as a dict (None for a non-event document such as SubscribeEventResponse)."""
    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise AdapterParseError("事件正文为空")
    if "json" in content_type or (not content_type.endswith("xml") and text[:1] in (b"{", b"[")):
        return _decode_json(text)
    return _decode_xml(text)


def _decode_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterParseError(f"JSON 格式错误: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get(ALERT_ROOT), dict):
        data = data[ALERT_ROOT]  # some platforms wrap the alert in its element name
    if not isinstance(data, dict):
        raise AdapterParseError("JSON 事件必须是一个对象")
    return data


def _decode_xml(body: bytes) -> dict[str, Any] | None:
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise AdapterParseError(f"XML 不完整或格式错误: {exc}") from exc
    name = local_name(root.tag)
    if name in SKIPPED_ROOTS:
        return None
    if name != ALERT_ROOT:
        raise AdapterParseError(f"不是 {ALERT_ROOT} 文档（根元素为 {name}）")
    value = element_to_value(root)
    return value if isinstance(value, dict) else {}


def local_name(tag: Any) -> str:
    """An element's name without its namespace."""
    return str(tag).rsplit("}", 1)[-1]


def element_to_value(element: Any) -> Any:
    """An element as a dict of its children (repeated names become lists) or, for a leaf, its text."""
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        key, value = local_name(child.tag), element_to_value(child)
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested block as a dict ({} when absent or not a block)."""
    value = data.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, dict) else {}


def text(data: dict[str, Any], key: str) -> str:
    """A leaf value as stripped text ('' when absent); JSON numbers and booleans become text."""
    value = data.get(key)
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def integer(data: dict[str, Any], key: str, *, where: str) -> int:
    """A required integer field (raises AdapterParseError naming the field)."""
    value = text(data, key)
    if not value:
        raise AdapterParseError(f"缺少必填字段 {where}.{key}")
    try:
        return int(value, 0) if value.lower().startswith("0x") else int(value)
    except ValueError as exc:
        raise AdapterParseError(f"字段 {where}.{key} 不是整数: {value!r}") from exc
