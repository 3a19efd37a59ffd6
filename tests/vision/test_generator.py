"""The benchmark's generator and scorer (bench/vision): physics, determinism, truth vs pixels, scores."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from bench.vision import generate, objects, run, score
from bench.vision.geometry import GRAVITY, Building, calibration_json, floor_position, frame_building

from linli.vision.calibration import Calibration

FPS = 25.0


def _scene(floors: int = 24) -> tuple[Building, Any]:
    building = Building(floors=floors, columns=8, column_width=3.6)
    camera = frame_building(1920, 1080, building, distance=1.3 * building.roof, bottom=0.92, top=0.1)
    return building, camera


def _fit_acceleration(t: np.ndarray, z: np.ndarray) -> float:
    """Second derivative of the least-squares parabola through (t, z)."""
    return float(2 * np.polyfit(t, z, 2)[0])


# ---- physics -------------------------------------------------------------------------------------------


def test_drop_without_drag_is_a_parabola_in_the_calibrated_picture() -> None:
    building, camera = _scene()
    throw = objects.Throw(floor=20, column=4, size_px=10, shape="flowerpot", launch="drop", start_frame=0)
    release = (0.0, 0.0, building.floor_base(20) + 1.2)
    flight = objects.simulate(
        throw, building, camera, FPS, np.random.default_rng(1), drag=0.0, velocity=(0, 0, 0), release=release
    )
    t = flight.t
    assert np.allclose(flight.world[:, 2], release[2] - GRAVITY * t**2 / 2, atol=1e-6)
    # Read heights back from the picture with the calibration's floor lines, as a detector would.
    cal = calibration_json(camera, building)
    frames = np.arange(0, int(t[-1] * FPS))
    px, py, _ = flight.at(frames / FPS)
    heights = np.array([floor_position(cal, float(y)) for y in py]) * building.storey
    assert _fit_acceleration(frames / FPS, heights) == pytest.approx(-GRAVITY, rel=0.02)
    # Perspective: the same fall covers more pixels per metre lower down.
    assert np.all(np.diff(py) > 0)
    assert px == pytest.approx(np.full_like(px, px[0]), abs=1e-6)


def test_quadratic_drag_slows_the_fall_as_the_closed_form_says() -> None:
    building, camera = _scene()
    throw = objects.Throw(floor=24, column=2, size_px=10, shape="bag", launch="drop", start_frame=0)
    z0 = building.floor_base(24) + 1.0
    k = 0.06
    flight = objects.simulate(
        throw, building, camera, FPS, np.random.default_rng(1), drag=k, velocity=(0, 0, 0), release=(0, 0, z0)
    )
    free = objects.simulate(
        throw,
        building,
        camera,
        FPS,
        np.random.default_rng(1),
        drag=0.0,
        velocity=(0, 0, 0),
        release=(0, 0, z0),
    )
    for seconds, less in ((1.0, 0.2), (2.0, 3.0), (3.0, 10.0)):
        i = round(seconds * FPS * objects.SUBSTEPS)
        expected = z0 - math.log(math.cosh(seconds * math.sqrt(GRAVITY * k))) / k
        assert flight.world[i, 2] == pytest.approx(expected, abs=0.01)
        assert flight.world[i, 2] > free.world[i, 2] + less  # it has fallen less than in vacuum, ever more so
    assert flight.t[-1] > free.t[-1] + 0.5  # and takes longer to reach the ground
    speed = -np.diff(flight.world[:, 2])[-10:].mean() * FPS * objects.SUBSTEPS
    assert speed == pytest.approx(math.sqrt(GRAVITY / k), rel=0.1)  # near terminal speed at the end


def test_release_points_fall_in_the_floor_the_truth_names() -> None:
    """Every launch starts inside its floor under the calibration: a fair truth for the floor score."""
    rng = np.random.default_rng(7)
    wrong = []
    for n in range(300):
        building, camera = generate.make_scene(1920 if n % 2 else 1280, 1080 if n % 2 else 720, rng)
        floor = int(rng.integers(1, building.floors + 1))
        column = int(rng.integers(1, building.columns + 1))
        throw = objects.Throw(floor, column, 8.0, "bottle", objects.LAUNCHES[n % 3], 0)
        flight = objects.simulate(throw, building, camera, FPS, rng, max_seconds=0.1)
        cal = Calibration.from_json(calibration_json(camera, building))
        got, _ = cal.floor_at(float(flight.px[0]), float(flight.py[0]))
        if got != floor:
            wrong.append((n, floor, got))
    assert wrong == []


# ---- clips ---------------------------------------------------------------------------------------------


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def test_same_seed_same_clip_other_seed_other_clip(tmp_path: Path) -> None:
    kw: dict[str, Any] = {
        "width": 640,
        "height": 360,
        "seconds": 1.2,
        "throws": [{"size_px": 9, "start_frame": 5}],
        "distractors": ["bird", "rain"],
    }
    a = generate.make_clip(tmp_path / "a", seed=3, **kw)
    b = generate.make_clip(tmp_path / "b", seed=3, **kw)
    c = generate.make_clip(tmp_path / "c", seed=4, **kw)
    for truth in (a, b, c):
        truth.pop("name")
        truth.pop("video")
    assert a == b
    assert a["throws"] != c["throws"]
    fa, fb = _frames(tmp_path / "a.mp4"), _frames(tmp_path / "b.mp4")
    assert len(fa) == len(fb) == 30
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert json.loads((tmp_path / "a.json").read_text())["throws"] == a["throws"]


def test_the_object_is_in_the_decoded_frames_where_the_truth_says(tmp_path: Path) -> None:
    truth = generate.make_clip(
        tmp_path / "clip",
        width=1280,
        height=720,
        seconds=3.0,
        throws=[
            {
                "floor": 10,
                "size_px": 16,
                "shape": "box",
                "launch": "push",
                "start_frame": 10,
                "colour": [30, 40, 210],
            }
        ],
        seed=11,
        floors=12,
    )
    throw = truth["throws"][0]
    assert truth["codec"] == "mp4v" and truth["video"] == "clip.mp4"
    assert throw["contrast"] >= 25
    frames = [f.astype(np.float32) for f in _frames(tmp_path / "clip.mp4")]
    assert len(frames) == truth["frames"] == 75
    before = frames[throw["start_frame"] - 2]
    checked = 0
    path = {k: (x, y) for k, x, y in throw["trajectory"]}
    for k, x, y in throw["trajectory"][::4]:
        step = math.dist(path.get(k + 1, (x, y)), (x, y))
        r = int(12 + step)  # wide enough for the motion-blurred smear
        x0, y0 = int(x) - r, int(y) - r
        window = (slice(y0, y0 + 2 * r), slice(x0, x0 + 2 * r))
        mask = np.abs(frames[k][window] - before[window]).max(axis=2) > 20  # any colour channel
        assert mask.sum() >= 12, f"frame {k}: no object at ({x:.0f}, {y:.0f})"
        ys, xs = np.nonzero(mask) + np.array([[y0], [x0]])
        assert xs.min() - 1 <= x <= xs.max() + 1 and ys.min() - 1 <= y <= ys.max() + 1, f"frame {k}"
        assert math.hypot(xs.mean() - x, ys.mean() - y) < 1.5, f"frame {k}"
        # And nothing a good way off the path.
        off = (window[0], slice(x0 + 200, x0 + 200 + 2 * r))
        assert (np.abs(frames[k][off] - before[off]).max(axis=2) > 20).sum() < 3
        checked += 1
    assert checked >= 10
    # The fall accelerates: frame-to-frame steps grow.
    ys = np.array([p[2] for p in throw["trajectory"]])
    steps = np.diff(ys)
    assert steps[-5:].mean() > 3 * max(steps[:5].mean(), 0.5)


def test_bad_throw_input_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"throws\[0\]\.floor"):
        generate.make_clip(
            tmp_path / "x", width=320, height=240, seconds=0.4, floors=12, throws=[{"floor": 30}]
        )
    with pytest.raises(ValueError, match=r"throws\[1\]\.shape"):
        generate.make_clip(
            tmp_path / "x", width=320, height=240, seconds=0.4, throws=[{"floor": 3}, {"shape": "piano"}]
        )
    with pytest.raises(ValueError, match="unknown kind 'ufo'"):
        generate.make_clip(tmp_path / "x", width=320, height=240, seconds=0.4, distractors=["ufo"])


def test_distractor_clip_lists_what_moved(tmp_path: Path) -> None:
    truth = generate.make_clip(
        tmp_path / "birds", width=640, height=360, seconds=3.0, distractors=["bird:diving", "lights"], seed=5
    )
    assert truth["kind"] == "distractors" and truth["throws"] == []
    assert truth["distractors"] == ["bird", "lights"]
    birds = [e for e in truth["distractor_events"] if e["kind"] == "bird"]
    assert birds and all(e["behaviour"] == "diving" and e["path"] for e in birds)
    Calibration.from_json(truth["calibration"])  # the contract's parser accepts the truth's calibration


def test_benchmark_set_is_big_enough_and_stable() -> None:
    specs = generate.benchmark_set()
    throws = [t for s in specs for t in s.throws]
    assert len(throws) >= 60
    assert sum(t["size_px"] >= 5 for t in throws) >= 60
    assert sum(s.seconds for s in specs if s.kind == "distractors") >= 15 * 60
    assert {s.lighting for s in specs} == {"day", "night"} and {s.height for s in specs} == {720, 1080}
    assert [s.name for s in generate.benchmark_set()] == [s.name for s in specs]
    assert len([s for s in generate.benchmark_set(hours=1.0) if s.kind == "distractors"]) == 60


# ---- scoring -------------------------------------------------------------------------------------------


def _truth(kind: str = "throws") -> dict[str, Any]:
    throws = [
        {
            "start_frame": 50,
            "end_frame": 90,
            "floor": 12,
            "column": 3,
            "size_px": 8.0,
            "shape": "bottle",
            "launch": "drop",
            "trajectory": [[k, 500.0, 200.0 + 0.4 * (k - 50) ** 2] for k in range(50, 91)],
        },
        {
            "start_frame": 200,
            "end_frame": 240,
            "floor": 5,
            "column": 1,
            "size_px": 4.0,
            "shape": "can",
            "launch": "push",
            "trajectory": [[k, 300.0, 600.0 + 0.3 * (k - 200) ** 2] for k in range(200, 241)],
        },
    ]
    return {
        "name": "t",
        "kind": kind,
        "width": 1920,
        "height": 1080,
        "fps": 25.0,
        "frames": 1500,
        "lighting": "day",
        "distractors": ["bird", "shake"],
        "throws": throws if kind == "throws" else [],
        "distractor_events": [
            {
                "kind": "bird",
                "behaviour": "diving",
                "start_frame": 400,
                "end_frame": 460,
                "size_px": 20,
                "path": [[400, 1500.0, 100.0], [430, 1500.0, 300.0], [460, 1600.0, 320.0]],
            },
            {"kind": "shake", "behaviour": "burst", "start_frame": 700, "end_frame": 740, "path": None},
        ],
    }


def _det(start: int, x: float, y: float, floor: int | None = 12, column: int | None = 3) -> dict[str, Any]:
    return {"start_frame": start, "end_frame": start + 20, "origin": (x, y), "floor": floor, "column": column}


def test_scorer_counts_hits_duplicates_and_false_alarms_by_cause() -> None:
    truth = _truth()
    dets = [
        _det(52, 501.0, 202.0),  # the first throw, floor right
        _det(60, 500.0, 240.0, floor=15),  # the same throw again: a duplicate
        _det(203, 305.0, 603.0, floor=7, column=1),  # the second throw, floor 2 off
        _det(420, 1490.0, 190.0),  # the diving bird
        _det(710, 900.0, 500.0),  # during the shake burst, nowhere near anything with a path
        _det(1000, 100.0, 100.0),  # nothing going on at all
        _det(52, 900.0, 900.0),  # in time with the first throw but far from its path
    ]
    r = score.match_clip(truth, dets)
    assert r.matches == [(0, 0), (1, 2)]
    assert r.missed == []
    causes = sorted(f["cause"] for f in r.false_positives)
    assert causes == ["bird:diving", "duplicate", "shake", "unattributed", "unattributed"]
    s = score.summarize([r])
    assert s["true_positives"] == 2 and s["false_positives"] == 5
    assert s["precision"] == pytest.approx(2 / 7)
    assert s["recall"] == 1.0 and s["throws_min_size"] == 1  # the 4 px throw is outside the target
    assert s["recall_small"] == 1.0
    assert s["floor_within_1"] == 0.5 and s["floor_exact"] == 0.5
    assert s["false_alarms_per_hour"] is None  # no distractor-only clip


def test_scorer_misses_late_or_far_detections_and_rates_false_alarms_per_hour() -> None:
    late, far = _det(90 + 13, 500.0, 600.0), _det(205, 300.0, 760.0)  # 0.52 s after the end; 73 px off
    throws = score.match_clip(_truth(), [late, far])
    assert throws.matches == [] and throws.missed == [0, 1]
    quiet = score.match_clip(_truth("distractors"), [_det(420, 1500.0, 200.0)])
    s = score.summarize([throws, quiet])
    assert s["recall"] == 0.0 and s["true_positives"] == 0 and s["false_positives"] == 3
    assert s["distractor_hours"] == pytest.approx(60 / 3600)
    assert s["false_alarms_per_hour"] == pytest.approx(60.0)
    assert s["false_alarms_per_hour_upper95"] == pytest.approx(score.poisson_upper(1) * 60)
    assert score.poisson_upper(0) == pytest.approx(-math.log(0.05), rel=1e-4)  # 3.0: zero events in 1 h
    text = score.report(s)
    assert "target <= 1/h: NOT met\n" in text and "bird:diving 1" in text
    none = score.summarize([score.match_clip(_truth("distractors"), [])])
    assert "target <= 1/h: met by the count, not yet shown" in score.report(
        none
    )  # 0 in 1 minute proves little


# ---- the runner, with placeholder detectors that exist only here ---------------------------------------


def _oracle(
    path: Path, calibration: Calibration, *, fps: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Reads the answer from the truth file: checks the runner's plumbing, not any detection."""
    truth = json.loads(Path(path).with_suffix(".json").read_text())
    dets = [
        {"start_frame": t["start_frame"], "origin": t["origin"], "floor": t["floor"], "column": t["column"]}
        for t in truth["throws"]
    ]
    assert calibration.width == truth["width"] and fps == truth["fps"]
    return dets, {"frames": truth["frames"], "seconds": 0.5, "fps": truth["frames"] / 0.5}


