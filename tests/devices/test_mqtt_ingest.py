"""MQTT ingest: a batch per unit of work, topic checks, dead letters; end to end on the real Mosquitto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from linli.core import outbox
from linli.core.bus import Message as BusMessage
from linli.devices.models import DeadLetter, RawPayload, StoredEvent
from linli.devices.mqtt import Message, events_topic
from linli.devices.mqtt_ingest import Runner, Stats, handle_batch
from tests.devices.helpers import T0, device, envelope, plate_read
from tests.devices.mqtt_helpers import needs_broker, publish_all, unique, wait


def _message(community: str, serial: str, body: Any, *, kind: str = "events", mid: int = 1) -> Message:
    payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return Message(f"linli/{community}/{serial}/{kind}", community, serial, payload, mid, 1)


def _uids(session, serial: str) -> list[str]:  # type: ignore[no-untyped-def]
    stmt = select(StoredEvent.event_uid).where(
        StoredEvent.device_serial == serial, StoredEvent.source != "linli.health"
    )
    return sorted(session.scalars(stmt.order_by(StoredEvent.id)))


def _letters(session) -> list[DeadLetter]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def test_a_batch_is_stored_with_its_raw_payloads_and_published_after_commit(
    session, session_factory, bus, recorder, gate
) -> None:
    serial, community = gate[0].serial, gate[0].community_code
    session.commit()
    two = [
        plate_read(serial, "陕A12345", uid="m-1"),
        plate_read(serial, "陕D67890", uid="m-2", entered=False),
    ]
    seen_committed: list[bool] = []

    def check(message: BusMessage) -> None:
        with session_factory() as other:
            seen_committed.append(other.get(StoredEvent, message.json()["id"]) is not None)

    bus.subscribe("linli.events.>", check)
    stats = handle_batch(
        [_message(community, serial, two, mid=1), _message(community, serial, envelope(serial, uid="m-3"))],
        session_factory=session_factory,
        bus=bus,
        now=T0 + timedelta(minutes=1),
    )
    assert (stats.messages, stats.stored, stats.duplicates, stats.rejected) == (2, 3, 0, 0)
    assert _uids(session, serial) == ["m-1", "m-2", "m-3"]
    raws = list(
        session.scalars(select(RawPayload).where(RawPayload.source == "mqtt").order_by(RawPayload.id))
    )
    assert [len(r.event_ids) for r in raws] == [2, 1] and raws[0].device_serial == serial
    assert json.loads(raws[0].content) == two
    types = [m["type"] for m in recorder.data]
    assert types == ["vehicle.entered", "vehicle.exited", "device.heartbeat", "device.online"]
    assert seen_committed == [True] * 4


def test_the_same_messages_delivered_again_are_stored_once(session, session_factory, bus, gate) -> None:
    serial, community = gate[0].serial, gate[0].community_code
    batch = [_message(community, serial, plate_read(serial, "陕A12345", uid="again-1"))]
    first = handle_batch(batch, session_factory=session_factory, bus=bus, now=T0)
    again = handle_batch(batch, session_factory=session_factory, bus=bus, now=T0 + timedelta(seconds=5))
    assert (first.stored, again.stored, again.duplicates) == (1, 0, 1)
    assert _uids(session, serial) == ["again-1"]


def test_malformed_json_is_a_dead_letter_and_the_rest_of_the_batch_is_stored(
    session, session_factory, bus, gate
) -> None:
    serial, community = gate[0].serial, gate[0].community_code
    broken = b'{"id": "x", "device": "' + serial.encode() + b'" "type": "device.heartbeat"}'
    stats = handle_batch(
        [
            _message(community, serial, plate_read(serial, "陕A12345", uid="ok-1"), mid=1),
            _message(community, serial, broken, mid=2),
            _message(community, serial, plate_read(serial, "陕A54321", uid="ok-2"), mid=3),
        ],
        session_factory=session_factory,
        bus=bus,
        now=T0,
    )
    assert (stats.stored, stats.rejected) == (2, 1)
    assert _uids(session, serial) == ["ok-1", "ok-2"]
    [letter] = _letters(session)
    assert letter.reason.startswith("malformed JSON at line 1 column") and "delimiter" in letter.reason
    assert letter.source == "mqtt" and letter.body == broken.decode()
    assert letter.area_code == gate[0].area_code and letter.sender_id == gate[0].id
    raw = session.get(RawPayload, letter.raw_id)
    assert raw is not None and raw.body == broken and raw.dead_letter_id == letter.id


def test_an_event_holding_a_nul_is_a_dead_letter_and_the_others_of_its_batch_are_stored(
    session, session_factory, bus, gate
) -> None:
    # JSON writes a NUL as \\u0000; the batch's other messages hold none, and a message's raw JSON text
    # "\\\\u0000" (a backslash, then u0000) is not one.
    serial, community = gate[0].serial, gate[0].community_code
    tampered = envelope(
        serial, "alarm.raised", payload={"alarm": "tamper", "detail": "lid\x00open"}, uid="nul"
    )
    text = envelope(serial, "alarm.raised", payload={"alarm": "tamper", "detail": "C:\\u0000"}, uid="text")
    stats = handle_batch(
        [
            _message(community, serial, plate_read(serial, "陕A12345", uid="ok-1"), mid=1),
            _message(community, serial, tampered, mid=2),
            _message(community, serial, text, mid=3),
        ],
        session_factory=session_factory,
        bus=bus,
        now=T0,
    )
    assert (stats.stored, stats.rejected) == (2, 1)
    assert _uids(session, serial) == ["ok-1", "text"]
    [letter] = _letters(session)
    assert "NUL" in letter.reason and letter.raw_id is not None


def test_the_topic_must_name_a_registered_device_of_its_community(
    session, session_factory, bus, world, gate, camera
) -> None:
    serial = gate[0].serial
    stats = handle_batch(
        [
            _message(world.tianfu, "NO-SUCH-01", envelope("NO-SUCH-01", uid="u-1")),
            _message(world.yuyu, serial, [envelope(serial, uid="c-1"), envelope(serial, uid="c-2")]),
            _message(world.tianfu, serial, envelope(camera[0].serial, uid="w-1")),
        ],
        session_factory=session_factory,
        bus=bus,
        now=T0,
    )
    assert (stats.stored, stats.rejected) == (0, 4)
    reasons = [(d.reason.split(":")[0], d.device_serial, d.area_code) for d in _letters(session)]
    assert reasons == [
        ("unknown device", "NO-SUCH-01", None),
        ("wrong community", serial, gate[0].area_code),
        ("wrong community", serial, gate[0].area_code),
        ("wrong device", camera[0].serial, camera[0].area_code),
    ]
    assert f"registered in {world.tianfu}" in _letters(session)[1].reason
    assert session.scalar(select(StoredEvent.id)) is None


def test_a_gateway_sends_for_the_devices_of_its_own_community_only(
    session, session_factory, bus, world, gate, camera
) -> None:
    hub, _ = device(session, world.tianfu, serial="GW-TF-01", kind="gateway", vendor="有人物联网")
    stats = handle_batch(
        [
            _message(
                world.tianfu, hub.serial, [envelope(gate[0].serial, uid="g-1"), envelope(camera[0].serial)]
            )
        ],
        session_factory=session_factory,
        bus=bus,
        now=T0,
    )
    assert (stats.stored, stats.rejected) == (1, 1)
    assert _uids(session, gate[0].serial) == ["g-1"]
    assert _letters(session)[0].reason == f"wrong device: GW-TF-01 may not send events of {camera[0].serial}"


def test_each_event_of_a_batch_keeps_its_own_sender_and_raw_body(
    session, session_factory, bus, world, gate, camera
) -> None:
    cam = camera[0].serial
    stats = handle_batch(
        [
            _message(
                world.tianfu, gate[0].serial, [envelope(gate[0].serial, uid="s-1"), envelope(cam, uid="s-2")]
            ),
            _message(world.yuyu, cam, envelope(cam, uid="s-2")),  # the same event, now from its own device
        ],
        session_factory=session_factory,
        bus=bus,
        now=T0,
    )
    assert (stats.stored, stats.rejected) == (2, 1)
    [letter] = _letters(session)
    assert letter.reason.startswith(f"wrong device: {gate[0].serial} may not send")
    assert (letter.sender_id, letter.device_id) == (gate[0].id, camera[0].id)
    raws = list(
        session.scalars(select(RawPayload).where(RawPayload.source == "mqtt").order_by(RawPayload.id))
    )
    stored = {e.event_uid: e.id for e in session.scalars(select(StoredEvent))}
    assert [(r.event_ids, r.dead_letter_id) for r in raws] == [
        ([stored["s-1"]], letter.id),
        ([stored["s-2"]], None),
    ]
    assert letter.raw_id == raws[0].id


def test_a_database_failure_raises_so_the_batch_is_retried(bus, gate) -> None:
    empty = sessionmaker(bind=create_engine("sqlite://"))  # no tables: every statement fails
    message = _message(gate[0].community_code, gate[0].serial, envelope(gate[0].serial))
    with pytest.raises(Exception, match="no such table"):
        handle_batch([message], session_factory=empty, bus=bus, now=T0)


def test_the_runner_counts_a_batch_that_failed(bus, gate) -> None:
    """A failed batch (tried again by the Subscriber) shows in the worker's counts, not only in its log."""
    runner = Runner(
        "mqtt://127.0.0.1:1", session_factory=sessionmaker(bind=create_engine("sqlite://")), bus=bus
    )
    message = _message(gate[0].community_code, gate[0].serial, envelope(gate[0].serial))
    for _ in range(2):
        with pytest.raises(Exception, match="no such table"):
            runner.handle_batch([message])
    assert runner.snapshot()["failed"] == 2
    assert runner.snapshot()["batches"] == 0


