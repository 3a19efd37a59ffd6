"""The command panel's live stream: each state change of the device's commands, scoped to the caller."""

from __future__ import annotations

from datetime import timedelta

from linli.core.auth.service import Principal
from linli.core.bus import InProcessBus
from linli.core.timeutil import utcnow
from linli.devices import commands, service
from tests.devices.helpers import Recorder, device, stream_text
from tests.web.helpers import Console


def _console(client) -> Console:  # type: ignore[no-untyped-def]
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


def test_state_changes_are_announced_after_the_commit_and_streamed_to_the_devices_page(
    client, session, session_factory, world
) -> None:  # type: ignore[no-untyped-def]
    door, _ = device(session, world.tianfu, serial="DS-K1T-ST-01", kind="face_terminal")
    other, _ = device(session, world.tianfu, serial="DS-K1T-ST-02", kind="face_terminal")
    yuyu, _ = device(session, world.yuyu, serial="DS-K1T-ST-03", kind="face_terminal")
    now = utcnow()
    rows = [
        commands.send(session, Principal.system(), device_id=d.id, command="reboot", args={}, now=now)
        for d in (door, other, yuyu)
    ]
    session.flush()
    assert commands.expire_commands(session, now + timedelta(minutes=6)) == 3
    session.commit()
    capture = InProcessBus()  # what the outbox delivers, taken first (one test connection, one thread)
    recorded = Recorder(capture, pattern=f"{commands.STATE_SUBJECT}.>")
    service.deliver_outbox(session_factory, capture)
    assert [(m["id"], m["status"]) for m in recorded.data] == [
        (rows[0].id, "queued"),
        (rows[1].id, "queued"),
        (rows[2].id, "queued"),
        (rows[0].id, "expired"),
        (rows[1].id, "expired"),
        (rows[2].id, "expired"),
    ]
    assert {m.subject for m in recorded.messages} == {
        f"{commands.STATE_SUBJECT}.{world.tianfu}",
        f"{commands.STATE_SUBJECT}.{world.yuyu}",
    }

    console = _console(client)
    console.login("shequ")
    bus = client.app.state.bus

    def publish() -> None:
        for message in recorded.messages:
            bus.publish(message.subject, message.body)

    text = stream_text(
        bus, lambda: console.get(f"/devices/{door.id}/commands/stream", params={"timeout": 3}), publish
    )
    frames = [f for f in text.split("\n\n") if f.startswith("id:")]
    assert [f.splitlines()[:2] for f in frames] == [
        [f"id: {rows[0].id}:queued", "event: command"],
        [f"id: {rows[0].id}:expired", "event: command"],
    ]  # only this device's commands


def test_the_stream_of_another_communitys_device_is_not_found(client, session, world) -> None:  # type: ignore[no-untyped-def]
    door, _ = device(session, world.tianfu, serial="DS-K1T-ST-04", kind="face_terminal")
    session.commit()
    console = _console(client)
    console.login("shequ2")
    assert console.get(f"/devices/{door.id}/commands/stream", params={"timeout": 1}).status_code == 404
