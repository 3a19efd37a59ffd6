"""The console in a real browser: overview, search and profile, reveal and audit, the map, import, English."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from linli.registry import people
from tests.browser.conftest import LiveSite, screenshot, sign_in
from tests.builders import resident_id

pytestmark = pytest.mark.browser


def test_overview_shows_the_counts(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    stats = page.get_by_test_id("stats")
    assert "人口" in stats.inner_text()
    numbers = dict(
        (s.locator(".lbl").inner_text(), int(s.locator(".num").inner_text().replace(",", "")))
        for s in stats.get_by_test_id("stat").all()
    )
    assert numbers["人口"] == 2 and numbers["房屋"] == 2 and numbers["楼栋"] == 2 and numbers["车辆"] == 1
    screenshot(page, "overview", must_show=["天府和苑", "独居老人"])
    tree = page.get_by_test_id("sidebar")
    tree.locator("summary").first.click(position={"x": 4, "y": 8})  # the disclosure marker, not the link
    tree.get_by_role("link", name="第一网格").wait_for()  # children loaded by htmx on first opening


def test_search_by_initials_reveal_and_audit(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto("/people")
    page.get_by_test_id("search").fill("zxy")  # 张秀英's pinyin initials; htmx searches as you type
    rows = page.get_by_test_id("people")
    expect(rows).not_to_contain_text("李建国")  # the list narrowed to the match
    screenshot(page, "people-search", must_show=["张秀英"])
    rows.get_by_role("link", name="张秀英").click()
    page.wait_for_url(f"**/people/{site.register.person}")
    masked = page.get_by_test_id("id-number").inner_text()
    assert masked.count("*") == 11
    screenshot(page, "person", must_show=["张秀英", "天府和苑3号楼2单元501室", masked])

    form = page.get_by_test_id("reveal-id_number")
    form.locator("input[name=reason]").fill("核对低保申请")
    form.get_by_role("button").click()
    revealed = page.get_by_test_id("revealed-id_number")
    with Session(site.engine) as session:
        number = people.get_or_raise(session, person_id=site.register.person).id_number
    assert revealed.inner_text() == number and "*" not in number

    page.get_by_role("button", name="退出").click()
    page.wait_for_url("**/login")
    sign_in(page, "admin")
    page.goto("/audit?action=pii.reveal")
    entry = page.locator('tr[data-action="pii.reveal"]').first
    assert "核对低保申请" in entry.inner_text() and "shequ" in entry.inner_text()
    screenshot(page, "audit", must_show=["核对低保申请", "审计日志"])


def test_community_map_draws_the_buildings(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto(f"/areas/{site.world.tianfu}")
    page.wait_for_selector("#map path.bldg")
    assert page.locator("#map path.bldg").count() == 2
    assert page.locator("#map path.boundary").count() == 1
    assert page.locator("#map .leaflet-tile").count() == 0  # no tile layer: intranets have no internet
    box = page.locator("#map path.bldg").first.bounding_box()
    assert box and box["width"] > 10 and box["height"] > 10  # fitted to the community, not a dot
    screenshot(page, "area-map", must_show=["天府和苑", "3号楼", "斗门街道"])
    page.locator("#map path.bldg").first.click(force=True)
    page.wait_for_url(re.compile(r".*/buildings/\d+$"))
    screenshot(page, "building", must_show=["天府和苑3号楼", "501"])
    page.get_by_test_id("floor-plan").get_by_role("link", name="501").click()
    page.wait_for_url(f"**/houses/{site.register.house}")
    screenshot(page, "house", must_show=["张秀英", "李建国", "天府和苑便民超市"])


def test_import_dry_run_in_the_browser(page, site: LiveSite, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "楼号", "单元", "房号"])
    ws.append(["周八", resident_id(), "9", "1", "101"])
    ws.append(["吴九", "123456", "9", "1", "102"])
    data = io.BytesIO()
    wb.save(data)
    sheet = tmp_path / "居民台账.xlsx"
    sheet.write_bytes(data.getvalue())

    sign_in(page, "shequ")
    page.goto("/import")
    page.set_input_files("input[name=file]", str(sheet))
    page.get_by_role("button", name="开始导入").click()
    report = page.get_by_test_id("import-report")
    assert report.get_by_test_id("created").inner_text() == "1"
    assert "证件号码" in page.get_by_test_id("rejected").inner_text()
    screenshot(page, "import-report", must_show=["试导入：未写入任何数据", "被拒绝的行"])


def test_english_switch(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto(f"/people/{site.register.person}")
    page.get_by_test_id("langs").get_by_role("link", name="EN").click()
    page.wait_for_url(f"**/people/{site.register.person}")
    nav = page.get_by_test_id("mainnav").inner_text()
    assert "Overview" in nav and "People" in nav and "概览" not in nav
    screenshot(page, "person-en", must_show=["Basic information", "张秀英", "Elderly living alone"])
    page.goto(f"/areas/{site.world.tianfu}")
    screenshot(page, "area-en", must_show=["Plot ratio", "Resettlement community"])
