"""Things that move in the picture and are not thrown objects: birds, insects near the lens, leaves, clothes
on balconies, rain, headlight sweeps at night.

Each distractor draws itself into a frame (`draw(frame, k)`) and lists what it did (`events()`: kind,
behaviour, frames and a coarse image path) so the scorer can say which distractor a false alarm came from.
Speeds and sizes are physical (metres, m/s) turned into pixels by the scene's scale at the facade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from bench.vision.draw import blend_shapes, ellipse, sub_positions
from bench.vision.facade import Facade
from bench.vision.geometry import GRAVITY, Building, Camera


@dataclass
class Scene:
    """What a distractor needs to know about the clip."""

    camera: Camera
    building: Building
    facade: Facade
    fps: float
    frames: int
    night: bool
    exposure: float  # seconds

    @property
    def width(self) -> int:
        return self.camera.width

    @property
    def height(self) -> int:
        return self.camera.height

    @property
    def ppm(self) -> float:
        """Pixels per metre on the facade at mid-height."""
        return float(self.camera.scale(0.0, self.building.roof / 2))

    @property
    def exposure_frames(self) -> float:
        return self.exposure * self.fps


class Distractor:
    """Base: a kind name, a stage (scene, lens, light, camera, background) and the events it produced."""

    kind = ""
    stage = "scene"

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []

    def draw(self, frame: np.ndarray, k: int) -> None:
        """Draw frame k's contribution in place."""

    def events(self) -> list[dict[str, Any]]:
        """What happened: [{kind, behaviour, start_frame, end_frame, path}]; path [[frame, x, y]] or None."""
        return self._events


@dataclass
class Mover:
    """One moving thing: its image path per frame from `k0`, its look, and how it is drawn at frame k."""

    k0: int
    xs: np.ndarray
    ys: np.ndarray
    colour: tuple[float, ...]
    size: float
    behaviour: str
    opacity: float = 1.0
    blur: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def k1(self) -> int:
        return self.k0 + len(self.xs) - 1

    def path(self, step: int = 5) -> list[list[float]]:
        return [
            [self.k0 + i, round(float(self.xs[i]), 1), round(float(self.ys[i]), 1)]
            for i in range(0, len(self.xs), step)
        ]


