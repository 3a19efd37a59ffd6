"""The physical track test on synthetic trajectories: a falling object passes, the distractors do not."""

from __future__ import annotations

import numpy as np
import pytest

from linli.vision.physics import G, Thresholds, judge_track

FPS = 25.0
PPM = 12.0  # pixels per metre on the facade (a 30-floor tower filling 1080 rows)
TH = Thresholds.for_sensitivity(0.5)


def track(fn, n: int, *, jitter: float = 0.6, seed: int = 3) -> list[tuple[int, float, float]]:
    """n points (frame, x, y) of fn(t) with centroid jitter."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = fn(i / FPS)
        out.append((100 + i, x + rng.normal(0, jitter), y + rng.normal(0, jitter)))
    return out


def thrown(vx: float = 0.5, vy: float = 0.0, drag: float = 1.0):
    """A parabola under gravity (drag scales the acceleration down a little)."""
    return lambda t: (800 + vx * PPM * t, 300 + vy * PPM * t + 0.5 * G * drag * PPM * t * t)


@pytest.mark.parametrize(
    ("label", "fn", "n"),
    [
        ("dropped", thrown(), 40),
        ("pushed out with a lateral speed", thrown(vx=2.0), 40),
        ("thrown up first", thrown(vy=-3.0), 50),
        ("light object with drag", thrown(drag=0.6), 40),
        ("short visible fall of a fast object", thrown(vy=5.0), 15),
    ],
)
def test_falling_objects_pass(label: str, fn, n: int) -> None:
    fit = judge_track(track(fn, n), fps=FPS, px_per_m=PPM, thresholds=TH, size_px=6)
    assert fit.ok, (label, fit.reason, fit.accel_ratio, fit.rms_px)
    assert 0.5 < fit.accel_ratio < 1.5
    assert fit.confidence >= TH.min_confidence


def test_fitted_apex_is_where_a_dropped_object_was_released() -> None:
    fit = judge_track(track(thrown(vy=-2.0), 40, jitter=0.3), fps=FPS, px_per_m=PPM, thresholds=TH)
    apex_t = 2.0 / G
    assert fit.apex_t == pytest.approx(apex_t, abs=0.05)
    _, y = fit.position(fit.apex_t)
    assert y == pytest.approx(300 - 2.0**2 / (2 * G) * PPM, abs=1.5)


def bird(t: float) -> tuple[float, float]:
    """Flies across, flapping up and down, wandering."""
    return 500 + 60 * PPM * t / 10, 300 + 25 * np.sin(7 * t) + 10 * np.sin(2.3 * t)


def leaf(t: float) -> tuple[float, float]:
    """Falls at a slow terminal speed while swinging sideways."""
    return 700 + 20 * np.sin(3 * t), 300 + 1.2 * PPM * t


def rain(t: float) -> tuple[float, float]:
    """Constant speed, 8 m/s."""
    return 900 + 0.5 * PPM * t, 100 + 8 * PPM * t


def clothes(t: float) -> tuple[float, float]:
    """Flaps in place on a balcony."""
    return 1000 + 6 * np.sin(9 * t), 400 + 8 * np.sin(5 * t)


def glider(t: float) -> tuple[float, float]:
    """A bird gliding down at constant speed."""
    return 300 + 8 * PPM * t, 200 + 3 * PPM * t


@pytest.mark.parametrize(
    ("label", "fn", "n"),
    [
        ("bird", bird, 50),
        ("leaf", leaf, 60),
        ("rain", rain, 20),
        ("clothes", clothes, 80),
        ("glider", glider, 50),
    ],
)
def test_distractors_fail(label: str, fn, n: int) -> None:
    fit = judge_track(track(fn, n), fps=FPS, px_per_m=PPM, thresholds=TH, size_px=6)
    assert not fit.ok, (label, fit.accel_ratio, fit.rms_px)


def test_accelerating_too_hard_is_not_gravity() -> None:
    fit = judge_track(track(thrown(drag=3.5), 30), fps=FPS, px_per_m=PPM, thresholds=TH)
    assert (fit.ok, fit.reason) == (False, "too_fast_acceleration")


@pytest.mark.parametrize(("scale", "ok"), [(1.35, True), (2.0, False)])
def test_more_than_about_one_and_a_half_g_is_not_a_fall(scale: float, ok: bool) -> None:
    # Real throws in the benchmark fit at up to 1.37 g (calibration error); a leaf on scattered frames
    # fitted at 2.04 g was a false alarm.
    fit = judge_track(track(thrown(drag=scale), 30), fps=FPS, px_per_m=PPM, thresholds=TH, size_px=6)
    assert fit.ok is ok, (fit.reason, fit.accel_ratio)
    assert fit.accel_ratio == pytest.approx(scale, rel=0.1)


def test_a_few_points_are_not_enough() -> None:
    fit = judge_track(track(thrown(), TH.min_points - 1), fps=FPS, px_per_m=PPM, thresholds=TH)
    assert (fit.ok, fit.reason) == (False, "too_few_points")


def test_a_wild_outlier_is_dropped_not_fatal() -> None:
    pts = track(thrown(), 40)
    f, x, y = pts[20]
    pts[20] = (f, x + 40, y - 30)
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH)
    assert fit.ok and fit.inliers == 39


def test_sensitivity_loosens_the_limits() -> None:
    low, high = Thresholds.for_sensitivity(0.0), Thresholds.for_sensitivity(1.0)
    assert high.min_points < low.min_points
    assert high.accel_low < low.accel_low and high.accel_high > low.accel_high
    assert high.max_rms_px > low.max_rms_px
    # A jittery track passes only at high sensitivity.
    pts = track(thrown(), 30, jitter=1.9, seed=5)
    assert judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=high).ok
    assert not judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=low).ok


def dragged(k: float, seconds: float) -> list[tuple[int, float, float]]:
    """A fall under quadratic drag a = g − k·v² (light objects: paper, a bag), sampled at FPS with jitter."""
    rng = np.random.default_rng(11)
    v, y, out = 0.0, 0.0, []
    steps = 20
    for i in range(round(seconds * FPS)):
        out.append((i, 640 + rng.normal(0, 0.6), 200 + y * PPM + rng.normal(0, 0.6)))
        for _ in range(steps):
            dt = 1 / (FPS * steps)
            v += (G - k * v * abs(v)) * dt
            y += v * dt
    return out


def test_a_long_fall_slowed_by_drag_passes_on_its_first_second() -> None:
    pts = dragged(0.15, 4.0)  # terminal speed about 8 m/s: far from a parabola over four seconds
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=8)
    assert fit.ok, (fit.reason, fit.accel_ratio, fit.rms_px)
    assert fit.accel_ratio > 0.6


def test_something_sinking_at_a_slow_constant_speed_from_the_start_fails() -> None:
    pts = dragged(25.0, 4.0)  # terminal speed 0.6 m/s within a few frames: a leaf, a feather
    assert not judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=8).ok


@pytest.mark.parametrize("end", ["first", "last"])
def test_a_far_point_the_tracker_took_at_either_end_is_dropped(end: str) -> None:
    # A rain drop taken before the object appeared (or after it) lies 60-70 px off the path: a polynomial
    # through all points bends towards it so far that the median deviation no longer singles it out.
    pts = track(thrown(vx=1.0), 22, jitter=0.8)
    i = 0 if end == "first" else -1
    f, x, y = pts[i]
    pts[i] = (f - 7 if end == "first" else f + 3, x + 50, y + 45)
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=10)
    assert fit.ok, (fit.reason, fit.accel_ratio, fit.rms_px)
    assert fit.inliers == 21
    assert 0.7 < fit.accel_ratio < 1.3


def fragmented(spikes: dict[int, float], *, n: int = 30, seed: int = 4) -> list[tuple[int, float, float]]:
    """A large object (28 px) dropped, its centroid moved up by the given pixels in some frames."""
    pts = track(thrown(vx=0.2), n, jitter=1.0, seed=seed)
    return [(f, x, y - spikes.get(i, 0.0)) for i, (f, x, y) in enumerate(pts)]


def test_a_large_object_whose_centroid_jumps_up_in_fragments_still_falls() -> None:
    # Seen at night on seed 11: a 33 px flower pot whose blob was a 4-6 px fragment in a few frames (only
    # part of it registered as moving there), each a step up of 8-12 px: not the object rising.
    spikes = {3: 10.0, 12: 12.0, 13: 9.0, 14: 11.0, 22: 12.0, 27: 11.0}
    pts = fragmented(spikes)
    sizes = [4.0 if i in spikes else 28.0 for i in range(len(pts))]
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=28, sizes=sizes)
    assert fit.ok, (fit.reason, fit.accel_ratio, fit.rms_px)
    # Whole blobs that step up like that are something going up and down (a flapping bird): no fall.
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=28, sizes=[28.0] * len(pts))
    assert (fit.ok, fit.reason) == (False, "not_monotonic")


@pytest.mark.parametrize("end", ["first", "last"])
def test_two_far_points_the_tracker_took_at_one_end_are_both_dropped(end: str) -> None:
    # Seen on seed 13 (a paper dropped in a shaking scene): the track began with two points of something
    # else, 48 and 30 px off the path. Each bends the fit of the others towards itself, so neither
    # stands out on its own (leave-one-out); as a pair against the rest they do.
    fn = thrown(vx=-0.5)
    pts = track(fn, 18, jitter=0.8)
    if end == "first":
        f, x, y = pts[0]
        pts = [(f - 10, x + 48, y - 20), (f - 5, x + 30, y - 7), *pts]
    else:
        f, x, y = pts[-1]
        pts = [*pts, (f + 3, x - 40, y + 30), (f + 6, x - 55, y + 35)]
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=4)
    assert fit.ok, (fit.reason, fit.accel_ratio, fit.rms_px)
    assert fit.inliers == 18 and fit.first_inlier == (2 if end == "first" else 0)
    assert 0.7 < fit.accel_ratio < 1.3


def test_a_track_found_standing_still_again_and_again_is_flicker_not_a_fall() -> None:
    # Seen on seed 13 in a minute of camera shake: edges flickering in place, the same blob found exactly
    # where it was for several frames, then a little lower, and so on; through them a parabola fits (as
    # smoothly as the jitter of a real fall allows).
    pts = track(thrown(vx=0.2), 30, jitter=0.5, seed=6)
    held = [pts[i - i % 3] for i in range(len(pts))]  # each position held for three frames
    stair = [(f, x, y) for (f, _, _), (_, x, y) in zip(pts, held, strict=True)]
    fit = judge_track(stair, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=4)
    assert (fit.ok, fit.reason) == (False, "in_place")
    # A real fall is found exactly where it was at most now and then (here twice, near the release).
    pts[2], pts[5] = (pts[2][0], *pts[1][1:]), (pts[5][0], *pts[4][1:])
    assert judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=4).ok


def test_a_large_blob_sliding_down_less_than_its_own_size_is_not_a_fall() -> None:
    # Seen on seeds 13 and 2024: the edge of a cloud's shadow, a blob of 40-120 px growing as it spreads,
    # its centroid sliding down 30-100 px along a parabola. A fall is longer than the thing falling.
    pts = track(thrown(drag=1.0), 14, jitter=0.5, seed=2)  # 0.52 s: 16 px of fall at 12 px/m
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=60)
    assert (fit.ok, fit.reason) == (False, "not_a_fall")
    # The same path of a 6 px object is a fall.
    assert judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=6).ok


def test_a_large_light_object_slowed_by_drag_passes_on_its_first_second_and_its_whole_fall() -> None:
    # Seen on seed 2024 at night: bags of 35 px whose first second fell less than twice their size; the
    # whole fall (four seconds) is many times longer, and that is what shows it is no sliding blob.
    pts = dragged(0.15, 4.0)
    fit = judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=32)
    assert fit.ok, (fit.reason, fit.accel_ratio, fit.rms_px)
    # Its first second alone is too short a fall for a blob that large.
    head = [p for p in pts if p[0] < FPS]
    assert not judge_track(head, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=32).ok


def test_a_large_blob_found_in_only_some_of_its_frames_is_no_solid_object() -> None:
    # Seen on seed 37 (clouds, rain): blobs 30-52 px across, found in 33-74 % of the frames their track
    # spans, stitched into a path through which a parabola fits. A solid object that large stands out in
    # nearly every frame (the benchmark's throws of 14 px or more: in at least 80 % of them).
    pts = track(thrown(vx=0.3), 60, jitter=0.8, seed=8)
    seen_now_and_then = [p for i, p in enumerate(pts) if i % 2 == 0 or i % 7 == 0]  # 35 of 59 frames
    fit = judge_track(seen_now_and_then, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=30)
    assert (fit.ok, fit.reason) == (False, "sparse")
    # The same object found in every frame passes; so does one found in 80 % of them.
    assert judge_track(pts, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=30).ok
    most = [p for i, p in enumerate(pts) if i % 5 != 4]
    assert judge_track(most, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=30).ok
    # A small object is often lost against the facade's texture for a frame or two: no such rule for it.
    assert judge_track(seen_now_and_then, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=6).ok


def test_a_track_that_starts_standing_longer_than_gravity_allows_is_flicker_then_something_else() -> None:
    # Seen on seeds 41 and 43 in camera shake: a blob 4-6 px found on the same rows for half a second
    # (an edge flickering in place, its x jumping between two columns), then blobs further down, through
    # which a parabola fits. An object under gravity stays within 2 rows for at most 2·sqrt(2·2/g) at its
    # apex: 0.36 s at 12 px/m.
    fall = track(thrown(vx=0.3), 25, jitter=0.4, seed=4)
    f0 = fall[0][0]
    still = [
        (f0 - 14 + i, 800 + (1.0 if i % 2 else -1.0), 300 + (0.5 if i % 3 == 0 else 0.0)) for i in range(14)
    ]
    fit = judge_track(still + fall, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=4)
    assert (fit.ok, fit.reason) == (False, "standing")
    # The fall alone passes; so does a throw up, whose apex keeps it within 2 rows the longest.
    assert judge_track(fall, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=4).ok
    up = track(thrown(vy=-2.0), 40, jitter=0.4, seed=4)
    assert judge_track(up, fps=FPS, px_per_m=PPM, thresholds=TH, size_px=4).ok
