"""The static scene of a clip, rendered once: sky, distant blocks, the tower's facade, ground.

Day is colour (BGR); night is an infrared camera's look: one grey channel, low contrast, the illuminator
brighter near the camera, lit windows blooming. Windows can be lit or dark; `Facade.background(lit)`
composes the picture for a set of lit windows (the lights distractor switches them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from bench.vision.geometry import Building, Camera

WALLS_DAY = ((196, 214, 226), (200, 200, 196), (178, 190, 214), (222, 226, 228), (150, 170, 196))


@dataclass
class Window:
    """One window (or balcony door) of the facade: its glass polygon in image px, and how it looks lit."""

    floor: int
    column: int
    poly: np.ndarray  # int32 (4, 2)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1
    dark: float  # glass grey level / BGR scale when unlit
    balcony: bool


@dataclass
class Rail:
    """The front rail of a balcony: where clothes hang and birds perch (image px)."""

    floor: int
    column: int
    left: tuple[float, float]
    right: tuple[float, float]
    height_px: float


@dataclass
class Facade:
    """The rendered scene and where its parts are."""

    night: bool
    image: np.ndarray  # all windows dark (uint8; HxWx3 by day, HxW at night)
    windows: list[Window]
    rails: list[Rail]
    sky: np.ndarray  # uint8 mask, 255 where the sky shows
    roof_y: float  # image row of the top of the parapet at the facade's centre
    ground_y: float  # image row of the ground line
    facade_x: tuple[float, float]  # left and right edge at mid-height
    wall: tuple[float, ...]  # wall colour
    _cache: dict[frozenset[int], np.ndarray] = field(default_factory=dict)

    def background(self, lit: frozenset[int]) -> np.ndarray:
        """The scene with the windows whose indices are in `lit` switched on (cached per set)."""
        if lit in self._cache:
            return self._cache[lit]
        img = self.image.copy()
        for i in sorted(lit):
            light_window(img, self.windows[i], night=self.night)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[lit] = img
        return img


def light_window(img: np.ndarray, win: Window, *, night: bool) -> None:
    """Switch a window on in `img`: warm bright glass by day; at night a near-white pane with a bloom halo."""
    x0, y0, x1, y1 = win.bbox
    w, h = x1 - x0, y1 - y0
    pad = int(max(4, 0.8 * max(w, h))) if night else 1
    H, W = img.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, W), min(y1 + pad, H)
    mask = np.zeros((ay1 - ay0, ax1 - ax0), np.float32)
    cv2.fillConvexPoly(mask, (win.poly - (ax0, ay0)).astype(np.int32), 1.0)
    roi = img[ay0:ay1, ax0:ax1].astype(np.float32)
    if night:
        glow = cv2.GaussianBlur(mask, (0, 0), max(2.0, 0.25 * max(w, h)))
        level = 215 + 35 * (win.dark % 1)
        roi = roi * (1 - mask) + level * mask
        roi = roi + 90 * glow * (1 - mask)
    else:
        lamp = np.array([150, 215, 245], np.float32)
        m = mask[:, :, None]
        roi = roi * (1 - 0.55 * m) + lamp * 0.55 * m
    img[ay0:ay1, ax0:ax1] = np.clip(roi, 0, 255).astype(np.uint8)


def render(camera: Camera, building: Building, rng: np.random.Generator, *, night: bool) -> Facade:
    """Render the static scene once for a clip."""
    W, H = camera.width, camera.height
    img = np.zeros((H, W, 3), np.float32)
    sky = np.full((H, W), 255, np.uint8)
    _sky(img, rng, night=night)
    _distant_blocks(img, sky, camera, rng)
    wall = np.array(WALLS_DAY[int(rng.integers(len(WALLS_DAY)))], np.float32)
    left, right = -building.width / 2, building.width / 2
    top = building.roof + building.parapet
    corners = np.array(
        [camera.project(x, 0.0, z) for x, z in ((left, 0.0), (right, 0.0), (right, top), (left, top))]
    ).reshape(4, 2)
    cv2.fillConvexPoly(img, _fixed(corners), tuple(float(v) for v in wall), cv2.LINE_AA, 4)
    cv2.fillConvexPoly(sky, _fixed(corners), 0, cv2.LINE_AA, 4)
    windows: list[Window] = []
    rails: list[Rail] = []
    for floor in range(1, building.floors + 1):
        _slab(img, camera, building, floor, wall)
        for column in range(1, building.columns + 1):
            balcony = column % 2 == 0
            windows.append(_window(img, camera, building, floor, column, balcony, rng))
            if balcony:
                rails.append(_balcony(img, camera, building, floor, column, wall))
            elif rng.random() < 0.35:
                _ac_unit(img, camera, building, floor, column, rng)
    _texture(img, corners, rng)
    ground_y = float(camera.project(0.0, 0.0, 0.0)[1])
    _ground(img, ground_y, rng)
    sky[int(ground_y) - int(0.02 * H) :] = 0
    if night:
        img = _infrared(img, ground_y)
    out = np.clip(img, 0, 255).astype(np.uint8)
    mid_l, _ = camera.project(left, 0.0, building.roof / 2)
    mid_r, _ = camera.project(right, 0.0, building.roof / 2)
    return Facade(
        night=night,
        image=out,
        windows=windows,
        rails=rails,
        sky=sky,
        roof_y=float(camera.project(0.0, 0.0, top)[1]),
        ground_y=ground_y,
        facade_x=(float(mid_l), float(mid_r)),
        wall=tuple(float(v) for v in (wall if not night else [float(np.mean(wall)) * 0.4])),
    )


def _fixed(points: np.ndarray) -> np.ndarray:
    """Polygon points in 1/16 px for cv2's shift=4 sub-pixel drawing."""
    return np.round(np.asarray(points) * 16).astype(np.int32)


