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
