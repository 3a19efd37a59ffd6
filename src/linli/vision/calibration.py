"""A camera's facade calibration: floor lines, window columns, ignore masks, zone of interest, sensitivity.

Pure geometry, no I/O. Image coordinates are full-resolution pixels, x to the right, y down. Floor lines go
from the ground line of floor 1 (index 0, lowest in the picture) up to the roof line (index N); each is
given by two image points, so lines may converge as a camera looking up sees them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linli.core.errors import Invalid

Point = tuple[float, float]
Line = tuple[Point, Point]

FLOOR_HEIGHT_M = 3.0  # a storey of a Chinese residential building, floor to floor (2.8–3.0 m)


class CalibrationError(Invalid):
    """Calibration input that cannot be used; `field` names the part (e.g. `floor_lines[3]`)."""

    code = "invalid_calibration"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"标定数据有误（{field}）：{reason}", field=field)
        self.reason = reason


@dataclass(frozen=True)
class Calibration:
    """Where the floors and window columns of a facade are in one camera's picture."""

    width: int
    height: int
    floor_lines: list[Line]
    columns: list[float]
    ignore: list[list[Point]] = field(default_factory=list)
    zone: list[Point] | None = None
    sensitivity: float = 0.5

    def __post_init__(self) -> None:
        _validate(self)

    # ---- construction -------------------------------------------------------------------------------

    @classmethod
    def from_simple(
        cls,
        *,
        width: int,
        height: int,
        top_line: Line,
        bottom_line: Line,
        floors: int,
        columns: Sequence[float] | int,
        **kw: Any,
    ) -> Calibration:
        """Build from the roof line, the ground line and the floor count (lines interpolated linearly)."""
        if not isinstance(floors, int) or isinstance(floors, bool) or floors < 1:
            raise CalibrationError("floors", "楼层数必须是正整数")
        top = _line("top_line", top_line)
        bottom = _line("bottom_line", bottom_line)
        lines: list[Line] = []
        for i in range(floors + 1):
            f = i / floors
            p1 = (_lerp(bottom[0][0], top[0][0], f), _lerp(bottom[0][1], top[0][1], f))
            p2 = (_lerp(bottom[1][0], top[1][0], f), _lerp(bottom[1][1], top[1][1], f))
            lines.append((p1, p2))
        if isinstance(columns, int):
            if isinstance(columns, bool) or columns < 1:
                raise CalibrationError("columns", "窗户列数必须是正整数")
            xs = [p[0] for p in (*top, *bottom)]
            left, right = min(xs), max(xs)
            cols = [_lerp(left, right, k / columns) for k in range(columns + 1)]
        else:
            cols = [float(c) for c in columns]
        return cls(width=width, height=height, floor_lines=lines, columns=cols, **kw)

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored per camera and written in the benchmark's ground truth."""
        return {
            "width": self.width,
            "height": self.height,
            "floor_lines": [[[p[0], p[1]] for p in line] for line in self.floor_lines],
            "columns": list(self.columns),
            "ignore": [[[p[0], p[1]] for p in poly] for poly in self.ignore],
            "zone": None if self.zone is None else [[p[0], p[1]] for p in self.zone],
            "sensitivity": self.sensitivity,
        }

    @classmethod
    def from_json(cls, d: Any) -> Calibration:
        """Parse and validate the JSON form; raises CalibrationError naming the bad field."""
        if not isinstance(d, dict):
            raise CalibrationError("calibration", "应为 JSON 对象")
        for key in ("width", "height", "floor_lines", "columns"):
            if key not in d:
                raise CalibrationError(key, "缺少此项")
        lines = d["floor_lines"]
        if not isinstance(lines, list):
            raise CalibrationError("floor_lines", "应为线段列表")
        ignore = d.get("ignore") or []
        if not isinstance(ignore, list):
            raise CalibrationError("ignore", "应为多边形列表")
        zone = d.get("zone")
        cols = d["columns"]
        if not isinstance(cols, list):
            raise CalibrationError("columns", "应为数字列表")
        return cls(
            width=_int("width", d["width"]),
            height=_int("height", d["height"]),
            floor_lines=[_line(f"floor_lines[{i}]", ln) for i, ln in enumerate(lines)],
            columns=[_num(f"columns[{i}]", c) for i, c in enumerate(cols)],
            ignore=[_polygon(f"ignore[{i}]", poly) for i, poly in enumerate(ignore)],
            zone=None if zone is None else _polygon("zone", zone),
            sensitivity=_num("sensitivity", d.get("sensitivity", 0.5)),
        )

    # ---- geometry -----------------------------------------------------------------------------------

    @property
    def floors(self) -> int:
        """How many floors the lines delimit."""
        return len(self.floor_lines) - 1

    def line_y(self, index: int, x: float) -> float:
        """The image y of floor line `index` at column x."""
        (x1, y1), (x2, y2) = self.floor_lines[index]
        return y1 + (y2 - y1) * (x - x1) / (x2 - x1)

    def floor_position(self, x: float, y: float) -> float:
        """Continuous floor coordinate: 0 on the ground line, k on line k, N on the roof (outside: beyond)."""
        ys = [self.line_y(i, x) for i in range(len(self.floor_lines))]
        n = len(ys) - 1
        # Find the interval (ys[i] >= y >= ys[i+1]); extrapolate with the nearest floor outside the facade.
        i = 0
        while i < n - 1 and y < ys[i + 1]:
            i += 1
        span = ys[i] - ys[i + 1]
        return i + (ys[i] - y) / span

    def floor_positions(self, xs: Sequence[float], ys: Sequence[float]) -> list[float]:
        """floor_position of many points at once (numpy; the detector flattens whole tracks)."""
        line = np.asarray(self.floor_lines, dtype=float)  # (n+1, 2 points, xy)
        x1, y1, x2, y2 = line[:, 0, 0], line[:, 0, 1], line[:, 1, 0], line[:, 1, 1]
        px, py = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        at = y1[:, None] + (y2 - y1)[:, None] * (px[None, :] - x1[:, None]) / (x2 - x1)[:, None]
        n = len(line) - 1
        i = np.clip((at >= py[None, :]).sum(axis=0) - 1, 0, n - 1)
        cols = np.arange(len(px))
        lo, hi = at[i, cols], at[i + 1, cols]
        return list(i + (lo - py) / (lo - hi))

    def image_y(self, x: float, position: float) -> float:
        """The image y of a continuous floor coordinate at column x (the inverse of floor_position)."""
        n = len(self.floor_lines) - 1
        i = min(max(math.floor(position), 0), n - 1)
        lo, hi = self.line_y(i, x), self.line_y(i + 1, x)
        return lo - (position - i) * (lo - hi)

    def floor_height_px(self, x: float, y: float) -> float:
        """Height of one floor in pixels at (x, y): the spacing of the floor lines around that point."""
        ys = [self.line_y(i, x) for i in range(len(self.floor_lines))]
        pos = self.floor_position(x, y)
        i = min(max(math.floor(pos), 0), len(ys) - 2)
        return ys[i] - ys[i + 1]

    def pixels_per_metre(self, x: float, y: float) -> float:
        """Image scale on the facade at (x, y), from the floor spacing and a standard storey height."""
        return self.floor_height_px(x, y) / FLOOR_HEIGHT_M

    def floor_at(self, x: float, y: float, sigma_px: float = 1.0) -> tuple[int | None, float]:
        """The floor (1..N) at (x, y), or None outside the facade, and `sigma_px` expressed in floors."""
        pos = self.floor_position(x, y)
        uncertainty = abs(sigma_px) / self.floor_height_px(x, y)
        if pos < 0 or pos > self.floors:
            return None, uncertainty
        return min(math.floor(pos) + 1, self.floors), uncertainty

    def column_at(self, x: float) -> int | None:
        """The window column (1..K) at image x, or None left or right of the marked columns."""
        cols = self.columns
        if x < cols[0] or x > cols[-1]:
            return None
        for k in range(1, len(cols)):
            if x <= cols[k]:
                return k
        return len(cols) - 1


