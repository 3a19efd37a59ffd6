"""Small synthetic scenes for the detector tests: a facade picture with noise and things moving over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from linli.vision.calibration import Calibration

W, H = 640, 480  # small frames keep the tests fast; the pipeline sees them as a low-resolution camera
FLOORS = 12
TOP_Y, BOTTOM_Y = 20.0, 460.0  # roof and ground lines: 36.7 px per floor, 12.2 px per metre


def calibration(**kw: Any) -> Calibration:
    """The scene's calibration: horizontal floor lines, 6 window columns."""
    return Calibration.from_simple(
        width=W,
        height=H,
        top_line=((40.0, TOP_Y), (600.0, TOP_Y)),
        bottom_line=((40.0, BOTTOM_Y), (600.0, BOTTOM_Y)),
        floors=FLOORS,
        columns=6,
        **kw,
    )


def floor_y(floor: float) -> float:
    """Image y of a (fractional) floor position: 0 ground line, 12 roof line."""
    return BOTTOM_Y - (BOTTOM_Y - TOP_Y) * floor / FLOORS


def facade(rng: np.random.Generator) -> np.ndarray:
    """A grey facade with darker windows, BGR."""
    img = np.full((H, W), 150, np.uint8)
    step = (BOTTOM_Y - TOP_Y) / FLOORS
    for f in range(FLOORS):
        for c in range(6):
            x0 = int(40 + c * 560 / 6 + 25)
            y0 = int(TOP_Y + f * step + 8)
            img[y0 : y0 + 18, x0 : x0 + 40] = rng.integers(60, 110)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


Painter = Callable[[np.ndarray, int], None]


def frames(
    n: int,
    *,
    painters: Sequence[Painter] = (),
    noise: float = 2.0,
    seed: int = 1,
    base: np.ndarray | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """n frames of the facade with sensor noise; each painter draws its object on frame i."""
    rng = np.random.default_rng(seed)
    background = facade(rng) if base is None else base
    for i in range(n):
        img = background.astype(np.int16)
        if noise:
            img += rng.normal(0, noise, (H, W, 1)).astype(np.int16)
        out = np.clip(img, 0, 255).astype(np.uint8)
        for paint in painters:
            paint(out, i)
        yield i, out


def falling(
    *, start: int, x0: float, y0: float, vx: float = 0.0, vy: float = 0.0, px_per_m: float = 440 / 12 / 3.0,
    fps: float = 25.0, radius: int = 3, colour: int = 30, accel_scale: float = 1.0,
) -> Painter:  # fmt: skip
    """A dark disc released at (x0, y0) on frame `start`, falling under gravity in image space."""

    def paint(img: np.ndarray, i: int) -> None:
        if i < start:
            cv2.circle(img, (round(x0), round(y0)), radius, (colour,) * 3, -1)
            return
        t = (i - start) / fps
        x = x0 + vx * t
        y = y0 + vy * t + 0.5 * 9.81 * accel_scale * px_per_m * t * t
        if y < H + radius:
            cv2.circle(img, (round(x), round(y)), radius, (colour,) * 3, -1)

    return paint


def path_painter(
    path: Callable[[int], tuple[float, float] | None], *, radius: int = 3, colour: int = 30
) -> Painter:
    """A disc following any path (None: not visible)."""

    def paint(img: np.ndarray, i: int) -> None:
        p = path(i)
        if p is not None:
            cv2.circle(img, (round(p[0]), round(p[1])), radius, (colour,) * 3, -1)

    return paint
