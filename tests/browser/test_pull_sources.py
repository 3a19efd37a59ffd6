"""The pull-source form in a real browser: from the device page, refused per field, saved, in the list."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.devices import register
from linli.devices.mappings import service
from linli.devices.mappings.models import PullSource
from tests.browser.conftest import LiveSite, screenshot, sign_in

pytestmark = pytest.mark.browser

DOOR_API = """name: door-query
format: json
records: "$.data.list[*]"
type: {path: "$.result", map: {1: access.granted, 0: access.denied}}
id: {path: "$.id"}
occurred_at: {path: "$.time", format: "%Y-%m-%d %H:%M:%S"}
payload:
  credential: {const: card}
  card_no: {path: "$.cardNo"}
  door: {path: "$.door"}
"""


def test_a_pull_source_is_configured_from_the_device_page(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    with Session(site.engine) as session:
        reader, _ = register.create(
            session,
            Principal.system(),
            {
                "serial": "MJ-BR-0301",
                "kind": "card_reader",
                "community": site.world.tianfu,
                "name": "3号楼门禁",
            },
        )
        service.create(session, Principal.system(), community_code="", document=DOOR_API)
        session.commit()
        reader_id = reader.id
    sign_in(page, "shequ")
    page.goto(f"/devices/{reader_id}")
    page.get_by_test_id("pull-source").click()
    page.wait_for_url(f"**/devices/{reader_id}/pull-source")
    page.fill("#p-url", "http://192.168.10.31/api/v2/access/records")
    page.fill("#p-params", "startTime={cursor}\npageNo={page}\npageSize={size}")
    page.fill("#p-headers", "Authorization: Bearer 9f3c-secret")
    page.select_option("#p-adapter", "mapping:door-query")
    page.fill("#p-interval", "5")  # too often: at least 10 seconds
    page.fill("input[name='cursor.format']", "%Y-%m-%d %H:%M:%S")
    page.check("#p-paging")
    page.fill("input[name='paging.size']", "50")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("error-interval_s")).to_have_text("应不小于 10")
    expect(page.get_by_test_id("form-error")).to_have_text("未保存：请改正下面标出的 1 处")
    expect(page.get_by_test_id("headers-dropped")).to_be_visible()
    expect(page.locator("#p-url")).to_have_value("http://192.168.10.31/api/v2/access/records")
    screenshot(page, "pull-source-form-refused", must_show=["拉取源", "应不小于 10", "请求头"])

    page.fill("#p-interval", "60")
    page.fill("#p-headers", "Authorization: Bearer 9f3c-secret")  # a refused form does not echo secrets
    page.get_by_test_id("save").click()
    page.wait_for_url("**/pull-sources?notice=saved")
    expect(page.get_by_test_id("notice")).to_have_text("拉取源已保存")
    row = page.get_by_test_id("pull-source-MJ-BR-0301")
    expect(row).to_contain_text("GET http://192.168.10.31/api/v2/access/records")
    expect(row).to_contain_text("mapping:door-query")
    expect(row).to_contain_text("60 秒")
    expect(row).to_contain_text("尚未拉取")
    screenshot(page, "pull-sources-list", must_show=["拉取源已保存", "3号楼门禁", "mapping:door-query"])

    row.get_by_test_id("edit-pull-source").click()
    expect(page.get_by_test_id("stored-headers")).to_have_text("Authorization: ••••••")
    expect(page.locator("#p-headers")).to_have_value("")
    expect(page.locator("#p-paging")).to_be_checked()
    expect(page.locator("input[name='paging.size']")).to_have_value("50")
    screenshot(page, "pull-source-form", must_show=["拉取情况", "立即拉取", "Authorization: ••••••"])
    with Session(site.engine) as session:
        source = session.scalars(select(PullSource).where(PullSource.device_id == reader_id)).one()
        assert source.config["interval_s"] == 60 and "9f3c-secret" in source.secret_headers
