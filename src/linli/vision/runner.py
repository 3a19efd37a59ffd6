"""`linli vision run`: streams read and judged in their own threads, results stored by one writer thread.

Each stream thread reads frames (linli.vision.source), keeps a ring of small JPEG copies for evidence and
feeds the detector. It never waits for the database or for clip encoding: detections (with a copy of the
ring's frames around them), state changes and heartbeats go on a queue that one writer thread drains,
rendering the evidence and storing each item in its own transaction, then delivering the outbox. A bad
item is logged and counted, never the end of the loop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from linli.core import media
from linli.core.bus import Bus
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import utcnow
from linli.db import unit_of_work
from linli.devices.service import MAX_AGE
from linli.vision import evidence, service
from linli.vision.calibration import Calibration
from linli.vision.detector import CameraState, Detection, Detector
from linli.vision.evidence import FrameRing, Kept
from linli.vision.source import FrameSource, is_stream

logger = logging.getLogger("linli.vision")
HEARTBEAT_S = 60.0
AFTER_S = 2.0  # evidence after the object was last seen
BEFORE_S = 2.0


@dataclass
class Stream:
    """One stream to watch: where to read it, how it is calibrated, and which camera it is (if any)."""

    source: str
    calibration: Calibration
    camera_id: int | None = None  # the vision camera; None: detections are only printed
    serial: str = ""
    reference: np.ndarray | None = None  # the still the calibration was drawn on (detects a moved camera)


@dataclass
class Tally:
    """What one stream's thread did."""

    source: str
    frames: int = 0
    detections: int = 0
    seconds: float = 0.0
    state: str = "unknown"
    reason: str = ""

    def summary(self) -> dict[str, Any]:
        """The JSON line printed for this stream."""
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        return {
            "source": self.source,
            "frames": self.frames,
            "detections": self.detections,
            "seconds": round(self.seconds, 2),
            "fps": round(fps, 1),
            "state": self.state,
            "reason": self.reason,
        }


@dataclass
class _Found:
    camera_id: int | None
    detection: Detection
    started_at: datetime
    fps: float
    frames: list[Kept]
    scale: float | None
    step: int


@dataclass
class _State:
    camera_id: int
    state: str
    reason: str
    at: datetime


@dataclass
class _Beat:
    camera_id: int
    at: datetime


@dataclass
class Writer:
    """The one thread that renders evidence and stores detections, states and heartbeats."""

    session_factory: sessionmaker[Session] | None
    bus: Bus | None
    out: Callable[[str], None] = print
    items: queue.Queue[Any] = field(default_factory=queue.Queue)
    stored: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="vision-writer", daemon=True)

    def start(self) -> None:
        """Start draining the queue."""
        self.thread.start()

    def stop(self) -> None:
        """Store what is queued, then end the thread."""
        self.items.put(None)
        self.thread.join()

    def _run(self) -> None:
        while True:
            item = self.items.get()
            if item is None:
                return
            try:
                self._handle(item)
            except Exception:  # one bad item must not stop the others
                self.failed += 1
                logger.exception("vision: could not store %s", type(item).__name__)

    def _handle(self, item: Any) -> None:
        if isinstance(item, _Found):
            proof = _render(item)
            if item.camera_id is None or self.session_factory is None:
                self.out(json.dumps(_printable(item), ensure_ascii=False))
                return
            self._store(lambda s, cam, dev: self._detection(s, cam, dev, item, proof), item.camera_id)
        elif isinstance(item, _State):
            self._store(
                lambda s, cam, dev: service.set_state(
                    s, camera=cam, device=dev, state=item.state, reason=item.reason, now=item.at
                ),
                item.camera_id,
            )
        elif isinstance(item, _Beat):
            self._store(
                lambda s, cam, dev: service.heartbeat(s, camera=cam, device=dev, now=item.at), item.camera_id
            )

    def _detection(
        self, session: Session, camera: Any, device: Any, item: _Found, proof: service.Evidence
    ) -> None:
        row = service.record_detection(
            session,
            camera=camera,
            device=device,
            detection=item.detection,
            started_at=item.started_at,
            fps=item.fps,
            evidence=proof,
            now=utcnow(),
        )
        self.out(
            json.dumps(
                {"camera": device.serial, "detection": row.id, "event": row.event_id, **_printable(item)},
                ensure_ascii=False,
            )
        )

    def _store(self, work: Callable[[Session, Any, Any], Any], camera_id: int) -> None:
        assert self.session_factory is not None
        with unit_of_work(self.session_factory) as session:
            camera = service.get_or_raise(session, camera_id=camera_id)
            work(session, camera, service.device_of(session, camera))
        self.stored += 1
        if self.bus is not None:
            deliver_outbox(self.session_factory, self.bus)


