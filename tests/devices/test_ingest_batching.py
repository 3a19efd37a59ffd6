"""The batching rules of the ingest hot path: micro-batches of MQTT messages, raw bodies kept per message,
rollups counted per batch, one outbox row per batch delivered exactly once, redelivery after a crash."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from linli.core import outbox
from linli.core.bus import InProcessBus
from linli.core.bus import Message as BusMessage
from linli.core.timeutil import as_utc
from linli.db import unit_of_work, writing
from linli.devices import service
from linli.devices.models import DeadLetter, EventRollup, RawPayload, StoredEvent
from linli.devices.mqtt import Message, events_topic
from linli.devices.mqtt_ingest import CommandRelay, Runner, handle_batch
from tests.devices.helpers import T0, Recorder, device, envelope, plate_read
from tests.devices.mqtt_helpers import URL, needs_broker, publish_all, unique, wait


def _message(community: str, serial: str, body: Any, *, mid: int) -> Message:
    payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return Message(events_topic(community, serial), community, serial, payload, mid, 1)


def _reading(serial: str, value: Any, *, uid: str, at: datetime = T0) -> dict[str, Any]:
    payload = {"quantity": "temperature", "value": value, "unit": "°C"}
    return envelope(serial, "sensor.reading", at=at, payload=payload, uid=uid)


def test_bad_messages_in_a_micro_batch_are_dead_letters_and_the_good_ones_are_stored(
    session, session_factory, bus, recorder, world, gate
) -> None:
    serial, community = gate[0].serial, gate[0].community_code
    sensor, _ = device(session, world.tianfu, serial="TH-TF-3-01", kind="smoke_sensor", location="3号楼")
    session.commit()
    oversized = json.dumps(envelope(serial, payload={"status": "x" * 300}, uid="big")).encode()
    messages = [
        _message(community, serial, plate_read(serial, "陕A12345", uid="ok-1"), mid=1),
        _message(
            community,
            serial,
            envelope(serial, "vehicle.entered", payload={"lane": "1"}, uid="no-plate"),
            mid=2,
        ),
        _message(community, serial, oversized, mid=3),
        _message(community, sensor.serial, b'[{"id": "nan", "device": "TH-TF-3-01"', mid=4),
        _message(community, sensor.serial, [_reading(sensor.serial, 21.5, uid="t-1")], mid=5),
        _message(community, serial, plate_read(serial, "陕D67890", uid="ok-2", entered=False), mid=6),
    ]
    # NaN is not JSON: orjson refuses it, the standard library reads it, the payload model refuses it.
    nan_body = json.dumps(_reading(sensor.serial, float("nan"), uid="t-nan")).encode()
    assert b"NaN" in nan_body
    messages.append(_message(community, sensor.serial, nan_body, mid=7))

    stats = handle_batch(messages, session_factory=session_factory, bus=bus, now=T0, max_payload_bytes=300)

    assert (stats.messages, stats.stored, stats.rejected) == (7, 3, 4)
    stored = session.scalars(select(StoredEvent.event_uid).where(StoredEvent.source != "linli.health"))
    assert sorted(stored) == ["ok-1", "ok-2", "t-1"]
    letters = list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))
    [no_plate] = [d for d in letters if d.reason.startswith("schema: payload.plate")]
    assert no_plate.reason == "schema: payload.plate: Field required" and no_plate.device_id == gate[0].id
    by_reason = sorted(d.reason.split(":")[0].split(" at ")[0] for d in letters)
    assert by_reason == ["malformed JSON", "oversized", "schema", "schema"]
    [big] = [d for d in letters if d.reason.startswith("oversized")]
    assert f"a message of {len(oversized)} bytes exceeds the limit of 300 bytes" in big.reason
    [nan] = [d for d in letters if "finite" in d.reason]
    assert nan.reason == "schema: payload.value: Input should be a finite number"
    # Every message is kept raw, linked to what it became: its events or its (first) dead letter.
    raws = list(
        session.scalars(select(RawPayload).where(RawPayload.source == "mqtt").order_by(RawPayload.id))
    )
    assert len(raws) == 7
    ids = dict(session.execute(select(StoredEvent.event_uid, StoredEvent.id)).all())
    assert [len(r.event_ids) for r in raws] == [1, 0, 0, 0, 1, 1, 0]
    assert raws[0].event_ids == [ids["ok-1"]] and raws[5].event_ids == [ids["ok-2"]]
    assert [r.dead_letter_id is not None for r in raws] == [False, True, True, True, False, False, True]
    assert raws[2].content == oversized[:4096] and raws[3].content == messages[3].payload
    assert {d.raw_id for d in letters} == {raws[i].id for i in (1, 2, 3, 6)}
    # What was stored reached the bus; what was refused did not.
    assert sorted(m["event_uid"] for m in recorder.data if m["source"] != "linli.health") == sorted(
        ["ok-1", "ok-2", "t-1"]
    )


def test_rollups_count_exactly_the_stored_events(session, world, gate) -> None:
    serial = gate[0].serial
    sensor, _ = device(session, world.tianfu, serial="TH-TF-3-02", kind="smoke_sensor", location="3号楼")
    batch = [
        plate_read(serial, f"陕A1234{i}", uid=f"p-{i}", at=T0 + timedelta(minutes=25 * i)) for i in range(6)
    ]
    batch += [
        _reading(sensor.serial, 20 + i, uid=f"r-{i}", at=T0 + timedelta(minutes=40 * i)) for i in range(5)
    ]
    batch += [
        envelope(serial, "door.opened"),
        plate_read(serial, "陕A12340", uid="p-0", at=T0),
    ]  # bad, repeat
    first = service.ingest(session, batch, source="http", received_at=T0 + timedelta(hours=4))
    again = service.ingest(session, batch[:4], source="http", received_at=T0 + timedelta(hours=4, minutes=1))
    assert (first.stored, first.duplicates, len(first.rejected)) == (11, 1, 1)
    assert (again.stored, again.duplicates) == (0, 4)
    hour = func.strftime("%Y-%m-%d %H", StoredEvent.occurred_at)
    if session.get_bind().dialect.name == "postgresql":
        hour = func.to_char(func.timezone("UTC", StoredEvent.occurred_at), "YYYY-MM-DD HH24")
    per_hour = Counter(
        {
            (h, t): n
            for h, t, n in session.execute(
                select(hour, StoredEvent.type, func.count()).group_by(hour, StoredEvent.type)
            )
        }
    )
    rolled = Counter(
        {
            (as_utc(r.hour).strftime("%Y-%m-%d %H"), r.type): r.count
            for r in session.scalars(select(EventRollup))
        }
    )
    assert rolled == per_hour
    # No device.online: events hours old when received do not make a device count as online.
    assert sum(rolled.values()) == 11 and rolled[("2026-03-05 09", "vehicle.entered")] == 2


def test_the_bus_receives_each_stored_event_exactly_once(session, session_factory, world, gate) -> None:
    serial = gate[0].serial
    bus = InProcessBus()
    received: list[BusMessage] = []
    bus.subscribe("linli.events.>", received.append)
    batches = [
        [plate_read(serial, "陕A12345", uid=f"b{b}-{i}", at=T0 + timedelta(seconds=i)) for i in range(40)]
        for b in range(3)
    ]
    for batch in batches:
        service.ingest(session, batch + batch[:5], source="http", received_at=T0 + timedelta(minutes=1))
    service.ingest(session, batches[0], source="http", received_at=T0 + timedelta(minutes=2))  # redelivered
    session.commit()
    assert outbox.pending(session) == 3 * 40 + 1  # and the gate's device.online
    assert outbox.deliver_outbox(session_factory, bus) == 121
    assert outbox.deliver_outbox(session_factory, bus) == 0
    ids = [m.json()["id"] for m in received]
    stored = list(session.scalars(select(StoredEvent.id).order_by(StoredEvent.id)))
    assert sorted(ids) == stored and len(set(ids)) == len(ids) == 121
    assert ids == sorted(ids)  # in the order they were stored
    assert outbox.pending(session) == 0


def test_a_batch_row_the_bus_refuses_halfway_keeps_only_what_is_still_to_publish(
    session, session_factory, gate
) -> None:
    serial = gate[0].serial
    service.ingest(
        session,
        [plate_read(serial, "陕A12345", uid=f"h-{i}", at=T0 + timedelta(seconds=i)) for i in range(10)],
        source="http",
        received_at=T0,
    )
    session.commit()
    published: list[str] = []

    class Flaky(InProcessBus):
        def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
            if len(published) == 4:
                raise ConnectionError("the bus went away")
            published.append(json.loads(data)["event_uid"] if isinstance(data, bytes) else "")

    flaky = Flaky()
    assert outbox.deliver_outbox(session_factory, flaky) == 4
    assert outbox.pending(session) == 7  # 6 reads and the gate's device.online
    published.append("back")
    assert outbox.deliver_outbox(session_factory, InProcessBus()) == 7
    assert published[:4] == ["h-0", "h-1", "h-2", "h-3"]
    assert outbox.pending(session) == 0


def test_a_committed_batch_is_published_from_memory_once_and_marked_delivered(
    session, session_factory, gate
) -> None:
    serial = gate[0].serial
    bus = InProcessBus()
    received: list[BusMessage] = []
    bus.subscribe("linli.events.>", received.append)
    reads = [plate_read(serial, "陕A12345", uid=f"m-{i}", at=T0 + timedelta(seconds=i)) for i in range(30)]
    with unit_of_work(session_factory) as writer:
        service.ingest(writer, reads, source="http", received_at=T0)
        queued = outbox.written(writer)
        assert outbox.written(writer).batches == []  # taken once
    assert len(queued.batches) == 1 and len(queued.batches[0][1]) == 31  # and the gate's device.online
    assert not queued.others
    assert outbox.deliver_outbox(session_factory, bus, written=queued) == 31
    assert outbox.deliver_outbox(session_factory, bus) == 0
    assert outbox.deliver_outbox(session_factory, bus, written=queued) == 0  # gone: not again
    # The delivered batch row is deleted, not rewritten as delivered: the events are in the store.
    assert session.scalar(select(func.count()).select_from(outbox.OutboxMessage)) == 0
    uids = [m.json()["event_uid"] for m in received if m.json()["type"] == "vehicle.entered"]
    assert uids == [f"m-{i}" for i in range(30)]  # once each, in order
    assert outbox.pending(session) == 0


def test_a_rolled_back_batch_is_not_handed_to_delivery(session_factory, gate) -> None:
    serial = gate[0].serial
    reads = [plate_read(serial, "陕A12345", uid=f"x-{i}", at=T0 + timedelta(seconds=i)) for i in range(5)]
    with session_factory() as writer:
        writing(writer)
        service.ingest(writer, reads, source="http", received_at=T0)
        writer.rollback()
        assert outbox.written(writer) == outbox.Written()


def test_a_committed_batch_the_bus_refuses_halfway_keeps_the_rest_for_the_next_delivery(
    session, session_factory, gate
) -> None:
    serial = gate[0].serial
    published: list[str] = []

    class Flaky(InProcessBus):
        def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
            if len(published) == 4 and "back" not in published:
                raise ConnectionError("the bus went away")
            published.append(json.loads(data)["event_uid"] if isinstance(data, bytes) else subject)

    reads = [plate_read(serial, "陕A12345", uid=f"r-{i}", at=T0 + timedelta(seconds=i)) for i in range(10)]
    with unit_of_work(session_factory) as writer:
        service.ingest(writer, reads, source="http", received_at=T0)
        queued = outbox.written(writer)
    flaky = Flaky()
    assert outbox.deliver_outbox(session_factory, flaky, written=queued) == 4
    assert outbox.pending(session) == 7  # 6 reads and the gate's device.online
    published.append("back")
    assert outbox.deliver_outbox(session_factory, flaky) == 7
    uids = [p for p in published if p.startswith("r-")]
    assert uids == [f"r-{i}" for i in range(10)]
    assert outbox.pending(session) == 0


@pytest.mark.integration
@needs_broker
def test_a_batch_redelivered_after_a_crash_before_its_ack_is_stored_and_published_once(
    session, session_factory, world
) -> None:
    camera, _ = device(session, world.tianfu, serial=unique("CAM"), kind="camera", protocol="mqtt")
    session.commit()
    bus = InProcessBus()
    recorder = Recorder(bus)
    client_id = unique("linli-crash")

    class CrashesBeforeAck(Runner):
        """Stores its first batch, then hangs before acknowledging it, as a process killed right then."""

        hold = threading.Event()
        crashed = threading.Event()

        def handle_batch(self, messages: list[Message]) -> None:
            super().handle_batch(messages)
            self.crashed.set()
            self.hold.wait(20)

    def runner(cls: type[Runner]) -> Runner:
        made = cls(
            URL,
            session_factory=session_factory,
            bus=bus,
            client_id=client_id,
            subscriptions=[events_topic(world.tianfu, camera.serial)],
            session_expiry_s=120,
        )
        made.start()
        assert made.subscriber.subscribed.wait(5)
        return made

    first = runner(CrashesBeforeAck)
    now = datetime.now(UTC)
    uids = [f"crash-{i}" for i in range(6)]
    topic = events_topic(world.tianfu, camera.serial)
    publish_all([(topic, json.dumps(envelope(camera.serial, at=now, uid=u)).encode()) for u in uids])
    assert CrashesBeforeAck.crashed.wait(10)
    first.subscriber.client.disconnect()  # gone without acknowledging; the broker keeps the session
    first.subscriber.client.loop_stop()
    stored_before_crash = first.snapshot()["stored"]
    assert stored_before_crash >= 1
    second = runner(Runner)
    try:
        assert second.wait_for(lambda s: s.messages >= len(uids), 10), second.snapshot()
        stats = second.snapshot()
        assert stats["duplicates"] == stored_before_crash  # the unacknowledged batch came back
        assert stored_before_crash + stats["stored"] == len(uids)
        assert wait(lambda: len(recorder.messages) >= len(uids))
        heard = Counter(m["event_uid"] for m in recorder.data if m["type"] == "device.heartbeat")
        assert heard == Counter(uids)  # each stored event on the bus exactly once
        stored = session.scalars(select(StoredEvent.event_uid).where(StoredEvent.device_id == camera.id))
        assert sorted(u for u in stored if u.startswith("crash-")) == uids
    finally:
        CrashesBeforeAck.hold.set()
        second.stop()
        first.stop()
        recorder.close()


@pytest.mark.integration
@needs_broker
def test_workers_of_a_share_group_split_the_messages_between_them(session, session_factory, world) -> None:
    camera, _ = device(session, world.tianfu, serial=unique("CAM"), kind="camera", protocol="mqtt")
    session.commit()
    bus = InProcessBus()
    recorder = Recorder(bus)
    group = unique("grp")

    class OneWriterAtATime(Runner):
        """Real workers each have their own connection and take the write lock in turn; here both share
        the test's one connection, so they take turns explicitly."""

        turn = threading.Lock()

        def handle_batch(self, messages: list[Message]) -> None:
            with self.turn:
                super().handle_batch(messages)

    workers = [
        OneWriterAtATime(
            URL,
            session_factory=session_factory,
            bus=bus,
            client_id=unique("linli-share"),
            subscriptions=[events_topic(world.tianfu, camera.serial)],
            session_expiry_s=120,
            share_group=group,
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
        assert worker.subscriber.subscribed.wait(5)
    try:
        now = datetime.now(UTC)
        topic = events_topic(world.tianfu, camera.serial)
        uids = [f"share-{i}" for i in range(40)]
        publish_all([(topic, json.dumps(envelope(camera.serial, at=now, uid=u)).encode()) for u in uids])
        assert wait(lambda: sum(w.snapshot()["messages"] for w in workers) >= 40)
        counts = [w.snapshot() for w in workers]
        assert sum(c["messages"] for c in counts) == 40  # each message to one worker of the group
        assert all(c["messages"] > 0 for c in counts), counts  # and both had a share
        assert sum(c["stored"] for c in counts) == 40
        assert wait(lambda: len(recorder.messages) >= 41)
        heard = Counter(m["event_uid"] for m in recorder.data if m["type"] == "device.heartbeat")
        assert heard == Counter(uids)
    finally:
        for worker in workers:
            worker.stop()
        recorder.close()


def test_the_command_relay_keeps_the_order_of_events_and_commands() -> None:
    bus = InProcessBus()
    seen: list[str] = []
    bus.subscribe("linli.>", lambda m: seen.append(m.subject))
    sent: list[str] = []

    def to_broker(topic: str, payload: bytes) -> None:
        if len(sent) == 1:
            raise ConnectionError("the broker went away")
        sent.append(topic)
        seen.append(topic)

    relay = CommandRelay(bus, to_broker)
    command = {"topic": "linli/611102001001/MJ-01/commands", "message": {"id": 1}}
    messages: list[tuple[str, bytes | dict[str, Any]]] = [
        ("linli.events.611102001001.access.granted", b"{}"),
        ("linli.commands.611102001001", command),
        ("linli.events.611102001001.device.heartbeat", b"{}"),
        ("linli.events.611102001001.device.heartbeat", b"{}"),
        ("linli.commands.611102001001", command),  # refused: the relay stops here
        ("linli.events.611102001001.alarm.raised", b"{}"),
    ]
    assert relay.publish_many(messages) == 4
    assert seen == [
        "linli.events.611102001001.access.granted",
        "linli/611102001001/MJ-01/commands",
        "linli.events.611102001001.device.heartbeat",
        "linli.events.611102001001.device.heartbeat",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"credential": "card", "door": "3号楼2单元", "card_no": "12345678", "direction": "in"},
        {"quantity": "temperature", "value": 21.5, "unit": "°C"},  # a float: the standard library's way
        {"quantity": "water", "value": 1e-05, "unit": "m3"},
        {"status": "ok", "firmware": None, "flags": [True, False, 3, {"z": '\n\t"\\', "a": "\u2028"}]},
        {"plate": "陕A·12345", "n": 123456789012345678901234567890},  # beyond 64 bits
        {"value": 1e16, "v": [0.1, -0.0, 5e-324, 1.7976931348623157e308, {"x": 100.0}], "unit": "kPa"},
        {"value": float("nan"), "limit": float("inf"), "unit": "m"},  # not JSON: the standard library's way
        {"confidence": 0.97, "plate": "陕A12345", "colour": "blue"},
    ],
)
def test_the_content_hash_is_the_one_the_standard_library_gave(payload: dict[str, Any]) -> None:
    import hashlib

    from linli.devices.events import Envelope, content_hash

    item = envelope("DS-TCG227-TF-S01", "device.heartbeat", payload=payload, uid="h-1")
    env = Envelope.model_validate(item)
    facts = {
        "device": env.device,
        "type": env.type.value,
        "occurred_at": env.occurred_at.astimezone(UTC).isoformat(),
        "payload": env.payload,
        "media": [],
    }
    text = json.dumps(facts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    assert content_hash(env) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_micro_batch_is_read_judged_and_linked_before_its_write_transaction(
    session, session_factory, bus, gate, monkeypatch
) -> None:
    """As over HTTP: only the store holds the write lock (on SQLite, one batch of one ingest process is
    read while another's writes); the dead letters of refused messages are written in the write."""
    from linli.devices import linking, mqtt_ingest, receive

    steps: list[str] = []
    real_writing, real_link, real_parse = mqtt_ingest.writing, linking.link, mqtt_ingest.parse_events
    real_malformed = mqtt_ingest.reject_malformed

    def writing(s):  # type: ignore[no-untyped-def]
        steps.append("write transaction")
        return real_writing(s)

    def link(s, events):  # type: ignore[no-untyped-def]
        steps.append("link")
        return real_link(s, events)

    def parse_events(body: bytes) -> list[Any]:
        steps.append("parse")
        return real_parse(body)

    def reject_malformed(s, exc, **kw):  # type: ignore[no-untyped-def]
        steps.append("dead letter")
        return real_malformed(s, exc, **kw)

    monkeypatch.setattr(mqtt_ingest, "writing", writing)
    monkeypatch.setattr(service.linking, "link", link)
    monkeypatch.setattr(mqtt_ingest, "parse_events", parse_events)
    monkeypatch.setattr(mqtt_ingest, "reject_malformed", reject_malformed)
    assert receive.reject_malformed is real_malformed
    serial, community = gate[0].serial, gate[0].community_code
    session.commit()
    messages = [
        _message(community, serial, plate_read(serial, "陕A12345", uid="order-1"), mid=1),
        _message(community, serial, b'[{"id": "order-2"', mid=2),
        _message(community, serial, plate_read(serial, "陕A12346", uid="order-3"), mid=3),
    ]
    stats = handle_batch(messages, session_factory=session_factory, bus=bus, now=T0)
    assert (stats.stored, stats.rejected) == (2, 1)
    assert steps == ["parse", "parse", "parse", "link", "write transaction", "dead letter"]


def _committed(session_factory, serial: str, prefix: str, n: int, *, hold: bool = False) -> outbox.Written:  # type: ignore[no-untyped-def]
    reads = [
        plate_read(serial, "陕A12345", uid=f"{prefix}-{i}", at=T0 + timedelta(seconds=i)) for i in range(n)
    ]
    with unit_of_work(session_factory) as writer:
        if hold:
            outbox.hold(writer)
        service.ingest(writer, reads, source="http", received_at=T0)
        return outbox.written(writer)


def _uids(recorder: Recorder) -> list[str]:
    """The event ids of what the recorded bus published, in order."""
    return [m["event_uid"] for m in recorder.data]


def test_the_deliverer_publishes_what_waits_together_in_order(
    session, session_factory, gate, monkeypatch
) -> None:
    serial = gate[0].serial
    recorder = Recorder(InProcessBus())
    bus = recorder.bus
    real, deliveries = outbox._deliver_written, []

    def counted(factory, bus, batches):  # type: ignore[no-untyped-def]
        deliveries.append(len(batches))
        return real(factory, bus, batches)

    monkeypatch.setattr(outbox, "_deliver_written", counted)
    committed = [_committed(session_factory, serial, p, 3) for p in ("a", "b", "c")]
    deliverer = outbox.Deliverer(session_factory, bus)
    try:
        with outbox._delivering:  # the deliverer is busy: what is handed in meanwhile waits
            for written in committed:
                assert deliverer.submit(written, block=False)
            assert recorder.messages == []
        assert deliverer.wait(10)
    finally:
        deliverer.close()
    plates = [uid for uid in _uids(recorder) if uid[0] in "abc"]
    assert plates == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2", "c-0", "c-1", "c-2"]
    assert sum(deliveries) == 3 and len(deliveries) <= 2  # the three waited, and went out together
    assert outbox.pending(session) == 0


def test_the_deliverer_pushes_back_when_full_and_survives_a_failed_delivery(
    session, session_factory, gate, monkeypatch
) -> None:
    serial = gate[0].serial
    recorder = Recorder(InProcessBus())
    bus = recorder.bus
    first, second, third = (_committed(session_factory, serial, p, 2) for p in ("f", "s", "t"))
    real, calls = outbox._deliver_written, []

    def broken_once(factory, bus, batches):  # type: ignore[no-untyped-def]
        calls.append(len(batches))
        if len(calls) == 1:
            raise OSError("disk I/O error")
        return real(factory, bus, batches)

    monkeypatch.setattr(outbox, "_deliver_written", broken_once)
    deliverer = outbox.Deliverer(session_factory, bus, max_waiting=1)
    try:
        with outbox._delivering:
            assert deliverer.submit(first, block=False)
            deadline = time.monotonic() + 5
            while not deliverer._waiting.empty() and time.monotonic() < deadline:
                time.sleep(0.01)  # the thread took the first and waits for the lock
            assert deliverer.submit(second, block=False)
            assert not deliverer.submit(third, block=False)  # full: the caller hands it over from a thread
        assert deliverer.wait(10)
        assert deliverer.submit(third)
        assert deliverer.wait(10)
    finally:
        deliverer.close()
    assert [u for u in _uids(recorder) if u[0] in "fst"] == ["s-0", "s-1", "t-0", "t-1"]
    # the failed delivery's rows wait for the outbox catch-up: 2 reads and the gate's device.online
    assert outbox.pending(session) == 3
    assert outbox.deliver_outbox(session_factory, bus) == 3
    assert [u for u in _uids(recorder) if u[0] == "f"] == ["f-0", "f-1"]


def test_the_deliverers_gather_window_sends_hand_overs_that_come_apart_together(
    session, session_factory, gate, monkeypatch
) -> None:
    serial = gate[0].serial
    recorder = Recorder(InProcessBus())
    real, deliveries = outbox._deliver_written, []

    def counted(factory, bus, batches):  # type: ignore[no-untyped-def]
        deliveries.append(len(batches))
        return real(factory, bus, batches)

    monkeypatch.setattr(outbox, "_deliver_written", counted)
    committed = [_committed(session_factory, serial, p, 2) for p in ("g", "h", "i", "j")]
    gathering = outbox.Deliverer(session_factory, recorder.bus, gather=1.0)
    try:
        for written in committed[:2]:  # the deliverer is idle: each hand-over alone would go out at once
            assert gathering.submit(written)
            time.sleep(0.05)
        assert recorder.messages == []  # held for the window
        assert gathering.wait(10)
    finally:
        gathering.close()
    assert deliveries == [2]
    assert [u for u in _uids(recorder) if u[0] in "gh"] == ["g-0", "g-1", "h-0", "h-1"]

    deliveries.clear()
    immediate = outbox.Deliverer(session_factory, recorder.bus)  # no window: nothing is held
    try:
        for written in committed[2:]:
            assert immediate.submit(written)
            assert immediate.wait(10)
    finally:
        immediate.close()
    assert deliveries == [1, 1]
    assert [u for u in _uids(recorder) if u[0] in "ij"] == ["i-0", "i-1", "j-0", "j-1"]
    assert outbox.pending(session) == 0


def test_closing_a_gathering_deliverer_does_not_wait_out_its_window(session, session_factory, gate) -> None:
    recorder = Recorder(InProcessBus())
    written = _committed(session_factory, gate[0].serial, "k", 2)
    deliverer = outbox.Deliverer(session_factory, recorder.bus, gather=30.0)
    started = time.monotonic()
    deliverer.submit(written)
    deliverer.close(timeout=10)
    assert time.monotonic() - started < 5
    assert not deliverer._thread.is_alive()
    assert [u for u in _uids(recorder) if u[0] == "k"] == ["k-0", "k-1"]


def test_closing_the_deliverer_delivers_what_waits(session, session_factory, gate) -> None:
    recorder = Recorder(InProcessBus())
    bus = recorder.bus
    written = _committed(session_factory, gate[0].serial, "z", 4)
    deliverer = outbox.Deliverer(session_factory, bus)
    with outbox._delivering:
        deliverer.submit(written)
    deliverer.close()
    assert [u for u in _uids(recorder) if u.startswith("z-")] == ["z-0", "z-1", "z-2", "z-3"]
    assert outbox.pending(session) == 0


def test_a_process_that_never_imported_the_store_finds_its_outbox_loader() -> None:
    # The catch-up may run where the event store was never imported (a jobs worker): the loader's name
    # is its module, imported on first use, which registers it.
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from linli.core import outbox\n"
        "assert 'linli.devices.store' not in sys.modules\n"
        "loader = outbox._loader('linli.devices.store')\n"
        "assert loader is sys.modules['linli.devices.store'].outbox_messages\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _outbox_rows(session) -> list[tuple[int, int]]:
    """(id, attempts) of the outbox's rows, read afresh."""
    session.expire_all()
    return list(session.execute(select(outbox.OutboxMessage.id, outbox.OutboxMessage.attempts)).tuples())


def test_a_worker_publishes_its_held_batches_at_once_and_deletes_them_with_its_next_batch(
    session, session_factory, world, gate
) -> None:
    serial, community = gate[0].serial, gate[0].community_code
    bus = InProcessBus()
    heard: list[str] = []
    bus.subscribe("linli.events.>", lambda m: heard.append(str(m.json()["event_uid"])))
    published = outbox.Published()
    now = datetime.now(UTC)

    def batch(tag: str) -> None:
        messages = [
            _message(community, serial, plate_read(serial, "陕A12345", uid=f"{tag}-{i}", at=now), mid=i)
            for i in range(1, 4)
        ]
        handle_batch(messages, session_factory=session_factory, bus=bus, now=now, published=published)

    batch("first")
    assert [u for u in heard if u.startswith("first")] == ["first-1", "first-2", "first-3"]  # at once
    (held,) = _outbox_rows(session)  # kept until the worker's next write, held: attempts -1
    assert held[1] == outbox.HELD and published.waiting == 1
    # Another delivery (a web request's, a job's) leaves a held row to its writer: no second copy.
    assert outbox.deliver_outbox(session_factory, bus) == 0
    assert heard.count("first-1") == 1
    batch("second")
    # The first batch's row went with the second batch's write (SQLite may give the second its id).
    assert len(_outbox_rows(session)) == 1 and published.waiting == 1
    assert published.flush(session_factory) == 1  # the worker went quiet
    assert _outbox_rows(session) == [] and published.waiting == 0
    reads = Counter(u for u in heard if u.startswith(("first-", "second-")))
    assert reads == Counter({f"{t}-{i}": 1 for t in ("first", "second") for i in (1, 2, 3)})  # once each


def test_a_held_batch_whose_deleting_transaction_rolls_back_waits_for_the_next_one(
    session, session_factory, gate
) -> None:
    serial = gate[0].serial
    published = outbox.Published()
    bus = InProcessBus()
    with unit_of_work(session_factory) as writer:
        outbox.hold(writer)
        service.ingest(writer, [plate_read(serial, "陕A12345", uid="rb-1")], source="http", received_at=T0)
        queued = outbox.written(writer)
    assert published.publish(session_factory, bus, queued) == 2  # the read and the gate's device.online
    with session_factory() as failing:
        writing(failing)
        assert published.forget(failing) == 1
        assert published.waiting == 0
        failing.rollback()  # the batch that was to delete it failed
    assert published.waiting == 1 and len(_outbox_rows(session)) == 1
    assert published.flush(session_factory) == 1
    assert _outbox_rows(session) == []


def test_the_catch_up_publishes_a_held_batch_whose_writer_died(session, session_factory, gate) -> None:
    serial = gate[0].serial
    with unit_of_work(session_factory) as writer:
        outbox.hold(writer)
        service.ingest(writer, [plate_read(serial, "陕A12345", uid="dead-1")], source="http", received_at=T0)
    # The writer died between its commit and its publication: the row stays held for HELD_FOR.
    bus = InProcessBus()
    heard: list[str] = []
    bus.subscribe("linli.events.>", lambda m: heard.append(str(m.json()["event_uid"])))
    assert outbox.deliver_outbox(session_factory, bus) == 0
    with unit_of_work(session_factory) as aging:
        table = outbox.OutboxMessage.__table__
        aging.execute(
            table.update().values(created_at=datetime.now(UTC) - outbox.HELD_FOR - timedelta(seconds=1))
        )
    assert outbox.deliver_outbox(session_factory, bus) == 2
    assert "dead-1" in heard and _outbox_rows(session) == []


def test_a_held_batch_the_bus_refuses_halfway_is_anyones_to_deliver_after(
    session, session_factory, gate
) -> None:
    serial = gate[0].serial
    published_uids: list[str] = []

    class Flaky(InProcessBus):
        def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
            if len(published_uids) == 2:
                raise ConnectionError("the bus went away")
            published_uids.append(json.loads(data)["event_uid"] if isinstance(data, bytes) else subject)

    reads = [plate_read(serial, "陕A12345", uid=f"hf-{i}", at=T0 + timedelta(seconds=i)) for i in range(5)]
    published = outbox.Published()
    with unit_of_work(session_factory) as writer:
        outbox.hold(writer)
        service.ingest(writer, reads, source="http", received_at=T0)
        queued = outbox.written(writer)
    assert published.publish(session_factory, Flaky(), queued) == 2
    (row,) = _outbox_rows(session)
    assert row[1] > outbox.HELD and published.waiting == 0  # no longer held: its failed attempts counted
    assert outbox.deliver_outbox(session_factory, InProcessBus()) == 4  # 3 reads and device.online
    assert _outbox_rows(session) == []


def test_a_worker_leaves_a_row_it_published_long_ago_to_the_catch_up(
    session, session_factory, gate, monkeypatch
) -> None:
    serial = gate[0].serial
    published = outbox.Published()
    with unit_of_work(session_factory) as writer:
        outbox.hold(writer)
        service.ingest(writer, [plate_read(serial, "陕A12345", uid="old-1")], source="http", received_at=T0)
        queued = outbox.written(writer)
    published.publish(session_factory, InProcessBus(), queued)
    later = time.monotonic() + outbox.HELD_FOR.total_seconds()
    monkeypatch.setattr(outbox.time, "monotonic", lambda: later)
    # The catch-up may have taken the row by now and, on SQLite, its id gone to a new row: not deleted.
    assert published.flush(session_factory) == 0 and published.waiting == 0
    assert len(_outbox_rows(session)) == 1


def test_the_deliverer_publishes_held_batches_before_it_deletes_them_and_no_one_else_does(
    session, session_factory, gate, monkeypatch
) -> None:
    serial = gate[0].serial
    recorder = Recorder(InProcessBus())
    claims: list[int] = []
    real = outbox._deliver_written
    monkeypatch.setattr(outbox, "_deliver_written", lambda *a: claims.append(1) or real(*a))
    committed = [_committed(session_factory, serial, p, 2, hold=True) for p in ("a", "b")]
    assert all(w.held for w in committed)
    # Before the deliverer's turn, another delivery (a web request's, a job's) leaves held rows alone.
    assert outbox.deliver_outbox(session_factory, recorder.bus) == 0 and recorder.messages == []
    deliverer = outbox.Deliverer(session_factory, recorder.bus)
    try:
        for written in committed:
            assert deliverer.submit(written)
        assert deliverer.wait(10)
    finally:
        deliverer.close()
    assert [u for u in _uids(recorder) if u[0] in "ab"] == ["a-0", "a-1", "b-0", "b-1"]
    assert claims == []  # published with no claiming transaction
    assert _outbox_rows(session) == [] and outbox.pending(session) == 0  # and deleted after