class _Movers(Distractor):
    """Distractors made of independent movers, each drawn by `_shape`."""

    def __init__(self, scene: Scene) -> None:
        super().__init__()
        self.scene = scene
        self.movers: list[Mover] = []

    def add(self, mover: Mover) -> None:
        # Keep only the frames inside the clip.
        end = min(len(mover.xs), self.scene.frames - mover.k0)
        if end <= 1 or mover.k0 < 0:
            return
        mover.xs, mover.ys = mover.xs[:end], mover.ys[:end]
        self.movers.append(mover)
        self._events.append(
            {
                "kind": self.kind,
                "behaviour": mover.behaviour,
                "start_frame": mover.k0,
                "end_frame": mover.k1,
                "size_px": round(mover.size, 1),
                "path": mover.path(),
            }
        )

    def draw(self, frame: np.ndarray, k: int) -> None:
        h, w = frame.shape[:2]
        for m in self.movers:
            i = k - m.k0
            if not 0 <= i < len(m.xs):
                continue
            if not (-3 * m.size < m.xs[i] < w + 3 * m.size and -3 * m.size < m.ys[i] < h + 3 * m.size):
                continue
            xs, ys = sub_positions(m.xs, m.ys, i, self.scene.exposure_frames)
            samples = [self._shape(m, i, float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
            blend_shapes(frame, samples, m.colour, opacity=m.opacity, blur=m.blur)

    def _shape(self, m: Mover, i: int, x: float, y: float) -> list[np.ndarray]:
        raise NotImplementedError


def _rate_count(rng: np.random.Generator, frames: int, fps: float, per_minute: float) -> int:
    return max(1, int(rng.poisson(per_minute * frames / fps / 60)))


# ---- birds ------------------------------------------------------------------------------------------------

BIRD_BEHAVIOURS = ("flapping", "gliding", "diving", "perching")


class Birds(_Movers):
    """Pigeons and sparrows: flapping across, gliding in circles, diving and pulling out, perching."""

    kind = "bird"

    def __init__(
        self,
        scene: Scene,
        rng: np.random.Generator,
        *,
        per_minute: float = 8,
        behaviours: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scene)
        kinds = behaviours or BIRD_BEHAVIOURS
        for n in range(_rate_count(rng, scene.frames, scene.fps, per_minute)):
            behaviour = kinds[n % len(kinds)] if behaviours else str(rng.choice(kinds))
            k0 = int(rng.integers(0, max(1, scene.frames - int(2 * scene.fps))))
            self.add(getattr(self, f"_{behaviour}")(rng, k0))

    def _look(self, rng: np.random.Generator, near: float) -> tuple[float, tuple[float, ...], float]:
        """Wingspan px, colour, px per metre at the bird's distance (nearer than the facade by `near`)."""
        ppm = self.scene.ppm * near
        span = float(np.clip(ppm * rng.uniform(0.35, 0.7), 6, 0.06 * self.scene.height))
        g = rng.uniform(35, 95) if not self.scene.night else rng.uniform(90, 160)
        return span, (g, g * 1.02, g * 1.05), ppm

    def _flapping(self, rng: np.random.Generator, k0: int) -> Mover:
        span, colour, ppm = self._look(rng, math.exp(rng.uniform(0, math.log(6))))
        w, h = self.scene.width, self.scene.height
        speed = ppm * rng.uniform(8, 16) / self.scene.fps
        left = rng.random() < 0.5
        x0 = -span if left else w + span
        y0 = rng.uniform(0.05, 0.85) * h
        angle = rng.uniform(-0.35, 0.35) + (0 if left else math.pi)
        n = int((w + 2 * span) / max(speed * abs(math.cos(angle)), 0.5)) + 2
        t = np.arange(n)
        xs = x0 + speed * math.cos(angle) * t
        ys = y0 + speed * math.sin(angle) * t + 0.06 * span * np.sin(t * 0.9)
        return Mover(k0, xs, ys, colour, span, "flapping", extra={"flap": rng.uniform(0.9, 1.6)})

    def _gliding(self, rng: np.random.Generator, k0: int) -> Mover:
        span, colour, ppm = self._look(rng, math.exp(rng.uniform(0, math.log(4))))
        w, h = self.scene.width, self.scene.height
        speed = ppm * rng.uniform(7, 12) / self.scene.fps
        radius = rng.uniform(0.08, 0.25) * h
        omega = speed / radius * rng.choice([-1, 1])
        n = int(rng.uniform(6, 14) * self.scene.fps)
        drift = (w + 2 * radius + 2 * span) / n
        t = np.arange(n)
        phase = rng.uniform(0, 2 * math.pi)
        xs = -radius - span + drift * t + radius * np.cos(omega * t + phase)
        ys = rng.uniform(0.1, 0.5) * h + 0.45 * radius * np.sin(omega * t + phase)
        if rng.random() < 0.5:
            xs = w - xs
        return Mover(k0, xs, ys, colour, span, "gliding", extra={"flap": 0.0})

    def _diving(self, rng: np.random.Generator, k0: int) -> Mover:
        """Level flight, a dive accelerating at up to ~g, a pull-out, then level flight away."""
        span, colour, ppm = self._look(rng, math.exp(rng.uniform(0, math.log(4))))
        w, h, fps = self.scene.width, self.scene.height, self.scene.fps
        vx = ppm * rng.uniform(6, 12) / fps * rng.choice([-1, 1])
        x, y, vy = (-span if vx > 0 else w + span), rng.uniform(0.05, 0.35) * h, 0.0
        level = int(rng.uniform(0.4, 1.5) * fps)
        dive = int(rng.uniform(0.5, 1.2) * fps)
        accel = rng.uniform(0.5, 1.0) * GRAVITY * ppm / fps**2
        xs, ys = [], []
        for i in range(int(12 * fps)):
            if level <= i < level + dive:
                vy += accel
                vx *= 0.97
            elif i >= level + dive:
                vy *= 0.8  # pulling out of the dive
                vx *= 1.03 if abs(vx) < ppm * 14 / fps else 1.0
            x, y = x + vx, y + vy
            xs.append(x)
            ys.append(y)
            if not (-2 * span <= x <= w + 2 * span) or y > h:
                break
        return Mover(k0, np.array(xs), np.array(ys), colour, span, "diving", extra={"flap": 1.2})

    def _perching(self, rng: np.random.Generator, k0: int) -> Mover:
        """Fly in to a balcony rail, sit a few seconds, drop off the rail and fly away."""
        rails = self.scene.facade.rails
        span, colour, _ = self._look(rng, 1.0)
        fps, w = self.scene.fps, self.scene.width
        if not rails:
            return self._flapping(rng, k0)
        rail = rails[int(rng.integers(len(rails)))]
        f = rng.uniform(0.2, 0.8)
        lx, ly = rail.left[0] + f * (rail.right[0] - rail.left[0]), rail.left[1] - 0.18 * span
        side = rng.choice([-1, 1])
        approach = int(rng.uniform(1.0, 2.0) * fps)
        sx, sy = (lx + side * rng.uniform(0.2, 0.45) * w), ly - rng.uniform(0.05, 0.25) * self.scene.height
        ease = 1 - (1 - np.linspace(0, 1, approach)) ** 2  # decelerates to land
        ax, ay = sx + (lx - sx) * ease, sy + (ly - sy) * ease
        sit = int(rng.uniform(2, 8) * fps)
        bob = (rng.random(sit) < 0.04).astype(float) * 0.08 * span
        px, py = np.full(sit, lx), np.full(sit, ly) - bob
        # Take-off: a short drop under gravity before the wings bite, then away and up.
        drop = int(0.3 * fps)
        acc = GRAVITY * self.scene.ppm / fps**2
        t = np.arange(1, drop + 1)
        dx, dy = lx + side * 0.3 * t * span / fps * 10, ly + 0.5 * acc * t**2
        away = int(2 * fps)
        t2 = np.arange(1, away + 1)
        ex = dx[-1] - side * t2 * self.scene.ppm * 9 / fps
        ey = dy[-1] - t2 * self.scene.ppm * 2 / fps
        xs = np.concatenate([ax, px, dx, ex])
        ys = np.concatenate([ay, py, dy, ey])
        m = Mover(k0, xs, ys, colour, span, "perching", extra={"flap": 1.3})
        m.extra["sitting"] = (approach, approach + sit)
        return m

    def _shape(self, m: Mover, i: int, x: float, y: float) -> list[np.ndarray]:
        span = m.size
        sitting = m.extra.get("sitting")
        if sitting and sitting[0] <= i < sitting[1]:
            return [
                ellipse(x, y, 0.14 * span, 0.22 * span, 0.2),
                ellipse(x + 0.05 * span, y - 0.25 * span, 0.08 * span, 0.08 * span, 0),
            ]
        j = min(i, len(m.xs) - 2)
        heading = math.atan2(m.ys[j + 1] - m.ys[j], m.xs[j + 1] - m.xs[j])
        flap = m.extra.get("flap", 1.0)
        fold = math.cos(i * flap) if flap else 1.0  # wings seen from below shorten as they beat
        reach = 0.5 * span * (0.35 + 0.65 * abs(fold))
        c, s = math.cos(heading), math.sin(heading)
        body = ellipse(x, y, 0.24 * span, 0.07 * span, heading)
        wings = []
        for side in (-1, 1):
            root_f = (x + 0.08 * span * c, y + 0.08 * span * s)
            root_b = (x - 0.1 * span * c, y - 0.1 * span * s)
            tip = (x - side * reach * s - 0.08 * span * c, y + side * reach * c - 0.08 * span * s)
            wings.append(np.array([root_f, tip, root_b]))
        return [body, *wings]


# ---- insects near the lens ------------------------------------------------------------------------------


class Insects(_Movers):
    """Moths and flies close to the lens: big, out of focus, erratic; bright in IR at night."""

    kind = "insect"
    stage = "lens"

    def __init__(self, scene: Scene, rng: np.random.Generator, *, per_minute: float = 15) -> None:
        super().__init__(scene)
        w, h, fps = scene.width, scene.height, scene.fps
        for _ in range(_rate_count(rng, scene.frames, fps, per_minute)):
            size = rng.uniform(0.04, 0.16) * h
            n = int(rng.uniform(1, 5) * fps)
            k0 = int(rng.integers(0, max(1, scene.frames - 10)))
            home = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h])
            pos = home + rng.normal(0, 0.1 * h, 2)
            vel = rng.normal(0, 0.01 * h, 2)
            pts = np.empty((n, 2))
            for i in range(n):  # a damped random walk tethered to a light or the lens
                vel = 0.82 * vel + rng.normal(0, 0.012 * h, 2) + 0.02 * (home - pos)
                pos = pos + vel
                pts[i] = pos
            g = rng.uniform(200, 255) if scene.night else rng.uniform(25, 70)
            self.add(
                Mover(
                    k0,
                    pts[:, 0],
                    pts[:, 1],
                    (g, g, g),
                    size,
                    "near_lens",
                    opacity=float(rng.uniform(0.45, 0.85)),
                    blur=0.12 * size,
                    extra={"wing": rng.uniform(0.5, 1.0)},
                )
            )

    def _shape(self, m: Mover, i: int, x: float, y: float) -> list[np.ndarray]:
        s = m.size
        a = 0.5 * math.sin(i * 0.7)
        return [
            ellipse(x, y, 0.32 * s, 0.12 * s, a),
            ellipse(x - 0.15 * s, y - 0.2 * s, 0.25 * s * m.extra["wing"], 0.14 * s, a + 0.6),
            ellipse(x + 0.15 * s, y - 0.2 * s, 0.25 * s * m.extra["wing"], 0.14 * s, a - 0.6),
        ]