def _render(item: _Found) -> service.Evidence:
    """Key frame and clip of a detection from the frames copied out of the ring."""
    ring = FrameRing(fps=item.fps, seconds=len(item.frames) * item.step / item.fps + 1)
    ring.step, ring.scale = item.step, item.scale
    ring.frames.extend(item.frames)
    return service.Evidence(
        keyframe=evidence.keyframe(ring, item.detection),
        clip=evidence.clip(ring, item.detection, before_s=BEFORE_S, after_s=AFTER_S),
        clip_type=evidence.CLIP_TYPE,
    )


def _printable(item: _Found) -> dict[str, Any]:
    d = item.detection
    return {
        "started_at": item.started_at.isoformat(),
        "start_frame": d.start_frame,
        "end_frame": d.end_frame,
        "floor": d.floor,
        "floor_uncertainty": round(d.floor_uncertainty, 2),
        "column": d.column,
        "origin": [round(d.origin[0], 1), round(d.origin[1], 1)],
        "confidence": round(d.confidence, 3),
        "size_px": round(d.size_px, 1),
    }


def fit_calibration(calibration: Calibration, width: int, height: int) -> Calibration | None:
    """The calibration for frames of another size with the same shape (main vs sub stream); None if not."""
    if (calibration.width, calibration.height) == (width, height):
        return calibration
    sx, sy = width / calibration.width, height / calibration.height
    if abs(sx - sy) > 0.02 * max(sx, sy):
        return None
    data = calibration.to_json()

    def point(p: list[float]) -> list[float]:
        return [p[0] * sx, p[1] * sy]

    data.update(
        width=width,
        height=height,
        floor_lines=[[point(p) for p in line] for line in data["floor_lines"]],
        columns=[c * sx for c in data["columns"]],
        ignore=[[point(p) for p in poly] for poly in data["ignore"]],
        zone=None if data["zone"] is None else [point(p) for p in data["zone"]],
    )
    return Calibration.from_json(data)


