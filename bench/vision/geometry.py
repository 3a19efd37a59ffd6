"""The scene's geometry: a residential tower's facade seen by a fixed camera on the ground looking up.

World coordinates in metres: x along the facade (0 at its centre, to the right), y out of the facade towards
the camera (0 on the facade plane), z up (0 on the ground). The camera stands `distance` metres in front of
the facade at `eye` metres above the ground, pitched up by `pitch` radians, no roll, no yaw: floor lines are
horizontal in the picture, floors get shorter towards the top and the facade narrows (keystone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

GRAVITY = 9.81  # m/s²


@dataclass(frozen=True)
class Building:
    """A tower's facade: floors of `storey` metres, `columns` window columns of `column_width` metres."""

    floors: int
    columns: int
    column_width: float
    storey: float = 2.9
    margin: float = 1.0  # wall left of the first column and right of the last
    parapet: float = 1.2  # roof parapet above the roof line
    balcony_depth: float = 1.2

    @property
    def width(self) -> float:
        """Facade width in metres."""
        return self.columns * self.column_width + 2 * self.margin

    @property
    def roof(self) -> float:
        """Height of the roof line (top of the last floor) in metres."""
        return self.floors * self.storey

    def column_centre(self, column: int) -> float:
        """World x of the centre of window column `column` (1..K)."""
        return -self.width / 2 + self.margin + (column - 0.5) * self.column_width

    def floor_base(self, floor: int) -> float:
        """World z of the floor slab of `floor` (1..N)."""
        return (floor - 1) * self.storey


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: image size, focal length in pixels, principal point at the image centre."""

    width: int
    height: int
    distance: float
    pitch: float
    focal: float
    eye: float = 1.5

    def project(self, x: Any, y: Any, z: Any) -> tuple[np.ndarray, np.ndarray]:
        """Image (px, py) of world points; arrays broadcast."""
        x, y, z = np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
        s, c = math.sin(self.pitch), math.cos(self.pitch)
        rel_z, depth = z - self.eye, self.distance - y
        d = rel_z * s + depth * c
        v = rel_z * c - depth * s
        return self.width / 2 + self.focal * x / d, self.height / 2 - self.focal * v / d

    def depth(self, y: Any, z: Any) -> np.ndarray:
        """Distance along the optical axis of world points (for their apparent size)."""
        return (np.asarray(z, float) - self.eye) * math.sin(self.pitch) + (
            self.distance - np.asarray(y, float)
        ) * math.cos(self.pitch)

    def scale(self, y: Any, z: Any) -> np.ndarray:
        """Pixels per metre for a small object at (y, z), seen face-on."""
        return self.focal / self.depth(y, z)


def frame_building(
    width: int, height: int, building: Building, *, distance: float, bottom: float, top: float
) -> Camera:
    """The camera that puts the ground line at image row `bottom`·height and the parapet at `top`·height."""
    eye = 1.5
    a0 = math.atan2(0 - eye, distance)
    a1 = math.atan2(building.roof + building.parapet - eye, distance)
    yb, yt, cy = bottom * height, top * height, height / 2
    want = (yb - cy) / (cy - yt)
    lo, hi = a0 + 1e-6, a1 - 1e-6
    for _ in range(80):  # tan(pitch - a0) / tan(a1 - pitch) grows with pitch: bisect
        mid = (lo + hi) / 2
        if math.tan(mid - a0) / math.tan(a1 - mid) < want:
            lo = mid
        else:
            hi = mid
    pitch = (lo + hi) / 2
    return Camera(width, height, distance, pitch, (yb - cy) / math.tan(pitch - a0), eye)


def calibration_json(camera: Camera, building: Building, *, sensitivity: float = 0.5) -> dict[str, Any]:
    """Calibration.to_json() of this scene: a floor line per slab on the facade plane, columns at mid-height.

    Column boundaries are one x each (the contract's Calibration has no slanted columns); they are taken at
    the facade's mid-height, as a person marking a still frame would, so the keystone moves the outer
    boundaries by a fraction of a column at the top and bottom floors.
    """
    left, right = -building.width / 2, building.width / 2
    lines = []
    for k in range(building.floors + 1):
        z = k * building.storey
        (x1, x2), (y1, y2) = camera.project([left, right], [0.0, 0.0], [z, z])
        lines.append([[round(float(x1), 2), round(float(y1), 2)], [round(float(x2), 2), round(float(y2), 2)]])
    mid = building.roof / 2
    xs = [
        -building.width / 2 + building.margin + j * building.column_width for j in range(building.columns + 1)
    ]
    px, _ = camera.project(xs, [0.0] * len(xs), [mid] * len(xs))
    return {
        "width": camera.width,
        "height": camera.height,
        "floor_lines": lines,
        "columns": [round(float(v), 2) for v in px],
        "ignore": [],
        "zone": None,
        "sensitivity": sensitivity,
    }


def floor_position(calibration: dict[str, Any], y: float) -> float:
    """Continuous floor coordinate of image row y under horizontal floor lines: 0 ground line, N roof line.

    The benchmark's own reading of its calibration (tests use it to check the truth against the lines).
    """
    ys = [line[0][1] for line in calibration["floor_lines"]]
    for i in range(len(ys) - 1):
        if ys[i] >= y >= ys[i + 1]:
            return i + (ys[i] - y) / (ys[i] - ys[i + 1])
    if y > ys[0]:
        return (ys[0] - y) / (ys[0] - ys[1])
    n = len(ys) - 1
    return n + (ys[n] - y) / (ys[n - 1] - ys[n])
