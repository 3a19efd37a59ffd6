"""Fixtures of the device hub tests: a clock, a bus, a few registered devices, an MQTT ingest runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli.core.bus import InProcessBus
from linli.devices.mqtt_ingest import Runner
from tests.devices.helpers import Clock, Recorder, device
from tests.devices.mqtt_helpers import URL, unique


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


@pytest.fixture
def start_runner(session_factory, bus):  # type: ignore[no-untyped-def]
    """start_runner(serial, ...) → a started Runner for those devices' events and acks on the test broker."""
    runners: list[Runner] = []

    def start(*serials: str) -> Runner:
        topics = [f"linli/+/{s}/{kind}" for s in serials for kind in ("events", "acks")]
        runner = Runner(
            URL,
            session_factory=session_factory,
            bus=bus,
            client_id=unique("linli-test"),
            subscriptions=topics,
            session_expiry_s=120,  # the broker forgets the test's session soon after
        )
        runner.start()
        runners.append(runner)
        assert runner.subscriber.subscribed.wait(5), "the runner could not subscribe"
        return runner

    yield start
    for runner in runners:
        runner.stop()
