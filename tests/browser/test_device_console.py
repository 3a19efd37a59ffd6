"""Device console in a real browser: register a device through the form, send it a command, watch the ack
arrive live; a plate gate's multipart push shows its pictures in the event list."""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from linli.core import media
from linli.core.timeutil import LOCAL_TZ, utcnow
from tests.browser.conftest import LiveSite, screenshot, sign_in
from tests.devices.helpers import body_of, signed

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def media_dir(site: LiveSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The live server's media store in a temporary folder (it runs in this process)."""
    before = (media.root(), media._Config.max_bytes)
    root = tmp_path_factory.mktemp("media")
    media.configure(root=root, max_bytes=before[1])
    yield root
    media.configure(root=before[0], max_bytes=before[1])


def picture(width: int, height: int, paint) -> bytes:  # type: ignore[no-untyped-def]
    """A real PNG whose pixel (x, y) has the colour paint(x, y)."""
    rows = b"".join(b"\x00" + b"".join(bytes(paint(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def anpr_push(plate: str) -> tuple[bytes, str]:
    """A Hikvision ANPR multipart push as a gate posts it: the alert XML, a plate crop and a scene."""
    stamp = (utcnow() - timedelta(seconds=30)).astimezone(LOCAL_TZ).isoformat(timespec="seconds")
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0">'
        f"<dateTime>{stamp}</dateTime><eventType>ANPR</eventType><eventState>active</eventState>"
        f"<ANPR><licensePlate>{plate}</licensePlate><direction>forward</direction>"
        "<confidenceLevel>93</confidenceLevel><plateColor>blue</plateColor></ANPR></EventNotificationAlert>"
    ).encode()
    border = lambda x, y: x < 3 or y < 3 or x > 116 or y > 32  # noqa: E731
    crop = picture(120, 36, lambda x, y: (255, 255, 255) if border(x, y) else (21, 67, 160))
    scene = picture(160, 90, lambda x, y: (90 + y, 110 + y // 2, 120) if y > 50 else (170, 190, 210))
    boundary = "MIME_boundary"
    parts = [
        ("anpr.xml", "application/xml", xml),
        ("licensePlatePicture.jpg", "image/png", crop),
        ("detectionPicture.jpg", "image/png", scene),
    ]
    body = b""
    for name, kind, data in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                f"Content-Type: {kind}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_register_a_device_and_follow_a_command(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto("/devices")
    page.get_by_test_id("new-device").click()
    page.wait_for_url("**/devices/new")
    page.fill("input[name=serial]", "DS-K1T671M-TF-0502")
    page.fill("input[name=name]", "5号楼单元门")
    page.select_option("select[name=kind]", "face_terminal")
    page.fill("input[name=vendor]", "海康威视")
    page.fill("input[name=model]", "DS-K1T671M")
    page.fill("input[name=location]", "5号楼1单元门口")
    page.fill("input[name=floor]", "abc")  # a slip: the form says which field
    page.fill("input[name=installed_on]", "2024-06-18")
    page.locator("#pickmap").click(position={"x": 200, "y": 120})  # the point on the map fills lat/lon
    assert page.input_value("input[name=lat]") and page.input_value("input[name=lon]")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("error-floor")).to_contain_text("不是数字")
    assert page.input_value("input[name=name]") == "5号楼单元门"  # nothing typed is lost
    screenshot(page, "device-form-error", must_show=["登记设备", "不是数字", "未保存"])
    page.fill("input[name=floor]", "1")
    page.get_by_test_id("save").click()
    secret = page.get_by_test_id("secret").inner_text()
    assert len(secret) >= 40
    screenshot(page, "device-secret", must_show=["设备已登记", "只显示这一次", "DS-K1T671M-TF-0502"])

    page.get_by_test_id("to-device").click()
    page.wait_for_url("**/devices/*")
    device_url = page.url
    assert "人脸识别门禁" in page.get_by_test_id("device-name").inner_text()
    # The point clicked on the form's map is marked on the device's own map.
    expect(page.get_by_test_id("device-map").locator("path.device-point")).to_have_count(1)
    form = page.get_by_test_id("command-form")
    form.locator("select[name=command]").select_option("open_door")
    form.locator("input[name=door]").fill("5号楼1单元")
    form.get_by_test_id("send-command").click()
    status = page.get_by_test_id("commands").get_by_test_id("command-status").first
    expect(status).to_have_text("待设备取走")

    # The terminal (HTTP only) fetches its command and answers; the page follows without a reload.
    with httpx.Client(base_url=site.url) as device:
        serial = "DS-K1T671M-TF-0502"
        fetched = device.get("/api/v1/ingest/commands", headers=signed(serial, secret, b""))
        [command] = fetched.json()["commands"]
        body = body_of({"status": "ok", "detail": "门已打开"})
        acked = device.post(
            f"/api/v1/ingest/commands/{command['id']}/ack", content=body, headers=signed(serial, secret, body)
        )
        assert acked.status_code == 200, acked.text
    expect(status).to_have_text("已确认", timeout=8000)
    assert page.url == device_url
    expect(page.get_by_test_id("commands")).not_to_have_attribute("data-polling", "1")
    screenshot(page, "device-command", must_show=["已确认", "门已打开", "5号楼1单元", "设备命令"])


def _axis_labels(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The hourly chart's axis labels, checked to stand apart from each other (none overlaps the next)."""
    boxes = page.get_by_test_id("hourly-axis").evaluate(
        """axis => [...axis.children].filter(s => s.innerText.trim()).map(s => {
            const range = document.createRange(); range.selectNodeContents(s);
            const box = range.getBoundingClientRect();
            return [s.innerText.trim(), box.left, box.right];
        })"""
    )
    for (label, _, right), (following, left, _) in itertools.pairwise(boxes):
        assert right <= left, f"{label!r} overlaps {following!r}"
    return [label for label, _, _ in boxes]


def test_plate_pictures_stand_next_to_the_plate(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto("/devices/new")
    page.fill("input[name=serial]", "DS-TCG2A5-TF-E01")
    page.select_option("select[name=kind]", "plate_gate")
    page.fill("input[name=location]", "东门车行道")
    page.get_by_test_id("save").click()
    secret = page.get_by_test_id("secret").inner_text()
    body, kind = anpr_push("陕A7M2Q9")
    with httpx.Client(base_url=site.url) as gate:
        r = gate.post(
            "/api/v1/ingest/push/hikvision_isapi/DS-TCG2A5-TF-E01",
            params={"key": secret},
            content=body,
            headers={"content-type": kind},
        )
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    page.goto("/events?type=vehicle.entered")
    expect(page.get_by_test_id("hourly")).to_contain_text("共 1 条")  # the last day's plate reads, per hour
    wide = _axis_labels(page)
    assert len(wide) >= 4 and wide[0].count("-") == 1 and wide[-1].count("-") == 1  # "12-05 14:00"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the ends without their day
    narrow = _axis_labels(page)
    assert len(narrow) == len(wide) and all("-" not in label for label in narrow)
    page.set_viewport_size({"width": 1366, "height": 860})
    plate = page.get_by_test_id("plate").first
    expect(plate).to_contain_text("陕A7M2Q9")
    thumb = plate.locator("img.thumb")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 120  # the crop really loaded
    screenshot(page, "events-thumbnails", must_show=["陕A7M2Q9", "DS-TCG2A5-TF-E01"])
    page.get_by_role("link", name="车辆入场").first.click()
    pictures = page.get_by_test_id("pictures").locator("img.photo")
    expect(pictures).to_have_count(2)
    screenshot(page, "event-pictures", must_show=["图片与视频", "车牌", "全景"])

    # From the gate's page to its own events, then narrowed to a time range typed in local time.
    page.goto("/events?type=vehicle.entered")
    page.get_by_test_id("events").get_by_role("link", name="东门车行道").first.click()
    page.get_by_test_id("all-events").click()
    expect(page.get_by_test_id("device-filter")).to_contain_text("DS-TCG2A5-TF-E01")
    expect(page.get_by_test_id("events")).to_contain_text("陕A7M2Q9")
    now = utcnow().astimezone(LOCAL_TZ)
    page.get_by_test_id("since").fill((now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_test_id("events")).to_contain_text("暂无事件")
    expect(page.get_by_test_id("device-filter")).to_contain_text("DS-TCG2A5-TF-E01")  # kept by the form
    page.get_by_test_id("since").fill((now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_test_id("until").fill((now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_test_id("events")).to_contain_text("陕A7M2Q9")
    screenshot(page, "events-by-device-and-time", must_show=["陕A7M2Q9", "DS-TCG2A5-TF-E01"])
    page.get_by_test_id("until").fill((now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_text("结束时间须晚于开始时间")).to_be_visible()


def test_the_event_log_follows_the_store_live(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import Session

    from linli.core.auth.service import Principal
    from linli.devices import register
    from tests.devices.helpers import envelope

    with Session(site.engine) as session:
        door, secret = register.create(
            session,
            Principal.system(),
            {"serial": "DS-K1T-LOG-01", "kind": "face_terminal", "community": site.world.tianfu},
        )
        session.commit()
        door_id = door.id
    sign_in(page, "shequ")
    page.goto(f"/events?device={door_id}")
    page.wait_for_function("window.linliEventsLive === true")
    expect(page.get_by_test_id("live")).to_be_visible()
    expect(page.get_by_test_id("events")).to_contain_text("暂无事件")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "part=rows" in r.url else None)
    passage = envelope(
        "DS-K1T-LOG-01",
        "access.granted",
        at=utcnow() - timedelta(seconds=5),
        payload={"credential": "card", "card_no": "0099887766", "door": "2号楼1单元门"},
    )
    body = body_of([passage])
    with httpx.Client(base_url=site.url) as terminal:
        r = terminal.post(
            "/api/v1/ingest/events", content=body, headers=signed("DS-K1T-LOG-01", secret, body)
        )
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    # No navigation: the stream announced the new events (the passage, the terminal coming online) and
    # the rows were fetched again, once or twice.
    expect(page.get_by_test_id("events")).to_contain_text("门禁通行", timeout=10_000)
    expect(page.get_by_test_id("events")).to_contain_text("设备上线")
    assert page.url.endswith(f"/events?device={door_id}")
    assert 1 <= len(fetched) <= 2
    screenshot(page, "events-live", must_show=["DS-K1T-LOG-01", "实时"])


def test_a_devices_page_follows_its_events_live(page, site: LiveSite) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import Session

    from linli.core.auth.service import Principal
    from linli.devices import register
    from tests.devices.helpers import envelope

    with Session(site.engine) as session:
        door, secret = register.create(
            session,
            Principal.system(),
            {"serial": "DS-K1T-DEV-LIVE", "kind": "face_terminal", "community": site.world.tianfu},
        )
        session.commit()
        door_id = door.id
    sign_in(page, "shequ")
    page.goto(f"/devices/{door_id}")
    page.wait_for_function("window.linliDeviceEventsLive === true")
    listed = page.locator("#device-events")
    expect(listed).to_contain_text("暂无事件")
    passage = envelope(
        "DS-K1T-DEV-LIVE",
        "access.granted",
        at=utcnow() - timedelta(seconds=5),
        payload={"credential": "face", "door": "5号楼2单元门"},
    )
    body = body_of([passage])
    with httpx.Client(base_url=site.url) as terminal:
        r = terminal.post(
            "/api/v1/ingest/events", content=body, headers=signed("DS-K1T-DEV-LIVE", secret, body)
        )
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    # No navigation: the stream announced the passage and the list was fetched again.
    expect(listed).to_contain_text("人脸 · 5号楼2单元门", timeout=10_000)
    assert page.url.endswith(f"/devices/{door_id}")
