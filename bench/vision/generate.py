"""Labelled test videos for throw detection: a rendered tower, thrown objects with real physics, distractors.

`make_clip(path, ...)` writes one clip (`<name>.mp4`, MPEG-4 Part 2 as opencv-python-headless encodes it;
`.avi` MJPG if that writer cannot open) and its ground truth `<name>.json` beside it, and returns the truth.
`benchmark_set(...)` lists the clips of the benchmark; `generate_set(...)` renders them into a folder,
skipping clips already there from the same generator version. Everything is deterministic per seed.

    python -m bench.vision.generate OUT_DIR [--hours 0.3] [--quick] [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.vision import ambient, distractors, objects
from bench.vision.distractors import Scene
from bench.vision.facade import Facade, luma, render
from bench.vision.geometry import Building, Camera, calibration_json, frame_building

GENERATOR_VERSION = "2"
FPS = 25.0
DAY_KINDS = ("bird", "leaves", "clothes", "clouds", "daylight", "shake", "rain", "lights")
NIGHT_KINDS = ("insect", "headlights", "lights", "rain", "shake", "clothes", "bird")
ALL_KINDS = tuple(sorted(set(DAY_KINDS) | set(NIGHT_KINDS)))


@dataclass
class ClipSpec:
    """One clip of the benchmark set: what to render (the throws' unset fields are drawn from the seed)."""

    name: str
    seed: int
    width: int = 1280
    height: int = 720
    seconds: float = 10.0
    lighting: str = "day"
    throws: list[dict[str, Any]] = field(default_factory=list)
    distractors: list[str] = field(default_factory=list)
    kind: str = "throws"  # or "distractors": no throw at all
    label: str = ""  # what the clip shows, for the breakdowns: "throws", "bird:diving", "mixed", ...


# ---- one clip -------------------------------------------------------------------------------------------


def make_scene(
    width: int,
    height: int,
    rng: np.random.Generator,
    *,
    floors: int | None = None,
    columns: int | None = None,
) -> tuple[Building, Camera]:
    """A tower and a camera framing it (floors, columns, distance, storey height drawn from rng)."""
    n = floors if floors is not None else int(rng.integers(12, 33))
    storey = float(rng.uniform(2.8, 3.0))
    probe = Building(floors=n, columns=6, column_width=3.6, storey=storey)
    camera = frame_building(
        width,
        height,
        probe,
        distance=float(rng.uniform(1.0, 1.7)) * probe.roof,
        bottom=float(rng.uniform(0.9, 0.95)),
        top=float(rng.uniform(0.06, 0.16)),
    )
    cw = float(rng.uniform(3.3, 4.2))
    if columns is None:
        frac = float(rng.uniform(0.35, 0.7))
        metres = frac * width / float(camera.scale(0.0, probe.roof / 2))
        columns = int(np.clip(round((metres - 2 * probe.margin) / cw), 4, 14))
    return Building(floors=n, columns=columns, column_width=cw, storey=storey), camera


def make_clip(
    path: str | os.PathLike[str],
    *,
    width: int = 1280,
    height: int = 720,
    seconds: float = 4.0,
    throws: Sequence[dict[str, Any] | objects.Throw] = (),
    distractors: Sequence[str] = (),
    seed: int = 1,
    lighting: str = "day",
    fps: float = FPS,
    floors: int | None = None,
    columns: int | None = None,
    noise: float | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """Render one clip to `path` (its suffix is replaced by the container used) and write `<stem>.json`.

    `throws`: dicts with any of floor, column, size_px, shape, launch, start_frame, colour ([B, G, R] or a
    grey level; the rest drawn from the seed; floor and column must fit the building, whose floors/columns
    can be fixed). `distractors`: kinds
    from ALL_KINDS; a bird kind may name its behaviour, e.g. "bird:diving". Returns the ground truth.
    """
    if lighting not in ("day", "night"):
        raise ValueError(f"lighting must be 'day' or 'night', not {lighting!r}")
    rng = np.random.default_rng(seed)
    night = lighting == "night"
    building, camera = make_scene(width, height, rng, floors=floors, columns=columns)
    frames = round(seconds * fps)
    facade = render(camera, building, rng, night=night)
    exposure = float(rng.uniform(0.033, 0.04) if night else rng.uniform(0.008, 0.02))
    scene = Scene(camera, building, facade, fps, frames, night, exposure)
    base_lit = frozenset(
        int(i) for i in np.nonzero(rng.random(len(facade.windows)) < (0.25 if night else 0.0))[0]
    )
    flights = [
        _flight(spec, i, building, camera, facade, fps, frames, rng, night)
        for i, spec in enumerate(_specs(throws))
    ]
    layers = _distractors(distractors, scene, rng, base_lit)
    sigma = noise if noise is not None else float(rng.uniform(2.4, 3.0) if night else rng.uniform(1.3, 1.9))
    video, codec = _render_video(Path(path), scene, flights, layers, sigma, rng, base_lit)
    truth = _truth(
        video,
        codec,
        scene,
        flights,
        layers,
        seed,
        lighting,
        sigma,
        kind or ("throws" if flights else "distractors"),
    )
    video.with_suffix(".json").write_text(json.dumps(truth, ensure_ascii=False, indent=1))
    return truth


def _specs(throws: Sequence[dict[str, Any] | objects.Throw]) -> list[dict[str, Any]]:
    return [asdict(t) if isinstance(t, objects.Throw) else dict(t) for t in throws]


@dataclass
class _Flying:
    throw: objects.Throw
    flight: objects.Flight
    sprite: objects.Sprite
    contrast: float


def _flight(
    spec: dict[str, Any],
    index: int,
    building: Building,
    camera: Camera,
    facade: Facade,
    fps: float,
    frames: int,
    rng: np.random.Generator,
    night: bool,
) -> _Flying:
    unknown = set(spec) - {"floor", "column", "size_px", "shape", "launch", "start_frame", "colour"}
    if unknown:
        raise ValueError(f"throws[{index}]: unknown field(s) {sorted(unknown)}")
    floor = int(spec.get("floor") or rng.integers(2, building.floors + 1))
    column = int(spec.get("column") or rng.integers(1, building.columns + 1))
    if not 1 <= floor <= building.floors:
        raise ValueError(
            f"throws[{index}].floor: {floor} is not a floor of this {building.floors}-floor building"
        )
    if not 1 <= column <= building.columns:
        raise ValueError(
            f"throws[{index}].column: {column} is not one of the {building.columns} window columns"
        )
    shape = str(spec.get("shape") or rng.choice(list(objects.SHAPES)))
    if shape not in objects.SHAPES:
        raise ValueError(f"throws[{index}].shape: {shape!r} is not one of {sorted(objects.SHAPES)}")
    launch = str(spec.get("launch") or rng.choice(objects.LAUNCHES))
    if launch not in objects.LAUNCHES:
        raise ValueError(f"throws[{index}].launch: {launch!r} is not one of {objects.LAUNCHES}")
    size = float(spec.get("size_px") or math.exp(rng.uniform(math.log(3), math.log(40))))
    start = (
        int(spec["start_frame"]) if spec.get("start_frame") is not None else min(int(1.2 * fps), frames // 4)
    )
    if not 0 <= start < frames:
        raise ValueError(f"throws[{index}].start_frame: {start} is outside the clip's {frames} frames")
    throw = objects.Throw(floor, column, size, shape, launch, start)
    flight = objects.simulate(throw, building, camera, fps, rng)
    sprite = objects.make_sprite(shape, rng, night=night)
    if spec.get("colour") is not None:
        sprite.colour = _colour(spec["colour"], index)
    contrast = _contrast(facade, flight, sprite)
    for _ in range(6 if spec.get("colour") is None else 0):
        if contrast >= 25:
            break
        # An object nobody could see against the wall where it starts is no test: pick another colour.
        sprite = objects.make_sprite(shape, rng, night=night)
        contrast = _contrast(facade, flight, sprite)
    return _Flying(throw, flight, sprite, contrast)


def _colour(value: Any, index: int) -> tuple[float, float, float]:
    """A throw's colour given as [B, G, R] or one grey level."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 255:
        g = float(value)
        return (g, g, g)
    if isinstance(value, list | tuple) and len(value) == 3 and all(0 <= float(v) <= 255 for v in value):
        return (float(value[0]), float(value[1]), float(value[2]))
    raise ValueError(f"throws[{index}].colour: {value!r} is neither [B, G, R] nor a grey level 0-255")


def _contrast(facade: Facade, flight: objects.Flight, sprite: objects.Sprite) -> float:
    """Grey-level difference between the object and the facade around its release point."""
    x, y = int(flight.px[0]), int(flight.py[0])
    r = max(3, int(flight.length_m * flight.scale[0]))
    patch = facade.image[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]
    bg = (
        float(np.mean(patch))
        if patch.ndim == 2
        else luma(tuple(float(v) for v in patch.reshape(-1, 3).mean(0)))
    )
    return abs(luma(sprite.colour) - bg)


def _distractors(
    kinds: Sequence[str], scene: distractors.Scene, rng: np.random.Generator, base_lit: frozenset[int]
) -> list[distractors.Distractor]:
    out: list[distractors.Distractor] = []
    for spec in kinds:
        kind, _, behaviour = spec.partition(":")
        if kind == "bird":
            out.append(distractors.Birds(scene, rng, behaviours=(behaviour,) if behaviour else ()))
        elif kind == "insect":
            out.append(distractors.Insects(scene, rng))
        elif kind == "leaves":
            out.append(distractors.Leaves(scene, rng))
        elif kind == "clothes":
            out.append(distractors.Clothes(scene, rng))
        elif kind == "rain":
            out.append(distractors.Rain(scene, rng))
        elif kind == "headlights":
            out.append(distractors.Headlights(scene, rng))
        elif kind == "lights":
            out.append(ambient.Lights(scene, rng, base_lit))
        elif kind == "clouds":
            out.append(ambient.Clouds(scene, rng))
        elif kind == "daylight":
            out.append(ambient.Daylight(scene, rng))
        elif kind == "shake":
            out.append(ambient.Shake(scene, rng))
        else:
            raise ValueError(f"distractors: unknown kind {spec!r} (known: {', '.join(ALL_KINDS)})")
    return out


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path, str]:
    """An MPEG-4 writer (mp4v in .mp4); MJPG in .avi when this OpenCV build cannot encode mp4v."""
    for fourcc, suffix in (("mp4v", ".mp4"), ("MJPG", ".avi")):
        target = path.with_suffix(suffix)
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*fourcc), fps, size)
        if writer.isOpened():
            return writer, target, fourcc
        writer.release()
    raise RuntimeError(f"OpenCV cannot write video here (tried mp4v and MJPG) for {path}")


def _render_video(
    path: Path,
    scene: distractors.Scene,
    flights: list[_Flying],
    layers: list[distractors.Distractor],
    sigma: float,
    rng: np.random.Generator,
    base_lit: frozenset[int],
) -> tuple[Path, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, video, codec = open_writer(path, scene.fps, (scene.width, scene.height))
    by_stage: dict[str, list[distractors.Distractor]] = {}
    for layer in layers:
        by_stage.setdefault(layer.stage, []).append(layer)
    lights = [layer for layer in layers if isinstance(layer, ambient.Lights)]
    noise = ambient.SensorNoise(scene.facade.image.shape, sigma, rng)
    try:
        for k in range(scene.frames):
            lit = lights[0].lit(k) if lights else base_lit
            frame = scene.facade.background(lit).copy()
            for layer in by_stage.get("background", []):
                layer.draw(frame, k)
            for layer in by_stage.get("scene", []):
                layer.draw(frame, k)
            for f in flights:
                _draw_throw(frame, f, k, scene)
            for stage in ("light", "lens", "camera"):
                for layer in by_stage.get(stage, []):
                    layer.draw(frame, k)
            noise.apply(frame)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame)
    finally:
        writer.release()
    return video, codec


def _draw_throw(frame: np.ndarray, f: _Flying, k: int, scene: distractors.Scene) -> None:
    t = (k - f.throw.start_frame) / scene.fps
    end = float(f.flight.t[-1])
    if t < 0 or t > end:
        return
    smear = objects.trajectory_speed(f.flight, t, scene.exposure)
    times = np.clip(objects.exposure_times(t, scene.exposure, smear), 0.0, end)
    xs, ys, scales = f.flight.at(times)
    objects.draw_smeared(frame, f.sprite, xs, ys, scales * f.flight.length_m, times)


def _offsets(layers: list[distractors.Distractor], frames: int) -> np.ndarray:
    """Per-frame camera shake (dx, dy), zero without shake."""
    out = np.zeros((frames, 2))
    for layer in layers:
        if isinstance(layer, ambient.Shake):
            out += np.stack([layer.dx, layer.dy], axis=1)
    return out


def _truth(
    video: Path,
    codec: str,
    scene: distractors.Scene,
    flights: list[_Flying],
    layers: list[distractors.Distractor],
    seed: int,
    lighting: str,
    sigma: float,
    kind: str,
) -> dict[str, Any]:
    shake = _offsets(layers, scene.frames)
    throws = []
    for f in flights:
        traj = []
        for k in range(f.throw.start_frame, scene.frames):
            t = (k - f.throw.start_frame) / scene.fps
            if t > f.flight.t[-1]:
                break
            x, y, _ = f.flight.at(t)
            x, y = float(x) + shake[k, 0], float(y) + shake[k, 1]
            if not (0 <= x < scene.width and 0 <= y < scene.height):
                break
            traj.append([k, round(x, 2), round(y, 2)])
        throws.append(
            {
                "start_frame": f.throw.start_frame,
                "end_frame": traj[-1][0] if traj else f.throw.start_frame,
                "floor": f.throw.floor,
                "column": f.throw.column,
                "size_px": round(f.throw.size_px, 2),
                "shape": f.throw.shape,
                "launch": f.throw.launch,
                "contrast": round(f.contrast, 1),
                "origin": traj[0][1:] if traj else None,
                "trajectory": traj,
                "physics": objects.describe(f.flight),
            }
        )
    b, c = scene.building, scene.camera
    return {
        "name": video.stem,
        "video": video.name,
        "codec": codec,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "kind": kind,
        "width": scene.width,
        "height": scene.height,
        "fps": scene.fps,
        "frames": scene.frames,
        "lighting": lighting,
        "exposure_s": round(scene.exposure, 4),
        "noise_sigma": round(sigma, 2),
        "scene": {
            "floors": b.floors,
            "columns": b.columns,
            "storey_m": round(b.storey, 3),
            "column_width_m": round(b.column_width, 3),
            "distance_m": round(c.distance, 2),
            "pitch_deg": round(math.degrees(c.pitch), 2),
            "focal_px": round(c.focal, 1),
        },
        "calibration": calibration_json(c, b),
        "throws": throws,
        "distractors": sorted({layer.kind for layer in layers}),
        "distractor_events": [e for layer in layers for e in layer.events()],
    }


# ---- the benchmark set ----------------------------------------------------------------------------------

DISTRACTOR_CLIPS = (
    ("bird:flapping", "day"),
    ("bird:gliding", "day"),
    ("bird:diving", "day"),
    ("bird:perching", "day"),
    ("insect", "night"),
    ("rain", "day"),
    ("leaves", "day"),
    ("clothes", "day"),
    ("lights", "night"),
    ("headlights", "night"),
    ("clouds", "day"),
    ("shake", "day"),
    ("daylight", "day"),
    ("rain", "night"),
    ("mixed", "day"),
    ("mixed", "night"),
    ("insect", "night"),
    ("clothes", "night"),
)


def benchmark_set(*, hours: float = 0.3, throw_clips: int = 46, seed: int = 2024) -> list[ClipSpec]:
    """The benchmark's clips: throw clips (1–2 throws each, mixed distractors) and distractor-only minutes.

    Sizes are spread log-uniformly over 3–40 px (a fifth under 5 px), floors uniformly over 2..N, shapes
    and launches in turn, 40 % at night, half at 1080p; `hours` of distractor-only video in 60 s clips.
    """
    rng = np.random.default_rng(seed)
    specs: list[ClipSpec] = []
    shapes = list(objects.SHAPES)
    n_throws = sum(1 if i % 3 == 0 else 2 for i in range(throw_clips))
    sizes = np.exp(np.linspace(math.log(3), math.log(40), n_throws))
    rng.shuffle(sizes)
    t = 0
    for i in range(throw_clips):
        night = i % 5 in (1, 3)
        w, h = (1920, 1080) if i % 2 == 0 else (1280, 720)
        count = 1 if i % 3 == 0 else 2
        start = int(rng.uniform(2.5, 4.0) * FPS)
        throws = []
        for j in range(count):
            throws.append(
                {
                    "size_px": round(float(sizes[t]), 2),
                    "shape": shapes[t % len(shapes)],
                    "launch": objects.LAUNCHES[(t // len(shapes) + j) % len(objects.LAUNCHES)],
                    "start_frame": start + j * int(6.5 * FPS),
                }
            )
            t += 1
        pool = NIGHT_KINDS if night else DAY_KINDS
        mixed = [str(k) for k in rng.choice(pool, size=int(rng.integers(0, 3)), replace=False)]
        specs.append(
            ClipSpec(
                name=f"throw_{i:03d}_{'night' if night else 'day'}_{h}p",
                seed=seed * 1000 + i,
                width=w,
                height=h,
                seconds=(start + (count - 1) * 6.5 * FPS) / FPS + 6.5,
                lighting="night" if night else "day",
                throws=throws,
                distractors=mixed,
                label="throws",
            )
        )
    for i in range(math.ceil(hours * 60 - 1e-9)):
        kind, lighting = DISTRACTOR_CLIPS[i % len(DISTRACTOR_CLIPS)]
        if kind == "mixed":
            pool = NIGHT_KINDS if lighting == "night" else DAY_KINDS
            kinds = [str(k) for k in rng.choice(pool, size=4, replace=False)]
        else:
            kinds = [kind]
        w, h = (1920, 1080) if i % 2 == 0 else (1280, 720)
        specs.append(
            ClipSpec(
                name=f"distract_{i:03d}_{kind.replace(':', '-')}_{lighting}_{h}p",
                seed=seed * 1000 + 500 + i,
                width=w,
                height=h,
                seconds=60.0,
                lighting=lighting,
                distractors=kinds,
                kind="distractors",
                label=kind,
            )
        )
    return specs


def spec_digest(spec: ClipSpec) -> str:
    """What a clip's pixels depend on, hashed; with GENERATOR_VERSION it says a cached clip is current."""
    drawn = {k: v for k, v in asdict(spec).items() if k != "label"}
    return hashlib.sha1(json.dumps(drawn, sort_keys=True).encode()).hexdigest()[:12]


def cached_truth(spec: ClipSpec, out_dir: Path) -> dict[str, Any] | None:
    """The truth of a clip already rendered into `out_dir` by this generator version, else None."""
    truth_path = out_dir / f"{spec.name}.json"
    try:
        truth = json.loads(truth_path.read_text())
        if (
            truth.get("generator_version") == GENERATOR_VERSION
            and truth.get("spec_digest") == spec_digest(spec)
            and (out_dir / truth["video"]).exists()
        ):
            return {**truth, "label": spec.label}
    except (OSError, ValueError, KeyError):
        pass  # missing or half-written: render again
    return None


def render_spec(spec: ClipSpec, out_dir: Path) -> dict[str, Any]:
    """Render one benchmark clip unless the folder already holds it from this generator version."""
    cached = cached_truth(spec, out_dir)
    if cached is not None:
        return cached
    truth = make_clip(
        out_dir / spec.name,
        width=spec.width,
        height=spec.height,
        seconds=spec.seconds,
        throws=spec.throws,
        distractors=spec.distractors,
        seed=spec.seed,
        lighting=spec.lighting,
        kind=spec.kind,
    )
    # Written last: a clip interrupted before this line is rendered again.
    truth["spec_digest"] = spec_digest(spec)
    truth["label"] = spec.label
    (out_dir / f"{spec.name}.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1))
    return truth


def generate_set(
    specs: list[ClipSpec], out_dir: Path, *, jobs: int = 1, log: Any = print
) -> list[dict[str, Any]]:
    """Render the clips missing from `out_dir` (in `jobs` processes); the truths in spec order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if jobs <= 1:
        truths = []
        for n, spec in enumerate(specs, 1):
            truths.append(render_spec(spec, out_dir))
            log(f"   [{n}/{len(specs)}] {spec.name}")
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            truths = list(pool.map(render_spec, specs, [out_dir] * len(specs)))
    log(f"   {len(specs)} clips ready in {out_dir} ({time.perf_counter() - started:.0f} s)")
    return truths


def main(argv: list[str] | None = None) -> None:
    """Render the benchmark set into a folder."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--hours", type=float, default=0.3, help="hours of distractor-only video (default 0.3)")
    ap.add_argument("--throw-clips", type=int, default=46)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=2024, help="seed of the set (as in bench.vision.run)")
    ap.add_argument("--only", default="", help="only clips whose name contains this")
    args = ap.parse_args(argv)
    specs = [
        s
        for s in benchmark_set(hours=args.hours, throw_clips=args.throw_clips, seed=args.seed)
        if args.only in s.name
    ]
    generate_set(specs, args.out_dir, jobs=args.jobs)


if __name__ == "__main__":
    main()
