"""Generic spreadsheet reading and writing shared by every domain's importer and exporter.

Community staff keep their registers in Excel (or WPS), usually with a title row, a grouped two-row
header and headers such as "身份证号（必填）".  :func:`read_table` turns such a file (.xlsx or .csv)
into rows of cleaned text keyed by canonical field names; the writers produce .xlsx/.csv files with
every cell neutralised against formula (CSV/DDE) injection.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from python_calamine import CalamineWorkbook

__all__ = [
    "SourceRow",
    "Table",
    "TableError",
    "cell_text",
    "error_report_xlsx",
    "neutralise_cell",
    "parse_date",
    "read_table",
    "write_csv",
    "write_xlsx",
]

HEADER_SCAN_ROWS = 10
ERROR_COLUMN = "错误原因"

_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Other well-known binary formats, named in the error message so staff know what they uploaded.
_KNOWN_BINARY = (
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"BM", "BMP 图片"),
    (b"%PDF", "PDF 文档"),
    (b"Rar!", "RAR 压缩包"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包"),
    (b"\x1f\x8b", "gzip 压缩包"),
    (b"{\\rtf", "RTF 文档"),
)
# A .zip may hold this much uncompressed data per byte of limit before we call it a zip bomb.
_MAX_UNZIP_RATIO = 50

# Full-width ASCII (U+FF01..U+FF5E) -> ASCII, ideographic space -> space.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20
_WS_RE = re.compile(r"\s+")
_BRACKETED_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕|<[^<>]*>|《[^《》]*》")
_HEADER_JUNK_RE = re.compile(r"[\s*:：※★☆]+")

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MAX_CELL_CHARS = 32767
_CN_TZ = timezone(timedelta(hours=8))

Row = tuple[object, ...]

_EXCEL_MAX_SERIAL = 2958465  # 9999-12-31
_DATE_SEP_RE = re.compile(
    r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_DATE_CN_RE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]$")
_DATE_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL_RE = re.compile(r"^(\d{1,7})(?:\.\d+)?$")


class TableError(ValueError):
    """The file as a whole cannot be read (not a spreadsheet, empty, too large, no header row)."""


@dataclass
class SourceRow:
    """One data row of the source sheet."""

    row: int  # 1-based row number as the user sees it in Excel/CSV (header row counts)
    values: dict[str, str | None]  # canonical field -> cleaned text (None when blank); mapped fields only
    raw: dict[str, object]  # header (as in Table.headers) -> original cell value


@dataclass
class Table:
    """A parsed sheet: headers, how they map to canonical fields, and the data rows (a list)."""

    headers: list[str]  # header texts in column order (see read_table for empty/duplicate headers)
    mapping: dict[str, str]  # header -> canonical field (only mapped ones)
    unmapped: list[str]  # headers that matched no field (or a field already taken by an earlier column)
    rows: list[SourceRow] = field(default_factory=list)
    header_row: int = 1  # 1-based row number of the header row
    sheet_title: str = "Sheet1"  # worksheet name (for CSV: "Sheet1")


# --------------------------------------------------------------------------------------------------
# text helpers


def _fold(text: str) -> str:
    return text.translate(_FULLWIDTH)


def _normalise_header(text: str) -> str:
    s = unicodedata.normalize("NFKC", _fold(text)).replace("\u3000", " ")
    s = s.replace("（", "(").replace("）", ")")
    stripped = _BRACKETED_RE.sub("", s)
    if _HEADER_JUNK_RE.sub("", stripped):
        s = stripped
    return _HEADER_JUNK_RE.sub("", s).casefold()


def _unquote(text: str) -> str:
    # Undo neutralise_cell, so that an exported (or error-report) sheet re-imports unchanged.
    if text.startswith("'") and neutralise_cell(text[1:]) != text[1:]:
        return text[1:]
    return text


def _format_float(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v.is_integer():
        return str(int(v))
    s = f"{v:.15g}"  # Excel shows 15 significant digits; hides 0.1 + 0.2 noise
    return s if "e" not in s else repr(v)


def _clean_cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        s = _WS_RE.sub(" ", _unquote(_fold(value))).strip()
        return s or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, Decimal):
        return _format_float(float(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.replace(microsecond=0, tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.replace(microsecond=0).isoformat()
    s = _WS_RE.sub(" ", _fold(str(value))).strip()
    return s or None


def cell_text(value: object) -> str | None:
    """A cell as read_table reads it: cleaned text, None when blank (the same text re-reads the same)."""
    return _clean_cell(value)


def _fmt_mb(n: int) -> str:
    s = f"{n / (1024 * 1024):.2f}".rstrip("0").rstrip(".")
    return s if s != "0" else "0.01"


# --------------------------------------------------------------------------------------------------
# reading


def _sniff_kind(data: bytes, filename: str) -> str:
    if data.startswith(_XLSX_MAGIC):
        return "xlsx"
    if data.startswith(_OLE_MAGIC):
        raise TableError(
            f"“{filename}”是旧版 Excel（.xls）或带密码的表格，无法直接读取。"
            "请用 Excel 或 WPS 打开，去掉密码后“另存为” .xlsx 格式再导入。"
        )
    for magic, kind in _KNOWN_BINARY:
        if data.startswith(magic):
            raise TableError(f"“{filename}”不是电子表格（看起来是{kind}），请上传 .xlsx 或 .csv 文件。")
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<html", b"<!doctype html", b"<table", b"<?xml", b"<meta")):
        raise TableError(
            f"“{filename}”是网页（HTML/XML）格式的导出文件，并非真正的 Excel 表格。"
            "请用 Excel 或 WPS 打开后“另存为” .xlsx 格式再导入。"
        )
    return "csv"


def _not_spreadsheet(filename: str) -> TableError:
    return TableError(f"“{filename}”不是电子表格，或文件已损坏，请上传 .xlsx 或 .csv 文件。")


def _check_zip(data: bytes, filename: str, max_bytes: int) -> None:
    """Refuse zips that are not workbooks (ODS, Word, PowerPoint) or that unpack suspiciously large."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            unpacked = sum(info.file_size for info in zf.infolist())
            mimetype = zf.read("mimetype")[:200] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as exc:
        raise _not_spreadsheet(filename) from exc
    if b"opendocument.spreadsheet" in mimetype:
        raise TableError(f"“{filename}”是 ODS 格式，请用 WPS 或 Excel “另存为” .xlsx 格式再导入。")
    for marker, kind in (("word/document.xml", "Word 文档"), ("ppt/presentation.xml", "PowerPoint 演示文稿")):
        if marker in names:
            raise TableError(f"“{filename}”不是电子表格（看起来是{kind}），请上传 .xlsx 或 .csv 文件。")
    if "xl/workbook.xml" not in names:
        raise _not_spreadsheet(filename)
    if unpacked > max(max_bytes, 1024 * 1024) * _MAX_UNZIP_RATIO:
        raise TableError(f"“{filename}”解压后过大，疑似异常文件，请检查后重新导出。")


