"""The calibration editor in a real browser: lines, columns and regions marked by clicking, then saved."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.core.timeutil import utcnow
from linli.vision import service
from linli.vision.calibration import Calibration
from tests.browser.conftest import LiveSite, screenshot, sign_in
from tests.devices.helpers import device
from tests.vision.helpers import facade_frame

pytestmark = pytest.mark.browser
W, H = 1920, 1080


@pytest.fixture(scope="module")
def camera_id(site: LiveSite) -> Iterator[int]:
    """A throw camera in Tianfu with a still frame of its facade and no calibration yet."""
    with Session(site.engine) as session:
        dev, _ = device(
            session, site.world.tianfu, serial="HK-GKPW-TF-B3", kind="throw_camera", name="3号楼南立面"
        )
        camera = service.configure(session, Principal.system(), device_id=dev.id)
        _, jpeg = cv2.imencode(".jpg", facade_frame(0))
        service.store_reference_frame(
            session, Principal.system(), camera=camera, jpeg=jpeg.tobytes(), width=W, height=H, now=utcnow()
        )
        session.commit()
        yield camera.id


def _click(page, x: float, y: float) -> None:  # type: ignore[no-untyped-def]
    """Click the overlay at image pixel (x, y)."""
    box = page.get_by_test_id("overlay").bounding_box()
    page.mouse.click(box["x"] + x * box["width"] / W, box["y"] + y * box["height"] / H)


def _mark_floor_lines(page) -> None:  # type: ignore[no-untyped-def]
    """The ground line and the roof line, two clicks each."""
    page.check("input[value=bottom]")
    _click(page, 480, 1000)
    _click(page, 1440, 1000)
    page.check("input[value=top]")
    _click(page, 560, 90)
    _click(page, 1360, 90)


def test_marking_and_saving_a_calibration(page, site: LiveSite, camera_id: int) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto(f"/devices/vision/{camera_id}/calibrate")
    _mark_floor_lines(page)
    page.get_by_test_id("floors").fill("18")
    expect(page.get_by_test_id("summary")).to_contain_text("18 层")
    assert page.locator("svg line.floor").count() == 19 + 2  # the grid, plus the two marked lines
    page.check("input[value=columns]")
    for k in range(7):
        _click(page, 500 + 150 * k, 600)
    page.check("input[value=ignore]")
    for x, y in ((1300, 400), (1420, 400), (1420, 520), (1300, 520)):
        _click(page, x, y)
    page.click("#close-polygon")
    page.check("input[value=zone]")
    for x, y in ((450, 60), (1470, 60), (1470, 1020), (450, 1020)):
        _click(page, x, y)
    page.click("#close-polygon")
    page.eval_on_selector(
        "#sensitivity", "el => { el.value = '0.65'; el.dispatchEvent(new Event('input')); }"
    )
    expect(page.get_by_test_id("summary")).to_contain_text("6 列")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("message")).to_have_text("已保存")
    screenshot(page, "vision-calibrate", must_show=["标定", "已保存", "楼层数"])

    with Session(site.engine) as session:
        camera = service.get_or_raise(session, camera_id=camera_id)
        cal = Calibration.from_json(camera.calibration)
    assert cal.floors == 18 and len(cal.columns) == 7 and len(cal.ignore) == 1 and len(cal.zone or []) == 4
    assert cal.sensitivity == 0.65 and camera.sensitivity == 0.65
    # the clicks landed where they were aimed, within a pixel or two of the picture
    assert cal.floor_lines[0][0] == pytest.approx((480, 1000), abs=3)
    assert cal.floor_lines[-1][1] == pytest.approx((1360, 90), abs=3)
    assert cal.floor_at(1000, 300)[0] == 14 and cal.column_at(1000) == 4

    page.reload()  # the stored calibration comes back into the editor
    expect(page.get_by_test_id("summary")).to_contain_text("18 层 · 6 列")


def test_a_bad_calibration_is_refused_naming_the_field(page, site: LiveSite, camera_id: int) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "shequ")
    page.goto(f"/devices/vision/{camera_id}/calibrate")
    # Floor lines of its own (the test before may not have run in this process: pytest-xdist), so that
    # the columns are what is wrong.
    _mark_floor_lines(page)
    page.check("input[value=columns]")
    page.click("#clear")
    _click(page, 900, 500)  # one boundary is no column at all
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("message")).to_contain_text("columns")
    expect(page.get_by_test_id("message")).to_contain_text("保存失败")


def test_the_camera_page_shows_a_detection_with_its_evidence(page, site: LiveSite, camera_id: int) -> None:  # type: ignore[no-untyped-def]
    from linli.vision import evidence
    from tests.vision.helpers import FPS, falling, filled_ring

    detection = falling()
    ring = filled_ring(detection, until=detection.end_frame + 50)
    with Session(site.engine) as session:
        camera = service.get_or_raise(session, camera_id=camera_id)
        service.record_detection(
            session,
            camera=camera,
            device=service.device_of(session, camera),
            detection=detection,
            started_at=utcnow(),
            fps=FPS,
            evidence=service.Evidence(evidence.keyframe(ring, detection), evidence.clip(ring, detection)),
            now=utcnow(),
        )
        session.commit()
    sign_in(page, "shequ")
    page.goto(f"/devices/vision/{camera_id}")
    picture = page.get_by_test_id("keyframe").first
    expect(picture).to_be_visible()
    assert picture.evaluate("img => img.complete && img.naturalWidth") == 640
    clip = page.get_by_test_id("clip").first
    clip.evaluate(
        "v => new Promise(ok => v.readyState >= 1 ? ok() : v.addEventListener('loadedmetadata', ok))"
    )
    assert clip.evaluate("v => v.videoWidth") == 640  # Chromium decodes the WebM evidence
    screenshot(page, "vision-camera", must_show=["最近检测", "13层", "第 4 列"])
