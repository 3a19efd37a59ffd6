"""Tests for linli.core.tabular: reading staff spreadsheets and writing safe exports."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from linli.core.tabular import (
    ERROR_COLUMN,
    SourceRow,
    Table,
    TableError,
    error_report_xlsx,
    neutralise_cell,
    parse_date,
    read_table,
    write_csv,
    write_xlsx,
)

SYNONYMS = {
    "name": ["姓名"],
    "id_number": ["公民身份号码", "身份证号", "身份证号码", "证件号码", "证件号"],
    "phone": ["手机", "手机号", "联系电话", "电话"],
    "building": ["楼号", "楼栋", "楼栋号"],
    "room": ["房号", "门牌号", "房间号"],
    "moved_in": ["入住日期"],
}


def xlsx_bytes(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def simple_xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    return xlsx_bytes(wb)


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def registry_workbook() -> bytes:
    """A realistic sheet: title row, grouped header with vertical and horizontal merges, a blank row."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "登记表"
    ws["A1"] = "天府和苑社区人口登记表"
    ws.merge_cells("A1:G1")
    # Row 2: group titles; 序号/姓名/身份证号 span rows 2-3 vertically.
    ws["A2"], ws["B2"], ws["C2"], ws["D2"], ws["F2"] = "序号", "姓名", "身份证号（必填）", "住址", "联系方式"
    ws.merge_cells("A2:A3")
    ws.merge_cells("B2:B3")
    ws.merge_cells("C2:C3")
    ws.merge_cells("D2:E2")
    ws.merge_cells("F2:G2")
    ws["D3"], ws["E3"], ws["F3"], ws["G3"] = "楼 号", "*房号", "联系电话\n(11位)", "备注"
    ws.append([1, "  张　三 ", "11010119900307123X", "１号楼", 101.0, 13800138000.0, "@备注"])
    ws.append([2, None, None, None, None, None, None])  # only 序号 filled: a pre-numbered template row
    ws.append([None] * 7)  # fully blank
    ws.append([4, "李四", "110101199003071234", "2", "2-301", "13900139000", datetime(2021, 3, 5)])
    return xlsx_bytes(wb)


# --------------------------------------------------------------------------------------------------
# read_table: header detection and mapping


def test_title_row_and_merged_two_row_header_map_fields() -> None:
    table = read_table(registry_workbook(), "登记表.xlsx", synonyms=SYNONYMS, required={"id_number", "phone"})

    assert table.header_row == 3
    assert table.sheet_title == "登记表"
    # Empty header cells under vertical merges inherit the text above them.
    assert table.headers == ["序号", "姓名", "身份证号（必填）", "楼 号", "*房号", "联系电话\n(11位)", "备注"]
    assert table.mapping == {
        "姓名": "name",
        "身份证号（必填）": "id_number",
        "楼 号": "building",
        "*房号": "room",
        "联系电话\n(11位)": "phone",
    }
    assert table.unmapped == ["序号", "备注"]
    # Excel row numbers: data starts on row 4; rows 5 (序号 only) and 6 (blank) are skipped.
    assert [r.row for r in table.rows] == [4, 7]
    first, second = table.rows
    assert first.values == {
        "name": "张 三",
        "id_number": "11010119900307123X",
        "building": "1号楼",
        "room": "101",
        "phone": "13800138000",
    }
    assert first.raw["姓名"] == "  张　三 "
    assert first.raw["联系电话\n(11位)"] == 13800138000
    assert first.raw["序号"] == 1
    assert second.values["room"] == "2-301"
    assert str(second.raw["备注"])[:10] == "2021-03-05"  # a date cell (date or datetime, by reader)


def test_header_row_with_group_titles_above_and_canonical_names() -> None:
    data = simple_xlsx(
        [
            ["社区居民花名册"],
            ["基本信息", None, "住址", None],
            ["name", "证件号码 (必填)", "ＢＵＩＬＤＩＮＧ", "门牌号"],
            ["王五", "110101199003071234", "3", "501"],
        ]
    )
    table = read_table(data, "x.xlsx", synonyms=SYNONYMS)
    assert table.header_row == 3
    assert table.mapping == {
        "name": "name",
        "证件号码 (必填)": "id_number",
        "ＢＵＩＬＤＩＮＧ": "building",
        "门牌号": "room",
    }
    assert table.rows[0].row == 4
    assert table.rows[0].values["building"] == "3"


def test_duplicate_and_empty_headers_are_made_unique_first_mapping_wins() -> None:
    data = simple_xlsx([["手机", "电话", None, "手机"], ["13800138000", "02888888888", "x", "139"]])
    table = read_table(data, "x.xlsx", synonyms=SYNONYMS)
    assert table.headers == ["手机", "电话", "第3列", "手机(2)"]
    assert table.mapping == {"手机": "phone"}
    assert table.unmapped == ["电话", "第3列", "手机(2)"]
    assert table.rows[0].values == {"phone": "13800138000"}
    assert table.rows[0].raw["第3列"] == "x"


