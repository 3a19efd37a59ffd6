"""Score detections against the generator's ground truth.

A detection matches a throw when its start frame lies in the throw's frames widened by 0.5 s on each side
and its origin lies within a tolerance (3 % of the picture height, or 3× the object's size if larger) of
the throw's true path near that frame. Each throw matches at most one detection (closest first); a second
detection of the same throw counts as a duplicate false positive. Every unmatched detection is attributed to
the distractor that was nearest in time and place, so a false alarm can be traced to a bird, a window light,
rain and so on.

Detections are plain dicts with the fields of linli.vision.detector.Detection (start_frame, origin, floor,
column, ...), so the scorer does not depend on the detector's code.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 0.5
TOLERANCE_SHARE = 0.03
SIZE_BUCKETS = ((3, 5), (5, 10), (10, 20), (20, 41))
MIN_SIZE = 5.0  # recall target counts objects at least this many px across


@dataclass
class ClipResult:
    """A clip's truth, its detections and what matched."""

    truth: dict[str, Any]
    detections: list[dict[str, Any]]
    matches: list[tuple[int, int]] = field(default_factory=list)  # (throw index, detection index)
    false_positives: list[dict[str, Any]] = field(default_factory=list)  # detection + attribution
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def missed(self) -> list[int]:
        hit = {t for t, _ in self.matches}
        return [i for i in range(len(self.truth["throws"])) if i not in hit]


def tolerance(truth: dict[str, Any], throw: dict[str, Any]) -> float:
    """How far (px) a detection's origin may be from the true path."""
    return max(TOLERANCE_SHARE * truth["height"], 3.0 * float(throw["size_px"]))


def origin_distance(truth: dict[str, Any], throw: dict[str, Any], det: dict[str, Any]) -> float:
    """Distance from the detection's origin to the true path within ±0.5 s of the detection's start."""
    fps = truth["fps"]
    k = det["start_frame"]
    ox, oy = det["origin"]
    near = [p for p in throw["trajectory"] if abs(p[0] - k) <= WINDOW_S * fps]
    points = near or throw["trajectory"][:1]
    return min((math.hypot(p[1] - ox, p[2] - oy) for p in points), default=math.inf)


def match_clip(truth: dict[str, Any], detections: list[dict[str, Any]]) -> ClipResult:
    """Match a clip's detections to its throws and attribute the rest."""
    fps = truth["fps"]
    result = ClipResult(truth=truth, detections=detections)
    pairs = []
    for di, det in enumerate(detections):
        for ti, throw in enumerate(truth["throws"]):
            lo = throw["start_frame"] - WINDOW_S * fps
            hi = throw["end_frame"] + WINDOW_S * fps
            if not lo <= det["start_frame"] <= hi:
                continue
            dist = origin_distance(truth, throw, det)
            tol = tolerance(truth, throw)
            if dist <= tol:
                cost = abs(det["start_frame"] - throw["start_frame"]) / fps + dist / tol
                pairs.append((cost, ti, di))
    used_t: set[int] = set()
    used_d: set[int] = set()
    for _, ti, di in sorted(pairs):
        if ti in used_t or di in used_d:
            continue
        used_t.add(ti)
        used_d.add(di)
        result.matches.append((ti, di))
    candidates = {di for _, _, di in pairs}
    for di, det in enumerate(detections):
        if di in used_d:
            continue
        cause = "duplicate" if di in candidates else attribute(truth, det)
        result.false_positives.append({**det, "cause": cause})
    result.matches.sort()
    return result


def attribute(truth: dict[str, Any], det: dict[str, Any]) -> str:
    """The distractor behind a false alarm: nearest event with a path in time and place, else a global one."""
    fps, h = truth["fps"], truth["height"]
    k = det["start_frame"]
    ox, oy = det["origin"]
    best: tuple[float, str] | None = None
    global_kinds = []
    for ev in truth.get("distractor_events", []):
        if not ev["start_frame"] - fps <= k <= ev["end_frame"] + fps:
            continue
        if ev.get("path") is None:
            global_kinds.append(ev["kind"])
            continue
        near = [p for p in ev["path"] if abs(p[0] - k) <= 2 * fps] or ev["path"]
        d = min(math.hypot(p[1] - ox, p[2] - oy) for p in near)
        if d <= 0.12 * h + float(ev.get("size_px") or 0) and (best is None or d < best[0]):
            label = ev["kind"] + (f":{ev['behaviour']}" if ev["kind"] == "bird" else "")
            best = (d, label)
    if best:
        return best[1]
    for kind in ("shake", "daylight", "clouds", "rain"):
        if kind in global_kinds:
            return kind
    return "unattributed"


# ---- totals ---------------------------------------------------------------------------------------------


