"""What the runner's evidence ring costs next to the detector: time per 1080p frame, and memory.

Prints, for a 1080p 25 fps facade clip with one falling object: the detector alone (frames per second on
one core), the ring alone (ms per frame: shrink to 640 px and JPEG every second frame), both together, the
ring's memory for the 13 s it keeps, and the time to render one detection's evidence (key frame + clip).
Run: .venv/bin/python bench/vision_evidence.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.vision.conftest import facade
from tests.vision.helpers import write_clip

from linli.vision import evidence
from linli.vision.detector import Detector
from linli.vision.evidence import FrameRing


def _frames(path: Path) -> list:  # type: ignore[type-arg]
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def main() -> None:
    """Measure and print."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        frames = _frames(write_clip(Path(tmp) / "drop.mp4", seconds=10.0))
    now = datetime.now(UTC)
    runs = {}
    for name, use_detector, use_ring in (
        ("detector", True, False),
        ("ring", False, True),
        ("both", True, True),
    ):
        detector = Detector(facade(), fps=25.0)
        ring = FrameRing(fps=25.0, seconds=13.0)
        found = []
        started = time.perf_counter()
        for index, frame in enumerate(frames):
            if use_ring:
                ring.push(index, frame, now)
            if use_detector:
                found += detector.feed(frame, index)
        seconds = time.perf_counter() - started
        runs[name] = (seconds, ring, found)
        print(
            f"{name:9s} {len(frames) / seconds:7.1f} frames/s  {1000 * seconds / len(frames):6.2f} ms/frame"
        )
    _, ring, found = runs["both"]
    slow = runs["both"][0] / runs["detector"][0]
    print(f"ring memory for {len(ring.frames)} kept frames: {ring.nbytes() / 1e6:.1f} MB")
    print(f"detector + ring vs detector alone: {slow:.2f}x the time")
    found += Detector(facade(), fps=25.0).flush()
    if found:
        started = time.perf_counter()
        key, clip = evidence.keyframe(ring, found[0]), evidence.clip(ring, found[0])
        print(
            f"evidence of one detection: {1000 * (time.perf_counter() - started):.0f} ms "
            f"(key frame {len(key or b'') / 1e3:.0f} kB, clip {len(clip or b'') / 1e3:.0f} kB)"
        )


if __name__ == "__main__":
    main()
