"""The command panel follows delivery over Server-Sent Events, and polls only when the stream is down."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.devices import register
from tests.browser.conftest import LiveSite, screenshot, sign_in
from tests.devices.helpers import body_of, signed

pytestmark = pytest.mark.browser


def _terminal(site: LiveSite, serial: str) -> tuple[int, str]:
    with Session(site.engine) as session:
        door, secret = register.create(
            session,
            Principal.system(),
            {
                "serial": serial,
                "kind": "face_terminal",
                "community": site.world.tianfu,
                "name": "7号楼单元门",
            },
        )
        session.commit()
        return door.id, secret


def _send_open_door(page, door: str) -> None:  # type: ignore[no-untyped-def]
    form = page.get_by_test_id("command-form")
    form.locator("select[name=command]").select_option("open_door")
    form.locator("input[name=door]").fill(door)
    form.get_by_test_id("send-command").click()


def _answer(site: LiveSite, serial: str, secret: str, detail: str) -> None:
    """The terminal (HTTP only) fetches its command and answers it."""
    with httpx.Client(base_url=site.url) as device:
        [command] = device.get("/api/v1/ingest/commands", headers=signed(serial, secret, b"")).json()[
            "commands"
        ]
        body = body_of({"status": "ok", "detail": detail})
        url = f"/api/v1/ingest/commands/{command['id']}/ack"
        assert device.post(url, content=body, headers=signed(serial, secret, body)).status_code == 200


def test_an_ack_reaches_the_open_page_over_the_stream_without_polling(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    serial = "DS-K1T-LIVE-01"
    door_id, secret = _terminal(site, serial)
    sign_in(page, "shequ")
    page.goto(f"/devices/{door_id}")
    page.wait_for_function("window.linliCommandsLive === true")
    panel = f"/devices/{door_id}/commands"
    # The new command's first state (queued) is announced too, after the POST's commit: its reload comes
    # first, so that the count below starts from a panel that has nothing more to hear.
    with page.expect_response(lambda r: r.url.endswith(panel) and r.request.method == "GET"):
        _send_open_door(page, "7号楼1单元")
    status = page.get_by_test_id("commands").get_by_test_id("command-status").first
    expect(status).to_have_text("待设备取走")
    expect(page.get_by_test_id("commands")).to_have_attribute("data-polling", "1")  # a command is open

    reloads: list[str] = []
    page.on("request", lambda r: reloads.append(r.url) if r.url.endswith(panel) else None)
    # Longer than the 2 s polling: with the stream up, nothing polls. wait_for_timeout, not time.sleep:
    # the page's events reach the listener only while Playwright runs.
    page.wait_for_timeout(2500)
    assert reloads == []
    _answer(site, serial, secret, "门已打开")
    # Well inside the 30 s safety check that runs while the stream is up: only the stream can do this.
    expect(status).to_have_text("已确认", timeout=10_000)
    expect(page.get_by_test_id("commands")).to_contain_text("门已打开")
    expect(page.get_by_test_id("commands")).not_to_have_attribute("data-polling", "1")
    assert 1 <= len(reloads) <= 2  # one reload per announced state (sent, acknowledged), no polling
    screenshot(page, "device-command-live", must_show=["已确认", "门已打开", "设备命令"])


def test_without_the_stream_the_panel_falls_back_to_polling(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    serial = "DS-K1T-LIVE-02"
    door_id, secret = _terminal(site, serial)
    page.route("**/commands/stream", lambda route: route.abort())  # a proxy that does not pass SSE
    sign_in(page, "shequ")
    page.goto(f"/devices/{door_id}")
    _send_open_door(page, "7号楼2单元")
    status = page.get_by_test_id("commands").get_by_test_id("command-status").first
    expect(status).to_have_text("待设备取走")
    assert page.evaluate("window.linliCommandsLive") is not True
    _answer(site, serial, secret, "门已打开")
    expect(status).to_have_text("已确认", timeout=8000)