def test_missing_required_field_names_it_in_chinese() -> None:
    data = simple_xlsx([["姓名", "手机"], ["张三", "13800138000"]])
    with pytest.raises(TableError, match="缺少必需的列") as exc:
        read_table(data, "x.xlsx", synonyms=SYNONYMS, required={"id_number", "room"})
    assert "“公民身份号码”" in str(exc.value)
    assert "“房号”" in str(exc.value)
    assert "id_number" not in str(exc.value)


def test_no_recognisable_header() -> None:
    data = simple_xlsx([["甲", "乙"], ["1", "2"]])
    with pytest.raises(TableError, match="找不到可识别的表头"):
        read_table(data, "x.xlsx", synonyms=SYNONYMS)


def test_best_sheet_is_chosen_when_active_sheet_is_unrelated() -> None:
    wb = Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "说明"
    notes.append(["填表说明：请勿修改表头"])
    data_ws = wb.create_sheet("数据")
    data_ws.append(["身份证号", "房号"])
    data_ws.append(["110101199003071234", "101"])
    table = read_table(xlsx_bytes(wb), "x.xlsx", synonyms=SYNONYMS)
    assert table.sheet_title == "数据"
    assert table.rows[0].values == {"id_number": "110101199003071234", "room": "101"}


# --------------------------------------------------------------------------------------------------
# cell cleaning


def test_cell_cleaning_fullwidth_spaces_numbers_and_dates() -> None:
    data = simple_xlsx(
        [
            ["姓名", "身份证号", "手机", "楼号", "房号", "入住日期"],
            [
                "ＡＢＣ　１２３",
                " １１０１０１１９９００３０７１２３Ｘ ",
                13800138000.0,
                7,
                1.5,
                date(2021, 3, 5),
            ],
            ["Mary   Ann\nSmith", 110101199003071234.0, "  ", "", None, datetime(2021, 3, 5, 8, 30)],
            ["'=HYPERLINK(1)", "'普通", "-", 0.1 + 0.2, True, 44260],
        ]
    )
    rows = read_table(data, "x.xlsx", synonyms=SYNONYMS).rows
    assert rows[0].values == {
        "name": "ABC 123",
        "id_number": "11010119900307123X",
        "phone": "13800138000",
        "building": "7",
        "room": "1.5",
        "moved_in": "2021-03-05",
    }
    # Inner spaces collapse, never vanish; an 18-digit number typed as a number goes through as digits.
    assert rows[1].values["name"] == "Mary Ann Smith"
    id_from_float = rows[1].values["id_number"]
    assert id_from_float is not None
    assert id_from_float.isdigit()
    assert len(id_from_float) == 18
    assert id_from_float.startswith("11010119900307")
    assert rows[1].values["phone"] is None
    assert rows[1].values["building"] is None
    assert rows[1].values["room"] is None
    assert rows[1].values["moved_in"] == "2021-03-05 08:30:00"
    # A quote added by neutralise_cell on export is removed again on re-import; other quotes stay.
    assert rows[2].values["name"] == "=HYPERLINK(1)"
    assert rows[2].values["id_number"] == "'普通"
    assert rows[2].values["phone"] == "-"
    assert rows[2].values["building"] == "0.3"
    assert rows[2].values["room"] == "TRUE"
    assert parse_date(rows[2].values["moved_in"], field="入住日期") == date(2021, 3, 5)


# --------------------------------------------------------------------------------------------------
# parse_date


@pytest.mark.parametrize(
    "text",
    [
        "2021-03-05",
        "2021/3/5",
        "2021.3.5",
        "20210305",
        "2021年3月5日",
        "2021 年 3 月 5 日",
        "2021-03-05T10:20:30",
        "2021-03-05 10:20",
        "2021-03-05T10:20:30+08:00",
        "２０２１－０３－０５",
        "44260",
        "44260.75",
        " 2021/03/05 ",
    ],
)
def test_parse_date_accepts_common_forms(text: str) -> None:
    assert parse_date(text, field="入住日期") == date(2021, 3, 5)


def test_parse_date_excel_serials_around_fake_leap_day() -> None:
    assert parse_date("1", field="出生日期") == date(1900, 1, 1)
    assert parse_date("59", field="出生日期") == date(1900, 2, 28)
    assert parse_date("61", field="出生日期") == date(1900, 3, 1)
    assert parse_date("2958465", field="出生日期") == date(9999, 12, 31)
    with pytest.raises(ValueError, match=r"出生日期.*1900-02-29"):
        parse_date("60", field="出生日期")


