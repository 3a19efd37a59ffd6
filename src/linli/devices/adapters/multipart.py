"""A strict, pure multipart/form-data splitter for device pushes (alarm servers post XML/JSON + JPEGs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from linli.devices.adapters.errors import AdapterParseError

_DISPOSITION_PARAM = re.compile(r';\s*([A-Za-z*]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')


@dataclass(frozen=True)
class Part:
    """One part of a multipart body."""

    name: str
    filename: str
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def split_multipart(raw: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body; a missing or foreign boundary raises AdapterParseError."""
    if not boundary:
        raise AdapterParseError("multipart 请求缺少 boundary 参数")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = raw.split(delimiter)
    if len(chunks) < 2:
        raise AdapterParseError(f"multipart 正文中找不到 boundary {boundary!r}（分隔符损坏或不一致）")
    parts = []
    for index, chunk in enumerate(chunks[1:]):
        if chunk.startswith(b"--"):
            break  # the closing delimiter; whatever follows is epilogue
        if not chunk.lstrip(b" \t").startswith((b"\r\n", b"\n")):
            raise AdapterParseError(
                f"multipart 分隔符 --{boundary} 后跟着其他字符 {chunk[:12]!r}"
                "（boundary 损坏或与请求头不一致）"
            )
        parts.append(_read_part(_strip_line_breaks(chunk.lstrip(b" \t")), index))
    if not parts:
        raise AdapterParseError("multipart 正文没有任何部分")
    return parts


def _strip_line_breaks(chunk: bytes) -> bytes:
    if chunk.startswith(b"\r\n"):
        chunk = chunk[2:]
    elif chunk.startswith(b"\n"):
        chunk = chunk[1:]
    if chunk.endswith(b"\r\n"):
        return chunk[:-2]
    return chunk[:-1] if chunk.endswith(b"\n") else chunk


def _read_part(chunk: bytes, index: int) -> Part:
    head, sep, body = chunk.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = chunk.partition(b"\n\n")
    if not sep:
        raise AdapterParseError(f"multipart 第{index + 1}部分缺少头部与正文之间的空行")
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").splitlines():
        key, colon, value = line.partition(":")
        if colon:
            headers[key.strip().lower()] = value.strip()
    params = {
        match.group(1).lower(): match.group(2) if match.group(2) is not None else match.group(3)
        for match in _DISPOSITION_PARAM.finditer(headers.get("content-disposition", ""))
    }
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return Part(
        name=params.get("name", ""),
        filename=params.get("filename", ""),
        content_type=content_type,
        body=body,
        headers=headers,
    )