# ---- leaves ---------------------------------------------------------------------------------------------


class Leaves(_Movers):
    """Leaves drifting down at their slow terminal speed, swinging and turning, some from balcony plants."""

    kind = "leaves"

    def __init__(self, scene: Scene, rng: np.random.Generator, *, per_minute: float = 20) -> None:
        super().__init__(scene)
        w, h, fps, ppm = scene.width, scene.height, scene.fps, scene.ppm
        wind = rng.uniform(-1.5, 1.5)
        for _ in range(_rate_count(rng, scene.frames, fps, per_minute)):
            near = rng.uniform(0.8, 2.0)
            size = float(np.clip(ppm * near * rng.uniform(0.06, 0.15), 3, 0.015 * h))
            k0 = int(rng.integers(0, max(1, scene.frames - 10)))
            rails = scene.facade.rails
            if rails and rng.random() < 0.4:
                r = rails[int(rng.integers(len(rails)))]
                x0, y0, origin = (r.left[0] + r.right[0]) / 2, r.left[1], "balcony"
            else:
                x0, y0, origin = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.05, 0.6) * h, "wind"
            vt = rng.uniform(0.6, 1.6) * ppm * near / fps
            n = int(rng.uniform(4, 15) * fps)
            t = np.arange(n) / fps
            fall = vt * fps * (t - 0.15 * (1 - np.exp(-t / 0.15)))  # reaches terminal speed within ~0.3 s
            swing = rng.uniform(0.3, 1.0) * ppm * near * np.sin(rng.uniform(2, 5) * t + rng.uniform(0, 6))
            xs = x0 + wind * ppm * near * t + swing
            ys = y0 + fall
            tone = rng.choice([0, 1, 2])
            colour = ((40, 120, 60), (40, 170, 200), (40, 80, 120))[tone] if not scene.night else (110,) * 3
            self.add(
                Mover(
                    k0,
                    xs,
                    ys,
                    tuple(float(c) for c in colour),
                    size,
                    origin,
                    extra={"spin": rng.uniform(1, 4)},
                )
            )

    def _shape(self, m: Mover, i: int, x: float, y: float) -> list[np.ndarray]:
        a = m.extra["spin"] * i / self.scene.fps
        return [ellipse(x, y, 0.5 * m.size, 0.5 * m.size * (0.25 + 0.6 * abs(math.cos(a))), 2 * a, n=10)]


