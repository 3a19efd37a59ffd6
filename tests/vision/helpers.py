"""Throw detection test data: a falling object's detection, frames of a facade with the object in them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from linli.vision.detector import Detection
from linli.vision.evidence import FrameRing

FPS = 25.0
G_PX = 9.81 * 30.0  # gravity in px/s² on a facade of about 30 px per metre


def falling(
    *, start_frame: int = 50, frames: int = 30, x0: float = 1000.0, y0: float = 300.0, floor: int | None = 13
) -> Detection:
    """A detection of an object dropped at (x0, y0), falling under gravity with a small sideways push."""
    trajectory = []
    for k in range(frames):
        t = k / FPS
        trajectory.append((start_frame + k, x0 + 40.0 * t, y0 + 0.5 * G_PX * t * t))
    return Detection(
        start_frame=start_frame,
        end_frame=start_frame + frames - 1,
        start_time=start_frame / FPS,
        origin=(x0, y0),
        floor=floor,
        floor_uncertainty=0.4,
        column=4 if floor is not None else None,
        trajectory=trajectory,
        confidence=0.91,
        size_px=9.0,
    )


def facade_frame(
    index: int, detection: Detection | None = None, size: tuple[int, int] = (1920, 1080)
) -> np.ndarray:
    """A grey facade with rows of windows, and the falling object where the detection saw it at index."""
    width, height = size
    frame = np.full((height, width, 3), 120, dtype=np.uint8)
    for row in range(60, height - 60, 52):
        for col in range(500, 1420, 80):
            cv2.rectangle(frame, (col, row), (col + 40, row + 30), (70, 80, 90), -1)
    if detection is not None:
        for f, x, y in detection.trajectory:
            if f == index:
                cv2.circle(frame, (round(x), round(y)), 5, (30, 30, 30), -1)
    return frame


def filled_ring(detection: Detection, *, until: int, at: datetime | None = None) -> FrameRing:
    """A ring that has seen every frame of a stream up to until, with the detection's object in them."""
    ring = FrameRing(fps=FPS)
    t0 = at or datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    for index in range(until + 1):
        ring.push(index, facade_frame(index, detection), t0 + timedelta(seconds=index / FPS))
    return ring


def write_clip(
    path: Path, *, seconds: float = 6.0, drop_at: float | None = 1.6, bird: bool = False, size=(1920, 1080)
) -> Path:
    """An MP4 of the facade: an object dropped from (1000, 300) at drop_at under the facade's gravity
    (18 floors of 3 m between y 1000 and 90 make g ≈ 165 px/s²), and optionally a bird gliding across."""
    width, height = size
    g = 9.81 * (910 / 18) / 3.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (width, height))
    background = facade_frame(-1, size=size)
    rng = np.random.default_rng(5)
    noises = [rng.integers(-3, 4, size=background.shape, dtype=np.int16) for _ in range(4)]
    for index in range(int(seconds * FPS)):
        frame = background.copy()
        t = index / FPS
        if drop_at is not None and t >= drop_at:
            dt = t - drop_at
            x, y = 1000 + 25 * dt, 300 + 0.5 * g * dt * dt
            if y < height:
                cv2.circle(frame, (round(x), round(y)), 5, (25, 25, 25), -1, cv2.LINE_AA)
        if bird:
            bx, by = 200 + 260 * t, 420 + 40 * np.sin(2 * np.pi * 0.8 * t)
            cv2.ellipse(frame, (round(bx), round(by)), (9, 3), 0, 0, 360, (35, 35, 35), -1, cv2.LINE_AA)
        noisy = frame.astype(np.int16) + noises[index % len(noises)]  # sensor noise
        writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    writer.release()
    return path
