"""Whole-picture changes: window lights switching, clouds drifting, daylight and exposure changes, camera
shake, and the sensor noise added to every frame before encoding.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from bench.vision.distractors import Distractor, Scene


class Lights(Distractor):
    """Windows switched on and off (some with a fluorescent tube's flicker), and TVs flickering (night)."""

    kind = "lights"
    stage = "background"

    def __init__(
        self, scene: Scene, rng: np.random.Generator, base: frozenset[int], *, per_minute: float = 20
    ) -> None:
        super().__init__()
        self.scene = scene
        n_win = len(scene.facade.windows)
        state = set(base)
        self.changes: dict[int, frozenset[int]] = {}
        count = max(1, int(rng.poisson(per_minute * scene.frames / scene.fps / 60)))
        for k in sorted(int(v) for v in rng.integers(0, scene.frames, count)):
            w = int(rng.integers(n_win))
            win = scene.facade.windows[w]
            turning_on = w not in state
            pattern = [True] if not turning_on or rng.random() > 0.3 else [True, False, True, False, True]
            for j, on in enumerate(pattern):
                want = on if turning_on else not on
                if want:
                    state.add(w)
                else:
                    state.discard(w)
                self.changes[k + 2 * j] = frozenset(state)
            cx, cy = (win.bbox[0] + win.bbox[2]) / 2, (win.bbox[1] + win.bbox[3]) / 2
            self._events.append(
                {
                    "kind": self.kind,
                    "behaviour": ("on" if turning_on else "off") + (" flicker" if len(pattern) > 1 else ""),
                    "start_frame": k,
                    "end_frame": min(k + 2 * len(pattern), scene.frames - 1),
                    "size_px": float(win.bbox[2] - win.bbox[0]),
                    "path": [[k, cx, cy]],
                }
            )
        self.base = base
        self.tvs = [scene.facade.windows[int(i)] for i in rng.integers(0, n_win, int(rng.integers(1, 4)))]
        self.tv_level = rng.normal(0, 18, (len(self.tvs), scene.frames)) if scene.night else None
        if self.tv_level is not None:
            hold = int(rng.integers(3, 10))
            self.tv_level = np.repeat(self.tv_level[:, ::hold], hold, axis=1)[:, : scene.frames]
            for win in self.tvs:
                cx, cy = (win.bbox[0] + win.bbox[2]) / 2, (win.bbox[1] + win.bbox[3]) / 2
                self._events.append(
                    {
                        "kind": self.kind,
                        "behaviour": "tv",
                        "start_frame": 0,
                        "end_frame": scene.frames - 1,
                        "path": [[0, cx, cy]],
                    }
                )

    def lit(self, k: int) -> frozenset[int]:
        """The set of lit windows at frame k."""
        current = self.base
        for when in sorted(self.changes):
            if when > k:
                break
            current = self.changes[when]
        return current

    def draw(self, frame: np.ndarray, k: int) -> None:
        if self.tv_level is None:
            return
        for win, levels in zip(self.tvs, self.tv_level, strict=True):
            x0, y0, x1, y1 = win.bbox
            roi = frame[y0:y1, x0:x1]
            roi[:] = np.clip(roi.astype(np.int16) + int(levels[k]), 0, 255).astype(np.uint8)


class Clouds(Distractor):
    """Clouds drifting across the sky, their shadows dimming the facade: slow, large brightness changes."""

    kind = "clouds"
    stage = "light"

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        super().__init__()
        self.scene = scene
        h, w = scene.height, scene.width
        self.small = (max(8, w // 16), max(8, h // 16))
        texture_w = self.small[0] * 3
        field = cv2.resize(
            rng.random((6, 18)).astype(np.float32), (texture_w, self.small[1]), interpolation=cv2.INTER_CUBIC
        )
        field = field + 0.5 * cv2.resize(
            rng.random((12, 36)).astype(np.float32), (texture_w, self.small[1]), interpolation=cv2.INTER_CUBIC
        )
        field = (field - field.min()) / (field.max() - field.min())
        self.cover = np.clip((field - rng.uniform(0.35, 0.55)) * 3, 0, 1)
        self.speed = rng.uniform(0.02, 0.08) * self.small[0] / scene.fps  # texture px per frame
        self.sky = cv2.resize(
            scene.facade.sky.astype(np.float32) / 255, self.small, interpolation=cv2.INTER_AREA
        )
        self.depth = rng.uniform(0.2, 0.4)
        self._events.append(
            {
                "kind": self.kind,
                "behaviour": "drift",
                "start_frame": 0,
                "end_frame": scene.frames - 1,
                "path": None,
            }
        )

    def draw(self, frame: np.ndarray, k: int) -> None:
        sw, _sh = self.small
        off = self.speed * k
        i = int(off) % (self.cover.shape[1] - sw)
        cloud = self.cover[:, i : i + sw]
        # The shadow falls on the facade a little behind the clouds seen in the sky.
        shadow_i = int(off + sw * 0.3) % (self.cover.shape[1] - sw)
        shade = 1 - self.depth * self.cover[:, shadow_i : shadow_i + sw] * (1 - self.sky)
        white = cloud * self.sky * 70
        gain = cv2.resize(shade, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        add = cv2.resize(white, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        if frame.ndim == 3:
            gain, add = cv2.merge([gain] * 3), cv2.merge([add] * 3)
        out = cv2.multiply(frame, gain, dtype=cv2.CV_32F)
        frame[:] = cv2.add(out, add, dtype=cv2.CV_8U)


class Daylight(Distractor):
    """The light changing: a slow drift over the clip, the sun going behind a cloud, auto-exposure steps."""

    kind = "daylight"
    stage = "light"

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        super().__init__()
        n = scene.frames
        t = np.linspace(0, 1, n)
        gain = 1 + (rng.uniform(0.7, 1.2) - 1) * t
        for _ in range(int(rng.integers(1, 4))):
            c, width, depth = rng.uniform(0, n), rng.uniform(2, 6) * scene.fps, rng.uniform(0.1, 0.3)
            gain *= 1 - depth * np.exp(-(((np.arange(n) - c) / width) ** 2))
        # Auto exposure answers in steps, not smoothly.
        self.gain = np.round(gain / 0.02) * 0.02
        self._events.append(
            {"kind": self.kind, "behaviour": "gain", "start_frame": 0, "end_frame": n - 1, "path": None}
        )

    def draw(self, frame: np.ndarray, k: int) -> None:
        g = float(self.gain[k])
        if abs(g - 1) > 1e-3:
            cv2.convertScaleAbs(frame, dst=frame, alpha=g)


class Shake(Distractor):
    """Camera shake: a slow sway of a fraction of a pixel and bursts of the pole ringing (wind, a lorry)."""

    kind = "shake"
    stage = "camera"

    def __init__(self, scene: Scene, rng: np.random.Generator, *, amplitude: float | None = None) -> None:
        super().__init__()
        n, fps = scene.frames, scene.fps
        amp = amplitude if amplitude is not None else rng.uniform(0.8, 2.5) * scene.height / 1080
        t = np.arange(n) / fps
        dx = 0.3 * amp * np.sin(2 * math.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6))
        dy = 0.3 * amp * np.sin(2 * math.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6))
        for _ in range(max(1, int(rng.poisson(3 * n / fps / 60)))):
            k0, m = int(rng.integers(0, n)), int(rng.uniform(0.5, 2.0) * fps)
            env = np.zeros(n)
            env[k0 : k0 + m] = np.sin(np.linspace(0, math.pi, len(env[k0 : k0 + m])))
            # The pole rings at its own frequency (2-6 Hz, smooth at 25 fps) with a little rattle on top.
            for d in (dx, dy):
                ring = np.sin(2 * math.pi * rng.uniform(2, 6) * t + rng.uniform(0, 6))
                d += amp * env * (rng.uniform(0.6, 1.0) * ring + rng.normal(0, 0.15, n))
            self._events.append(
                {
                    "kind": self.kind,
                    "behaviour": "burst",
                    "start_frame": k0,
                    "end_frame": min(k0 + m, n) - 1,
                    "path": None,
                }
            )
        self.dx, self.dy = dx, dy
        self._events.append(
            {"kind": self.kind, "behaviour": "sway", "start_frame": 0, "end_frame": n - 1, "path": None}
        )

    def offset(self, k: int) -> tuple[float, float]:
        """Image shift of frame k in px."""
        return float(self.dx[k]), float(self.dy[k])

    def draw(self, frame: np.ndarray, k: int) -> None:
        m = np.array([[1, 0, self.dx[k]], [0, 1, self.dy[k]]], np.float32)
        frame[:] = cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REFLECT)


class SensorNoise:
    """Per-frame sensor noise as a camera's denoiser leaves it: fine grain plus spatially correlated blotches.

    Drawn once into a bank of noise fields and applied at random offsets with saturating adds, so a frame
    costs two cheap passes instead of drawing millions of normals.
    """

    PAD = 48

    def __init__(self, shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> None:
        big = (shape[0] + self.PAD, shape[1] + self.PAD, *shape[2:])
        self.banks = []
        for _ in range(1):
            n = rng.normal(0, sigma * 0.9, big).astype(np.float32)
            blotch = cv2.GaussianBlur(rng.normal(0, 1, big).astype(np.float32), (0, 0), 1.5)
            n += blotch.reshape(n.shape) * (0.45 * sigma / float(blotch.std()))
            n = np.rint(n)
            self.banks.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
        self.shape = shape
        self.rng = rng

    def apply(self, frame: np.ndarray) -> None:
        """Add noise to `frame` in place."""
        pos, neg = self.banks[int(self.rng.integers(len(self.banks)))]
        oy, ox = (int(v) for v in self.rng.integers(0, self.PAD, 2))
        h, w = self.shape[:2]
        cv2.add(frame, pos[oy : oy + h, ox : ox + w], dst=frame)
        cv2.subtract(frame, neg[oy : oy + h, ox : ox + w], dst=frame)
