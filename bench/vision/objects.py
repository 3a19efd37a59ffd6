"""Thrown objects: the physics of the fall (gravity, launch, quadratic drag) and their rendering.

An object is released at a window or balcony of a known floor and column and then moves under gravity and
air drag a = g − k·|v|·v, integrated with RK4 at 16 steps per frame. Its picture tumbles (rotation in the
image and a 3-D turn that foreshortens it), and is smeared along its path over the exposure (motion blur).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.vision.draw import blend_shapes
from bench.vision.geometry import GRAVITY, Building, Camera

SUBSTEPS = 16  # integration steps per frame


@dataclass(frozen=True)
class Shape:
    """What kind of object: drag per metre of size, tumbling rate, colours by day (BGR) and in IR (grey)."""

    drag: float  # k in 1/m for a 0.25 m object; scaled by 0.25 / size
    spin: tuple[float, float]  # rad/s range of the tumble
    day: tuple[tuple[int, int, int], ...]
    ir: tuple[int, int]
    flexible: bool = False  # outline changes as it falls (bags, paper)


SHAPES: dict[str, Shape] = {
    "bottle": Shape(
        0.010, (4, 14), ((60, 110, 40), (200, 190, 170), (40, 40, 160), (30, 30, 30)), (110, 190)
    ),
    "can": Shape(0.016, (5, 16), ((40, 40, 200), (190, 190, 190), (160, 90, 30)), (140, 230)),
    "box": Shape(0.030, (2, 8), ((70, 120, 170), (230, 230, 230), (60, 90, 120)), (120, 210)),
    "flowerpot": Shape(0.004, (1, 5), ((50, 80, 170), (60, 60, 60), (200, 200, 200)), (100, 180)),
    "bag": Shape(
        0.060, (1, 4), ((245, 245, 245), (25, 25, 25), (40, 40, 190), (160, 60, 40)), (150, 240), True
    ),
    "paper": Shape(0.150, (2, 9), ((235, 235, 235), (190, 210, 225)), (170, 245), True),
}

LAUNCHES = ("drop", "push", "throw_up")


@dataclass
class Throw:
    """What to throw: from which floor and column, how big it looks at release, which shape, how, when."""

    floor: int
    column: int
    size_px: float
    shape: str = "bottle"
    launch: str = "drop"
    start_frame: int = 50


@dataclass
class Flight:
    """A simulated throw: the fine-grained path (time from release, world and image positions)."""

    throw: Throw
    t: np.ndarray  # seconds since release, SUBSTEPS per frame
    world: np.ndarray  # (n, 3) x, y, z in metres
    px: np.ndarray
    py: np.ndarray
    scale: np.ndarray  # px per metre at each point
    length_m: float  # physical size (largest extent)
    drag: float
    velocity0: tuple[float, float, float]
    release: tuple[float, float, float]

    def at(self, seconds: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image position and scale at `seconds` after release (interpolated)."""
        return (
            np.interp(seconds, self.t, self.px),
            np.interp(seconds, self.t, self.py),
            np.interp(seconds, self.t, self.scale),
        )


