"""The physical test of a track: does it fall like a thrown object under gravity, seen by this camera?

A falling object's image height follows y(t) = y0 + v t + ½ a t² with `a` close to g times the image scale
(pixels per metre at that height, from the calibration), a little less for drag; its x drifts slowly and
nearly linearly. Birds wander, leaves flutter and fall slowly, rain falls at constant speed, clothes
oscillate in place, lights switch without moving: each fails at least one of the checks below.
Pure numpy, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

G = 9.81  # m/s²


@dataclass(frozen=True)
class Thresholds:
    """Acceptance limits of the physical test, derived from the camera's sensitivity (0..1)."""

    min_points: int
    min_seconds: float
    min_drop_m: float
    accel_low: float  # fitted a / expected a, lower bound (drag, perspective)
    accel_high: float
    max_rms_px: float
    max_outliers: float  # share of points the robust fit may drop
    min_confidence: float

    @classmethod
    def for_sensitivity(cls, s: float, *, fps: float = 25.0) -> Thresholds:
        """Looser limits for a higher sensitivity (more detections, more false alarms).

        A track must last about half a second (0.56 s at 0.5): shorter ones are mostly chance alignments
        of shake and leaf blobs, and a real fall stays in view far longer. Nothing falls faster than g:
        the fits of the 110 real throws detected on benchmark seeds 2024, 29 and 31 reached at
        most 1.37 g, so 1.8 g at 0.5 leaves room for calibration error; a leaf seen on a few scattered
        frames, fitted at 2.04 g, was the false alarm that bound cut (seed 31, 3 h of distractors).
        """
        s = min(max(s, 0.0), 1.0)
        return cls(
            min_points=max(5, round((0.72 - 0.32 * s) * fps)),
            min_seconds=0.36 - 0.16 * s,
            min_drop_m=1.6 - 0.8 * s,
            accel_low=0.45 - 0.2 * s,
            accel_high=1.6 + 0.4 * s,
            max_rms_px=1.6 + 1.2 * s,
            max_outliers=0.15 + 0.1 * s,
            min_confidence=0.45 - 0.25 * s,
        )


@dataclass(frozen=True)
class TrackFit:
    """The verdict on one track and the fitted motion (time in seconds from the track's first point)."""

    ok: bool
    reason: str
    confidence: float
    t0_frame: int
    fps: float
    coef_x: tuple[float, ...]  # x(t) = c0 + c1 t + c2 t²
    coef_y: tuple[float, ...]  # y(t) = c0 + c1 t + c2 t² (+ c3 t³ when drag slows the fall)
    accel_ratio: float  # fitted vertical a / expected a
    rms_px: float
    inliers: int
    first_inlier: int = 0  # index of the first point the fit kept (points before it were something else)

    def position(self, t: float) -> tuple[float, float]:
        """Fitted (x, y) at time t (seconds from the first point)."""
        return (float(np.polyval(self.coef_x[::-1], t)), float(np.polyval(self.coef_y[::-1], t)))

    @property
    def apex_t(self) -> float:
        """Time of the highest point of the fitted parabola (vertical speed zero)."""
        v, c2 = self.coef_y[1], self.coef_y[2]
        return -v / (2 * c2) if c2 > 0 else 0.0


def _fit(t: np.ndarray, v: np.ndarray, weights: np.ndarray, degree: int = 2) -> np.ndarray:
    """Least-squares polynomial through (t, v) on the points whose weight is 1; coefficients c0, c1, …"""
    a = np.stack([t**k for k in range(degree + 1)], axis=1)[weights > 0]
    coef, *_ = np.linalg.lstsq(a, v[weights > 0], rcond=None)
    return coef


ENDPOINT_OUTLIERS = 2  # far points taken out one at a time before the median-based trimming


def _worst_point(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    keep: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    degree_y: int,
) -> tuple[int, float, float]:
    """The kept point farthest from the fit of the others (leave-one-out), that distance, and the others'
    robust spread (1.4826 × median leave-one-out distance); -1 when too few points remain."""
    idx = np.flatnonzero(keep > 0)
    if len(idx) < 6:
        return -1, 0.0, 0.0
    ts = t[idx]
    lev = []
    for degree in (2, degree_y):
        a = np.stack([ts**k for k in range(degree + 1)], axis=1)
        q, _ = np.linalg.qr(a)
        lev.append(np.minimum((q**2).sum(axis=1), 0.95))
    rx = (x[idx] - np.polyval(cx[::-1], ts)) / (1 - lev[0])
    ry = (y[idx] - np.polyval(cy[::-1], ts)) / (1 - lev[1])
    loo = np.hypot(rx, ry)
    j = int(np.argmax(loo))
    return int(idx[j]), float(loo[j]), 1.4826 * float(np.median(loo))


