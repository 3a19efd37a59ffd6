"""Raw bytes to records, per format: JSON, XML, form (urlencoded) and CSV, in any declared encoding."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from lxml import etree

from linli.core.tabular import TableError, cell_text, read_table, write_csv
from linli.devices.adapters.common import media_type
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.mapping.paths import RecordsPath
from linli.devices.adapters.mapping.spec import MappingDoc

XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx export is read as a sheet even by a csv mapping
AUTO_ENCODINGS = ("utf-8-sig", "gb18030")  # exports from Chinese PC software are often GBK/GB18030


@dataclass(frozen=True)
class Record:
    """One record of a payload, with the label people see in error messages."""

    index: int
    label: str
    data: Any
    problem: str | None = None
    row: int | None = None  # the line (CSV) or sheet row (table) people find it on
    kept: Any = None  # what a dead letter keeps to read the record again (kept_of); None: data itself


def kept_of(record: Record) -> Any:
    """The record as a dead letter keeps it, to be read again by a fixed mapping (read_kept).

    A sheet row: every column's header and cell text (not only the columns the mapping reads); an XML
    element: its XML text; a CSV or form row and a JSON record: the data as read.
    """
    if record.kept is not None:
        return record.kept
    if isinstance(record.data, etree._Element):
        return etree.tostring(record.data, encoding="unicode")
    return record.data


def read_kept(doc: MappingDoc, kept: Any) -> Any:
    """A kept record (kept_of) as the record data the mapping doc reads (AdapterParseError if it cannot)."""
    if doc.format == "xml":
        if not isinstance(kept, str):
            raise AdapterParseError("映射现为 XML 格式，保留的记录不是 XML")
        return _xml(kept.encode("utf-8"), "utf-8")
    if doc.format == "json":
        return kept
    if not isinstance(kept, dict):
        raise AdapterParseError(f"映射现为 {doc.format} 格式，保留的记录不是一行表格")
    cells = {str(key): "" if value is None else str(value) for key, value in kept.items()}
    if doc.format != "table":
        return cells
    # The row's headers matched as an upload's are (loosely), its cells cleaned the same way.
    decoded = _table(doc, write_csv(list(cells), [list(cells.values())]))
    return decoded.records[0].data


@dataclass(frozen=True)
class Decoded:
    """A decoded payload: its root, its records and, for CSV, the header."""

    root: Any
    records: list[Record]
    columns: list[str] | None = None


def decode(
    doc: MappingDoc,
    raw: bytes,
    headers: Mapping[str, str],
    records: RecordsPath | None,
    *,
    encoding: str | None = None,
) -> Decoded:
    """The payload's records (raises AdapterParseError if the payload cannot be read at all)."""
    if not raw.strip():
        raise AdapterParseError("推送内容为空")
    chosen = encoding or doc.encoding or media_type(headers)[1].get("charset") or None
    if doc.format == "table" or (doc.format == "csv" and raw.startswith(XLSX_MAGIC)):
        return _table(doc, raw)
    if doc.format == "csv":
        return _csv(raw, chosen or "auto", doc.csv.delimiter, doc.csv.skip_rows)
    if doc.format == "form":
        form = _form(raw, chosen or "utf-8")
        return Decoded(form, [Record(0, "本次推送", form)])
    root = _json(raw, chosen) if doc.format == "json" else _xml(raw, chosen)
    if records is not None:
        items = records(root)
    elif isinstance(root, list):
        items = root
    else:
        items = [root]
    return Decoded(root, [Record(i, f"第{i + 1}条记录", item) for i, item in enumerate(items)])


def _text(raw: bytes, encoding: str) -> str:
    candidates = AUTO_ENCODINGS if encoding == "auto" else (encoding,)
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise AdapterParseError(f"无法按 {'/'.join(candidates)} 编码解码推送内容")


def _json(raw: bytes, encoding: str | None) -> Any:
    try:
        return json.loads(_text(raw, encoding) if encoding else raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterParseError(f"JSON 格式错误: {exc}") from exc


def _xml(raw: bytes, encoding: str | None) -> Any:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, encoding=encoding
    )
    try:
        return etree.fromstring(raw, parser=parser)
    except (etree.XMLSyntaxError, LookupError) as exc:
        raise AdapterParseError(f"XML 不完整或格式错误: {exc}") from exc


def _form(raw: bytes, encoding: str) -> dict[str, str]:
    body = raw.strip()
    if b"=" not in body:
        raise AdapterParseError("不是表单编码（key=value&…）的内容")
    form: dict[str, str] = {}
    for piece in body.split(b"&"):
        if not piece:
            continue
        key, _, value = piece.partition(b"=")
        try:
            name = unquote_to_bytes(key.replace(b"+", b" ")).decode(encoding).strip()
            text = unquote_to_bytes(value.replace(b"+", b" ")).decode(encoding).strip()
        except UnicodeDecodeError as exc:
            raise AdapterParseError(f"表单字段无法按 {encoding} 解码: {exc}") from exc
        form.setdefault(name, text)
    return form


def _csv(raw: bytes, encoding: str, delimiter: str, skip_rows: int) -> Decoded:
    reader = csv.reader(io.StringIO(_text(raw, encoding), newline=""), delimiter=delimiter)
    try:
        for _ in range(skip_rows):
            next(reader, None)
        header = [cell.strip().lstrip("\ufeff") for cell in next(reader, [])]
        if not any(header):
            raise AdapterParseError("CSV 没有表头行")
        rows = [_csv_record(header, row, reader.line_num) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise AdapterParseError(f"CSV 格式错误（第{reader.line_num}行）: {exc}") from exc
    records = [
        Record(i, f"第{line}行", data, problem, row=line) for i, (line, data, problem) in enumerate(rows)
    ]
    return Decoded(None, records, header)


def _csv_record(header: list[str], row: list[str], line: int) -> tuple[int, dict[str, str], str | None]:
    data = {name: cell.strip() for name, cell in zip(header, row, strict=False) if name}
    problem = None
    if len(row) != len(header):
        problem = f"列数 {len(row)} 与表头列数 {len(header)} 不一致"
    return line, data, problem


def _table(doc: MappingDoc, raw: bytes) -> Decoded:
    """A CSV or .xlsx sheet read by core/tabular: title rows skipped, headers matched loosely."""
    columns = column_names(doc)
    try:
        synonyms = {name: [name] for name in columns}
        table = read_table(raw, "上传文件", synonyms=synonyms, max_bytes=len(raw) + 1)
    except TableError as exc:
        raise AdapterParseError(str(exc)) from exc
    records = [
        Record(
            i,
            f"第{src.row}行",
            {k: v for k, v in src.values.items() if v is not None},
            row=src.row,
            kept={h: text for h, v in src.raw.items() if (text := cell_text(v)) is not None},
        )
        for i, src in enumerate(table.rows)
    ]
    return Decoded(None, records, sorted(set(table.mapping.values())))


def column_names(doc: MappingDoc) -> list[str]:
    """Every column a tabular mapping reads."""
    specs = [doc.device, *doc.payload.values()]
    specs += [spec for fields in doc.payload_by_type.values() for spec in fields.values()]
    paths = [spec.path for spec in specs if spec is not None and spec.path]
    paths += [p for p in (doc.type.path, doc.id.path if doc.id else None) if p]
    if doc.occurred_at:
        paths.append(doc.occurred_at.path)
    return list(dict.fromkeys(path.strip() for path in paths))