def test_parse_date_blank_is_none() -> None:
    assert parse_date(None, field="入住日期") is None
    assert parse_date("  ", field="入住日期") is None


INVALID_DATES = ["2021-13-01", "2021-02-30", "昨天", "0", "2958466", "2021年3月", "2021-3/5"]


@pytest.mark.parametrize("text", INVALID_DATES)
def test_parse_date_invalid_names_field(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_date(text, field="入住日期")
    assert "入住日期" in str(exc.value)
    assert text in str(exc.value)


# --------------------------------------------------------------------------------------------------
# CSV


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_csv_encodings(encoding: str) -> None:
    data = csv_bytes(
        [
            ["天府和苑社区人口登记表", "", ""],
            ["姓名", "身份证号", "联系电话"],
            ["张三", "11010119900307123X", "13800138000"],
            ["", "", ""],
            ["李　四", "110101199003071234", "１３９００１３９０００"],
        ],
        encoding,
    )
    table = read_table(data, "人口.csv", synonyms=SYNONYMS)
    assert table.header_row == 2
    assert table.mapping == {"姓名": "name", "身份证号": "id_number", "联系电话": "phone"}
    assert [r.row for r in table.rows] == [3, 5]
    assert table.rows[1].values == {
        "name": "李 四",
        "id_number": "110101199003071234",
        "phone": "13900139000",
    }


def test_tab_separated_utf16_text_from_excel() -> None:
    data = "姓名\t房号\r\n张三\t101\r\n".encode("utf-16")
    table = read_table(data, "人口.txt", synonyms=SYNONYMS)
    assert table.rows[0].values == {"name": "张三", "room": "101"}


# --------------------------------------------------------------------------------------------------
# files that are not (readable) spreadsheets


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (PNG, "不是电子表格.*PNG"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "不是电子表格.*PDF"),
        (random.Random(20210305).randbytes(4096), "不是电子表格"),
        (bytes(range(256)) * 8, "不是电子表格"),
        (bytes(range(1, 256)) * 8, "不是电子表格"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, r"\.xls.*另存为.*\.xlsx"),
        (b"PK\x03\x04garbage-not-really-a-zip", "不是电子表格"),
        ("<html><body><table><tr><td>姓名</td></tr></table></body></html>".encode(), "网页.*另存为"),
        (b"", "空文件"),
        (b"  \r\n", "空文件"),
    ],
    ids=[
        "png",
        "pdf",
        "random",
        "all-bytes",
        "no-nul-bytes",
        "xls",
        "broken-zip",
        "html-as-xls",
        "empty",
        "blank",
    ],
)
def test_unreadable_files_raise_table_error(data: bytes, message: str) -> None:
    with pytest.raises(TableError, match=message):
        read_table(data, "upload.xlsx", synonyms=SYNONYMS)


def test_zip_that_is_not_a_workbook() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(TableError, match=r"不是电子表格.*Word"):
        read_table(buf.getvalue(), "a.docx", synonyms=SYNONYMS)


def test_empty_workbook_and_header_only_sheet() -> None:
    with pytest.raises(TableError, match="空表格"):
        read_table(xlsx_bytes(Workbook()), "x.xlsx", synonyms=SYNONYMS)
    header_only = simple_xlsx([["社区人口登记表"], ["姓名", "身份证号"]])
    with pytest.raises(TableError, match="没有数据行") as exc:
        read_table(header_only, "x.xlsx", synonyms=SYNONYMS)
    assert "第 2 行" in str(exc.value)
    with pytest.raises(TableError, match="没有数据行"):
        read_table("姓名,电话\r\n,\r\n".encode(), "x.csv", synonyms=SYNONYMS)


def test_size_limit_checked_before_parsing() -> None:
    too_big = b"\x89PNG" + b"\x00" * (1024 * 1024)  # would fail as PNG if it were parsed
    with pytest.raises(TableError, match=r"文件过大.*最大允许 1 MB"):
        read_table(too_big, "x.xlsx", synonyms=SYNONYMS, max_bytes=1024 * 1024)
    with pytest.raises(TableError, match=r"最大允许 0\.5 MB"):
        read_table(b"x" * (600 * 1024), "x.csv", synonyms=SYNONYMS, max_bytes=512 * 1024)


# --------------------------------------------------------------------------------------------------
# export safety


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("＝1", "'＝1"),
        ("＋86 138", "'＋86 138"),
        ("-", "'-"),
        ("张三", "张三"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (3.5, 3.5),
        (None, None),
        (date(2021, 3, 5), date(2021, 3, 5)),
    ],
)
def test_neutralise_cell(value: object, expected: object) -> None:
    assert neutralise_cell(value) == expected


DANGEROUS = ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\t=1", "  =1", "＝1"]