def simulate(
    throw: Throw,
    building: Building,
    camera: Camera,
    fps: float,
    rng: np.random.Generator,
    *,
    drag: float | None = None,
    velocity: tuple[float, float, float] | None = None,
    release: tuple[float, float, float] | None = None,
    max_seconds: float = 12.0,
) -> Flight:
    """Integrate the fall until the object reaches the ground (or max_seconds); launch drawn from rng."""
    shape = SHAPES[throw.shape]
    if release is None:
        balcony = _has_balcony(building, throw.column)
        x = building.column_centre(throw.column) + rng.uniform(-0.25, 0.25) * building.column_width
        y = building.balcony_depth + 0.15 if balcony else 0.35
        z = building.floor_base(throw.floor) + rng.uniform(0.95, 1.4)
        release = (x, y, z)
    if velocity is None:
        velocity = _launch_velocity(throw.launch, rng)
    scale0 = float(camera.scale(release[1], release[2]))
    length = throw.size_px / scale0
    if drag is None:
        drag = shape.drag * min(max(0.25 / max(length, 0.02), 0.4), 3.0)
    dt = 1.0 / (fps * SUBSTEPS)
    n_max = int(max_seconds / dt) + 1
    pos = np.array(release, float)
    vel = np.array(velocity, float)
    out = np.empty((n_max, 3))
    n = 0
    for n in range(n_max):
        out[n] = pos
        if pos[2] <= 0.0:
            break
        pos, vel = _rk4(pos, vel, drag, dt)
    else:
        n = n_max - 1
    world = out[: n + 1]
    px, py = camera.project(world[:, 0], world[:, 1], world[:, 2])
    return Flight(
        throw=throw,
        t=np.arange(n + 1) * dt,
        world=world,
        px=px,
        py=py,
        scale=camera.scale(world[:, 1], world[:, 2]),
        length_m=length,
        drag=drag,
        velocity0=velocity,
        release=release,
    )


def _has_balcony(building: Building, column: int) -> bool:
    """Balconies on every other column, starting with the second: living rooms between bedrooms."""
    return column % 2 == 0


