"""The CPU detection pipeline: frames in, thrown-object detections and the camera's state out.

Per frame, on a downscaled grey picture (1/2 of 1080p): a pixel is a candidate when it differs both from
a slow background model and from one of the two previous frames (so a passing object shows where it is
now, not where it was, and a window light that stays on does not); ignored regions and the zone of
interest are masked; connected components become blobs; a tracker links blobs across frames and each
finished track is judged by physics.py. The camera's state (black, frozen, moved) is watched on a tiny
copy of the picture. No I/O except `detect_file`, a convenience for tests and the benchmark.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from linli.vision.calibration import FLOOR_HEIGHT_M, Calibration
from linli.vision.physics import G, Thresholds, TrackFit, judge_track
from linli.vision.tracker import Track, Tracker


class CameraState(StrEnum):
    """What the camera's picture looks like, as far as detection is concerned."""

    OK = "ok"
    BLACK = "black"  # covered lens, IR failure
    FROZEN = "frozen"  # identical frames for seconds
    MOVED = "moved"  # the scene no longer lines up with the calibration: floors are not reported
    NO_SIGNAL = "no_signal"  # stream lost or not reachable (reported by the source)
    UNREADABLE = "unreadable"  # file missing or not a video (reported by the source)
    BAD_CODEC = "bad_codec"  # a video container whose codec cannot be decoded (reported by the source)


@dataclass
class Detection:
    """One thrown or falling object."""

    start_frame: int
    end_frame: int
    start_time: float
    origin: tuple[float, float]
    floor: int | None
    floor_uncertainty: float
    column: int | None
    trajectory: list[tuple[int, float, float]]
    confidence: float
    size_px: float


BLACK_MEAN = 12.0  # grey level under which, with hardly any texture, a picture is black
BLACK_STD = 4.0
FROZEN_SECONDS = 2.0
BLACK_SECONDS = 1.0
MOVED_CHECKS = 3  # consecutive once-a-second checks before the state changes
SETTLE_SECONDS = 1.0  # frames before the automatic reference frame is taken
GLOBAL_CHANGE_SHARE = 0.04  # a frame where more of the zone changes is a lighting change or a shake
MAX_TRACK_SECONDS = 8.0
BACK_EXTRAPOLATION_S = 0.4  # how far before the first point the origin may be traced back to the apex
FLICKER_K = 2.0  # where the picture flickers, times a pixel's recent mean change it must exceed
FLICKER_SECONDS = 0.8  # time constant of that mean and of the rate of switching to moving
HISTORY = 3  # frames kept as references for the frame difference
JOIN_SECONDS = 1.0  # a track may continue one that ended this long before it started
MAX_RECENT = 60
JOIN_ATTEMPTS = 3  # the nearest pieces tried
GAP_FRAMES = 3  # a track that fails is also judged from its points after such a gap (2 frames missed)
GAP_SPLITS = 2  # the earliest gaps tried
PENDING = ("too_few_points", "too_short", "no_fall")  # a joined track that cannot be judged yet