def test_write_xlsx_round_trip_neutralises_and_keeps_types() -> None:
    data = write_xlsx(
        ["姓名", "说明", "金额", "日期", "身份证号"],
        [
            ["张三", d, -5, date(2021, 3, 5), 110101199003071234]
            for d in DANGEROUS  # a big int would lose digits as an Excel number
        ],
        sheet_title="导出/名单",
        column_notes={"身份证号": "18位，末位可为X"},
    )
    wb = load_workbook(io.BytesIO(data))
    ws = wb.active
    assert ws is not None
    assert ws.title == "导出_名单"
    assert ws.freeze_panes == "A2"
    assert ws["A1"].value == "姓名"
    assert ws["A1"].font.bold
    assert ws["E1"].comment is not None
    assert "18位" in ws["E1"].comment.text
    assert ws.column_dimensions["A"].width >= 8
    for i, dangerous in enumerate(DANGEROUS, start=2):
        cell = ws.cell(row=i, column=2)
        assert cell.data_type == "s"
        assert cell.value == "'" + dangerous
        assert ws.cell(row=i, column=3).value == -5
        assert ws.cell(row=i, column=4).value == datetime(2021, 3, 5)
        assert ws.cell(row=i, column=5).value == "110101199003071234"
    # Nothing anywhere in the sheet is a formula.
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_write_xlsx_re_imports_to_the_original_text() -> None:
    data = write_xlsx(["姓名", "备注"], [["张三", d] for d in DANGEROUS])
    table = read_table(data, "x.xlsx", synonyms={"name": ["姓名"], "note": ["备注"]})
    # Whitespace is collapsed and full-width folded as for any import, but the quote is gone again.
    expected = ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "=1", "=1", "=1"]
    assert [r.values["note"] for r in table.rows] == expected


def test_write_xlsx_large_sheet() -> None:
    rows = (
        [f"居民{i}", f"1101011990{i:08d}", 13800000000 + i, "1号楼", i % 500, "备注", None, "=x"]
        for i in range(100_000)
    )
    data = write_xlsx([f"列{c}" for c in range(8)], rows)
    wb = load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.active
    assert ws is not None
    rows_read = sum(1 for _ in ws.iter_rows(values_only=True))
    wb.close()
    assert rows_read == 100_001


def test_write_csv_is_utf8_sig_and_neutralised() -> None:
    data = write_csv(
        ["姓名", "备注", "日期", "数"],
        [["张三", "=1+1", date(2021, 3, 5), -5], ["李四", None, datetime(2021, 3, 5, 8, 0), 1.5]],
    )
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["姓名", "备注", "日期", "数"],
        ["张三", "'=1+1", "2021-03-05", "-5"],
        ["李四", "", "2021-03-05 08:00:00", "1.5"],
    ]


# --------------------------------------------------------------------------------------------------
# error report


def test_error_report_round_trip() -> None:
    table = read_table(registry_workbook(), "登记表.xlsx", synonyms=SYNONYMS)
    report = error_report_xlsx(table, {7: ["身份证号校验位错误", "手机号不是11位"]})

    wb = load_workbook(io.BytesIO(report))
    ws = wb.active
    assert ws is not None
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == [ERROR_COLUMN, *table.headers]
    assert len(rows) == 1 + len(table.rows)
    good, bad = rows[1], rows[2]
    assert good[0] is None
    assert good[1:4] == [1, "  张　三 ", "11010119900307123X"]
    assert good[7] == "'@备注"  # formula-looking text comes back neutralised
    assert bad[0] == "身份证号校验位错误；手机号不是11位"
    assert bad[1:3] == [4, "李四"]
    assert bad[7] == datetime(2021, 3, 5)
    # Error rows are shaded; good rows are not.
    assert ws.cell(row=3, column=2).fill.fgColor.rgb == "FFFFC7CE"
    assert ws.cell(row=2, column=2).fill.fill_type is None

    # Staff fix the file and import it again: the error column is ignored, the data maps as before.
    again = read_table(report, "修改后.xlsx", synonyms=SYNONYMS)
    assert ERROR_COLUMN in again.unmapped
    assert [r.values for r in again.rows] == [r.values for r in table.rows]


def test_error_report_from_handmade_table_ignores_unknown_rows() -> None:
    table = Table(
        headers=["姓名", "电话"],
        mapping={"姓名": "name", "电话": "phone"},
        unmapped=[],
        rows=[SourceRow(row=2, values={"name": "甲", "phone": "+1"}, raw={"姓名": "甲", "电话": "+1"})],
    )
    report = error_report_xlsx(table, {2: ["电话格式错误"], 99: ["不存在的行"]})
    ws = load_workbook(io.BytesIO(report)).active
    assert ws is not None
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        [ERROR_COLUMN, "姓名", "电话"],
        ["电话格式错误", "甲", "'+1"],
    ]