# ---- validation helpers ------------------------------------------------------------------------------


def _lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def _num(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalibrationError(name, "应为数字")
    if not math.isfinite(value):
        raise CalibrationError(name, "不是有限数值")
    return float(value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CalibrationError(name, "应为正整数")
    return value


def _point(name: str, value: Any) -> Point:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise CalibrationError(name, "点应为 [x, y]")
    return (_num(f"{name}[0]", value[0]), _num(f"{name}[1]", value[1]))


def _line(name: str, value: Any) -> Line:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise CalibrationError(name, "线段应为两个点 [[x1, y1], [x2, y2]]")
    p1, p2 = _point(f"{name}[0]", value[0]), _point(f"{name}[1]", value[1])
    if abs(p2[0] - p1[0]) < 1.0:
        raise CalibrationError(name, "楼层线的两个点水平方向应至少相距 1 像素")
    return (p1, p2)


def _polygon(name: str, value: Any) -> list[Point]:
    if not isinstance(value, list | tuple) or len(value) < 3:
        raise CalibrationError(name, "多边形至少需要 3 个点")
    return [_point(f"{name}[{i}]", p) for i, p in enumerate(value)]


def _validate(cal: Calibration) -> None:
    _int("width", cal.width)
    _int("height", cal.height)
    if len(cal.floor_lines) < 2:
        raise CalibrationError("floor_lines", "至少需要 2 条楼层线（地面线和楼顶线）")
    for i, ln in enumerate(cal.floor_lines):
        _line(f"floor_lines[{i}]", ln)
    # Lines must go upwards in order and must not cross anywhere across the picture.
    for i in range(1, len(cal.floor_lines)):
        for x in (0.0, cal.width / 2, float(cal.width)):
            if not cal.line_y(i, x) < cal.line_y(i - 1, x):
                raise CalibrationError(
                    f"floor_lines[{i}]", "楼层线应自下而上排列且互不相交（每条线都应在前一条之上）"
                )
    if len(cal.columns) < 2:
        raise CalibrationError("columns", "至少需要 2 条窗户列边界")
    for i, c in enumerate(cal.columns):
        _num(f"columns[{i}]", c)
        if i and not c > cal.columns[i - 1]:
            raise CalibrationError(f"columns[{i}]", "窗户列边界应从左到右递增")
    for i, poly in enumerate(cal.ignore):
        _polygon(f"ignore[{i}]", poly)
    if cal.zone is not None:
        _polygon("zone", cal.zone)
    s = _num("sensitivity", cal.sensitivity)
    if not 0.0 <= s <= 1.0:
        raise CalibrationError("sensitivity", "灵敏度应在 0 到 1 之间")
