"""Throw detection benchmark (issue #5): generate the labelled clips (cached), run the detector on each clip
pinned to one core, print recall, precision, false alarms per hour, floor accuracy and speed with targets.

    python -m bench.vision.run [--hours 0.3] [--throw-clips 44] [--quick] [--jobs 2] [--data-dir DIR]
                               [--only SUBSTRING] [--core N] [--detector module:function]

Targets: recall >= 0.95 on objects >= 5 px, <= 1 false alarm per hour of distractor-only video, floor
within ±1 in >= 90 % of detections, >= 50 fps at 1080p on one core (ratio to 25 fps real time printed).
The clips are rendered once per generator version into data/bench-vision/ (or --data-dir,
LINLI_BENCH_VISION_DIR). See bench/vision/README.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: one core means one thread

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT, ROOT / "src"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import cv2  # noqa: E402

from bench.vision import generate, score  # noqa: E402

Detect = Callable[..., tuple[list[Any], dict[str, Any]]]


def default_data_dir() -> Path:
    """Where the generated clips are kept between runs."""
    env = os.environ.get("LINLI_BENCH_VISION_DIR")
    return Path(env) if env else ROOT / "data" / "bench-vision" / f"v{generate.GENERATOR_VERSION}"


def load_detector(spec: str) -> Detect:
    """`module:function` → the function (default linli.vision.detector:detect_file)."""
    module, _, name = spec.partition(":")
    detect: Detect = getattr(importlib.import_module(module), name or "detect_file")
    return detect


def pin_to_one_core(core: int | None) -> int | None:
    """Pin this process to one CPU and OpenCV to one thread; the CPU used (None where affinity is unknown)."""
    cv2.setNumThreads(1)
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    cpu = core if core is not None and core in allowed else allowed[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


def as_dict(det: Any) -> dict[str, Any]:
    """A detection as a plain dict (dataclass or mapping)."""
    d = dataclasses.asdict(det) if dataclasses.is_dataclass(det) and not isinstance(det, type) else dict(det)
    d["origin"] = [float(v) for v in d["origin"]]
    return d


def detect_clip(detect: Detect, truth: dict[str, Any], clip_dir: Path) -> score.ClipResult:
    """Run the detector on one clip and match; a detector error is recorded, never raised."""
    from linli.vision.calibration import Calibration

    try:
        calibration = Calibration.from_json(truth["calibration"])
        cpu0 = time.process_time()
        detections, stats = detect(clip_dir / truth["video"], calibration, fps=truth["fps"])
        stats = dict(stats)
        stats["cpu_seconds"] = time.process_time() - cpu0
        result = score.match_clip(truth, [as_dict(d) for d in detections])
        result.stats = stats
    except Exception as exc:  # one broken clip or detector bug must not lose the other clips' figures
        result = score.match_clip(truth, [])
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def decode_baseline(path: Path) -> tuple[int, float, float]:
    """Frames, wall and CPU seconds to decode a clip with OpenCV alone (the floor under any detector)."""
    cap = cv2.VideoCapture(str(path))
    frames, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        frames += 1
    cap.release()
    return frames, time.perf_counter() - wall0, time.process_time() - cpu0


def run(
    truths: list[dict[str, Any]], clip_dir: Path, detect: Detect, *, log: Callable[[str], None] = print
) -> list[score.ClipResult]:
    """Detect and match every clip, logging one line per clip."""
    results = []
    for n, truth in enumerate(truths, 1):
        r = detect_clip(detect, truth, clip_dir)
        results.append(r)
        fps = r.stats.get("fps")
        log(
            f"   [{n}/{len(truths)}] {truth['name']:<40} {truth['frames']:5d} fr  "
            f"hit {len(r.matches)}/{len(truth['throws'])}  false {len(r.false_positives)}"
            + (f"  {fps:6.1f} fps" if fps else "")
            + (f"  ERROR {r.error}" if r.error else "")
        )
    return results


def save_results(path: Path, results: list[score.ClipResult], summary: dict[str, Any]) -> None:
    """Per-clip detections, matches and false-positive causes, for tracing a figure back to clips."""
    clips = [
        {
            "name": r.truth["name"],
            "matches": r.matches,
            "missed": r.missed,
            "false_positives": r.false_positives,
            "detections": r.detections,
            "stats": r.stats,
            "error": r.error,
        }
        for r in results
    ]
    path.write_text(
        json.dumps({"summary": summary, "clips": clips}, ensure_ascii=False, indent=1, default=str)
    )


def main(argv: list[str] | None = None) -> int:
    """Generate (cached), detect on one core, score, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--hours", type=float, default=0.3, help="hours of distractor-only video (default 0.3 = 18 min)"
    )
    ap.add_argument("--throw-clips", type=int, default=46, help="clips with throws (1-2 each; default 46)")
    ap.add_argument(
        "--quick", action="store_true", help="6 throw clips and 2 distractor minutes: a smoke run"
    )
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes for generation")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--only", default="", help="only clips whose name contains this")
    ap.add_argument(
        "--core", type=int, default=None, help="CPU to pin detection to (default: the last allowed)"
    )
    ap.add_argument("--detector", default="linli.vision.detector:detect_file")
    ap.add_argument(
        "--seed",
        type=int,
        default=2024,
        help="seed of the set (default 2024, the set the detector was tuned on; another seed is a "
        "held-out set: give it its own --data-dir)",
    )
    ap.add_argument(
        "--cached-only", action="store_true", help="score only the clips already rendered; render nothing"
    )
    args = ap.parse_args(argv)
    hours, throw_clips = (2 / 60, 6) if args.quick else (args.hours, args.throw_clips)
    clip_dir = args.data_dir or default_data_dir()
    try:
        detect = load_detector(args.detector)
    except (ImportError, AttributeError) as exc:
        print(f"cannot load the detector {args.detector}: {exc}", file=sys.stderr)
        return 2
    print(
        f"== vision benchmark: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, OpenCV {cv2.__version__}"
    )
    specs = [
        s
        for s in generate.benchmark_set(hours=hours, throw_clips=throw_clips, seed=args.seed)
        if args.only in s.name
    ]
    n_throws = sum(len(s.throws) for s in specs)
    minutes = sum(s.seconds for s in specs if s.kind == "distractors") / 60
    print(
        f"   set (seed {args.seed}): {len(specs)} clips, {n_throws} throws, "
        f"{minutes:.0f} min of distractor-only video"
    )
    if args.cached_only:
        found = [generate.cached_truth(s, clip_dir) for s in specs]
        truths = [t for t in found if t is not None]
        print(f"   --cached-only: {len(truths)} of {len(specs)} clips are in {clip_dir}; only those count")
    else:
        print(
            f"   generating into {clip_dir} (generator v{generate.GENERATOR_VERSION}, {args.jobs} processes)"
        )
        truths = generate.generate_set(specs, clip_dir, jobs=args.jobs)
    cpu = pin_to_one_core(args.core)
    print(f"   detection pinned to CPU {cpu}, cv2 threads {cv2.getNumThreads()}, detector {args.detector}")
    for res in (1080, 720):
        clip = next((t for t in truths if t["height"] == res), None)
        if clip:
            frames, wall, cpu_s = decode_baseline(clip_dir / clip["video"])
            print(
                f"   baseline decode only {res}p: {frames / wall:7.1f} fps wall, "
                f"{frames / cpu_s:7.1f} fps per CPU-second"
            )
    started = time.perf_counter()
    results = run(truths, clip_dir, detect)
    summary = score.summarize(results)
    print(f"== results ({time.perf_counter() - started:.0f} s of detection)")
    print(score.report(summary))
    out = clip_dir / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    save_results(out, results, summary)
    print(f"   per-clip detections and causes: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
