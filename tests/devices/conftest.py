"""Fixtures of the device hub tests: a clock, a bus, and a few registered devices in the fixed world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli.core.bus import InProcessBus
from tests.devices.helpers import Clock, Recorder, device


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def bus() -> InProcessBus:
    """A fresh in-process bus."""
    return InProcessBus()


@pytest.fixture
def recorder(bus: InProcessBus) -> Iterator[Recorder]:
    """Everything published on the bus's event subjects."""
    rec = Recorder(bus)
    yield rec
    rec.close()


@pytest.fixture
def gate(session, world):  # type: ignore[no-untyped-def]
    """Tianfu's south plate gate (device, secret)."""
    return device(
        session,
        world.tianfu,
        serial="DS-TCG227-TF-S01",
        kind="plate_gate",
        model="DS-TCG227",
        location="南门车行道",
    )


@pytest.fixture
def camera(session, world):  # type: ignore[no-untyped-def]
    """A camera at Yuyu's lift lobby (device, secret)."""
    return device(session, world.yuyu, serial="DH-IPC-HFW2431-YY-07", vendor="大华", location="7号楼电梯厅")
