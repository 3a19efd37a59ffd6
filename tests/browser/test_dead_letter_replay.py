"""The dead-letter page in a real browser: a row the mapping refused, replayed once the mapping is fixed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.core.timeutil import to_local, utcnow
from linli.devices import register
from linli.devices.mappings import bindings, upload
from linli.devices.mappings import service as mappings
from tests.browser.conftest import LiveSite, screenshot, sign_in
from tests.devices.mappings.test_replay import DOOR_FIXED, DOOR_V1, _export

pytestmark = pytest.mark.browser


def test_a_refused_row_is_listed_and_replayed_after_the_fix(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    system = Principal.system()
    swiped = to_local(utcnow() - timedelta(days=1)).strftime("%Y/%m/%d %H:%M")
    with Session(site.engine) as session:
        door, _ = register.create(
            session,
            system,
            {
                "serial": "ZK-BR-MJ-11",
                "kind": "card_reader",
                "community": site.world.tianfu,
                "name": "5号楼门禁",
            },
        )
        mapping, _ = mappings.create(session, system, community_code=site.world.tianfu, document=DOOR_V1)
        bindings.bind(session, system, device_id=door.id, adapter="mapping:door-export")
        data = _export([[swiped, "0012345691", "A041", "周敏", "5号楼单元门", "进", "刷卡", "合法卡"]])
        [letter_id] = upload.upload(
            session, system, data=data, filename="门禁.xlsx", now=utcnow(), device_id=door.id
        ).dead_letter_ids
        session.commit()
        mapping_id = mapping.id
    sign_in(page, "shequ")
    page.goto("/dead-letters")
    row = page.get_by_test_id(f"letter-{letter_id}")
    expect(row.get_by_test_id("reread")).to_contain_text("原始记录")
    expect(row).to_contain_text("第3行: occurred_at")
    screenshot(page, "dead-letters-mapping-row", must_show=["原始记录", "ZK-BR-MJ-11", "第3行: occurred_at"])
    row.get_by_role("button", name="重放").click()
    expect(page.get_by_test_id("outcome")).to_have_text("重放未成功，原因已更新")

    with Session(site.engine) as session:
        mappings.save(session, system, mapping_id=mapping_id, document=DOOR_FIXED)
        session.commit()
    page.get_by_test_id(f"letter-{letter_id}").get_by_role("button", name="重放").click()
    expect(page.get_by_test_id("outcome")).to_have_text("已重放，事件已入库")
    expect(page.get_by_test_id(f"letter-{letter_id}").get_by_test_id("status")).to_contain_text("已重放")
    screenshot(page, "dead-letters-mapping-row-replayed", must_show=["已重放，事件已入库"])


def test_an_unknown_devices_letters_register_it_then_replay_all(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    from linli.devices import service
    from tests.devices.helpers import envelope

    now = utcnow()
    alarms = [
        envelope("NB-SMK-TF-BR-7", "alarm.raised", at=now - timedelta(minutes=i), payload={"alarm": "smoke"})
        for i in range(3)
    ]
    with Session(site.engine) as session:
        service.ingest(session, alarms, source="http", received_at=now)
        session.commit()
    sign_in(page, "admin")
    page.goto("/dead-letters?status=new")
    page.get_by_role("link", name="NB-SMK-TF-BR-7").first.click()  # only that device's open letters
    expect(page.get_by_test_id("bulk-replay")).to_contain_text("待处理 3 条")
    page.get_by_test_id("register-unknown").first.click()
    expect(page.locator("input[name=serial]")).to_have_value("NB-SMK-TF-BR-7")
    page.select_option("select[name=kind]", "smoke_sensor")
    page.select_option("select[name=community]", site.world.tianfu)
    page.fill("input[name=location]", "7号楼2单元")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("secret")).to_be_visible()
    page.goto("/dead-letters?status=new&device=NB-SMK-TF-BR-7")
    page.get_by_test_id("bulk-replay").get_by_role("button", name="全部重放").click()
    expect(page.get_by_test_id("bulk-outcome")).to_have_text("已重放并入库 3 条")
    screenshot(page, "dead-letters-replay-all", must_show=["已重放并入库 3 条", "暂无异常数据"])
    page.goto("/events?type=alarm.raised")
    # Each row names the device as staff do (its location), its serial under it.
    expect(page.get_by_test_id("events").get_by_role("link", name="7号楼2单元")).to_have_count(3)
    expect(page.get_by_test_id("events").get_by_test_id("device").first).to_contain_text("NB-SMK-TF-BR-7")
