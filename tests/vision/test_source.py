"""The frame source: bad files and lost streams are states, never exceptions; real RTSP on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from linli.vision.detector import CameraState
from linli.vision.source import FrameSource, is_stream, looks_like_video
from tests.waiting import wait_until


def write_avi(path: Path, frames: int = 50, size: tuple[int, int] = (160, 120)) -> Path:
    """A small MJPG AVI with moving noise."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, size)
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def collect(source: FrameSource) -> tuple[int, list[tuple[CameraState, str]]]:
    states: list[tuple[CameraState, str]] = []
    source.on_state = lambda s, r: states.append((s, r))
    n = sum(1 for _ in source)
    return n, states


def test_a_good_file_yields_every_frame(tmp_path: Path) -> None:
    video = write_avi(tmp_path / "ok.avi", frames=40)
    source = FrameSource(video)
    seen = [i for i, f in source]
    assert seen == list(range(40))
    assert source.state == CameraState.OK and source.fps == pytest.approx(25.0)
    assert source.frame_size == (160, 120)


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    n, states = collect(FrameSource(tmp_path / "nope.mp4"))
    assert n == 0
    assert states[0][0] == CameraState.UNREADABLE and "不存在" in states[0][1]


def test_an_empty_file_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    n, states = collect(FrameSource(tmp_path / "empty.mp4"))
    assert (n, states[0][0]) == (0, CameraState.UNREADABLE)


def test_a_garbage_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    n, states = collect(FrameSource(path))
    assert (n, [s for s, _ in states]) == (0, [CameraState.UNREADABLE])
    assert not looks_like_video(path)


def test_an_unknown_codec_is_a_codec_problem(tmp_path: Path) -> None:
    video = write_avi(tmp_path / "codec.avi")
    data = video.read_bytes()
    head, tail = data[:4096], data[4096:]
    video.write_bytes(head.replace(b"MJPG", b"QZ9X") + tail)  # a FourCC no decoder knows
    assert looks_like_video(video)
    n, states = collect(FrameSource(video))
    assert n == 0
    assert [s for s, _ in states] == [CameraState.BAD_CODEC]


def test_a_truncated_file_yields_what_is_there_and_says_so(tmp_path: Path) -> None:
    video = write_avi(tmp_path / "full.avi", frames=60)
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    n, states = collect(FrameSource(cut))
    assert 0 < n < 60
    assert states and states[-1][0] == CameraState.UNREADABLE and "不完整" in states[-1][1]


def test_a_broken_state_callback_does_not_stop_frames(tmp_path: Path) -> None:
    def boom(state: CameraState, reason: str) -> None:
        raise RuntimeError("callback failed")

    source = FrameSource(tmp_path / "nope.mp4", on_state=boom)
    assert list(source) == [] and source.state == CameraState.UNREADABLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_stream_is_no_signal_and_retries_with_backoff() -> None:
    url = f"rtsp://user:secret@127.0.0.1:{free_port()}/cam"
    assert is_stream(url)
    source = FrameSource(url, max_reconnects=2, backoff=(0.05, 0.1), open_timeout_s=2)
    started = time.monotonic()
    n, states = collect(source)
    assert n == 0 and source.reconnects == 2
    assert states[0][0] == CameraState.NO_SIGNAL
    assert "secret" not in states[0][1] and "***@127.0.0.1" in states[0][1]
    assert time.monotonic() - started < 20


def test_stop_ends_a_stream_that_keeps_failing() -> None:
    stop = threading.Event()
    source = FrameSource(
        f"rtsp://127.0.0.1:{free_port()}/cam", stop=stop, backoff=(0.05, 0.2), open_timeout_s=1
    )
    threading.Timer(1.0, stop.set).start()
    assert list(source) == []
    assert source.reconnects >= 1


# ---- a real RTSP server on loopback --------------------------------------------------------------------

RTSP_SERVER = shutil.which("rtsp-server-perl")
FFMPEG = shutil.which("ffmpeg")


class Publisher:
    """ffmpeg pushing a test pattern to the RTSP server (ANNOUNCE/RECORD), as a camera's stream."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [FFMPEG or "ffmpeg", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
             "-f", "rtsp", f"rtsp://127.0.0.1:{self.port}/cam1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def rtsp_server() -> Iterator[tuple[str, Publisher]]:
    """rtsp-server-perl on two free loopback ports, and a publisher to start and stop."""
    if not (RTSP_SERVER and FFMPEG):
        pytest.skip(
            "integration: needs Debian's rtsp-server-perl and ffmpeg (`make vision-deps` installs them)"
        )
    client_port, source_port = free_port(), free_port()
    server = subprocess.Popen(
        [RTSP_SERVER, "--clientport", str(client_port), "--serverport", str(source_port),
         "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1", "--loglevel", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    publisher = Publisher(source_port)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client_port)) == 0:
                    break
            time.sleep(0.1)
        yield f"rtsp://127.0.0.1:{client_port}/cam1", publisher
    finally:
        publisher.stop()
        server.terminate()
        server.wait(10)


@pytest.mark.integration
def test_rtsp_stream_drops_and_comes_back(rtsp_server: tuple[str, Publisher]) -> None:
    url, publisher = rtsp_server
    publisher.start()
    time.sleep(1.5)
    stop = threading.Event()
    states: list[tuple[float, CameraState]] = []
    frames: list[tuple[float, int]] = []
    source = FrameSource(
        url, stop=stop, rtsp_transport="udp", backoff=(0.3, 1.0), open_timeout_s=3, read_timeout_s=2,
        on_state=lambda s, r: states.append((time.monotonic(), s)),
    )  # fmt: skip

    def consume() -> None:
        for i, frame in source:
            assert frame.shape == (240, 320, 3)
            frames.append((time.monotonic(), i))

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()

    try:
        assert wait_until(lambda: len(frames) >= 50, 20), "no frames from the RTSP stream"
        publisher.stop()  # the camera's stream drops
        dropped_at = time.monotonic()
        assert wait_until(lambda: any(s == CameraState.NO_SIGNAL for _, s in states), 30), states
        n_before = len(frames)
        publisher.start()  # and comes back
        assert wait_until(lambda: len(frames) >= n_before + 50, 30), "the source did not reconnect"
        assert states[-1][1] == CameraState.OK
        assert source.reconnects >= 1
        indices = [i for _, i in frames]
        assert indices == list(range(len(indices)))  # frame numbers keep counting across the reconnect
        assert dropped_at < states[-1][0]
    finally:
        stop.set()
        publisher.stop()
        reader.join(15)
    assert not reader.is_alive()
