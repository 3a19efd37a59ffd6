"""Candidate tracks across frames: predicted-position nearest-neighbour association with gating.

Pure numpy. Blobs come in full-resolution pixels; each track predicts where it will be next (constant
velocity, then constant acceleration once it has three points) and takes the nearest blob inside its gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

WEAK_AFTER = 4  # points a track needs before a weak blob may continue it
WEAK_GATE = 0.6  # share of the gate a weak blob must lie within
WEAK_LAST = 1e6  # added to a weak blob's distance: a track takes one only when no strong blob is left for it
SIZE_MISMATCH = 2.5  # a blob more than this many times larger or smaller than a track's is taken last


@dataclass
class Track:
    """One candidate object followed across frames."""

    id: int
    points: list[tuple[int, float, float]] = field(default_factory=list)  # (frame, x, y)
    sizes: list[float] = field(default_factory=list)
    misses: int = 0
    reported: bool = False
    _model: tuple[int, int, float, float, float, float, float, float, float, int] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def last_frame(self) -> int:
        """Frame of the latest point."""
        return self.points[-1][0]

    def predict(self, frame: int, *, gravity_px_per_frame2: float) -> tuple[float, float, float]:
        """Predicted (x, y) at `frame` and the gate radius around it."""
        if self._model is None or self._model[0] != len(self.points):
            self._model = self._motion()
        _, f1, x1, y1, vx, vy, ax, ay, size, kind = self._model
        dt = frame - f1
        if kind == 1:
            # Any direction, but a falling object most likely moves down.
            return x1, y1 + gravity_px_per_frame2 * dt * dt, min(3.0 * size, 48.0) + 18.0 + 6.0 * dt
        speed = math.hypot(vx, vy)
        if kind == 2:
            return (x1 + vx * dt, y1 + vy * dt + gravity_px_per_frame2 * dt * dt,
                    min(2.0 * size, 32.0) + 8.0 + 0.5 * speed * dt)  # fmt: skip
        px = x1 + vx * dt + 0.5 * ax * dt * dt
        py = y1 + vy * dt + 0.5 * ay * dt * dt
        return px, py, min(1.5 * size, 24.0) + 5.0 + 0.25 * speed * dt + 1.5 * (dt - 1)

    @property
    def size(self) -> float:
        """The blob size of its recent points (median of the last five)."""
        recent = sorted(self.sizes[-5:])
        return recent[len(recent) // 2]

    def _motion(self) -> tuple[int, int, float, float, float, float, float, float, float, int]:
        """Last position, velocity and acceleration (per frame) from up to seven recent points.

        A parabola through three of them (the latest, one from the middle, the oldest): cheap, and spread
        over several frames so that a pixel of jitter does not swing the prediction.
        """
        pts = self.points
        n = len(pts)
        size = sorted(self.sizes[-5:])[len(self.sizes[-5:]) // 2]
        f1, x1, y1 = pts[-1]
        if n == 1:
            return (n, f1, x1, y1, 0.0, 0.0, 0.0, 0.0, size, 1)
        if n < 4:
            f0, x0, y0 = pts[-2]
            return (n, f1, x1, y1, (x1 - x0) / (f1 - f0), (y1 - y0) / (f1 - f0), 0.0, 0.0, size, 2)
        recent = pts[-7:]
        (ta, xa, ya), (tb, xb, yb) = recent[0], recent[len(recent) // 2]
        tc = f1
        dab, dac, dbc = ta - tb, ta - tc, tb - tc
        wa, wb, wc = 1.0 / (dab * dac), -1.0 / (dab * dbc), 1.0 / (dac * dbc)
        # Derivatives at tc of the Lagrange parabola through a, b, c.
        da, db, dc = wa * (tc - tb), wb * (tc - ta), wc * (2 * tc - ta - tb)
        vx, vy = da * xa + db * xb + dc * x1, da * ya + db * yb + dc * y1
        ax, ay = 2 * (wa * xa + wb * xb + wc * x1), 2 * (wa * ya + wb * yb + wc * y1)
        return (n, f1, x1, y1, vx, vy, ax, ay, size, 3)


class Tracker:
    """Keeps the open tracks, associates each frame's blobs and closes tracks that lost their object."""

    def __init__(self, *, max_misses: int, max_tracks: int = 400) -> None:
        self.max_misses = max_misses
        self.max_tracks = max_tracks
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, frame: int, blobs: np.ndarray, *, gravity_px_per_frame2: float) -> list[Track]:
        """Associate blobs (rows x, y, size[, strong]) with tracks; return the tracks closed at this frame.

        A weak blob (strong = 0: a faint speck that could be noise) only continues a track already
        followed for WEAK_AFTER points, close to where it is predicted; it never starts one.
        """
        tracks = self.tracks
        taken_blob = np.zeros(len(blobs), dtype=bool)
        weak = (
            blobs[:, 3] == 0 if blobs.ndim == 2 and blobs.shape[1] > 3 else np.zeros(len(blobs), dtype=bool)
        )
        if tracks and len(blobs):
            preds = np.array([t.predict(frame, gravity_px_per_frame2=gravity_px_per_frame2) for t in tracks])
            d = np.hypot(blobs[None, :, 0] - preds[:, None, 0], blobs[None, :, 1] - preds[:, None, 1])
            d[d > preds[:, 2:3]] = np.inf
            if weak.any():
                young = np.array([len(t.points) < WEAK_AFTER for t in tracks])
                d[np.ix_(young, weak)] = np.inf
                d[:, weak] = np.where(d[:, weak] > WEAK_GATE * preds[:, 2:3], np.inf, d[:, weak] + WEAK_LAST)
            # One object keeps roughly its blob size: a blob of a very different size (a rain drop's for a
            # flower pot, or the flower pot's for a rain drop's track) goes to a track only when nothing
            # closer in size is left for it, so two things crossing keep their own blobs.
            sizes = np.array([t.size for t in tracks])
            ratio = blobs[None, :, 2] / np.maximum(sizes[:, None], 1.0)
            d[((ratio > SIZE_MISMATCH) | (ratio < 1.0 / SIZE_MISMATCH)) & ~weak[None, :]] += WEAK_LAST
            # Greedy: the closest pairs first (every strong blob of a fitting size before any other), each
            # track and blob used once.
            finite = np.flatnonzero(np.isfinite(d))
            order = finite[np.argsort(d.flat[finite], kind="stable")]
            taken_track = np.zeros(len(tracks), dtype=bool)
            for flat in order:
                ti, bi = divmod(int(flat), len(blobs))
                if taken_track[ti] or taken_blob[bi]:
                    continue
                taken_track[ti] = taken_blob[bi] = True
                bx, by, bs = blobs[bi][:3]
                tracks[ti].points.append((frame, float(bx), float(by)))
                tracks[ti].sizes.append(float(bs))
                tracks[ti].misses = 0
        closed: list[Track] = []
        still: list[Track] = []
        for t in tracks:
            if t.last_frame != frame:
                t.misses += 1
            (closed if t.misses > self.max_misses else still).append(t)
        for free in np.flatnonzero(~taken_blob & ~weak):
            if len(still) >= self.max_tracks:
                break
            bx, by, bs = blobs[free][:3]
            still.append(Track(self._next_id, [(frame, float(bx), float(by))], [float(bs)]))
            self._next_id += 1
        self.tracks = still
        return closed

    def close_all(self) -> list[Track]:
        """End every open track (end of stream)."""
        closed, self.tracks = self.tracks, []
        return closed