def _quad(camera: Camera, x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> np.ndarray:
    xs, ys = camera.project([x0, x1, x1, x0], [y] * 4, [z0, z0, z1, z1])
    return np.stack([xs, ys], axis=1)


def _sky(img: np.ndarray, rng: np.random.Generator, *, night: bool) -> None:
    H, W = img.shape[:2]
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    top, horizon = (
        (np.array([205, 160, 115]), np.array([235, 222, 208]))
        if not night
        else (
            np.array([60, 60, 60]),
            np.array([80, 80, 80]),
        )
    )
    img[:] = (top * (1 - t) + horizon * t)[:, None, :].reshape(H, 1, 3)
    haze = cv2.resize(rng.random((6, 10)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    img += (haze[:, :, None] - 0.5) * (10 if not night else 4)


def _distant_blocks(img: np.ndarray, sky: np.ndarray, camera: Camera, rng: np.random.Generator) -> None:
    H, W = img.shape[:2]
    ground = float(camera.project(0.0, 0.0, 0.0)[1])
    for _ in range(int(rng.integers(2, 6))):
        bw = rng.uniform(0.08, 0.2) * W
        x0 = rng.choice([rng.uniform(-0.05, 0.25), rng.uniform(0.6, 0.95)]) * W
        top = ground - rng.uniform(0.15, 0.5) * H
        tone = rng.uniform(0.55, 0.8)
        colour = img[int(max(top, 0)), int(min(max(x0, 0), W - 1))] * tone
        cv2.rectangle(
            img, (int(x0), int(top)), (int(x0 + bw), int(ground)), tuple(float(c) for c in colour), -1
        )
        cv2.rectangle(sky, (int(x0), int(top)), (int(x0 + bw), int(ground)), 0, -1)
        rows = int((ground - top) / (0.035 * H))
        for r in range(rows):
            y = top + (r + 0.3) * (ground - top) / max(rows, 1)
            cv2.line(
                img,
                (int(x0 + 3), int(y)),
                (int(x0 + bw - 3), int(y)),
                tuple(float(c) * 0.85 for c in colour),
                1,
            )


def _slab(img: np.ndarray, camera: Camera, building: Building, floor: int, wall: np.ndarray) -> None:
    z = building.floor_base(floor)
    left, right = -building.width / 2, building.width / 2
    quad = _quad(camera, left, right, z - 0.12, z + 0.12)
    cv2.fillConvexPoly(img, _fixed(quad), tuple(float(v) * 0.86 for v in wall), cv2.LINE_AA, 4)


def _window(
    img: np.ndarray,
    camera: Camera,
    building: Building,
    floor: int,
    column: int,
    balcony: bool,
    rng: np.random.Generator,
) -> Window:
    z = building.floor_base(floor)
    xc, cw = building.column_centre(column), building.column_width
    half = (0.38 if balcony else 0.28) * cw
    z0, z1 = (z + 0.15, z + 2.35) if balcony else (z + 0.9, z + 2.3)
    frame = _quad(camera, xc - half - 0.07, xc + half + 0.07, z0 - 0.07, z1 + 0.07)
    cv2.fillConvexPoly(img, _fixed(frame), (225, 225, 222), cv2.LINE_AA, 4)
    glass = _quad(camera, xc - half, xc + half, z0, z1)
    dark = float(rng.uniform(0.0, 1.0))
    g = 70 + 45 * dark
    colour = (g * 1.12, g * 1.02, g * 0.92)
    cv2.fillConvexPoly(img, _fixed(glass), colour, cv2.LINE_AA, 4)
    if rng.random() < 0.5:  # a curtain drawn across part of the pane
        frac = rng.uniform(0.2, 0.6)
        curtain = _quad(camera, xc - half, xc - half + 2 * half * frac, z0, z1)
        tint = rng.uniform(150, 215, 3)
        cv2.fillConvexPoly(img, _fixed(curtain), tuple(float(v) for v in tint), cv2.LINE_AA, 4)
    mullion = _quad(camera, xc - 0.03, xc + 0.03, z0, z1)
    cv2.fillConvexPoly(img, _fixed(mullion), (215, 215, 212), cv2.LINE_AA, 4)
    poly = np.round(glass).astype(np.int32)
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0) + 1
    return Window(floor, column, poly, (int(x0), int(y0), int(x1), int(y1)), dark, balcony)


def _balcony(
    img: np.ndarray, camera: Camera, building: Building, floor: int, column: int, wall: np.ndarray
) -> Rail:
    z = building.floor_base(floor)
    xc, cw = building.column_centre(column), building.column_width
    d = building.balcony_depth
    half = 0.48 * cw
    slab = _quad(camera, xc - half, xc + half, z - 0.15, z + 0.05, y=d)
    cv2.fillConvexPoly(img, _fixed(slab), tuple(float(v) * 0.92 for v in wall), cv2.LINE_AA, 4)
    panel = _quad(camera, xc - half, xc + half, z + 0.05, z + 1.05, y=d)
    # Frosted glass panels: blend the panel towards a pale grey so the door behind shows through a little.
    x0, y0 = np.floor(panel.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(panel.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    mask = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.float32)
    cv2.fillConvexPoly(mask, _fixed(panel - (x0, y0)), 0.6, cv2.LINE_AA, 4)
    roi = img[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]]
    a = mask[: roi.shape[0], : roi.shape[1], None]
    roi[:] = roi * (1 - a) + np.array([200, 205, 205], np.float32) * a
    top = _quad(camera, xc - half, xc + half, z + 1.02, z + 1.1, y=d)
    cv2.fillConvexPoly(img, _fixed(top), (120, 120, 118), cv2.LINE_AA, 4)
    (lx, rx), (ly, ry) = camera.project([xc - half, xc + half], [d, d], [z + 1.1, z + 1.1])
    height = float(camera.project(xc, d, z)[1] - ly)
    return Rail(floor, column, (float(lx), float(ly)), (float(rx), float(ry)), height)


def _ac_unit(
    img: np.ndarray, camera: Camera, building: Building, floor: int, column: int, rng: np.random.Generator
) -> None:
    z = building.floor_base(floor)
    xc, cw = building.column_centre(column), building.column_width
    side = rng.choice([-1, 1])
    x0 = xc + side * 0.33 * cw
    box = _quad(camera, min(x0, x0 + side * 0.8), max(x0, x0 + side * 0.8), z + 0.3, z + 0.85, y=0.35)
    cv2.fillConvexPoly(img, _fixed(box), (208, 210, 210), cv2.LINE_AA, 4)
    (bx0, by0), (bx1, by1) = box.min(axis=0), box.max(axis=0)
    for k in range(1, 4):
        y = by0 + (by1 - by0) * k / 4
        cv2.line(img, (int(bx0), int(y)), (int(bx1), int(y)), (160, 162, 162), 1, cv2.LINE_AA)


def _texture(img: np.ndarray, corners: np.ndarray, rng: np.random.Generator) -> None:
    """Weathering: broad low-frequency shading and fine grain over the whole picture."""
    H, W = img.shape[:2]
    broad = cv2.resize(rng.random((9, 16)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    img *= (0.94 + 0.12 * broad)[:, :, None]
    grain = rng.normal(0, 2.5, (H // 2, W // 2)).astype(np.float32)
    img += cv2.resize(grain, (W, H), interpolation=cv2.INTER_LINEAR)[:, :, None]


def _ground(img: np.ndarray, ground_y: float, rng: np.random.Generator) -> None:
    """Road below the ground line and a hedge whose top is ragged along it."""
    H, W = img.shape[:2]
    y = int(ground_y)
    img[y:] = np.array([88, 92, 96], np.float32)
    xs = np.arange(0, W + 20, 20)
    tops = ground_y - rng.uniform(0.002, 0.018, len(xs)) * H
    pts = np.array([[0, H], *zip(xs, tops, strict=True), [W, H]], np.float32)
    cv2.fillPoly(img, [_fixed(pts)], (48, 88, 62), cv2.LINE_AA, 4)


def _infrared(img: np.ndarray, ground_y: float) -> np.ndarray:
    """Day colours to an IR picture: grey, compressed contrast, illuminator hot spot near the camera."""
    H, W = img.shape[:2]
    grey = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    # The illuminator lights what is near (the lower floors) more; the sky stays dark.
    near = np.clip((yy - 0.1 * H) / (ground_y - 0.1 * H), 0, 1) ** 1.5
    spot = np.exp(-(((xx - W / 2) / (0.7 * W)) ** 2))
    gain = (0.28 + 0.32 * near) * (0.75 + 0.25 * spot)
    return 18 + grey * gain


def luma(colour: tuple[float, ...]) -> float:
    """Perceived brightness of a BGR colour (or a grey level)."""
    if len(colour) == 1:
        return colour[0]
    b, g, r = colour[:3]
    return 0.114 * b + 0.587 * g + 0.299 * r
