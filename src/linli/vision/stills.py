"""Still frames for calibration: taken from a picture, a video file or a stream, kept as a JPEG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from linli.core.errors import Invalid
from linli.vision.service import shown_url

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
OPEN_TIMEOUT_MS = 10_000


def from_bytes(data: bytes, *, field: str = "file") -> tuple[bytes, int, int]:
    """An uploaded picture as (JPEG, width, height); Invalid if it is not a picture OpenCV can read."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise Invalid("无法读取图片（支持 JPEG、PNG）", field=field)
    return encode(image)


def encode(image: np.ndarray) -> tuple[bytes, int, int]:
    """A frame as (JPEG, width, height)."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise Invalid("无法编码图片", field="file")
    height, width = image.shape[:2]
    return jpeg.tobytes(), width, height


def grab(source: str, *, skip_s: float = 1.0, field: str = "from") -> tuple[bytes, int, int]:
    """A still of a picture file, video file or stream URL (about skip_s in, past black first frames)."""
    path = Path(source)
    if "://" not in source and path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise Invalid(f"无法读取图片：{source}", field=field)
        return encode(image)
    if "://" not in source and not path.is_file():
        raise Invalid(f"文件不存在：{source}", field=field)
    capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS])
    try:
        if not capture.isOpened():
            raise Invalid(f"无法打开视频：{shown_url(source)}", field=field)
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        wanted = max(1, int(skip_s * fps if 0 < fps < 200 else 25))
        last = None
        for _ in range(wanted):
            ok, frame = capture.read()
            if not ok:
                break
            last = frame
        if last is None:
            raise Invalid(f"视频中读不到画面（编码不受支持或流已断开）：{shown_url(source)}", field=field)
        return encode(last)
    finally:
        capture.release()