class Detector:
    """Feed frames in order; detections come out when their track ends."""

    def __init__(self, calibration: Calibration, *, fps: float, reference: np.ndarray | None = None) -> None:
        self.calibration = calibration
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.state = CameraState.OK
        self.state_reason = ""
        self.thresholds = Thresholds.for_sensitivity(calibration.sensitivity, fps=self.fps)
        self._given_reference = reference
        self._ready = False
        self.stats = {"frames": 0, "global_frames": 0, "blobs": 0, "streaks": 0, "tracks_judged": 0}
        self.rejections: dict[str, int] = {}

    # ---- set-up on the first frame --------------------------------------------------------------------

    def _setup(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        cal = self.calibration
        self._factor = max(1, round(h / 480))  # 1080p and 720p to half size
        self._small_size = (w // self._factor, h // self._factor)
        self._tiny_size = (max(16, w // 8), max(16, h // 8))
        # Frame pixels to calibration pixels (a stream may not have the calibration's resolution).
        self._sx, self._sy = cal.width / w, cal.height / h
        sw, sh = self._small_size
        mask = np.full((sh, sw), 255, np.uint8)
        to_small = np.array([1 / (self._factor * self._sx), 1 / (self._factor * self._sy)])
        if cal.zone is not None:
            mask[:] = 0
            cv2.fillPoly(mask, [np.round(np.asarray(cal.zone) * to_small).astype(np.int32)], 255)
        for poly in cal.ignore:
            cv2.fillPoly(mask, [np.round(np.asarray(poly) * to_small).astype(np.int32)], 0)
        self._mask = None if cal.zone is None and not cal.ignore else mask
        self._zone_pixels = max(1, int(cv2.countNonZero(mask)))
        s = cal.sensitivity
        self._k_noise = 5.0 - 2.0 * s  # threshold in noise standard deviations
        self._t_min = 9.0 - 4.0 * s  # grey levels
        self._min_area = 2 if s >= 0.3 else 3
        self._max_dim = 0.12 * sh
        self._noise = 2.0
        self._kernel = np.ones((3, 3), np.uint8)
        self._prev: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (grey, min 3×3, max 3×3)
        self._bg: np.ndarray | None = None
        self._flicker: np.ndarray | None = None  # recent mean change per pixel
        self._flicker_alpha = min(1.0, 1.0 / (FLICKER_SECONDS * self.fps))
        # The switching rate of a pixel that switched on twice within the last second (× 255).
        self._twice_a_second = 255.0 * self._flicker_alpha * (1.0 + (1.0 - self._flicker_alpha) ** self.fps)
        self._switches: np.ndarray | None = None  # recent rate of switching to moving per pixel (× 255)
        self._fg_before: np.ndarray | None = None
        self._max_misses = max(2, round(0.24 * self.fps))
        self.tracker = Tracker(max_misses=self._max_misses)
        self._recent: list[Track] = []  # ended tracks a new one may continue
        self._flat = (0.0, 0.0, 0.0, 1.0)  # how the last fitted track was flattened (see _fit)
        mid = cal.pixels_per_metre(
            cal.width / 2, (cal.line_y(0, cal.width / 2) + cal.line_y(-1, cal.width / 2)) / 2
        )
        self._g_px_frame2 = 0.5 * G * mid / (self.fps**2) / self._sy  # ½ a dt² in frame pixels
        self._black_run = 0
        self._frozen_run = 0
        self._frames_seen = 0
        self._reference: np.ndarray | None = None
        if self._given_reference is not None:
            ref = self._given_reference
            if ref.shape[:2] != (h, w):
                ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
            self._reference = self._edges(self._tiny(self._grey_small(ref)))
        self._moved_votes = 0
        self._window = cv2.createHanningWindow(self._tiny_size, cv2.CV_32F)
        min_floor = min(
            cal.line_y(i, x) - cal.line_y(i + 1, x)
            for i in range(cal.floors)
            for x in (0.0, float(cal.width))
        )
        self._moved_tolerance = max(6.0, 0.35 * min_floor)  # calibration px
        self._ready = True

    # ---- per frame ------------------------------------------------------------------------------------

    def _grey_small(self, frame: np.ndarray) -> np.ndarray:
        small = cv2.resize(frame, self._small_size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small

    def _tiny(self, grey: np.ndarray) -> np.ndarray:
        return cv2.resize(grey, self._tiny_size, interpolation=cv2.INTER_AREA)

    @staticmethod
    def _edges(tiny: np.ndarray) -> np.ndarray:
        f = tiny.astype(np.float32)
        return cv2.magnitude(cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1))

    def feed(self, frame: np.ndarray, index: int) -> list[Detection]:
        """Process one frame (BGR or grey, full resolution); return detections whose track just ended."""
        if frame is None or frame.size == 0:
            return []
        if not self._ready:
            self._setup(frame)
        self.stats["frames"] += 1
        grey = self._grey_small(frame)
        tiny = self._tiny(grey)
        if self._picture_unusable(grey, tiny, index):
            return self._age_tracks(index)
        self._frames_seen += 1
        if self._frames_seen % max(1, round(self.fps)) == 0:
            self._check_moved(tiny)
        return self._detect(grey, index)

    def flush(self) -> list[Detection]:
        """End of stream: judge every open track."""
        if not self._ready:
            return []
        return self._judge_all(self.tracker.close_all())

    # ---- camera state -----------------------------------------------------------------------------------

    def _set_state(self, state: CameraState, reason: str) -> None:
        self.state, self.state_reason = state, reason

    def _picture_unusable(self, grey: np.ndarray, tiny: np.ndarray, index: int) -> bool:
        """Black or frozen pictures: update the state and tell the caller to skip detection."""
        mean, std = cv2.meanStdDev(tiny)
        if float(mean[0, 0]) < BLACK_MEAN and float(std[0, 0]) < BLACK_STD:
            self._black_run += 1
            if self._black_run >= BLACK_SECONDS * self.fps:
                self._set_state(CameraState.BLACK, "画面全黑（镜头被遮挡或无图像）")
            return True
        self._black_run = 0
        if self._prev and cv2.norm(grey, self._prev[-1][0], cv2.NORM_INF) == 0:
            self._frozen_run += 1
            if self._frozen_run >= FROZEN_SECONDS * self.fps:
                self._set_state(CameraState.FROZEN, f"画面冻结（连续 {self._frozen_run} 帧完全相同）")
            return True
        self._frozen_run = 0
        if self.state in (CameraState.BLACK, CameraState.FROZEN, CameraState.NO_SIGNAL):
            self._set_state(CameraState.OK, "")
        return False

    def _check_moved(self, tiny: np.ndarray) -> None:
        """Once a second: does the picture still line up with the reference frame?"""
        edges = self._edges(tiny)
        if self._reference is None:
            if self._frames_seen >= SETTLE_SECONDS * self.fps:
                self._reference = edges
            return
        (dx, dy), _ = cv2.phaseCorrelate(self._reference, edges, self._window)
        shift = math.hypot(dx * self._sx * 8, dy * self._sy * 8)
        moved = shift > self._moved_tolerance
        if moved == (self.state == CameraState.MOVED):
            self._moved_votes = 0
            return
        self._moved_votes += 1
        if self._moved_votes >= MOVED_CHECKS:
            self._moved_votes = 0
            if moved:
                self._set_state(CameraState.MOVED, f"摄像机移位：画面偏移约 {shift:.0f} 像素，标定不再适用")
            else:
                self._set_state(CameraState.OK, "")

    # ---- motion, blobs, tracks ---------------------------------------------------------------------

    def _detect(self, grey: np.ndarray, index: int) -> list[Detection]:
        prev = self._prev
        k = self._kernel
        # Each reference as its 3×3 minimum and maximum: a pixel only counts as changed when it falls
        # outside the range of its neighbours there, so sub-pixel camera sway and edge jitter do not.
        current = (grey, cv2.erode(grey, k), cv2.dilate(grey, k))
        if self._bg is None:
            self._bg = grey.astype(np.float32)
        if len(prev) < HISTORY:
            prev.append(current)
            return []
        bg8 = cv2.convertScaleAbs(self._bg)
        db = _outside(grey, cv2.erode(bg8, k), cv2.dilate(bg8, k))
        d1 = _outside(grey, prev[-1][1], prev[-1][2])
        # The frame HISTORY back as the second reference: a slow object has moved clear of itself there.
        d2 = _outside(grey, prev[0][1], prev[0][2])
        if index % 8 == 0:
            # Noise from the mean absolute frame difference (|N(0, 2σ²)| has mean 1.128σ).
            a, b = grey[::4, ::4], prev[-1][0][::4, ::4]
            sample = float(cv2.mean(cv2.absdiff(a, b))[0]) / 1.128
            self._noise = 0.8 * self._noise + 0.2 * min(sample, 12.0)
        threshold = max(self._t_min, self._k_noise * self._noise)
        moving = cv2.min(db, cv2.max(d1, d2))
        _, fg = cv2.threshold(moving, threshold, 255, cv2.THRESH_BINARY)
        fg = self._without_flicker(moving, fg, threshold)
        if self._mask is not None:
            fg = cv2.bitwise_and(fg, self._mask)
        changed = cv2.countNonZero(fg)
        prev.pop(0)
        prev.append(current)
        if changed > GLOBAL_CHANGE_SHARE * self._zone_pixels:
            # Lighting change or shake: no blob is trustworthy; let the background catch up quickly.
            self.stats["global_frames"] += 1
            cv2.accumulateWeighted(grey, self._bg, 0.3)
            return self._age_tracks(index)
        if not changed:
            cv2.accumulateWeighted(grey, self._bg, 0.03)
            blobs = np.zeros((0, 4))
        else:
            # Dilate so that the parts of one object (a slow object's leading and trailing edges) form one
            # blob; keep moving things out of the background, or they leave a trail that looks like motion.
            grown = cv2.dilate(fg, self._kernel)
            cv2.accumulateWeighted(grey, self._bg, 0.03, mask=cv2.bitwise_not(grown))
            blobs = self._blobs(grown)
        self.stats["blobs"] += int(blobs[:, 3].sum())
        closed = self.tracker.update(index, blobs, gravity_px_per_frame2=self._g_px_frame2)
        return self._judge_all(closed + self._expired(index))

    def _without_flicker(self, moving: np.ndarray, fg: np.ndarray, threshold: float) -> np.ndarray:
        """Drop changes where the picture flickers in place (edges under camera shake, a fluorescent tube,
        a TV): a pixel that switched to moving twice within a second must change by more than its usual
        change (its recent mean times FLICKER_K). Something passing by switches a pixel on once, however
        long it stays there (a large slow object at its apex), so it keeps its full sensitivity."""
        if self._flicker is None:
            self._flicker = np.zeros(moving.shape, np.float32)
            self._switches = np.zeros(moving.shape, np.float32)
            self._fg_before = fg
        assert self._switches is not None and self._fg_before is not None
        usual = cv2.convertScaleAbs(self._flicker, alpha=FLICKER_K)
        flickering = cv2.compare(self._switches, self._twice_a_second, cv2.CMP_GT)
        a = self._flicker_alpha
        cv2.accumulateWeighted(moving, self._flicker, a)
        cv2.accumulateWeighted(cv2.bitwise_and(fg, cv2.bitwise_not(self._fg_before)), self._switches, a)
        self._fg_before = fg
        if not cv2.countNonZero(flickering):
            return fg
        _, strong = cv2.threshold(cv2.subtract(moving, usual), threshold, 255, cv2.THRESH_BINARY)
        return cv2.bitwise_and(fg, cv2.bitwise_or(cv2.bitwise_not(flickering), strong))

    def _blobs(self, fg: np.ndarray) -> np.ndarray:
        """Connected components as rows (x, y, size) in calibration pixels."""
        stats, centroids = _components(fg)
        if not len(stats):
            return np.zeros((0, 4))
        w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        area = stats[:, cv2.CC_STAT_AREA] - 2 * (w + h) + 4  # the area before the 3×3 dilation
        # Rain and thin wires: long streaks about a pixel thick (a thrown object of 5 px is thicker).
        # They go before fragments are joined, so a drop passing an object is not merged into it.
        length = np.maximum(w, h) - 2
        streak = (length >= 5) & (area < 1.6 * length)
        self.stats["streaks"] += int(streak.sum())
        crowded = len(area) > 200  # joining fragments costs O(n²): not in a frame full of motion
        if streak.any():
            stats, centroids, area = stats[~streak], centroids[~streak], area[~streak]
        if len(area) > 1 and not crowded:
            stats, centroids, area = _merge_fragments(stats, centroids, area)
        w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        length = np.maximum(w, h) - 2
        streak = (length >= 5) & (area < 1.6 * length)
        # Specks below the minimum area are kept as weak blobs: a small object against a facade of
        # nearly its own brightness shows only as one or two pixels in some frames; they may continue a
        # track that is already being followed, never start one (noise makes such specks everywhere).
        keep = (area >= 1) & (length <= self._max_dim) & ~streak
        strong = area >= self._min_area
        f = self._factor
        xs = (centroids[keep, 0] * f + (f - 1) / 2) * self._sx
        ys = (centroids[keep, 1] * f + (f - 1) / 2) * self._sy
        size = np.maximum(np.sqrt(area[keep]), length[keep]) * f * self._sx  # across its longer side
        return np.stack([xs, ys, size, strong[keep].astype(float)], axis=1)

    def _age_tracks(self, index: int) -> list[Detection]:
        """A frame without usable blobs still counts as a miss for every open track."""
        if not self._ready:
            return []
        closed = self.tracker.update(index, np.zeros((0, 3)), gravity_px_per_frame2=self._g_px_frame2)
        return self._judge_all(closed)

    def _expired(self, index: int) -> list[Track]:
        """Tracks followed for too long are judged now (and then dropped)."""
        limit = MAX_TRACK_SECONDS * self.fps
        old = [t for t in self.tracker.tracks if index - t.points[0][0] > limit]
        if old:
            self.tracker.tracks = [t for t in self.tracker.tracks if t not in old]
        return old

    def _judge_all(self, tracks: list[Track]) -> list[Detection]:
        if not tracks:
            return []
        self._prune_recent(tracks)
        out = []
        for track in tracks:
            if len(track.points) < 3:
                continue
            det = self._judge_joined(track)
            if det is not None:
                out.append(det)
        return out

    def _prune_recent(self, judged: list[Track]) -> None:
        """Forget ended tracks no open or judged track could continue (tracks end out of the order they
        began: a long one judged now may continue a piece that ended before shorter, later ones began)."""
        oldest = min(t.points[0][0] for t in (*self.tracker.tracks, *judged))
        horizon = oldest - JOIN_SECONDS * self.fps
        live = [t for t in self._recent if t.last_frame >= horizon]
        if len(live) > MAX_RECENT:
            # A busy scene ends many tracks a second; a reported object's stays, to catch its rest.
            others = [t for t in live if not t.reported]
            cut = {id(t) for t in others[: len(others) - MAX_RECENT]}
            live = [t for t in live if id(t) not in cut]
        self._recent = live

    def _judge_joined(self, track: Track) -> Detection | None:
        """Judge a track, first as the continuation of a recently ended one (a track lost for a moment)."""
        horizon = track.points[0][0] - JOIN_SECONDS * self.fps
        # The nearest plausible pieces first: in a busy scene (clouds, rain, leaves) many unrelated tracks
        # end in the meantime, and the most recent ones are rarely the object's own earlier piece.
        candidates = []
        for prior in self._recent:
            if prior.last_frame < horizon:
                continue
            near = self._join_gap(prior, track)
            if near is not None:
                candidates.append((near[0], near[1], prior))
        candidates.sort(key=lambda c: c[0])
        for _, n, prior in candidates[:JOIN_ATTEMPTS]:
            if not prior.reported and not self._continues(prior, track, size_share=0.5, unknown=True):
                # Pieces of one object: the later one starts where the earlier one's motion leads (a
                # window light flickering in place does not lead to another one two floors down).
                continue
            joined = Track(
                prior.id,
                prior.points[:n] + track.points,
                prior.sizes[:n] + track.sizes,
                reported=prior.reported,
            )
            if prior.reported:
                # The rest of an object already reported: it goes on where that object's motion leads, or
                # the whole still passes with most of the new piece on the fitted path (a piece of something
                # else joined on would otherwise be taken in as outliers and bend the reported path's end).
                if not self._continues(prior, track):
                    if len(joined.points) < self.thresholds.min_points:
                        continue
                    fit = self._fit(joined)
                    if not fit.ok or fit.inliers - n < 0.6 * len(track.points):
                        continue
                self._replace(prior, joined)
                joined.reported = True
                return None
            if len(joined.points) < self.thresholds.min_points:
                fit = TrackFit(False, "too_few_points", 0.0, 0, self.fps, (0.0,), (0.0,), 0.0, 0.0, 0)
            else:
                fit = self._fit(joined)
            if not fit.ok and fit.reason in PENDING:
                # Still too short to judge: keep the pieces together for the next one, and the new piece
                # on its own too (short pieces say little of their motion, so the join is only a guess:
                # a speck of noise or an insect's piece must not take the object's first piece away).
                self._replace(prior, joined)
                self._recent.append(track)
                return None
            if not fit.ok:
                continue
            self._replace(prior, joined)
            det = self._detection(joined, fit)
            joined.reported = det is not None
            return det
        self._recent.append(track)
        if len(track.points) < self.thresholds.min_points:
            return None
        fit = self._fit(track)
        if not fit.ok:
            for rest in self._after_gaps(track):
                rest_fit = self._fit(rest)
                if rest_fit.ok:
                    self._recent[self._recent.index(track)] = rest
                    track, fit = rest, rest_fit
                    break
        if not fit.ok:
            self.rejections[fit.reason] = self.rejections.get(fit.reason, 0) + 1
            return None
        det = self._detection(track, fit)
        track.reported = det is not None
        return det

    def _after_gaps(self, track: Track) -> list[Track]:
        """The track from its first points after a gap, where it could have taken up the object after
        following something else (a bird or a rain drop nearby that the object then replaced in the gate):
        the last point before a gap of GAP_FRAMES or more must leave most of the track and min_points."""
        pts = track.points
        out = []
        for i in range(1, len(pts) // 2 + 1):
            if pts[i][0] - pts[i - 1][0] >= GAP_FRAMES and len(pts) - i >= self.thresholds.min_points:
                out.append(Track(track.id, pts[i:], track.sizes[i:], reported=track.reported))
                if len(out) == GAP_SPLITS:
                    break
        return out

    def _replace(self, prior: Track, joined: Track) -> None:
        """The joined track takes the place of its earlier piece and of that piece's alternatives (a short
        piece is kept both joined to what came before it and on its own: whichever is continued first
        wins, so one object is not reported twice)."""
        last = prior.points[-1]
        self._recent = [t for t in self._recent if t is not prior and t.points[-1] != last]
        self._recent.append(joined)

    def _continues(
        self, prior: Track, track: Track, *, size_share: float = 1.5, unknown: bool = False
    ) -> bool:
        """Whether the track starts where the prior one's motion leads: its velocity at the end from its
        last points (the mean velocity over them plus the gravity since their middle), carried on with
        gravity over the gap; within 10 px, `size_share` of the prior's blob size and a share of the
        distance covered. `unknown` when the prior has too few points to tell its motion."""
        first_frame, fx, fy = track.points[0]
        before = [p for p in prior.points if p[0] < first_frame][-6:]
        if len(before) < 3:
            return unknown
        fb, xb, yb = before[-1]
        gap = first_frame - fb
        g2 = self._g_px_frame2
        # The median of the steps' velocities (each carried on to the last point with gravity): one point
        # of something else the tracker took does not swing it.
        steps = [
            ((x1 - x0) / (f1 - f0), (y1 - y0) / (f1 - f0) + g2 * (2 * fb - f0 - f1))
            for (f0, x0, y0), (f1, x1, y1) in itertools.pairwise(before)
        ]
        vx, vy = float(np.median([v[0] for v in steps])), float(np.median([v[1] for v in steps]))
        px, py = xb + vx * gap, yb + vy * gap + g2 * gap * gap
        size = sorted(prior.sizes)[len(prior.sizes) // 2]
        return (
            math.hypot(fx - px, fy - py) <= 10.0 + size_share * size + (0.2 * math.hypot(vx, vy) + 1.0) * gap
        )

    @staticmethod
    def _join_gap(prior: Track, track: Track) -> tuple[float, int] | None:
        """If the second track could be the first one's object found again: the distance from where the
        first was last seen before the second began, and how many of its points precede the second."""
        first_frame, fx, fy = track.points[0]
        pts = prior.points
        n = len(pts)
        while n and pts[n - 1][0] >= first_frame:
            n -= 1
        if n < 2:
            return None
        lf, lx, ly = pts[n - 1]
        gap = first_frame - lf
        dist = math.hypot(fx - lx, fy - ly)
        reach = 20.0 + gap * 0.5 * (abs(fy - ly) / max(gap, 1) + 60.0)
        if dist > reach + 2.0 * max(prior.sizes):  # the cheap test first
            return None
        size = sorted(prior.sizes)[len(prior.sizes) // 2]
        if dist > reach + 2.0 * size or fy < ly - 10.0 - size:
            return None
        return dist, n

    def _fit(self, track: Track) -> TrackFit:
        """The physical test in the facade's metric heights (floor lines undo the perspective), expressed
        back in pixels of the scale at the track's middle so that pixel limits keep their meaning."""
        cal = self.calibration
        pts = track.points
        mx = float(np.clip(np.mean([p[1] for p in pts]), 0, cal.width))
        my = float(np.mean([p[2] for p in pts]))
        ppm = cal.pixels_per_metre(mx, my)
        scale = ppm * FLOOR_HEIGHT_M  # pixels per floor at the middle
        ref = cal.floor_position(mx, my)
        heights = cal.floor_positions([p[1] for p in pts], [p[2] for p in pts])
        flat = [(f, x, my - (h - ref) * scale) for (f, x, _), h in zip(pts, heights, strict=True)]
        size = float(np.median(track.sizes))
        self.stats["tracks_judged"] += 1
        fit = judge_track(
            flat, fps=self.fps, px_per_m=ppm, thresholds=self.thresholds, size_px=size, sizes=track.sizes
        )
        self._flat = (mx, my, ref, scale)
        return fit

    def _to_image(self, x: float, y_flat: float) -> tuple[float, float]:
        """A point of the flattened (metric) fit back in image pixels."""
        _, my, ref, scale = self._flat
        return x, self.calibration.image_y(x, ref + (my - y_flat) / scale)

    def _detection(self, track: Track, fit: TrackFit) -> Detection | None:
        """The detection of a track that passed the physical test, unless it starts off the facade."""
        cal = self.calibration
        pts = track.points
        size = float(np.median(track.sizes))
        origin, sigma = self._origin(fit, track)
        height = cal.floor_position(*origin)
        if not -0.5 <= height + self._fallen_before(fit, track) <= cal.floors + 1.0:
            # Things do not start falling in the sky above the roof (rain, birds) or below the ground.
            reason = "origin_above_roof" if height > 0 else "origin_below_ground"
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
            return None
        if self.state != CameraState.MOVED and not self._beside_facade(origin[0]):
            self.rejections["origin_off_facade"] = self.rejections.get("origin_off_facade", 0) + 1
            return None
        # When the origin was traced back to the apex, the throw started then.
        first = pts[fit.first_inlier][0]
        apex = fit.apex_t - (first - pts[0][0]) / self.fps
        start = first + (round(apex * self.fps) if -BACK_EXTRAPOLATION_S <= apex < 0 else 0)
        floor: int | None
        column: int | None
        if self.state == CameraState.MOVED:
            floor, unc, column = None, 0.0, None
        else:
            floor, unc = cal.floor_at(origin[0], origin[1], sigma)
            column = cal.column_at(origin[0])
        return Detection(
            start_frame=start,
            end_frame=pts[-1][0],
            start_time=start / self.fps,
            origin=origin,
            floor=floor,
            floor_uncertainty=round(unc, 3),
            column=column,
            trajectory=list(pts[fit.first_inlier :]),
            confidence=round(fit.confidence, 3),
            size_px=round(size, 2),
        )

    def _fallen_before(self, fit: TrackFit, track: Track) -> float:
        """How many floors the object must have fallen before its first point, at the least: falling at v
        there, it was released at least v²/2g higher (drag only adds to that). A rain streak or an insect
        crossing the picture at speed from its first frame comes from far above any roof (seed 43: a
        45 px streak at night, 64 m/s on entering the picture, fitted at 0.66 g over half a second)."""
        _, _, _, scale = self._flat  # pixels per floor in the fit's flattened heights
        t = (track.points[fit.first_inlier][0] - track.points[0][0]) / self.fps
        c = fit.coef_y
        speed = c[1] + 2 * c[2] * t + (3 * c[3] * t * t if len(c) > 3 else 0.0)  # px/s, downward
        if speed <= 0:
            return 0.0
        return speed * speed / (2 * G * scale / FLOOR_HEIGHT_M) / scale

    def _beside_facade(self, x: float) -> bool:
        """Whether image x lies on the facade the columns mark, or within one column's width of it: a throw
        leaves a window or a balcony, so an origin further out (a cloud's shadow or a change of daylight
        beside the building, a bird against the sky) is not one. Unknown while the camera has moved."""
        cols = self.calibration.columns
        if len(cols) < 2:
            return True
        margin = (cols[-1] - cols[0]) / (len(cols) - 1)
        return cols[0] - margin <= x <= cols[-1] + margin

    def _origin(self, fit: TrackFit, track: Track) -> tuple[tuple[float, float], float]:
        """Where the object left the facade, and how uncertain that is (px).

        The first tracked point, or, when the fitted parabola's apex lies shortly before it (the object
        moved too little there to be seen), the apex.
        """
        first = track.points[fit.first_inlier]
        apex = fit.apex_t - (first[0] - track.points[0][0]) / self.fps  # relative to that point
        back = -BACK_EXTRAPOLATION_S
        if not back <= apex < 0:
            x, y = first[1], first[2]
            return (float(x), float(y)), fit.rms_px + 0.5 * float(np.median(track.sizes))
        x, y = self._to_image(*fit.position(fit.apex_t))
        travelled = math.hypot(x - first[1], y - first[2])
        return (float(x), float(y)), fit.rms_px + 0.5 * float(np.median(track.sizes)) + 0.3 * travelled


def _components(fg: np.ndarray, limit: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of a sparse mask as rows like connectedComponentsWithStats' (left, top, width, height, area)
    and their centroids; outer contours are found far faster than labelling every pixel of the frame.
    """
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 5)), np.zeros((0, 2))
    if len(contours) > limit:  # a frame full of motion: the largest ones are enough
        contours = sorted(contours, key=len, reverse=True)[:limit]
    stats = np.empty((len(contours), 5))
    centroids = np.empty((len(contours), 2))
    for i, c in enumerate(contours):
        x, y, w, h = cv2.boundingRect(c)
        m = cv2.moments(fg[y : y + h, x : x + w], binaryImage=True)
        area = max(m["m00"], 1.0)
        stats[i] = (x, y, w, h, area)
        centroids[i] = (x + m["m10"] / area, y + m["m01"] / area)
    return stats, centroids


def _outside(img: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far each pixel lies below `lo` or above `hi` (0 inside the range)."""
    return cv2.max(cv2.subtract(img, hi), cv2.subtract(lo, img))


def _merge_fragments(
    stats: np.ndarray, centroids: np.ndarray, area: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join components whose boxes nearly touch (a slow object's leading and trailing edges)."""
    x0, y0 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[:, cv2.CC_STAT_WIDTH], y0 + stats[:, cv2.CC_STAT_HEIGHT]
    gap_x = np.maximum(x0[:, None], x0[None, :]) - np.minimum(x1[:, None], x1[None, :])
    gap_y = np.maximum(y0[:, None], y0[None, :]) - np.minimum(y1[:, None], y1[None, :])
    dim = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    reach = np.maximum(2.0, 0.5 * np.maximum(dim[:, None], dim[None, :]))
    near = (np.maximum(gap_x, gap_y) <= reach) & (area[:, None] > 0) & (area[None, :] > 0)
    if near.sum() == len(area):  # only the diagonal
        return stats, centroids, area
    label = np.arange(len(area))
    for i, j in zip(*np.nonzero(np.triu(near, 1)), strict=True):
        a, b = label[i], label[j]
        if a != b:
            label[label == b] = a
    groups = np.unique(label)
    out_stats = np.zeros((len(groups), stats.shape[1]))
    out_cent = np.zeros((len(groups), 2))
    out_area = np.zeros(len(groups))
    for k, g in enumerate(groups):
        m = label == g
        wts = np.maximum(area[m], 0.5)
        out_cent[k] = (centroids[m] * wts[:, None]).sum(axis=0) / wts.sum()
        out_area[k] = area[m].sum()
        left, top = x0[m].min(), y0[m].min()
        out_stats[k, cv2.CC_STAT_LEFT], out_stats[k, cv2.CC_STAT_TOP] = left, top
        out_stats[k, cv2.CC_STAT_WIDTH] = x1[m].max() - left
        out_stats[k, cv2.CC_STAT_HEIGHT] = y1[m].max() - top
    return out_stats, out_cent, out_area


def detect_file(
    path: str | Path, calibration: Calibration, *, fps: float | None = None
) -> tuple[list[Detection], dict[str, Any]]:
    """Decode a video file with OpenCV, feed every frame; detections and {"frames", "seconds", "fps"}."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f"cannot open video {path}")
    rate = fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
    detector = Detector(calibration, fps=rate)
    detections: list[Detection] = []
    frames = 0
    started = time.perf_counter()
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            detections.extend(detector.feed(frame, frames))
            frames += 1
        detections.extend(detector.flush())
    finally:
        cap.release()
    seconds = time.perf_counter() - started
    detections.sort(key=lambda d: d.start_frame)
    return detections, {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else 0.0,
        "state": str(detector.state),
        "rejections": dict(detector.rejections),
        **detector.stats,
    }