def _xlsx_rows(data: bytes, filename: str, max_bytes: int, index: _HeaderIndex) -> tuple[str, list[Row]]:
    """Rows of the visible sheet with the best header (the first sheet wins ties).

    Read with calamine (Rust): about ten times faster than openpyxl's reader on large sheets; cells come
    back as their cached values (formulas are not evaluated), dates as dates.
    """
    _check_zip(data, filename, max_bytes)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        visible = [m.name for m in workbook.sheets_metadata if str(m.visible).lower().endswith("visible")]
        best_name, best_rows, best_score = "Sheet1", [], -1
        for name in visible or workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(name)
            rows: list[Row] = [tuple(r) for r in sheet.to_python(skip_empty_area=False)]
            head = rows[:HEADER_SCAN_ROWS]
            if not any(_clean_cell(v) is not None for r in head for v in r):
                continue
            score = _find_header(head, index)[2]
            if score > best_score:
                best_name, best_rows, best_score = name, rows, score
        return best_name, best_rows
    except TableError:
        raise
    except Exception as exc:  # calamine raises its own error kinds for broken parts
        raise _not_spreadsheet(filename) from exc


def _decode_text(data: bytes, filename: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)  # Excel "Unicode 文本"
    elif b"\x00" in data:
        raise _not_spreadsheet(filename)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        sample = text[:20000]
        controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n")
        if controls > max(2, len(sample) // 200):
            raise _not_spreadsheet(filename)
        return text
    raise _not_spreadsheet(filename)


def _csv_rows(data: bytes, filename: str) -> list[Row]:
    text = _decode_text(data, filename)
    sample_lines = text[:65536].splitlines()[:20]
    counts = {d: sum(line.count(d) for line in sample_lines) for d in (",", "\t", ";")}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    try:
        return [tuple(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error as exc:
        raise TableError(f"“{filename}”的 CSV 格式有误：{exc}") from exc


class _HeaderIndex:
    def __init__(self, synonyms: dict[str, list[str]]) -> None:
        self.lookup: dict[str, str] = {}
        for canonical, names in synonyms.items():
            for name in [*names, canonical]:
                key = _normalise_header(name)
                if key:
                    self.lookup.setdefault(key, canonical)
        self.display = {c: (names[0] if names else c) for c, names in synonyms.items()}

    def match(self, header: object) -> str | None:
        if header is None:
            return None
        return self.lookup.get(_normalise_header(str(header)))


def _header_text(value: object) -> str | None:
    # The original text (only stripped), so the error report shows the headers staff typed.
    if _clean_cell(value) is None:
        return None
    return value.strip() if isinstance(value, str) else _clean_cell(value)


def _effective_headers(rows: list[Row], r: int) -> list[str | None]:
    """Header texts of row index r; an empty cell falls back to the nearest non-empty cell above it
    (skipping title rows, i.e. rows with a single non-empty cell), which undoes vertical merges."""
    width = max((len(rows[i]) for i in range(r + 1)), default=0)
    above = [
        rows[i] for i in range(r - 1, -1, -1) if sum(1 for v in rows[i] if _header_text(v) is not None) > 1
    ]
    out: list[str | None] = []
    for c in range(width):
        text = _header_text(rows[r][c]) if c < len(rows[r]) else None
        if text is None:
            for prev in above:
                text = _header_text(prev[c]) if c < len(prev) else None
                if text is not None:
                    break
        out.append(text)
    while out and out[-1] is None:
        out.pop()
    return out


def _find_header(rows: list[Row], index: _HeaderIndex) -> tuple[int, list[str | None], int]:
    best: tuple[int, list[str | None], int] = (-1, [], 0)
    for r in range(min(HEADER_SCAN_ROWS, len(rows))):
        if not any(index.match(v) for v in rows[r]):
            continue  # the row itself must contribute at least one known column name
        headers = _effective_headers(rows, r)
        score = len({f for f in map(index.match, headers) if f})
        if score > best[2]:
            best = (r, headers, score)
    return best


def _unique_headers(texts: list[str | None], ncols: int) -> list[str]:
    headers: list[str] = []
    seen: set[str] = set()
    for c in range(ncols):
        base = (texts[c] if c < len(texts) else None) or f"第{c + 1}列"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}({n})"
        seen.add(name)
        headers.append(name)
    return headers


def read_table(
    data: bytes,
    filename: str,
    *,
    synonyms: dict[str, list[str]],
    max_bytes: int = 20 * 1024 * 1024,
    required: set[str] | None = None,
) -> Table:
    """Read an .xlsx or .csv upload into a Table, mapping headers to canonical fields via synonyms."""
    # Notes: the header row is the one of the first 10 rows mapping the most fields; empty header cells
    # inherit the header above (merged cells), empty/duplicate headers become "第N列" / "名称(2)".
    # If several columns map to one field the first wins.  Rows whose mapped cells are all blank are
    # skipped (e.g. templates with a pre-filled 序号 column); row numbers stay those of the sheet.
    # For a workbook, the active sheet is used unless another sheet has a better header.
    if len(data) > max_bytes:
        raise TableError(
            f"文件过大（{_fmt_mb(len(data))} MB），最大允许 {_fmt_mb(max_bytes)} MB，请拆分后分批导入。"
        )
    if not data.strip():
        raise TableError(f"“{filename}”是空文件。")
    index = _HeaderIndex(synonyms)
    if _sniff_kind(data, filename) == "xlsx":
        sheet_title, rows = _xlsx_rows(data, filename, max_bytes, index)
    else:
        sheet_title, rows = "Sheet1", _csv_rows(data, filename)
    if not any(_clean_cell(v) is not None for row in rows for v in row):
        raise TableError(f"“{filename}”是空表格，没有任何内容。")
    r, header_texts, score = _find_header(rows, index)
    if score < 1:
        examples = "、".join(list(index.display.values())[:4])
        raise TableError(
            f"“{filename}”前 {HEADER_SCAN_ROWS} 行中找不到可识别的表头，请确认表头包含{examples}等列名。"
        )
    header_row = r + 1

    ncols = max(len(header_texts), *(_last_nonblank(row) for row in rows[r + 1 :]), 0)
    headers = _unique_headers(header_texts, ncols)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for c, h in enumerate(headers):
        canonical = index.match(header_texts[c]) if c < len(header_texts) else None
        if canonical and canonical not in taken:
            mapping[h] = canonical
            taken.add(canonical)
    unmapped = [h for h in headers if h not in mapping]

    if required:
        missing = [f for f in synonyms if f in required and f not in taken]
        missing += sorted(f for f in required if f not in synonyms and f not in taken)
        if missing:
            names = "、".join(f"“{index.display.get(f, f)}”" for f in missing)
            raise TableError(f"“{filename}”缺少必需的列：{names}（表头在第 {header_row} 行）。")

    mapped_cols = [(c, mapping[h]) for c, h in enumerate(headers) if h in mapping]
    out: list[SourceRow] = []
    for i in range(r + 1, len(rows)):
        row = rows[i]
        values = {f: (_clean_cell(row[c]) if c < len(row) else None) for c, f in mapped_cols}
        if all(v is None for v in values.values()):
            continue
        raw = {h: (row[c] if c < len(row) else None) for c, h in enumerate(headers)}
        out.append(SourceRow(row=i + 1, values=values, raw=raw))
    if not out:
        raise TableError(f"“{filename}”只有表头（第 {header_row} 行），没有数据行。")
    return Table(
        headers=headers,
        mapping=mapping,
        unmapped=unmapped,
        rows=out,
        header_row=header_row,
        sheet_title=sheet_title,
    )


def _last_nonblank(row: Row) -> int:
    for c in range(len(row) - 1, -1, -1):
        if _clean_cell(row[c]) is not None:
            return c + 1
    return 0


# --------------------------------------------------------------------------------------------------
# dates


def _excel_serial(serial: int) -> date | None:
    if serial < 1 or serial > _EXCEL_MAX_SERIAL or serial == 60:  # 60 = Excel's fictitious 1900-02-29
        return None
    if serial < 60:
        return date(1899, 12, 31) + timedelta(days=serial)
    return date(1899, 12, 30) + timedelta(days=serial)


def parse_date(text: str | None, *, field: str) -> date | None:
    """Parse a date typed by staff (many formats, or an Excel serial number); None for blank."""
    if text is None:
        return None
    s = _fold(str(text)).strip()
    if not s:
        return None
    m = _DATE_SEP_RE.match(s) or _DATE_CN_RE.match(_WS_RE.sub("", s)) or _DATE_COMPACT_RE.match(s)
    if m:
        y, mo, d = (m.group(1), m.group(3), m.group(4)) if m.re is _DATE_SEP_RE else m.groups()
        try:
            return date(int(y), int(mo), int(d))
        except ValueError:
            raise ValueError(f"{field}“{text}”不是有效的日期（月份或日期超出范围）。") from None
    m = _SERIAL_RE.match(s)
    if m:
        serial = int(m.group(1))
        if serial == 60:
            raise ValueError(f"{field}“{text}”对应 1900-02-29，这一天并不存在，请填写正确的日期。")
        result = _excel_serial(serial)
        if result is not None:
            return result
    raise ValueError(f"{field}“{text}”不是可识别的日期，请写成 2021-03-05、2021/3/5 或 2021年3月5日 的形式。")


# --------------------------------------------------------------------------------------------------
# writing


def neutralise_cell(value: object) -> object:
    """Prefix a quote to text that a spreadsheet would run as a formula (CSV/DDE injection)."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "\t\r" or value.lstrip().startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def _export_value(value: object) -> Any:
    """Make a value safe and acceptable for openpyxl."""
    if type(value) is str and value.isprintable() and len(value) <= _MAX_CELL_CHARS:  # fast path
        return neutralise_cell(value)
    if value is None or isinstance(value, bool | float | Decimal):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) >= 10**15 else value  # Excel keeps only 15 digits
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_CN_TZ).replace(tzinfo=None)
        return value
    if isinstance(value, date | time | timedelta):
        return value
    text = value if isinstance(value, str) else str(value)
    text = _ILLEGAL_XML_RE.sub("", text)
    if len(text) > _MAX_CELL_CHARS:
        text = text[: _MAX_CELL_CHARS - 1] + "…"
    return neutralise_cell(text)


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")


def _safe_sheet_title(title: str) -> str:
    t = _SHEET_TITLE_BAD.sub("_", title).strip("'")[:31]
    return t or "Sheet1"


def _build_xlsx(
    headers: list[str],
    rows: Iterable[Sequence[object]],
    *,
    sheet_title: str,
    column_notes: dict[str, str] | None = None,
    highlight: Iterable[bool] | None = None,
    first_width: int | None = None,
) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_safe_sheet_title(sheet_title))
    ws.freeze_panes = "A2"
    for c, h in enumerate(headers, 1):
        width = min(max(_display_width(str(h)) + 4, 10), 60)
        if c == 1 and first_width:
            width = first_width
        ws.column_dimensions[get_column_letter(c)].width = width
    bold = Font(bold=True)
    header_cells = []
    for h in headers:
        cell = WriteOnlyCell(ws, value=_export_value(h))
        cell.font = bold
        note = (column_notes or {}).get(h)
        if note:
            cell.comment = Comment(note, "linli")
        header_cells.append(cell)
    ws.append(header_cells)

    fill = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
    wrap = Alignment(wrap_text=True, vertical="top")
    flags: Iterator[bool] | None = iter(highlight) if highlight is not None else None
    for row in rows:
        values = [_export_value(v) for v in row]
        if flags is not None and next(flags, False):
            cells = []
            for i, v in enumerate(values):
                cell = WriteOnlyCell(ws, value=v)
                cell.fill = fill
                if i == 0:
                    cell.alignment = wrap
                cells.append(cell)
            ws.append(cells)
        else:
            ws.append(values)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_xlsx(
    headers: list[str],
    rows: Iterable[Sequence[object]],
    *,
    sheet_title: str = "Sheet1",
    column_notes: dict[str, str] | None = None,
) -> bytes:
    """Write rows to .xlsx bytes: bold frozen header, comments from column_notes, neutralised cells."""
    return _build_xlsx(headers, rows, sheet_title=sheet_title, column_notes=column_notes)


def error_report_xlsx(table: Table, errors: dict[int, list[str]]) -> bytes:
    """Write the original sheet back with a first column "错误原因"; rows with errors are shaded red."""
    # All data rows are written (good rows have an empty reason) so the file can be fixed and re-imported.
    # Keys of ``errors`` are SourceRow.row numbers; keys matching no row are ignored.
    headers = [ERROR_COLUMN, *table.headers]

    def rows() -> Iterator[list[object]]:
        for src in table.rows:
            reasons = errors.get(src.row) or []
            yield ["；".join(reasons) or None, *(src.raw.get(h) for h in table.headers)]

    flags = (bool(errors.get(src.row)) for src in table.rows)
    return _build_xlsx(headers, rows(), sheet_title=table.sheet_title, highlight=flags, first_width=40)


def write_csv(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> bytes:
    """Write rows as UTF-8-with-BOM CSV (so Excel opens Chinese correctly), cells neutralised."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)

    def text(v: object) -> object:
        if v is None:
            return ""
        if isinstance(v, datetime):
            if v.tzinfo is not None:
                v = v.astimezone(_CN_TZ).replace(tzinfo=None)
            return v.date().isoformat() if v.time() == time(0, 0) else v.isoformat(sep=" ")
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, bool | int | float | Decimal):
            return v
        return neutralise_cell(v if isinstance(v, str) else str(v))

    writer.writerow([text(h) for h in headers])
    for row in rows:
        writer.writerow([text(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")
