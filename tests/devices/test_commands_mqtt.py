"""Commands through the real Mosquitto: staff send, the device receives and answers, the hub records it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from linli.core import outbox
from linli.core.auth.service import Principal
from linli.devices import commands
from linli.devices.models import DeviceCommand
from tests.devices.helpers import device
from tests.devices.mqtt_helpers import FakeDevice, needs_broker, unique, wait

pytestmark = [pytest.mark.integration, needs_broker]


@pytest.fixture
def terminal(session, world):  # type: ignore[no-untyped-def]
    """A face terminal speaking MQTT with a serial no earlier run used, committed."""
    made, _ = device(session, world.tianfu, serial=unique("FT"), kind="face_terminal", protocol="mqtt")
    session.commit()
    return made


@pytest.fixture
def fake(world, terminal):  # type: ignore[no-untyped-def]
    """The terminal itself, on the broker, answering "ok" to every command once released."""
    made = FakeDevice(world.tianfu, terminal.serial, detail="已开门")
    yield made
    made.close()


def test_a_command_from_the_api_reaches_the_device_and_its_ack_comes_back(
    client, login, start_runner, terminal, fake
) -> None:
    runner = start_runner(terminal.serial)
    client.app.state.bus = runner.bus  # as the app's lifespan does when LINLI_MQTT_URL is set
    staff = login("shequ")
    sent = client.post(
        f"/api/v1/devices/{terminal.id}/commands",
        json={"command": "open_door", "args": {"door": "5号楼单元门"}, "ttl_seconds": 60},
        headers=staff,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "sent"
    assert wait(lambda: len(fake.commands) == 1), "the device got no command"
    [received] = fake.commands
    assert received["id"] == sent.json()["id"] and received["command"] == "open_door"
    assert received["args"] == {"door": "5号楼单元门"}
    assert datetime.fromisoformat(received["expires_at"]) > datetime.now(UTC)

    fake.release.set()
    assert runner.wait_for(lambda s: s.acks >= 1, 10), runner.snapshot()
    [listed] = client.get(f"/api/v1/devices/{terminal.id}/commands", headers=staff).json()
    assert (listed["status"], listed["result"]) == ("acknowledged", "已开门")


def test_a_failed_ack_marks_the_command_failed(
    session, session_factory, start_runner, terminal, fake
) -> None:
    runner = start_runner(terminal.serial)
    fake.status, fake.detail = "failed", "门禁离线"
    row = commands.send(
        session,
        Principal.system(),
        device_id=terminal.id,
        command="reboot",
        args={},
        now=datetime.now(UTC),
    )
    session.commit()
    assert outbox.deliver_outbox(session_factory, runner.bus) == 2  # the command, and its state "sent"
    assert wait(lambda: len(fake.commands) == 1)
    fake.release.set()
    assert runner.wait_for(lambda s: s.acks >= 1, 10), runner.snapshot()
    session.expire_all()
    stored = session.get(DeviceCommand, row.id)
    assert stored is not None and (stored.status, stored.result) == ("failed", "门禁离线")
    assert stored.acked_at is not None