# ---- clothes on balconies -------------------------------------------------------------------------------


class Clothes(Distractor):
    """Laundry hanging on balcony poles, flapping in a gusty wind."""

    kind = "clothes"

    def __init__(self, scene: Scene, rng: np.random.Generator, *, count: int | None = None) -> None:
        super().__init__()
        self.scene = scene
        rails = scene.facade.rails
        n = count if count is not None else int(rng.integers(2, 7))
        picks: list[int] = (
            [int(i) for i in rng.choice(len(rails), size=min(n, len(rails)), replace=False)] if rails else []
        )
        self.items = []
        gust_t = np.arange(scene.frames) / scene.fps
        for idx in picks:
            r = rails[int(idx)]
            width = abs(r.right[0] - r.left[0])
            cw = width * rng.uniform(0.15, 0.35)
            cx = r.left[0] + width * rng.uniform(0.2, 0.8)
            top = r.left[1] - r.height_px * rng.uniform(0.9, 1.3)
            length = r.height_px * rng.uniform(0.5, 1.0)
            gust = 0.5 + 0.5 * np.sin(gust_t * rng.uniform(0.2, 0.6) + rng.uniform(0, 6)) ** 2
            gust += 0.6 * (rng.random(scene.frames) < 0.01)  # sudden gusts
            gust = np.convolve(gust, np.ones(8) / 8, mode="same")
            colour = tuple(
                float(c) for c in (rng.uniform(60, 240, 3) if not scene.night else [rng.uniform(80, 200)] * 3)
            )
            self.items.append((cx, top, cw, length, gust, rng.uniform(4, 9), colour))
            self._events.append(
                {
                    "kind": self.kind,
                    "behaviour": "flapping",
                    "start_frame": 0,
                    "end_frame": scene.frames - 1,
                    "size_px": round(float(max(cw, length)), 1),
                    "path": [[0, round(float(cx), 1), round(float(top + length / 2), 1)]],
                }
            )

    def draw(self, frame: np.ndarray, k: int) -> None:
        t = k / self.scene.fps
        for cx, top, cw, length, gust, omega, colour in self.items:
            g = float(gust[k])
            sway = g * 0.5 * cw * math.sin(omega * t)
            lift = g * 0.35 * length * (0.5 + 0.5 * math.sin(1.7 * omega * t))
            bl = (cx - cw / 2 + sway, top + length - lift)
            br = (cx + cw / 2 + sway * 1.2, top + length - lift * 0.8)
            ml = (cx - cw / 2 + sway * 0.4, top + length * 0.5)
            mr = (cx + cw / 2 + sway * 0.5, top + length * 0.5)
            poly = np.array([(cx - cw / 2, top), (cx + cw / 2, top), mr, br, bl, ml])
            blend_shapes(frame, [[poly]], colour)


