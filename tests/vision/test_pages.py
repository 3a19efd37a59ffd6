"""Throw detection console pages and API: scoped like every page, calibration saved through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import pytest
from fastapi.testclient import TestClient

from linli.vision import evidence, service
from tests.devices.helpers import device
from tests.vision.conftest import facade
from tests.vision.helpers import FPS, facade_frame, falling, filled_ring
from tests.web.helpers import Console, csrf_of


@pytest.fixture
def console(client: TestClient) -> Console:
    """The console as a browser would use it."""
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


@pytest.fixture
def detected(throw_camera, session):  # type: ignore[no-untyped-def]
    """The throw camera with one stored detection (key frame and clip)."""
    dev, camera = throw_camera
    detection = falling()
    ring = filled_ring(detection, until=detection.end_frame + 50)
    row = service.record_detection(
        session,
        camera=camera,
        device=dev,
        detection=detection,
        started_at=datetime.now(UTC).replace(microsecond=0),
        fps=FPS,
        evidence=service.Evidence(evidence.keyframe(ring, detection), evidence.clip(ring, detection)),
        now=datetime.now(UTC),
    )
    session.commit()
    return dev, camera, row


def test_a_worker_sees_the_camera_its_detections_and_their_evidence(console: Console, detected) -> None:  # type: ignore[no-untyped-def]
    dev, camera, row = detected
    console.login("shequ")
    listed = console.get("/devices/vision")
    assert listed.status_code == 200 and dev.serial in listed.text and "高空抛物检测" in listed.text
    page = console.get(f"/devices/vision/{camera.id}")
    assert page.status_code == 200
    assert "13层" in page.text and "第 4 列" in page.text and "91%" in page.text
    assert f'src="/media/{row.keyframe_ref}"' in page.text and f'src="/media/{row.clip_ref}"' in page.text
    assert "Tf2026pass" not in page.text  # the stream password never reaches a page
    picture = console.get(f"/media/{row.keyframe_ref}")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    clip = console.get(f"/media/{row.clip_ref}")
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/webm"
    english = console.get("/lang/en", params={"next": f"/devices/vision/{camera.id}"})
    assert "Recent detections" in english.text and "Column 4" in english.text


def test_another_communitys_worker_gets_404(console: Console, detected) -> None:  # type: ignore[no-untyped-def]
    _, camera, row = detected
    console.login("shequ2")
    assert console.get(f"/devices/vision/{camera.id}").status_code == 404
    assert console.get(f"/devices/vision/{camera.id}/calibrate").status_code == 404
    assert console.get(f"/media/{row.keyframe_ref}").status_code == 404
    assert camera.stream_url and "暂无检测摄像机" in console.get("/devices/vision").text


def test_calibration_saved_through_the_api_names_the_wrong_field(client, login, throw_camera) -> None:  # type: ignore[no-untyped-def]
    _, camera = throw_camera
    headers = login("shequ")
    url = f"/api/v1/vision/cameras/{camera.id}/calibration"
    good = facade(floors=20, columns=5).to_json()
    bad = good | {"sensitivity": 1.5}
    r = client.put(url, json=bad, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "sensitivity"
    r = client.put(url, json=good, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["calibrated"] and len(body["calibration"]["floor_lines"]) == 21
    assert body["stream_url"].startswith("rtsp://admin:***@")
    r = client.put(url, json=good, headers=login("shequ2"))
    assert r.status_code == 404
    r = client.get("/api/v1/vision/cameras", headers=login("shequ2"))
    assert r.status_code == 200 and r.json() == []


def test_a_still_uploaded_on_the_page_opens_the_editor(console: Console, throw_camera, session) -> None:  # type: ignore[no-untyped-def]
    _, camera = throw_camera
    session.commit()
    console.login("shequ")
    editor = console.get(f"/devices/vision/{camera.id}/calibrate")
    assert editor.status_code == 200 and 'data-testid="no-frame"' in editor.text
    _, jpeg = cv2.imencode(".jpg", facade_frame(0))
    r = console.client.post(
        f"/devices/vision/{camera.id}/reference",
        data={"csrf": csrf_of(editor.text)},
        files={"file": ("snap.jpg", jpeg.tobytes(), "image/jpeg")},
    )
    assert r.status_code == 200 and 'id="overlay"' in r.text and 'viewBox="0 0 1920 1080"' in r.text
    r = console.client.post(
        f"/devices/vision/{camera.id}/reference",
        data={"csrf": csrf_of(editor.text)},
        files={"file": ("notes.txt", b"not a picture", "image/jpeg")},
    )
    assert r.status_code == 422 and "无法读取图片" in r.text


def test_a_camera_is_added_from_the_list(console: Console, session, world) -> None:  # type: ignore[no-untyped-def]
    dev, _ = device(session, world.tianfu, serial="HK-GKPW-TF-05", kind="throw_camera", location="5号楼南侧")
    session.commit()
    console.login("shequ")
    listed = console.get("/devices/vision")
    assert "HK-GKPW-TF-05" in listed.text
    r = console.client.post(
        "/devices/vision",
        data={"csrf": csrf_of(listed.text), "device_id": str(dev.id), "stream_url": "rtsp://10.20.5.64/h264"},
    )
    assert r.status_code == 200 and "rtsp://10.20.5.64/h264" in r.text
