"""Evidence of a detection: a ring buffer of recent frames per stream, then a clip and a key frame.

The ring keeps small JPEG copies (640 px wide, about 12 frames a second) rather than raw frames: ten
seconds of 1080p BGR would be 600 MB per stream, the JPEGs are a few MB, and shrinking plus encoding a
frame costs a few milliseconds (bench/vision_evidence.py measures it). The clip is VP8 WebM, which
opencv-python-headless can write and every browser plays; trajectory and origin are drawn on it.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np

CLIP_TYPE = "video/webm"
RED = (40, 40, 230)
YELLOW = (0, 220, 255)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Kept:
    """One frame in the ring: its index in the stream, when it was read, and its small JPEG."""

    index: int
    at: datetime
    jpeg: bytes


class FrameRing:
    """The last `seconds` of a stream as small JPEGs, thinned to about `keep_fps` frames a second."""

    def __init__(
        self,
        *,
        fps: float,
        seconds: float = 12.0,
        width: int = 640,
        keep_fps: float = 12.5,
        quality: int = 75,
    ) -> None:
        self.fps = fps if fps > 0 else 25.0
        self.step = max(1, round(self.fps / keep_fps))
        self.width = width
        self.quality = quality
        self.scale: float | None = None  # small / full resolution, known from the first frame
        self.frames: deque[Kept] = deque(maxlen=max(2, int(seconds * self.fps / self.step)))

    @property
    def clip_fps(self) -> float:
        """Frames per second of a clip cut from the ring."""
        return self.fps / self.step

    def push(self, index: int, frame: np.ndarray, at: datetime) -> None:
        """Keep a small copy of frame if it is one of the frames the ring keeps."""
        if index % self.step:
            return
        height, width = frame.shape[:2]
        if self.scale is None:
            self.scale = min(1.0, self.width / width)
        small = frame
        if self.scale < 1.0:
            size = (round(width * self.scale), round(height * self.scale))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)  # AREA costs 5x more
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            self.frames.append(Kept(index, at, jpeg.tobytes()))

    def between(self, first: int, last: int) -> list[Kept]:
        """The kept frames with first <= index <= last, in order."""
        return [k for k in self.frames if first <= k.index <= last]

    def time_of(self, index: int) -> datetime | None:
        """When the kept frame nearest to index (at or before it, else after) was read."""
        before = [k for k in self.frames if k.index <= index]
        if before:
            return before[-1].at
        return self.frames[0].at if self.frames else None

    def nbytes(self) -> int:
        """Memory the JPEGs take."""
        return sum(len(k.jpeg) for k in self.frames)


def _points(detection: Any, scale: float) -> list[tuple[int, int, int]]:
    return [(int(f), round(x * scale), round(y * scale)) for f, x, y in detection.trajectory]


def _label(detection: Any) -> str:
    # putText draws ASCII only; the console shows the Chinese wording next to the picture.
    if detection.floor is None:
        return "floor ?"
    text = f"F{detection.floor}"
    if detection.floor_uncertainty:
        text += f" +-{detection.floor_uncertainty:.1f}"
    if detection.column is not None:
        text += f" C{detection.column}"
    return text


def draw(image: np.ndarray, detection: Any, scale: float, *, upto: int | None = None) -> np.ndarray:
    """The trajectory (up to frame upto) and the origin with its floor and column, drawn on image."""
    points = [(x, y) for f, x, y in _points(detection, scale) if upto is None or f <= upto]
    if len(points) > 1:
        cv2.polylines(image, [np.array(points, dtype=np.int32)], False, RED, 2, cv2.LINE_AA)
    if points:
        cv2.circle(image, points[-1], 5, RED, -1, cv2.LINE_AA)
    ox, oy = round(detection.origin[0] * scale), round(detection.origin[1] * scale)
    cv2.circle(image, (ox, oy), 14, YELLOW, 2, cv2.LINE_AA)
    text = _label(detection)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    left = min(ox + 18, image.shape[1] - tw - 6)
    top = min(max(oy - th - 8, 2), image.shape[0] - th - base - 6)
    cv2.rectangle(image, (left - 3, top), (left + tw + 3, top + th + base + 4), (0, 0, 0), -1)
    cv2.putText(image, text, (left, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, YELLOW, 1, cv2.LINE_AA)
    return image


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # the ring only holds JPEGs it encoded itself
        raise ValueError("unreadable JPEG in the frame ring")
    return image


def keyframe(ring: FrameRing, detection: Any) -> bytes | None:
    """A JPEG of the frame where the object was first seen, with its whole path and origin marked."""
    kept = ring.between(detection.start_frame - ring.step, detection.end_frame) or list(ring.frames)
    if not kept or ring.scale is None:
        return None
    first = min(kept, key=lambda k: abs(k.index - detection.start_frame))
    image = draw(_decode(first.jpeg), detection, ring.scale)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpeg.tobytes() if ok else None


def clip(ring: FrameRing, detection: Any, *, before_s: float = 2.0, after_s: float = 2.0) -> bytes | None:
    """A WebM clip from before_s before the object appeared to after_s after it was last seen."""
    first = detection.start_frame - round(before_s * ring.fps)
    last = detection.end_frame + round(after_s * ring.fps)
    kept = ring.between(first, last)
    if len(kept) < 2 or ring.scale is None:
        return None
    images = [draw(_decode(k.jpeg), detection, ring.scale, upto=k.index) for k in kept]
    height, width = images[0].shape[:2]
    fd, name = tempfile.mkstemp(suffix=".webm", prefix="linli-evidence-")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(name, cv2.VideoWriter.fourcc(*"VP80"), ring.clip_fps, (width, height))
        if not writer.isOpened():
            return None
        for image in images:
            writer.write(image)
        writer.release()
        with open(name, "rb") as handle:
            data = handle.read()
        return data or None
    finally:
        os.unlink(name)


def frames_needed_after(ring: FrameRing, *, after_s: float = 2.0) -> int:
    """How many frames past a detection's end the runner waits before cutting its clip."""
    return round(after_s * ring.fps)
