"""Throw detection's service: cameras, calibration, reference frames, states, detections reaching the hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from linli.core import media
from linli.core.errors import Forbidden, Invalid, NotFound
from linli.devices.models import StoredEvent
from linli.vision import evidence, service
from linli.vision.calibration import CalibrationError
from tests.devices.helpers import device
from tests.vision.conftest import facade
from tests.vision.helpers import FPS, facade_frame, falling, filled_ring

NOW = datetime(2026, 3, 5, 8, 31, tzinfo=UTC)


def _events(session, device_id: int, type_: str) -> list[StoredEvent]:  # type: ignore[no-untyped-def]
    stmt = select(StoredEvent).where(StoredEvent.device_id == device_id, StoredEvent.type == type_)
    return list(session.scalars(stmt.order_by(StoredEvent.id)))


def test_only_cameras_can_be_watched(session, world, system) -> None:  # type: ignore[no-untyped-def]
    gate, _ = device(session, world.tianfu, serial="DS-TCG227-TF-X", kind="plate_gate")
    with pytest.raises(Invalid) as exc:
        service.configure(session, system, device_id=gate.id)
    assert exc.value.field == "device"


def test_stream_url_is_checked_and_its_password_never_shown(throw_camera, session, system) -> None:  # type: ignore[no-untyped-def]
    dev, camera = throw_camera
    assert camera.stream_url.endswith("/Streaming/Channels/101")
    assert service.shown_url(camera.stream_url) == "rtsp://admin:***@10.20.3.64:554/Streaming/Channels/101"
    with pytest.raises(Invalid) as exc:
        service.configure(session, system, device_id=dev.id, stream_url="ftp://10.0.0.1/cam")
    assert exc.value.field == "stream_url"


def test_calibration_is_validated_naming_the_field(throw_camera, session, system) -> None:  # type: ignore[no-untyped-def]
    _, camera = throw_camera
    good = facade(floors=24, columns=8).to_json() | {"sensitivity": 0.7}
    saved = service.save_calibration(session, system, camera_id=camera.id, data=good)
    assert len(saved.calibration["floor_lines"]) == 25 and saved.sensitivity == 0.7
    crossed = good | {
        "floor_lines": [good["floor_lines"][1], good["floor_lines"][0], *good["floor_lines"][2:]]
    }
    with pytest.raises(CalibrationError) as exc:
        service.save_calibration(session, system, camera_id=camera.id, data=crossed)
    assert exc.value.field == "floor_lines[1]"
    assert camera.calibration == saved.calibration  # the bad one was not stored
    with pytest.raises(CalibrationError) as exc:
        service.save_calibration(session, system, camera_id=camera.id, data=good | {"columns": [700, 600]})
    assert exc.value.field == "columns[1]"


def test_calibration_must_match_the_reference_frame(throw_camera, session, system) -> None:  # type: ignore[no-untyped-def]
    _, camera = throw_camera
    _, jpeg = cv2.imencode(".jpg", facade_frame(0, size=(1280, 720)))
    service.store_reference_frame(
        session, system, camera=camera, jpeg=jpeg.tobytes(), width=1280, height=720, now=NOW
    )
    assert media.get(session, camera.reference_frame) is not None
    with pytest.raises(CalibrationError) as exc:
        service.save_calibration(session, system, camera_id=camera.id, data=facade().to_json())
    assert exc.value.field == "width"
    fitted = service.save_calibration(session, system, camera_id=camera.id, data=facade(1280, 720).to_json())
    assert fitted.calibration["width"] == 1280


def test_a_detection_reaches_the_hub_with_its_evidence(throw_camera, session) -> None:  # type: ignore[no-untyped-def]
    dev, camera = throw_camera
    detection = falling()
    ring = filled_ring(detection, until=detection.end_frame + 50)
    proof = service.Evidence(keyframe=evidence.keyframe(ring, detection), clip=evidence.clip(ring, detection))
    started = NOW - timedelta(seconds=30)
    row = service.record_detection(
        session,
        camera=camera,
        device=dev,
        detection=detection,
        started_at=started,
        fps=FPS,
        evidence=proof,
        now=NOW,
    )
    [event] = _events(session, dev.id, "throw.detected")
    assert row.event_id == event.id and event.source == "linli.vision"
    assert event.occurred_at.replace(tzinfo=UTC) == started
    payload = event.payload
    assert payload["floor"] == 13 and payload["column"] == 4 and payload["floor_uncertainty"] == 0.4
    assert (
        payload["confidence"] == 0.91 and payload["origin"] == [1000.0, 300.0] and payload["size_px"] == 9.0
    )
    assert payload["image_size"] == [1920, 1080]
    assert len(payload["trajectory"]) == 30
    assert payload["trajectory"][0] == [0.0, 1000.0, 300.0]
    assert payload["trajectory"][-1][0] == pytest.approx(29 / FPS)
    kinds = {m["label"]: m for m in event.media}
    assert (
        kinds["keyframe"]["content_type"] == "image/jpeg"
        and kinds["evidence"]["content_type"] == "video/webm"
    )
    assert kinds["keyframe"]["ref"] == row.keyframe_ref and kinds["evidence"]["ref"] == row.clip_ref
    for key in (row.keyframe_ref, row.clip_ref):
        stored = media.get(session, key)
        assert stored is not None and stored.area_code == camera.area_code and stored.claimed_at is not None
    again = service.record_detection(
        session,
        camera=camera,
        device=dev,
        detection=detection,
        started_at=started,
        fps=FPS,
        evidence=proof,
        now=NOW,
    )
    assert again.id == row.id and len(_events(session, dev.id, "throw.detected")) == 1


def test_evidence_clip_and_key_frame_show_the_object(throw_camera, tmp_path) -> None:  # type: ignore[no-untyped-def]
    detection = falling(start_frame=60, frames=25)
    ring = filled_ring(detection, until=detection.end_frame + 60)
    key = evidence.keyframe(ring, detection)
    assert key is not None and key[:3] == b"\xff\xd8\xff"
    image = cv2.imdecode(np.frombuffer(key, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)  # the ring's size
    ox, oy = round(1000 * ring.scale), round(300 * ring.scale)  # type: ignore[operator]
    b, g, r = image[oy - 14, ox].tolist()  # on the yellow circle marking the origin
    assert r > 180 and g > 150 and b < 100, (b, g, r)
    clip = evidence.clip(ring, detection)
    assert clip is not None and media.sniff(clip) == "video/webm"
    path = tmp_path / "evidence.webm"
    path.write_bytes(clip)
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    # 2 s before + 1 s of fall + 2 s after, at the ring's 12.5 frames a second
    assert frames == pytest.approx((2 * FPS + 25 + 2 * FPS) / ring.step, abs=2)


def test_camera_states_raise_and_clear_alarms(throw_camera, session) -> None:  # type: ignore[no-untyped-def]
    dev, camera = throw_camera
    at = NOW
    assert service.set_state(session, camera=camera, device=dev, state="ok", reason="", now=at)
    assert _events(session, dev.id, "alarm.raised") == []  # first sight of a good picture: nothing to say
    service.set_state(session, camera=camera, device=dev, state="moved", reason="画面偏移约 40 像素", now=at)
    service.set_state(session, camera=camera, device=dev, state="moved", reason="画面偏移约 41 像素", now=at)
    [raised] = _events(session, dev.id, "alarm.raised")
    assert raised.payload["alarm"] == "scene_change" and "40 像素" in raised.payload["detail"]
    assert camera.state == "moved" and camera.state_reason == "画面偏移约 41 像素"
    service.set_state(
        session, camera=camera, device=dev, state="frozen", reason="", now=at + timedelta(seconds=1)
    )
    service.set_state(
        session, camera=camera, device=dev, state="no_signal", reason="", now=at + timedelta(seconds=2)
    )
    service.set_state(
        session, camera=camera, device=dev, state="ok", reason="", now=at + timedelta(seconds=3)
    )
    raised = [e.payload["alarm"] for e in _events(session, dev.id, "alarm.raised")]
    cleared = [e.payload["alarm"] for e in _events(session, dev.id, "alarm.cleared")]
    assert raised == ["scene_change", "video_loss"]  # frozen → no signal is the same video loss
    assert cleared == ["scene_change", "video_loss"]
    with pytest.raises(ValueError):
        service.set_state(session, camera=camera, device=dev, state="sleepy", reason="", now=at)


def test_heartbeats_keep_the_camera_online(throw_camera, session) -> None:  # type: ignore[no-untyped-def]
    dev, camera = throw_camera
    assert not dev.online
    camera.state = "ok"
    service.heartbeat(session, camera=camera, device=dev, now=datetime.now(UTC))
    assert dev.online
    [beat] = _events(session, dev.id, "device.heartbeat")
    assert beat.payload["status"] == "vision ok"
    assert len(_events(session, dev.id, "device.online")) == 1


def test_cameras_are_scoped_to_the_callers_community(throw_camera, session, as_user) -> None:  # type: ignore[no-untyped-def]
    _, camera = throw_camera
    worker = as_user("shequ")
    assert [c.id for c in service.get_all(session, worker)] == [camera.id]
    other = as_user("shequ2")
    assert service.get_all(session, other) == []
    with pytest.raises(NotFound):
        service.get_or_raise(session, camera_id=camera.id)
    with pytest.raises(NotFound):
        service.save_calibration(session, other, camera_id=camera.id, data=facade().to_json())


def test_residents_cannot_list_cameras(throw_camera, session, as_user) -> None:  # type: ignore[no-untyped-def]
    resident = as_user("jumin")
    with pytest.raises(Forbidden):
        service.get_all(session, resident)