# --- end to end through the real Mosquitto -------------------------------------------------------------


def _envelope_now(serial: str, uid: str) -> dict[str, Any]:
    return envelope(serial, "device.heartbeat", at=datetime.now(UTC), uid=uid)


@pytest.mark.integration
@needs_broker
def test_events_published_on_mosquitto_are_stored_once_and_reach_the_bus(
    session, world, recorder, start_runner
) -> None:
    mine, _ = device(session, world.tianfu, serial=unique("CAM"), kind="camera", protocol="mqtt")
    other, _ = device(session, world.yuyu, serial=unique("CAM"), kind="camera", protocol="mqtt")
    session.commit()
    runner = start_runner(mine.serial)
    topic = events_topic(world.tianfu, mine.serial)
    a, b = _envelope_now(mine.serial, "e2e-a"), _envelope_now(mine.serial, "e2e-b")
    publish_all(
        [
            (topic, json.dumps([a, b]).encode()),
            (topic, json.dumps(a).encode()),  # the same event again, as after a redelivery
            (topic, b'{"id": "e2e-c", "device": '),  # cut off
            (topic, json.dumps(_envelope_now(other.serial, "e2e-d")).encode()),  # not this device's
        ]
    )
    assert runner.wait_for(lambda s: s.messages >= 4, 10), runner.snapshot()
    stats = runner.snapshot()
    assert (stats["stored"], stats["duplicates"], stats["rejected"]) == (2, 1, 2)
    assert _uids(session, mine.serial) == ["e2e-a", "e2e-b"]
    assert _uids(session, other.serial) == []
    reasons = sorted(d.reason.split(" at ")[0].split(":")[0] for d in _letters(session))
    assert reasons == ["malformed JSON", "wrong device"]
    heard = [(m["event_uid"], m["device"]) for m in recorder.data if m["type"] == "device.heartbeat"]
    assert heard == [("e2e-a", mine.serial), ("e2e-b", mine.serial)]
    # Published right after their commit; the outbox rows go once the messages stop (no batch to take them).
    assert wait(lambda: runner.published.waiting == 0 and outbox.pending(session) == 0)


def test_stats_add_up() -> None:
    total = Stats()
    total.add(Stats(batches=1, messages=3, stored=2, rejected=1))
    total.add(Stats(batches=1, messages=1, acks=1))
    assert total.as_dict() == {
        "batches": 2,
        "messages": 4,
        "stored": 2,
        "duplicates": 0,
        "rejected": 1,
        "acks": 1,
        "ignored": 0,
        "failed": 0,
    }


def test_the_ingest_worker_needs_a_broker(monkeypatch) -> None:
    from typer.testing import CliRunner

    from linli.cli import app
    from linli.settings import get_settings

    monkeypatch.setenv("LINLI_MQTT_URL", "")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ingest", "mqtt"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "no broker: give --url or set LINLI_MQTT_URL" in result.output