def _launch_velocity(launch: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """Initial velocity (x, y outwards, z up) in m/s for a drop, a push over the rail or a throw up."""
    if launch == "drop":
        return (rng.uniform(-0.1, 0.1), rng.uniform(0.0, 0.4), 0.0)
    if launch == "push":
        return (rng.uniform(-0.5, 0.5), rng.uniform(1.0, 3.0), rng.uniform(0.0, 0.5))
    if launch == "throw_up":
        return (rng.uniform(-1.0, 1.0), rng.uniform(1.5, 4.0), rng.uniform(1.5, 4.0))
    raise ValueError(f"unknown launch {launch!r}")


def _accel(vel: np.ndarray, drag: float) -> np.ndarray:
    speed = math.sqrt(float(vel @ vel))
    return np.array([0.0, 0.0, -GRAVITY]) - drag * speed * vel


def _rk4(pos: np.ndarray, vel: np.ndarray, drag: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
    a1 = _accel(vel, drag)
    v2 = vel + a1 * dt / 2
    a2 = _accel(v2, drag)
    v3 = vel + a2 * dt / 2
    a3 = _accel(v3, drag)
    v4 = vel + a3 * dt
    a4 = _accel(v4, drag)
    new_pos = pos + dt / 6 * (vel + 2 * v2 + 2 * v3 + v4)
    new_vel = vel + dt / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
    return new_pos, new_vel


# ---- rendering ------------------------------------------------------------------------------------------


def outline(shape: str, rng: np.random.Generator) -> np.ndarray:
    """The object's outline in its own unit frame (largest extent 1, centred): (n, 2) points."""
    if shape == "bottle":
        pts = [(-0.5, -0.14), (0.2, -0.14), (0.3, -0.06), (0.5, -0.05), (0.5, 0.05), (0.3, 0.06), (0.2, 0.14)]
        pts += [(-0.5, 0.14)]
    elif shape == "can":
        pts = [(-0.5, -0.27), (0.5, -0.27), (0.5, 0.27), (-0.5, 0.27)]
    elif shape == "box":
        pts = [(-0.5, -0.35), (0.5, -0.35), (0.5, 0.35), (-0.5, 0.35)]
    elif shape == "flowerpot":
        pts = [(-0.5, -0.42), (0.5, -0.3), (0.5, 0.3), (-0.5, 0.42)]
    else:  # bag, paper: an irregular blob, rougher for paper
        n = 11
        rough = 0.35 if shape == "paper" else 0.18
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = 0.5 * (1 - rough * rng.random(n))
        pts = list(zip(rad * np.cos(ang), rad * np.sin(ang), strict=True))
    return np.array(pts, float)


@dataclass
class Sprite:
    """How one thrown object looks: outline, colour by day or in IR, tumble parameters."""

    shape: str
    points: np.ndarray
    colour: tuple[float, float, float]
    spin: float
    tumble: float
    angle0: float
    phase0: float
    wobble: np.ndarray  # per-vertex phase for flexible objects

    def polygon(self, t: float, size_px: float) -> np.ndarray:
        """Outline in image px around (0, 0) at time t: rotated, foreshortened by the tumble, deformed."""
        pts = self.points.copy()
        phase = self.phase0 + self.tumble * t
        pts[:, 0] *= 0.3 + 0.7 * abs(math.cos(phase))
        if SHAPES[self.shape].flexible:
            pts *= (1 + 0.15 * np.sin(6 * t + self.wobble))[:, None]
        a = self.angle0 + self.spin * t
        c, s = math.cos(a), math.sin(a)
        rot = pts @ np.array([[c, s], [-s, c]])
        return rot * size_px

    def shade(self, t: float) -> float:
        """Brightness factor: a tumbling object catches the light differently."""
        return 0.85 + 0.3 * abs(math.sin(self.phase0 + self.tumble * t))


def make_sprite(shape: str, rng: np.random.Generator, *, night: bool) -> Sprite:
    """A sprite with a colour drawn for the lighting (grey levels in IR)."""
    spec = SHAPES[shape]
    if night:
        g = float(rng.uniform(*spec.ir))
        colour: tuple[float, float, float] = (g, g, g)
    else:
        b, gr, r = spec.day[int(rng.integers(len(spec.day)))]
        colour = (float(b), float(gr), float(r))
    pts = outline(shape, rng)
    return Sprite(
        shape=shape,
        points=pts,
        colour=colour,
        spin=float(rng.uniform(*spec.spin) * rng.choice([-1, 1])),
        tumble=float(rng.uniform(*spec.spin)),
        angle0=float(rng.uniform(0, 2 * np.pi)),
        phase0=float(rng.uniform(0, 2 * np.pi)),
        wobble=rng.uniform(0, 2 * np.pi, len(pts)),
    )


def draw_smeared(
    frame: np.ndarray,
    sprite: Sprite,
    xs: np.ndarray,
    ys: np.ndarray,
    sizes: np.ndarray,
    times: np.ndarray,
    *,
    colour: tuple[float, ...] | None = None,
    opacity: float = 1.0,
) -> None:
    """Blend the sprite into `frame` at each sub-exposure position (xs, ys), averaged: motion blur."""
    polys = [
        sprite.polygon(float(t), float(s)) + np.array([x, y])
        for x, y, s, t in zip(xs, ys, sizes, times, strict=True)
    ]
    shade = sprite.shade(float(times[len(times) // 2]))
    base = colour if colour is not None else sprite.colour
    paint = tuple(min(255.0, c * shade) for c in base)
    blend_shapes(frame, [[p] for p in polys], paint, opacity=opacity)


def exposure_times(t: float, exposure: float, length_px: float) -> np.ndarray:
    """Sub-exposure times around t: enough samples that the smear has no gaps (at most 12)."""
    n = int(min(12, max(1, math.ceil(length_px / 1.5))))
    if n == 1:
        return np.array([t])
    return t + exposure * (np.arange(n) / (n - 1) - 0.5)


def trajectory_speed(flight: Flight, t: float, exposure: float) -> float:
    """Image distance in px travelled during the exposure at time t."""
    x, y, _ = flight.at(np.array([t - exposure / 2, t + exposure / 2]))
    return float(math.hypot(x[1] - x[0], y[1] - y[0]))


def describe(flight: Flight) -> dict[str, Any]:
    """Physical parameters of a flight for the ground truth."""
    return {
        "release_m": [round(v, 3) for v in flight.release],
        "velocity0_mps": [round(v, 3) for v in flight.velocity0],
        "drag_per_m": round(flight.drag, 5),
        "length_m": round(flight.length_m, 4),
    }
