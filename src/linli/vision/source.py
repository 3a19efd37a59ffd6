"""Frames from a video file, an RTSP/HTTP stream or a local camera, with reconnect and reported states.

`FrameSource(target)` is iterated for (index, frame) pairs. Nothing raises out of the loop: a missing or
garbage file, a codec OpenCV cannot decode, a stream that cannot be reached or drops are reported through
`on_state(state, reason)` (and `source.state`); a stream is then reopened with growing pauses until
`stop` is set or `max_reconnects` is used up. Frame indices keep counting across reconnects.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from linli.vision.detector import CameraState

StateCallback = Callable[[CameraState, str], None]

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# Leading bytes of containers OpenCV's FFmpeg reads: a file that has one but does not decode has a codec
# problem, anything else is not a video at all.
CONTAINER_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / 3GP
    (0, b"RIFF"),  # AVI
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"G"),  # MPEG-TS sync byte (checked with the next packet below)
    (0, b"\x00\x00\x00\x01"),  # raw H.264 / H.265 Annex B
)
_ENV_LOCK = threading.Lock()  # OpenCV reads its FFmpeg options from the environment at open time


def is_stream(target: str | Path | int) -> bool:
    """Whether the target is a network stream (reconnect on loss) rather than a file."""
    return isinstance(target, str) and target.lower().startswith(STREAM_SCHEMES)


def looks_like_video(path: Path) -> bool:
    """Whether the file starts like a video container OpenCV's FFmpeg knows."""
    try:
        with path.open("rb") as fh:
            head = fh.read(189)
    except OSError:
        return False
    for offset, magic in CONTAINER_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return magic != b"G" or head[188:189] == b"G"
    return False


class FrameSource:
    """Iterate (index, frame) from a file, a stream URL or a local camera number."""

    def __init__(
        self,
        target: str | Path | int,
        *,
        on_state: StateCallback | None = None,
        stop: threading.Event | None = None,
        reconnect: bool | None = None,
        max_reconnects: int | None = None,
        backoff: tuple[float, float] = (1.0, 30.0),
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        rtsp_transport: str | None = None,
    ) -> None:
        self.target = target
        self.on_state = on_state
        self.stop = stop or threading.Event()
        self.stream = is_stream(target) or isinstance(target, int)
        self.reconnect = self.stream if reconnect is None else reconnect
        self.max_reconnects = max_reconnects
        self.backoff = backoff
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.rtsp_transport = rtsp_transport
        self.state = CameraState.OK
        self.state_reason = ""
        self.fps = 0.0
        self.frame_size: tuple[int, int] | None = None  # (width, height)
        self.frames_read = 0
        self.reconnects = 0

    # ---- states --------------------------------------------------------------------------------------

    def _report(self, state: CameraState, reason: str) -> None:
        if (state, reason) == (self.state, self.state_reason):
            return
        self.state, self.state_reason = state, reason
        if self.on_state is not None:
            with contextlib.suppress(Exception):  # a broken callback must not stop the frames
                self.on_state(state, reason)

    # ---- opening ---------------------------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture | None:
        """Open the target; report why not and return None on failure."""
        if not self.stream:
            path = Path(str(self.target))
            if not path.is_file():
                self._report(CameraState.UNREADABLE, f"视频文件不存在：{path}")
                return None
            if path.stat().st_size == 0:
                self._report(CameraState.UNREADABLE, f"视频文件为空：{path}")
                return None
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000),
        ]  # fmt: skip
        try:
            if isinstance(self.target, int):
                cap = cv2.VideoCapture(self.target, cv2.CAP_ANY, params)
            else:
                cap = self._open_named(str(self.target), params)
        except cv2.error as exc:
            cap = None
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "OpenCV error"
            self._open_failed(detail)
            return None
        if cap is None or not cap.isOpened():
            self._open_failed("")
            return None
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 1.0 <= self.fps <= 240.0:
            self.fps = 25.0  # streams often report nothing or nonsense
        return cap

    def _open_named(self, name: str, params: list[int]) -> cv2.VideoCapture:
        if not (self.rtsp_transport and name.lower().startswith("rtsp")):
            return cv2.VideoCapture(name, cv2.CAP_FFMPEG, params)
        with _ENV_LOCK:
            old = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{self.rtsp_transport}"
            try:
                return cv2.VideoCapture(name, cv2.CAP_FFMPEG, params)
            finally:
                if old is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = old

    def _open_failed(self, detail: str) -> None:
        suffix = f"（{detail}）" if detail else ""
        if self.stream:
            self._report(CameraState.NO_SIGNAL, f"无法连接视频源 {self._name()}{suffix}")
        elif looks_like_video(Path(str(self.target))):
            self._report(CameraState.BAD_CODEC, f"无法解码该视频（编码格式不受支持或文件损坏）{suffix}")
        else:
            self._report(CameraState.UNREADABLE, f"不是可识别的视频文件{suffix}")

    def _name(self) -> str:
        """The target without credentials, for messages."""
        text = str(self.target)
        if "://" in text and "@" in text.split("://", 1)[1].split("/", 1)[0]:
            scheme, rest = text.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return text

    # ---- reading -------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Frames until the file ends, or until stopped / out of reconnects for a stream."""
        pause = self.backoff[0]
        attempts = 0
        while not self.stop.is_set():
            cap = self._open()
            if cap is not None:
                got = 0
                try:
                    for frame in self._read(cap):
                        if got == 0:
                            self._report(CameraState.OK, "")
                            pause = self.backoff[0]
                        got += 1
                        yield self.frames_read, frame
                        self.frames_read += 1
                        if self.stop.is_set():
                            return
                finally:
                    cap.release()
                if not self.stream:
                    self._file_ended(cap_frames=got)
                    return
                self._report(CameraState.NO_SIGNAL, f"视频流中断：{self._name()}")
            if not self.reconnect:
                return
            attempts += 1
            if self.max_reconnects is not None and attempts > self.max_reconnects:
                return
            self.reconnects += 1
            if self.stop.wait(pause):
                return
            pause = min(pause * 2, self.backoff[1])

    def _read(self, cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
        self._expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        while True:
            try:
                ok, frame = cap.read()
            except cv2.error:
                return
            if not ok or frame is None or frame.size == 0:
                return
            if self.frame_size is None:
                self.frame_size = (frame.shape[1], frame.shape[0])
            yield frame

    def _file_ended(self, *, cap_frames: int) -> None:
        """A file with no decodable frame has a codec problem; one that stops early is truncated."""
        if cap_frames == 0:
            if self.state == CameraState.OK:
                self._open_failed("没有可解码的画面")
            return
        expected = getattr(self, "_expected", 0)
        if expected and cap_frames < expected - max(2, expected // 100):
            self._report(
                CameraState.UNREADABLE, f"视频文件不完整：只读出 {cap_frames} 帧（文件头记录 {expected} 帧）"
            )