def file_start(path: str, *, now: datetime) -> datetime:
    """When a recorded file's first frame was taken: its modification time minus its length.

    Re-running the same file gives the same times (so the same events, which the hub dedups); a file
    too old for the hub (or dated in the future) is taken as ending now.
    """
    capture = cv2.VideoCapture(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    finally:
        capture.release()
    length = timedelta(seconds=frames / fps if 0 < fps < 240 else 0.0)
    try:
        ended = datetime.fromtimestamp(Path(path).stat().st_mtime, tz=now.tzinfo)
    except OSError:
        ended = now
    if ended > now or ended - length < now - MAX_AGE + timedelta(hours=1):
        ended = now
    return ended - length


class Watcher:
    """One stream's thread: frames → ring and detector → queue for the writer."""

    def __init__(self, stream: Stream, writer: Writer, stop: threading.Event) -> None:
        self.stream = stream
        self.writer = writer
        self.stop = stop
        self.tally = Tally(source=service.shown_url(stream.source))
        self.thread = threading.Thread(target=self.run, name=f"vision-{stream.serial or 'file'}", daemon=True)
        self._live = is_stream(stream.source)
        self._state = ""
        self._source: FrameSource | None = None
        self._detector: Detector | None = None
        self._ring: FrameRing | None = None
        self._pending: list[Detection] = []
        self._base = utcnow()
        self._beat_at = 0.0

    def run(self) -> None:
        """Read the stream to its end (a file) or until stopped (a stream)."""
        started = time.perf_counter()
        if not self._live:
            self._base = file_start(self.stream.source, now=utcnow())
        self._source = FrameSource(self.stream.source, on_state=self._source_state, stop=self.stop)
        try:
            for index, frame in self._source:
                self._frame(index, frame)
            self._finish()
        except Exception as exc:  # report, never crash the process with the other streams in it
            logger.exception("vision: stream %s failed", self.tally.source)
            self._report(CameraState.NO_SIGNAL.value, f"处理出错：{type(exc).__name__}")
        finally:
            self.tally.seconds = time.perf_counter() - started

    def _frame(self, index: int, frame: np.ndarray) -> None:
        if self._detector is None:
            self._start_detector(frame)
            if self._detector is None:
                return
        assert self._ring is not None
        now = utcnow()
        self._ring.push(index, frame, now)
        found = self._detector.feed(frame, index)
        self.tally.frames += 1
        self._report(self._detector.state.value, self._detector.state_reason)
        self._pending.extend(found)
        wait = evidence.frames_needed_after(self._ring, after_s=AFTER_S)
        ready = [d for d in self._pending if d.end_frame + wait <= index]
        for detection in ready:
            self._pending.remove(detection)
            self._send(detection)
        if self._live and time.monotonic() - self._beat_at >= HEARTBEAT_S and self._state != "no_signal":
            self._beat_at = time.monotonic()
            if self.stream.camera_id is not None:
                self.writer.items.put(_Beat(self.stream.camera_id, now))

    def _start_detector(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        fitted = fit_calibration(self.stream.calibration, width, height)
        if fitted is None:
            cal = self.stream.calibration
            self._report(
                "moved", f"画面尺寸 {width}×{height} 与标定 {cal.width}×{cal.height} 不符，请重新标定"
            )
            return
        fps = self._source.fps if self._source is not None and self._source.fps else 25.0
        reference = self.stream.reference
        if reference is not None and reference.shape[:2] != (height, width):
            reference = cv2.resize(reference, (width, height), interpolation=cv2.INTER_AREA)
        self._detector = Detector(fitted, fps=fps, reference=reference)
        self._ring = FrameRing(fps=fps, seconds=BEFORE_S + AFTER_S + 9.0)

    def _finish(self) -> None:
        if self._detector is not None:
            self._pending.extend(self._detector.flush())
            for detection in self._pending:
                self._send(detection)
            self._pending = []

    def _send(self, detection: Detection) -> None:
        assert self._ring is not None and self._detector is not None
        fps = self._detector.fps
        if self._live:
            started = self._ring.time_of(detection.start_frame) or utcnow()
        else:
            started = self._base + timedelta(seconds=detection.start_frame / fps)
        first = detection.start_frame - round(BEFORE_S * fps)
        frames = self._ring.between(first, detection.end_frame + round(AFTER_S * fps))
        self.tally.detections += 1
        self.writer.items.put(
            _Found(self.stream.camera_id, detection, started, fps, frames, self._ring.scale, self._ring.step)
        )

    def _source_state(self, state: CameraState, reason: str) -> None:
        self._report(state.value, reason)

    def _report(self, state: str, reason: str) -> None:
        if (state, reason) == (self._state, self.tally.reason):
            return
        self._state, self.tally.state, self.tally.reason = state, state, reason
        logger.info("vision: %s is %s %s", self.tally.source, state, reason)
        if self.stream.camera_id is not None:
            self.writer.items.put(_State(self.stream.camera_id, state, reason, utcnow()))


def run(streams: list[Stream], *, writer: Writer, stop: threading.Event | None = None) -> list[Tally]:
    """Watch every stream in its own thread until files end and streams are stopped; their tallies."""
    stop = stop or threading.Event()
    watchers = [Watcher(s, writer, stop) for s in streams]
    writer.start()
    try:
        for watcher in watchers:
            watcher.thread.start()
        for watcher in watchers:
            while watcher.thread.is_alive():
                watcher.thread.join(timeout=0.5)
    finally:
        stop.set()
        writer.stop()
    return [w.tally for w in watchers]


def reference_image(camera: Any) -> np.ndarray | None:
    """The camera's stored still frame, decoded (None if it has none or the file is gone)."""
    if not camera.reference_frame:
        return None
    try:
        with media.open(camera.reference_frame) as handle:
            data = handle.read()
    except Exception:  # a missing still only means no moved-camera check against it
        return None
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