# ---- rain -----------------------------------------------------------------------------------------------


class Rain(Distractor):
    """Rain streaks at a constant speed across the whole picture, lit by the IR illuminator at night."""

    kind = "rain"
    stage = "lens"

    def __init__(self, scene: Scene, rng: np.random.Generator, *, density: float | None = None) -> None:
        super().__init__()
        self.scene = scene
        w, h = scene.width, scene.height
        d = density if density is not None else rng.uniform(0.5, 1.5)
        n = int(d * 250 * w * h / (1920 * 1080))
        self.x0 = rng.uniform(0, w, n)
        self.y0 = rng.uniform(0, h, n)
        self.speed = rng.uniform(0.035, 0.07, n) * h  # px per frame
        self.slant = rng.uniform(-0.25, 0.25)
        self.level = rng.uniform(14, 40, n) * (1.6 if scene.night else 1.0)
        self.layer = np.zeros((h, w) if scene.night else (h, w, 3), np.uint8)
        self._events.append(
            {
                "kind": self.kind,
                "behaviour": f"density {d:.2f}",
                "start_frame": 0,
                "end_frame": scene.frames - 1,
                "path": None,
            }
        )

    def draw(self, frame: np.ndarray, k: int) -> None:
        h, w = frame.shape[:2]
        self.layer[:] = 0
        period = h + 0.2 * h
        y = (self.y0 + self.speed * k) % period - 0.1 * h
        x = (self.x0 + self.slant * self.speed * k) % w
        streak = np.maximum(self.speed * self.scene.exposure_frames, 4.0)
        y1, x1 = y + streak, x + self.slant * streak
        for i in range(len(y)):
            v = float(self.level[i])
            cv2.line(self.layer, (int(x[i]), int(y[i])), (int(x1[i]), int(y1[i])), (v, v, v), 1, cv2.LINE_AA)
        cv2.add(frame, self.layer, dst=frame)