def size_bucket(size: float) -> str:
    """'3-5 px', '5-10 px', ... for a size in px."""
    for lo, hi in SIZE_BUCKETS:
        if lo <= size < hi:
            return f"{lo}-{hi if hi != 41 else 40} px"
    return "<3 px" if size < 3 else ">40 px"


def floor_band(floor: int) -> str:
    """Low, middle or high floors."""
    return "floors 2-6" if floor <= 6 else "floors 7-15" if floor <= 15 else "floors 16+"


@dataclass
class Tally:
    """Hits out of a total."""

    hit: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.hit += bool(ok)

    @property
    def share(self) -> float | None:
        return self.hit / self.total if self.total else None


def summarize(results: list[ClipResult]) -> dict[str, Any]:
    """Recall, precision, false alarms per hour, floor accuracy, speed, and breakdowns by category."""
    recall = Tally()
    recall_small = Tally()
    by: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    floor_ok, floor_exact, column_exact = Tally(), Tally(), Tally()
    floor_none = 0
    delays: list[float] = []
    tp = fp = 0
    fp_distractor_clips = 0
    distractor_seconds = 0.0
    fp_causes: Counter[str] = Counter()
    fp_by_clip_kind: Counter[str] = Counter()
    seconds_by_clip_kind: Counter[str] = Counter()
    speed: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # frames, wall s, cpu s
    errors = []
    for r in results:
        t = r.truth
        res = f"{t['height']}p"
        if r.error:
            errors.append(f"{t['name']}: {r.error}")
        if r.stats.get("frames"):
            s = speed[res]
            s[0] += r.stats["frames"]
            s[1] += r.stats.get("seconds", 0.0)
            s[2] += r.stats.get("cpu_seconds", 0.0)
        matched = dict(r.matches)
        for ti, throw in enumerate(t["throws"]):
            hit = ti in matched
            if throw["size_px"] >= MIN_SIZE:
                recall.add(hit)
                for name, value in (
                    ("size", size_bucket(throw["size_px"])),
                    ("lighting", t["lighting"]),
                    ("resolution", res),
                    ("shape", throw["shape"]),
                    ("launch", throw["launch"]),
                    ("floors", floor_band(throw["floor"])),
                    ("mixed distractors", "+".join(t["distractors"]) or "none"),
                ):
                    by[name][value].add(hit)
            else:
                recall_small.add(hit)
                by["size"][size_bucket(throw["size_px"])].add(hit)
            if hit:
                det = r.detections[matched[ti]]
                delays.append((det["start_frame"] - throw["start_frame"]) / t["fps"])
                floor = det.get("floor")
                if floor is None:
                    floor_none += 1
                floor_ok.add(floor is not None and abs(floor - throw["floor"]) <= 1)
                floor_exact.add(floor == throw["floor"])
                column_exact.add(det.get("column") == throw["column"])
        tp += len(r.matches)
        fp += len(r.false_positives)
        for f in r.false_positives:
            fp_causes[f["cause"]] += 1
        primary = clip_label(t)
        seconds_by_clip_kind[primary] += t["frames"] / t["fps"]
        fp_by_clip_kind[primary] += len(r.false_positives)
        if t["kind"] == "distractors" and not r.error:  # hours the detector did not see are not counted
            distractor_seconds += t["frames"] / t["fps"]
            fp_distractor_clips += len(r.false_positives)
    hours = distractor_seconds / 3600
    return {
        "throws_min_size": recall.total,
        "recall": recall.share,
        "recall_hits": recall.hit,
        "recall_small": recall_small.share,
        "small_total": recall_small.total,
        "true_positives": tp,
        "false_positives": fp,
        "precision": tp / (tp + fp) if tp + fp else None,
        "distractor_hours": hours,
        "false_alarms_distractor_clips": fp_distractor_clips,
        "false_alarms_per_hour": fp_distractor_clips / hours if hours else None,
        "false_alarms_per_hour_upper95": poisson_upper(fp_distractor_clips) / hours if hours else None,
        "floor_within_1": floor_ok.share,
        "floor_exact": floor_exact.share,
        "floor_none": floor_none,
        "column_exact": column_exact.share,
        "matched": floor_ok.total,
        "delay_s_median": sorted(delays)[len(delays) // 2] if delays else None,
        "by": {k: {v: (x.hit, x.total) for v, x in sorted(d.items())} for k, d in by.items()},
        "fp_causes": dict(fp_causes.most_common()),
        "fp_by_clip_kind": {
            k: (fp_by_clip_kind[k], seconds_by_clip_kind[k]) for k in sorted(seconds_by_clip_kind)
        },
        "speed": {
            k: {
                "frames": v[0],
                "fps_wall": v[0] / v[1] if v[1] else None,
                "fps_cpu": v[0] / v[2] if v[2] else None,
            }
            for k, v in speed.items()
        },
        "errors": errors,
    }


def clip_label(truth: dict[str, Any]) -> str:
    """A clip's kind for the breakdown: 'throw clips (day)' or its distractor, e.g. 'bird:diving (day)'."""
    if truth["kind"] != "distractors":
        return f"throw clips ({truth['lighting']})"
    kind = truth.get("label") or "+".join(truth["distractors"]) or "nothing"
    return f"{kind} ({truth['lighting']})"


def poisson_upper(n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence limit of a Poisson mean after observing n events."""
    lo, hi = 0.0, 10.0 + 10.0 * n
    for _ in range(100):
        mid = (lo + hi) / 2
        cdf = (
            sum(math.exp(-mid + k * math.log(mid) - math.lgamma(k + 1)) for k in range(n + 1))
            if mid > 0
            else 1.0
        )
        if cdf > 1 - confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ---- report ---------------------------------------------------------------------------------------------

TARGETS = {
    "recall": 0.95,
    "false_alarms_per_hour": 1.0,
    "floor_within_1": 0.90,
    "fps_1080p": 50.0,
}


def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:5.1f}%"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "NOT met"


def report(s: dict[str, Any]) -> str:
    """The printed report: headline figures with their targets, then the breakdowns."""
    out = []
    rec, fl = s["recall"], s["floor_within_1"]
    out.append(
        f"   recall (objects >= {MIN_SIZE:.0f} px):  {_pct(rec)}  ({s['recall_hits']}/{s['throws_min_size']})"
        f"   target >= 95%: {_met(None if rec is None else rec >= TARGETS['recall'])}"
    )
    out.append(
        f"   recall (objects < {MIN_SIZE:.0f} px, no target): {_pct(s['recall_small'])}"
        f"  (of {s['small_total']})"
    )
    out.append(
        f"   precision:                 {_pct(s['precision'])}  ({s['true_positives']} true, "
        f"{s['false_positives']} false detections in all clips)"
    )
    fa, up, hours = s["false_alarms_per_hour"], s["false_alarms_per_hour_upper95"], s["distractor_hours"]
    if fa is None:
        out.append("   false alarms per hour:     n/a (no distractor-only video in this run)")
    else:
        out.append(
            f"   false alarms per hour:     {fa:6.2f} ({s['false_alarms_distractor_clips']} in {hours:.2f} h "
            f"of distractor-only video; 95% upper bound {up:.1f}/h)"
            f"   target <= 1/h: {_met(fa <= TARGETS['false_alarms_per_hour'])}"
            + (" by the count, not yet shown" if fa <= TARGETS["false_alarms_per_hour"] < up else "")
        )
        if up > TARGETS["false_alarms_per_hour"]:
            out.append(
                "      (too few hours to show <= 1/h with 95% confidence: "
                "that takes 0 false alarms in >= 3 h, --hours 3)"
            )
    out.append(
        f"   floor within ±1:           {_pct(fl)}  (of {s['matched']} matched; exact "
        f"{_pct(s['floor_exact'])}; no floor given {s['floor_none']})"
        f"   target >= 90%: {_met(None if fl is None else fl >= TARGETS['floor_within_1'])}"
    )
    out.append(f"   column exact (no target):  {_pct(s['column_exact'])}")
    if s["delay_s_median"] is not None:
        out.append(f"   detection start after release, median: {s['delay_s_median']:.2f} s")
    for res, sp in sorted(s["speed"].items(), key=lambda kv: -int(kv[0][:-1])):
        wall, cpu = sp["fps_wall"] or 0.0, sp["fps_cpu"] or 0.0
        line = (
            f"   speed {res:>6}: {cpu:7.1f} fps per CPU-second, {wall:7.1f} fps wall ({sp['frames']} frames)"
        )
        if res == "1080p":
            line += (
                f"   ratio to 25 fps: {cpu / 25:.2f}   target >= 50 fps: {_met(cpu >= TARGETS['fps_1080p'])}"
            )
        out.append(line)
    out.append("   recall by category (objects >= 5 px; the size row also shows smaller ones):")
    for cat, values in s["by"].items():
        cells = "  ".join(f"{v} {h}/{n}" for v, (h, n) in values.items())
        out.append(f"      {cat:>18}: {cells}")
    causes = ", ".join(f"{k} {v}" for k, v in s["fp_causes"].items()) or "none"
    out.append(f"   false positives by cause: {causes}")
    out.append("   false positives by clip kind (count / minutes of video):")
    for kind, (n, secs) in s["fp_by_clip_kind"].items():
        out.append(f"      {kind:>28}: {n:3d} / {secs / 60:5.1f} min")
    out.extend(f"   ERROR {e}" for e in s["errors"])
    return "\n".join(out)
