"""The import page: a sheet with good and bad rows, its report, the error sheet, re-import, limits, CSRF."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from openpyxl import Workbook, load_workbook

from linli.settings import Settings
from tests.builders import World, resident_id
from tests.web.helpers import Console

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _sheet() -> bytes:
    """A community register as staff keep it: a title row, their own headers, one bad ID number."""
    good1, good2 = resident_id(), resident_id(male=False)
    bad = resident_id()
    bad = bad[:-1] + ("0" if bad[-1] != "0" else "1")
    wb = Workbook()
    ws = wb.active
    ws.append(["天府和苑居民台账（2024年）"])
    ws.append(["姓名", "身份证号", "联系电话", "楼号", "单元", "房号", "与户主关系", "爱好"])
    ws.append(["赵一", good1, "13800138001", "7号楼", "2", "601", "户主", "象棋"])
    ws.append(["钱二", bad, "13800138002", "7号楼", "2", "601", "家庭成员", ""])
    ws.append(["孙三", good2, "13800138003", "7号楼", "2", "601", "家庭成员", "广场舞"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _post(
    console: Console,
    data: bytes,
    world: World,
    *,
    dry_run: bool = False,
    csrf: bool = True,
    name: str = "居民台账.xlsx",
):  # type: ignore[no-untyped-def]
    form = {"entity": "auto", "community": world.tianfu}
    if csrf:
        form["csrf"] = console.csrf()
    if dry_run:
        form["dry_run"] = "1"
    return console.client.post("/import", data=form, files={"file": (name, data, XLSX)})


def _people(console: Console, query: str) -> str:
    """The rows of a people search."""
    return console.get("/people", params={"q": query}, headers={"HX-Request": "true"}).text


def _count(page: str, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">(\d+)<', page)
    assert match, testid
    return int(match.group(1))


def test_import_report_rejected_rows_error_sheet_and_reimport(console: Console, world: World) -> None:
    console.login("shequ")
    sheet = _sheet()

    tried = _post(console, sheet, world, dry_run=True)
    assert tried.status_code == 200, tried.text[:400]
    assert "试导入" in tried.text and _count(tried.text, "created") == 2
    assert "赵一" not in _people(console, "赵一")  # a dry run writes nothing

    done = _post(console, sheet, world)
    page = done.text
    assert (_count(page, "created"), _count(page, "unchanged"), _count(page, "rejected-count")) == (2, 0, 1)
    rejected = page.split('data-testid="rejected"')[1].split("</table>")[0]
    assert '<td class="num">4</td>' in rejected  # the bad row as Excel numbers it (title row counts)
    assert "id_number" in rejected and "证件号码" in rejected and "校验" in rejected
    assert "爱好" in page.split('data-testid="unmapped"')[1]
    assert "赵一" in _people(console, "赵一")

    link = re.search(r'href="(/import/errors/[^"]+)"', page)
    assert link
    report = console.get(link.group(1))
    assert report.status_code == 200 and report.headers["content-type"] == XLSX
    assert "filename*=UTF-8''" in report.headers["content-disposition"]
    cells = [
        [c for c in row]
        for row in load_workbook(io.BytesIO(report.content)).active.iter_rows(values_only=True)
    ]
    assert any("钱二" in row and any("id_number" in str(c) for c in row if c) for row in cells)

    again = _post(console, sheet, world).text
    assert (_count(again, "created"), _count(again, "unchanged"), _count(again, "rejected-count")) == (
        0,
        2,
        1,
    )

    console.client.cookies.clear()
    console.login("shequ2")
    assert console.get(link.group(1)).status_code == 404  # another user's report


def test_a_file_that_is_not_a_spreadsheet_is_explained(console: Console, world: World) -> None:
    console.login("shequ")
    page = _post(console, b"%PDF-1.4 not a sheet", world, name="scan.pdf")
    assert page.status_code == 422 and 'data-testid="import-error"' in page.text


def test_another_community_is_refused(console: Console, world: World) -> None:
    console.login("shequ")
    form = {"entity": "people", "community": world.xingfu, "csrf": console.csrf()}
    page = console.client.post("/import", data=form, files={"file": ("a.xlsx", _sheet(), XLSX)})
    assert page.status_code == 404 and 'data-testid="import-error"' in page.text


@pytest.fixture
def one_mb_limit(console: Console, settings: Settings) -> Iterator[None]:
    """The app's upload limit lowered to 1 MB for one test."""
    state = console.client.app.state  # type: ignore[attr-defined]
    state.settings = settings.model_copy(update={"max_upload_mb": 1})
    yield
    state.settings = settings


@pytest.mark.usefixtures("one_mb_limit")
def test_too_large_uploads_are_refused(console: Console, world: World) -> None:
    console.login("shequ")
    declared_too_big = _post(console, b"x" * (1024 * 1024 + 200 * 1024), world)
    assert declared_too_big.status_code == 413
    assert "文件过大" in declared_too_big.text and "1 MB" in declared_too_big.text
    assert 'data-testid="error"' in declared_too_big.text  # refused on Content-Length, before reading
    just_over = _post(console, b"x" * (1024 * 1024 + 10), world)
    assert just_over.status_code == 413
    assert 'data-testid="import-error"' in just_over.text and "文件过大：上限 1 MB" in just_over.text


def test_empty_form_asks_for_a_file(console: Console, world: World) -> None:
    console.login("shequ")
    page = console.client.post(
        "/import",
        data={"csrf": console.csrf(), "community": world.tianfu},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert page.status_code == 422 and "请选择要导入的文件" in page.text


def test_post_without_csrf_token_is_403(console: Console, world: World) -> None:
    console.login("shequ")
    assert _post(console, _sheet(), world, csrf=False).status_code == 403
    assert console.client.post("/logout").status_code == 403
    assert console.get("/").status_code == 200  # still signed in


def test_templates_download_with_chinese_headers(console: Console) -> None:
    console.login("shequ")
    r = console.get("/import/templates/people.xlsx")
    assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["content-disposition"]
    headers = next(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert "姓名" in headers
    assert console.get("/import/templates/spaceships.xlsx").status_code == 422


def test_import_needs_the_import_permission(console: Console) -> None:
    console.login("wangge")
    assert console.get("/import").status_code == 403
