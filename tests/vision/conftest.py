"""Fixtures of the throw detection tests: a throw camera at Tianfu with its vision set-up, media on disk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli.core import media
from linli.core.auth.service import Principal
from linli.vision import service
from linli.vision.calibration import Calibration
from linli.vision.models import VisionCamera
from tests.devices.helpers import device


@pytest.fixture(autouse=True)
def media_dir(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The test deployment's media folder (create_app sets the same; service tests may run without an app)."""
    media.configure(root=settings.media_dir, max_bytes=settings.media_max_bytes)
    yield


def facade(width: int = 1920, height: int = 1080, floors: int = 18, columns: int = 6) -> Calibration:
    """A facade seen from below: roof line near the top, ground line near the bottom, converging a little."""
    return Calibration.from_simple(
        width=width,
        height=height,
        top_line=((560.0, 90.0), (1360.0, 90.0)),
        bottom_line=((480.0, 1000.0), (1440.0, 1000.0)),
        floors=floors,
        columns=columns,
    )


@pytest.fixture
def throw_camera(session, world) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    """Tianfu building 3's throw camera (device) watched by vision, calibrated on a 1080p frame."""
    dev, _ = device(
        session,
        world.tianfu,
        serial="HK-GKPW-TF-03",
        kind="throw_camera",
        model="DS-2CD3T87WDV3-L",
        location="3号楼南侧地面，仰拍外立面",
    )
    camera: VisionCamera = service.configure(
        session,
        Principal.system(),
        device_id=dev.id,
        stream_url="rtsp://admin:Tf2026pass@10.20.3.64:554/Streaming/Channels/101",
    )
    camera.calibration = facade().to_json()
    session.flush()
    return dev, camera