def _broken(path: Path, calibration: Calibration, *, fps: float) -> tuple[list[Any], dict[str, Any]]:
    raise RuntimeError("decoder exploded")


def test_runner_scores_every_clip_and_survives_a_failing_clip(tmp_path: Path) -> None:
    specs = [
        generate.ClipSpec(
            "throw_a", seed=1, width=640, height=360, seconds=2.0, throws=[{"size_px": 10, "start_frame": 10}]
        ),
        generate.ClipSpec(
            "distract_b",
            seed=2,
            width=640,
            height=360,
            seconds=1.0,
            distractors=["leaves"],
            kind="distractors",
        ),
    ]
    truths = generate.generate_set(specs, tmp_path, log=lambda _: None)
    again = generate.generate_set(specs, tmp_path, log=lambda _: None)  # cached: same truths, nothing redrawn
    assert again == truths
    assert generate.cached_truth(specs[0], tmp_path) == truths[0]
    changed = generate.ClipSpec(**{**specs[0].__dict__, "seed": 99})  # another clip under the same name
    assert generate.cached_truth(changed, tmp_path) is None
    lines: list[str] = []
    results = run.run(truths, tmp_path, _oracle, log=lines.append)
    s = score.summarize(results)
    assert s["recall"] == 1.0 and s["false_positives"] == 0 and s["floor_within_1"] == 1.0
    assert len(lines) == 2 and "hit 1/1" in lines[0]
    failed = run.run(truths, tmp_path, _broken, log=lines.append)
    assert [r.error for r in failed] == ["RuntimeError: decoder exploded"] * 2
    assert score.summarize(failed)["recall"] == 0.0
