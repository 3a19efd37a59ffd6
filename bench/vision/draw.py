"""Drawing helpers shared by the thrown objects and the distractors: anti-aliased, motion-blurred blending."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

SUPERSAMPLE = 4  # shapes are drawn at 4× and averaged down: sub-pixel positions, soft edges


def blend_shapes(
    frame: np.ndarray,
    samples: list[list[np.ndarray]],
    colour: tuple[float, ...],
    *,
    opacity: float = 1.0,
    blur: float = 0.0,
) -> None:
    """Blend `colour` into `frame` in place with the coverage of the shapes averaged over the samples.

    Each sample is one instant of the exposure and is the union of its polygons (image px, float); averaging
    the samples smears a moving shape along its path (motion blur). `blur` softens it (out of focus).
    """
    allp = np.concatenate([p for sample in samples for p in sample])
    pad = 2 + math.ceil(3 * blur)
    h, w = frame.shape[:2]
    x0 = max(math.floor(allp[:, 0].min()) - pad, 0)
    y0 = max(math.floor(allp[:, 1].min()) - pad, 0)
    x1 = min(math.ceil(allp[:, 0].max()) + pad, w)
    y1 = min(math.ceil(allp[:, 1].max()) + pad, h)
    if x1 <= x0 or y1 <= y0:
        return
    s = SUPERSAMPLE if (x1 - x0) * (y1 - y0) < 250_000 else 1
    acc = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.float32)
    tmp = np.zeros(acc.shape, np.uint8)
    for sample in samples:
        tmp[:] = 0
        # Supersampled pixel i shows frame x = x0 + (i - (s - 1) / 2) / s: keeps the averaged pixels centred.
        fixed = [np.round(((p - (x0, y0)) * s + (s - 1) / 2) * 16).astype(np.int32) for p in sample]
        cv2.fillPoly(tmp, fixed, 255, lineType=cv2.LINE_8, shift=4)
        acc += tmp
    alpha = acc if s == 1 else cv2.resize(acc, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    alpha *= opacity / (255.0 * len(samples))
    if blur > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
    roi = frame[y0:y1, x0:x1]
    paint: Any
    if roi.ndim == 3:
        a = alpha[:, :, None]
        paint = np.array(colour[:3] if len(colour) >= 3 else colour * 3, np.float32)
    else:
        a = alpha
        paint = np.float32(colour[0] if len(colour) == 1 else _grey(colour))
    roi[:] = (roi * (1 - a) + paint * a + 0.5).astype(np.uint8)


def _grey(colour: tuple[float, ...]) -> float:
    b, g, r = colour[:3]
    return 0.114 * b + 0.587 * g + 0.299 * r


def ellipse(cx: float, cy: float, ax: float, ay: float, angle: float, n: int = 14) -> np.ndarray:
    """An ellipse as a polygon (float px), `angle` in radians."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = math.cos(angle), math.sin(angle)
    x, y = ax * np.cos(t), ay * np.sin(t)
    return np.stack([cx + x * c - y * s, cy + x * s + y * c], axis=1)


def sub_positions(
    xs: np.ndarray, ys: np.ndarray, k: int, exposure_frames: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positions during frame k's exposure from per-frame positions (linear in between), enough to smear."""
    n = len(xs)
    span = (
        math.hypot(
            float(xs[min(k + 1, n - 1)] - xs[max(k - 1, 0)]), float(ys[min(k + 1, n - 1)] - ys[max(k - 1, 0)])
        )
        * exposure_frames
        / 2
    )
    m = int(min(8, max(1, math.ceil(span / 1.5))))
    ts = k + exposure_frames * (np.arange(m) / max(m - 1, 1) - 0.5) if m > 1 else np.array([float(k)])
    idx = np.arange(n, dtype=float)
    return np.interp(ts, idx, xs), np.interp(ts, idx, ys)