def _far_end_pair(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, keep: np.ndarray, degree_y: int
) -> np.ndarray | None:
    """The first or last two points when both lie far off the fit of all the others (farther than four
    times those others' robust leave-one-out spread, and 6 px), the farther pair if both; else None."""
    idx = np.flatnonzero(keep > 0)
    if len(idx) < 8:
        return None
    best: tuple[float, np.ndarray] | None = None
    for pair in (idx[:2], idx[-2:]):
        rest = keep.copy()
        rest[pair] = 0
        cx = _fit(t, x, rest)
        cy = _fit(t, y, rest, degree_y)
        _, _, spread = _worst_point(t, x, y, rest, cx, cy, degree_y)
        off = np.hypot(x[pair] - np.polyval(cx[::-1], t[pair]), y[pair] - np.polyval(cy[::-1], t[pair]))
        near = float(off.min())
        if near > max(4.0 * spread, 6.0) and (best is None or near > best[0]):
            best = (near, pair)
    return None if best is None else best[1]


def _robust_fit(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, *, degree_y: int = 2, endpoints: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadratic x(t), polynomial y(t), refitted without points far off (by the median deviation);
    with `endpoints`, far points with much leverage are taken out first."""
    keep = np.ones_like(t)
    cx = _fit(t, x, keep)
    cy = _fit(t, y, keep, degree_y)
    if not endpoints:
        return _trim(t, x, y, keep, cx, cy, degree_y)
    # A far point at either end (a rain drop or a leaf the tracker took before or after the object) pulls
    # a polynomial towards itself, so much that its own residual no longer shows it: the point whose
    # leave-one-out residual (residual / (1 − leverage)) is worst goes first, one at a time, while it
    # lies far off the fit of the others.
    # Two such points at one end mask each other (each bends the fit of the others towards itself): the
    # first and last pairs are tried as a whole, against the fit of the rest.
    pair = _far_end_pair(t, x, y, keep, degree_y)
    if pair is not None:
        keep = keep.copy()
        keep[pair] = 0
        cx = _fit(t, x, keep)
        cy = _fit(t, y, keep, degree_y)
    for _ in range(ENDPOINT_OUTLIERS - (0 if pair is None else len(pair))):
        worst, gap, spread = _worst_point(t, x, y, keep, cx, cy, degree_y)
        if worst < 0 or gap <= max(4.0 * spread, 6.0):
            break
        keep = keep.copy()
        keep[worst] = 0
        cx = _fit(t, x, keep)
        cy = _fit(t, y, keep, degree_y)
    return _trim(t, x, y, keep, cx, cy, degree_y)


def _trim(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    keep: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    degree_y: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refit without the points far off the fit by the median deviation, a few rounds."""
    for _ in range(4):
        res = np.hypot(x - np.polyval(cx[::-1], t), y - np.polyval(cy[::-1], t))
        limit = max(3.0 * 1.4826 * float(np.median(res)), 2.0)
        new_keep = (res <= limit).astype(float)
        if new_keep.sum() < 4 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
        cx = _fit(t, x, keep)
        cy = _fit(t, y, keep, degree_y)
    return cx, cy, keep


def _rms(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray, keep: np.ndarray
) -> float:
    """Root mean square distance of the kept points from the fitted path."""
    res = np.hypot(x - np.polyval(cx[::-1], t), y - np.polyval(cy[::-1], t))[keep > 0]
    return float(np.sqrt(np.mean(res**2)))


HEAD_SECONDS = 1.0  # a long fall slowed by drag is judged on its first second
FALL_SIZES = 2.0  # a fall is at least this many times the median blob size long
IN_PLACE_SHARE = 0.2  # a track found exactly where it was in more of its steps than this is no object
SOLID_PX = 14.0  # a blob at least this large (median) is seen in nearly every frame if it is an object:
SOLID_SHARE = 0.75  # a track of such blobs found in fewer of the frames it spans than this is no object
FRAGMENT_SHARE = 0.4  # a blob smaller than this share of the track's median size is a fragment of it
STAND_BAND_PX = 2.0  # rows: a track that starts within a band this high for longer than gravity allows


def judge_track(
    points: list[tuple[int, float, float]],
    *,
    fps: float,
    px_per_m: float,
    thresholds: Thresholds,
    size_px: float = 0.0,
    sizes: Sequence[float] | None = None,
) -> TrackFit:
    """Fit the track and decide whether it is a falling object; `px_per_m` is the image scale at the track,
    `sizes` the blob size of each point (if known: a fragment's centroid is not trusted to show a rise).

    A light object (paper, a bag) soon falls at a nearly constant speed: when the whole track fails but
    is long, its first second is judged instead, and the rest must keep going down.
    """
    fit = _judge(points, fps=fps, px_per_m=px_per_m, thresholds=thresholds, size_px=size_px, sizes=sizes)
    if fit.ok or fit.reason not in ("not_smooth", "too_slow_acceleration", "erratic"):
        return fit
    start = points[0][0]
    head = [p for p in points if p[0] - start <= HEAD_SECONDS * fps]
    if len(points) - len(head) < 0.5 * fps or len(head) < thresholds.min_points:
        return fit
    head_sizes = None if sizes is None else list(sizes)[: len(head)]
    # The head is judged without the length a fall must have against the size of the thing falling: a
    # large bag's first second may be shorter than twice its size; the whole track shows that.
    head_fit = _judge(
        head, fps=fps, px_per_m=px_per_m, thresholds=thresholds, size_px=size_px, sizes=head_sizes, long=False
    )
    if not head_fit.ok:
        return fit
    ys = np.asarray([p[2] for p in points[len(head) - 1 :]])
    steps = np.diff(ys)
    if (steps < -max(2.0, 0.5 * size_px)).sum() > max(1, 0.1 * len(steps)) or ys[-1] - ys[0] < 0:
        return fit
    if points[-1][2] - min(p[2] for p in points) < FALL_SIZES * size_px:
        return fit
    return head_fit


def _judge(
    points: list[tuple[int, float, float]],
    *,
    fps: float,
    px_per_m: float,
    thresholds: Thresholds,
    size_px: float,
    sizes: Sequence[float] | None = None,
    long: bool = True,
) -> TrackFit:
    arr = np.asarray(points, dtype=float)
    frames, x, y = arr[:, 0], arr[:, 1], arr[:, 2]
    t = (frames - frames[0]) / fps
    th = thresholds
    zero = (0.0, 0.0, 0.0)
    if len(points) < th.min_points:
        return TrackFit(False, "too_few_points", 0.0, int(frames[0]), fps, zero, zero, 0.0, 0.0, 0)
    if t[-1] < th.min_seconds:
        return TrackFit(False, "too_short", 0.0, int(frames[0]), fps, zero, zero, 0.0, 0.0, 0)
    # A solid object this large stands out of the background in nearly every frame it crosses (the
    # benchmark's throws of 14 px or more were found in at least 80 % of their frames); a track of large
    # blobs found in fewer is stitched together from something that differs from the background only
    # now and then: the edge of a cloud's shadow, a gust of rain.
    if size_px >= SOLID_PX and len(points) < SOLID_SHARE * (frames[-1] - frames[0] + 1):
        return TrackFit(False, "sparse", 0.0, int(frames[0]), fps, zero, zero, 0.0, 0.0, 0)
    # A blob seen again exactly where it was (the same pixels changed) did not move: it flickers in place
    # (an edge under camera shake, a light). A moving object's blob changes shape and place from frame to
    # frame, even near its apex; a track that is often found standing still is made of such flicker.
    if (np.hypot(np.diff(x), np.diff(y)) < 0.01).mean() > IN_PLACE_SHARE:
        return TrackFit(False, "in_place", 0.0, int(frames[0]), fps, zero, zero, 0.0, 0.0, 0)
    a_expected = G * px_per_m
    # A thrown object is not found before it moves, and once it moves it stays within a band of a few
    # rows at most as long as gravity lets it at its apex: 2·sqrt(2·band/g), up and down again. A track
    # that starts by standing longer in such a band began with something that flickers in place (an edge
    # under camera shake) and went on with something else. The benchmark's throws stood at most 0.75 of
    # that time; the shake alarms of seeds 41 and 43 stood 1.35 and 1.42 times it.
    if _standing_seconds(t, y) > 2.0 * np.sqrt(2.0 * STAND_BAND_PX / a_expected):
        return TrackFit(False, "standing", 0.0, int(frames[0]), fps, zero, zero, 0.0, 0.0, 0)
    drop = y[-1] - y.min()
    if drop < th.min_drop_m * px_per_m:
        return TrackFit(False, "no_fall", 0.0, int(frames[0]), fps, zero, zero, 0.0, 0.0, 0)
    # Centroids of blobs a few pixels across jitter by about a pixel; larger blobs by a share of their size.
    rms_limit = th.max_rms_px + min(0.15 * size_px, 6.0)
    cxa, cya, keep = _robust_fit(t, x, y)
    rms = _rms(t, x, y, cxa, cya, keep)
    if rms > rms_limit or 1 - keep.sum() / len(t) > th.max_outliers:
        # Perhaps a far point at an end bent the fit (see _robust_fit): without it, if that is better.
        cxe, cye, keepe = _robust_fit(t, x, y, endpoints=True)
        rmse = _rms(t, x, y, cxe, cye, keepe)
        if rmse < rms:
            cxa, cya, keep, rms = cxe, cye, keepe, rmse
    if rms > rms_limit and t[-1] >= 0.8:
        # Drag: a light object's fall slows its acceleration down; a cubic term takes that in, as long
        # as the acceleration only decreases and stays downward over the track.
        cxd, cyd, keepd = _robust_fit(t, x, y, degree_y=3)
        a_end = 2 * cyd[2] + 6 * cyd[3] * t[-1]
        rmsd = _rms(t, x, y, cxd, cyd, keepd)
        if cyd[3] < 0 and a_end > -0.1 * a_expected and rmsd < rms:
            cxa, cya, keep, rms = cxd, cyd, keepd, rmsd
    cx = tuple(float(c) for c in cxa)
    cy = tuple(float(c) for c in cya)
    inliers = int(keep.sum())
    ratio = 2 * cy[2] / a_expected

    def reject(reason: str) -> TrackFit:
        return TrackFit(False, reason, 0.0, int(frames[0]), fps, cx, cy, ratio, rms, inliers)

    if 1 - inliers / len(points) > th.max_outliers:
        return reject("erratic")
    if rms > rms_limit:
        return reject("not_smooth")
    # A fall is mostly downward and long against the jitter (cloud edges and birds drift sideways).
    kx, ky = x[keep > 0], y[keep > 0]  # the points the fit kept: a dropped one says nothing of the path
    drop = ky[-1] - ky.min()
    # And longer than the thing falling: the centroid of a blob that grows or shrinks (a cloud's shadow
    # spreading over the facade) moves by up to half its change in size without anything falling.
    if drop < 1.5 * abs(kx[-1] - kx[0]) or drop < 10.0 * rms or (long and drop < FALL_SIZES * size_px):
        return reject("not_a_fall")
    if ratio < th.accel_low:
        return reject("too_slow_acceleration")
    if ratio > th.accel_high:
        return reject("too_fast_acceleration")
    if abs(2 * cx[2]) > 0.6 * a_expected:
        return reject("sideways_acceleration")
    # After the apex the object only goes down: count steps that go up by more than the jitter, between
    # the points the fit kept whose blob was the object's: a blob much smaller than the track's usual one
    # is a fragment (only part of a large object registered as moving), its centroid off by up to half
    # the object's size, which is not the object rising.
    apex = -cy[1] / (2 * cy[2])
    after = (t > apex) & (keep > 0)
    if sizes is not None and len(sizes) == len(t):
        whole = np.asarray(sizes, dtype=float) >= FRAGMENT_SHARE * float(np.median(sizes))
        after &= whole
    if after.sum() >= 3:
        steps = np.diff(y[after])
        if (steps < -max(2.0, rms_limit)).sum() > max(1, 0.1 * len(steps)):
            return reject("not_monotonic")
    confidence = _confidence(ratio=ratio, rms=rms, rms_limit=rms_limit, n=inliers, th=th)
    if confidence < th.min_confidence:
        return reject("low_confidence")
    first = int(np.argmax(keep > 0))
    return TrackFit(True, "falling", confidence, int(frames[0]), fps, cx, cy, ratio, rms, inliers, first)


def _standing_seconds(t: np.ndarray, y: np.ndarray) -> float:
    """How long the track's first points (a run from its first or second point) stay within a band of
    STAND_BAND_PX rows."""
    longest = 0.0
    for start in range(min(2, len(y))):
        low = high = y[start]
        for end in range(start + 1, len(y)):
            low, high = min(low, y[end]), max(high, y[end])
            if high - low > STAND_BAND_PX:
                break
            longest = max(longest, float(t[end] - t[start]))
    return longest


def _confidence(*, ratio: float, rms: float, rms_limit: float, n: int, th: Thresholds) -> float:
    """0..1 from how gravity-like the acceleration is, how smooth the track and how long."""
    accel = 1.0 - min(abs(np.log(max(ratio, 1e-6))) / np.log(th.accel_high / th.accel_low), 1.0)
    smooth = 1.0 - min(rms / rms_limit, 1.0)
    length = min(n / 25.0, 1.0)
    return float(np.clip(0.45 * accel + 0.25 * smooth + 0.3 * length + 0.1, 0.0, 1.0))