# ---- headlight sweeps -----------------------------------------------------------------------------------


class Headlights(Distractor):
    """Cars turning in the road below: a bright patch sweeping across the lower floors (night)."""

    kind = "headlights"

    def __init__(self, scene: Scene, rng: np.random.Generator, *, per_minute: float = 5) -> None:
        super().__init__()
        self.scene = scene
        w, h, fps = scene.width, scene.height, scene.fps
        self.sweeps = []
        for _ in range(_rate_count(rng, scene.frames, fps, per_minute)):
            k0 = int(rng.integers(0, max(1, scene.frames - 10)))
            n = min(int(rng.uniform(1.0, 3.0) * fps), scene.frames - k0)
            ax, ay = rng.uniform(0.08, 0.2) * w, rng.uniform(0.04, 0.1) * h
            yc = scene.facade.ground_y - rng.uniform(0.05, 0.3) * h
            left, right = scene.facade.facade_x
            x_from, x_to = left - ax, right + ax
            if rng.random() < 0.5:
                x_from, x_to = x_to, x_from
            peak = rng.uniform(50, 130)
            self.sweeps.append((k0, n, x_from, x_to, yc, ax, ay, peak))
            path = [
                [k0 + i, round(x_from + (x_to - x_from) * i / n, 1), round(yc, 1)] for i in range(0, n, 5)
            ]
            self._events.append(
                {
                    "kind": self.kind,
                    "behaviour": "sweep",
                    "start_frame": k0,
                    "end_frame": k0 + n - 1,
                    "size_px": round(2 * ax, 1),
                    "path": path,
                }
            )

    def draw(self, frame: np.ndarray, k: int) -> None:
        h, w = frame.shape[:2]
        for k0, n, x_from, x_to, yc, ax, ay, peak in self.sweeps:
            i = k - k0
            if not 0 <= i < n:
                continue
            f = i / n
            xc = x_from + (x_to - x_from) * f
            amp = peak * math.sin(math.pi * f) ** 0.7
            x0, x1 = int(max(xc - 2.5 * ax, 0)), int(min(xc + 2.5 * ax, w))
            y0, y1 = int(max(yc - 2.5 * ay, 0)), int(min(yc + 2.5 * ay, h))
            if x1 <= x0 or y1 <= y0:
                continue
            xx = (np.arange(x0, x1, dtype=np.float32) - xc) / ax
            yy = (np.arange(y0, y1, dtype=np.float32) - yc) / ay
            glow = np.exp(-(yy[:, None] ** 2) - xx[None, :] ** 2) * amp
            roi = frame[y0:y1, x0:x1]
            add = glow if roi.ndim == 2 else glow[:, :, None]
            roi[:] = np.clip(roi + add, 0, 255).astype(np.uint8)
