"""The mapping editor's try-it panel and the export upload page in a real browser, with screenshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.core.timeutil import to_local
from linli.devices import register
from linli.devices.mappings import bindings
from tests.browser.conftest import LiveSite, screenshot, sign_in

pytestmark = pytest.mark.browser

SAMPLE = """{"sn": "XXG-2B-0451", "data": {"records": [
  {"recordId": "IN001", "车牌号": "陕A12345", "inout": 1, "passTime": "2026-03-05 08:15:30",
   "车道": "东门入口"},
  {"recordId": "IN002", "inout": 1, "passTime": "2026-03-05 08:16:02", "车道": "东门入口"}]}}"""
DOCUMENT = """name: browser-gate
format: json
records: "$.data.records[*]"
type: {path: "$.inout", map: {1: vehicle.entered, 2: vehicle.exited}}
id: {path: "$.recordId"}
device: {path: "$.sn"}
occurred_at: {path: "$.passTime", format: "%Y-%m-%d %H:%M:%S"}
payload:
  plate: {path: "$.车牌号"}
  lane: {path: "$.车道"}
"""


def test_the_editor_tries_a_sample_and_shows_problems_by_line(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto("/mappings/new")
    page.get_by_test_id("document").fill(DOCUMENT)
    page.get_by_test_id("sample").fill(SAMPLE)
    page.get_by_test_id("try").click()
    preview = page.get_by_test_id("preview")
    expect(preview.get_by_test_id("preview-count")).to_contain_text("将生成 1 个事件")
    expect(preview.get_by_test_id("preview-errors")).to_contain_text("第2条记录: payload.plate: 缺少必填值")
    expect(preview.get_by_test_id("preview-warnings")).to_contain_text("XXG-2B-0451 未登记")
    assert "陕A12345" in preview.get_by_test_id("preview-event").first.inner_text()
    path = screenshot(page, "mapping-editor-try", must_show=["试一试", "陕A12345", "缺少必填值"])
    assert path.exists()

    # saving a broken document names the field and the line
    page.get_by_test_id("document").fill(DOCUMENT.replace('"$.车牌号"', '"$.车牌号[*]"'))
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("problems")).to_contain_text("第 9 行")
    expect(page.get_by_test_id("problems")).to_contain_text("payload.plate.path")
    page.get_by_test_id("document").fill(DOCUMENT)
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("saved")).to_be_visible()
    expect(page.get_by_test_id("versions")).to_contain_text("v1")


def test_the_upload_page_reports_rows(page, site: LiveSite, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Session(site.engine) as session:
        wand, _ = register.create(
            session,
            Principal.system(),
            {
                "serial": "XG-BR-0107",
                "kind": "patrol_handset",
                "community": site.world.tianfu,
                "name": "夜班巡更棒",
            },
        )
        bindings.bind(session, Principal.system(), device_id=wand.id, adapter="patrol_csv")
        session.commit()
        wand_id = wand.id
    day = to_local(datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    export = tmp_path / "巡更记录.csv"
    export.write_bytes(
        (
            "序号,巡检点,巡更员,巡更时间,巡更棒编号\n"
            f"1,北门岗亭,赵敏,{day} 22:00:03,XG-BR-0107\n"
            f"2,5号楼屋面,赵敏,{day} 22:12:40,XG-BR-0107\n"
            f"3,地下车库,赵敏,{day} 2x:31,XG-BR-0107\n"
        ).encode("gb18030")
    )
    sign_in(page, "shequ")
    page.goto("/uploads")
    page.select_option("#device_id", str(wand_id))
    page.set_input_files("#file", str(export))
    page.get_by_test_id("upload").click()
    report = page.get_by_test_id("upload-report")
    expect(report.get_by_test_id("stored")).to_have_text("2")
    expect(report.get_by_test_id("rejected")).to_contain_text("occurred_at")
    screenshot(page, "mapping-upload-report", must_show=["上传结果", "已入库", "occurred_at"])

    page.select_option("#device_id", str(wand_id))
    page.set_input_files("#file", str(export))
    page.get_by_test_id("upload").click()
    expect(page.get_by_test_id("stored")).to_have_text("0")
    expect(page.get_by_test_id("duplicates")).to_have_text("2")


def test_the_sample_type_follows_the_document_and_the_quick_reference_opens(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto("/mappings/new")
    sample_type = page.get_by_test_id("sample-type")
    expect(sample_type).to_have_value("json")
    document = page.get_by_test_id("document")
    document.fill(DOCUMENT.replace("format: json", "format: xml"))
    expect(sample_type).to_have_value("xml")
    document.fill("# an export\nformat: table\n")  # a sheet: tried as CSV
    expect(sample_type).to_have_value("csv")
    sample_type.select_option("json")  # the user's own choice stands while the format is unchanged
    document.press("End")
    document.type(" ")
    expect(sample_type).to_have_value("json")
    help_panel = page.get_by_test_id("mapping-help")
    help_panel.locator("summary").click()
    expect(help_panel).to_contain_text("epoch_ms")
    path = screenshot(page, "mapping-editor-help", must_show=["映射语法速查", "字段选项"])
    assert path.exists()
