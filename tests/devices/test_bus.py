"""The event bus: subject patterns, the in-process bus, and NATS JetStream against the real server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from datetime import UTC, datetime

import pytest

from linli.core.bus import InProcessBus, Message, NatsBus, make_bus, subject_matches
from linli.devices import service
from linli.settings import Settings
from tests.devices.helpers import plate_read

NATS_URL = "nats://127.0.0.1:4222"


def _nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=0.5):
            return True
    except OSError:
        return False


needs_nats = pytest.mark.skipif(
    not _nats_up(),
    reason="integration: no NATS server at 127.0.0.1:4222 (run nats-server -js; .ci/run starts it)",
)


def test_subject_patterns() -> None:
    s = "linli.events.611102001001.vehicle.entered"
    assert subject_matches("linli.events.>", s)
    assert subject_matches("linli.events.611102001001.>", s)
    assert subject_matches("linli.events.*.vehicle.entered", s)
    assert subject_matches("linli.events.*.vehicle.*", s)
    assert not subject_matches("linli.events.*.vehicle", s)
    assert not subject_matches("linli.events.611102001002.>", s)
    assert not subject_matches("linli.events.611102001001.vehicle.entered.>", s)
    assert subject_matches(s, s)


def test_in_process_bus_isolates_failing_handlers() -> None:
    bus = InProcessBus()
    got: list[Message] = []

    def broken(message: Message) -> None:
        raise RuntimeError("a subscriber's bug")

    bus.subscribe("linli.events.>", broken)
    sub = bus.subscribe("linli.events.*.alarm.*", got.append)
    bus.publish("linli.events.611102001001.alarm.raised", {"alarm": "smoke"})
    bus.publish("linli.events.611102001001.device.heartbeat", b"{}")
    assert [(m.subject, m.json()) for m in got] == [
        ("linli.events.611102001001.alarm.raised", {"alarm": "smoke"})
    ]
    sub.unsubscribe()
    bus.publish("linli.events.611102001001.alarm.raised", {"alarm": "gas"})
    assert len(got) == 1 and bus.subscriber_count == 1


def test_settings_choose_the_bus() -> None:
    assert isinstance(make_bus(Settings(bus_url="")), InProcessBus)
    nats_bus = make_bus(Settings(bus_url="nats://127.0.0.1:1"))  # connects lazily
    assert isinstance(nats_bus, NatsBus)
    nats_bus.close()


@pytest.mark.integration
@needs_nats
def test_nats_durable_consumer_acks_after_handling_and_redelivers_on_failure() -> None:
    bus = NatsBus(NATS_URL)
    token = uuid.uuid4().hex[:12]
    subject = f"linli.events.t{token}"
    durable = f"test-{token}"
    got: list[dict[str, object]] = []
    attempts: list[int] = []
    arrived = threading.Event()

    def handler(message: Message) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first delivery fails: the message must come again")
        got.append(message.json())
        arrived.set()

    try:
        sub = bus.subscribe(f"{subject}.>", handler, durable=durable)
        bus.publish(f"{subject}.alarm.raised", {"n": 1, "alarm": "smoke"})
        assert arrived.wait(10), "no (re)delivery from JetStream"
        assert got == [{"n": 1, "alarm": "smoke"}] and len(attempts) == 2
        sub.unsubscribe()

        arrived.clear()
        bus.publish(f"{subject}.alarm.cleared", {"n": 2})  # while nobody listens
        bus.subscribe(f"{subject}.>", handler, durable=durable)  # the durable consumer resumes
        assert arrived.wait(10), "the durable consumer lost a message published while away"
        assert got == [{"n": 1, "alarm": "smoke"}, {"n": 2}]  # the acked first message is not sent again

        live: list[dict[str, object]] = []
        heard = threading.Event()
        listener = bus.subscribe(f"{subject}.>", lambda m: (live.append(m.json()), heard.set()))
        bus.publish(f"{subject}.device.heartbeat", {"n": 3})
        assert heard.wait(10)
        assert live == [{"n": 3}]  # an ephemeral listener gets only what comes after it subscribed
        listener.unsubscribe()
    finally:
        try:
            bus.delete_durable(durable)
        finally:
            bus.close()


@needs_nats
def test_nats_subjects_outside_the_stream_reach_live_listeners() -> None:
    bus = NatsBus(NATS_URL)
    token = uuid.uuid4().hex[:12]
    heard: list[tuple[str, dict[str, object]]] = []
    arrived = threading.Event()
    try:
        listener = bus.subscribe(
            f"linli.command_states.t{token}.>", lambda m: (heard.append((m.subject, m.json())), arrived.set())
        )
        bus.publish(f"linli.command_states.t{token}.611102001001", {"id": 7, "status": "acknowledged"})
        assert arrived.wait(10), "a core NATS subject did not reach its listener"
        assert heard == [(f"linli.command_states.t{token}.611102001001", {"id": 7, "status": "acknowledged"})]
        listener.unsubscribe()
        with pytest.raises(ValueError, match="durable"):
            bus.subscribe(f"linli.command_states.t{token}.>", lambda m: None, durable=f"test-{token}")
    finally:
        bus.close()


async def _last_message(subject: str) -> dict[str, object]:
    from nats.aio.client import Client

    nc = Client()
    await nc.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=1)
    try:
        msg = await nc.jetstream().get_last_msg("LINLI_EVENTS", subject)
        return json.loads(msg.data or b"{}")
    finally:
        await nc.close()


@pytest.mark.integration
@needs_nats
def test_the_outbox_delivers_stored_events_to_the_stream(session, session_factory, gate) -> None:
    now = datetime.now(UTC)
    uid = f"it-{uuid.uuid4().hex}"
    result = service.ingest(
        session, [plate_read(gate[0].serial, "陕A12345", at=now, uid=uid)], source="http", received_at=now
    )
    session.commit()
    bus = NatsBus(NATS_URL)
    try:
        assert service.deliver_outbox(session_factory, bus) == 2
    finally:
        bus.close()
    last = asyncio.run(_last_message(f"linli.events.{gate[0].community_code}.vehicle.entered"))
    assert last["event_uid"] == uid and last["id"] == result.event_ids[0]


@pytest.mark.integration
@needs_nats
def test_a_batch_of_events_reaches_the_stream_once_each_in_order(session, session_factory, gate) -> None:
    now = datetime.now(UTC)
    token = uuid.uuid4().hex[:8]
    reads = [plate_read(gate[0].serial, "陕A12345", at=now, uid=f"nb-{token}-{i}") for i in range(300)]
    result = service.ingest(session, reads, source="http", received_at=now)
    session.commit()
    bus = NatsBus(NATS_URL)
    got: list[str] = []
    done = threading.Event()
    durable = f"test-batch-{token}"

    def handler(message: Message) -> None:
        uid = str(message.json()["event_uid"])
        if uid.startswith(f"nb-{token}-"):
            got.append(uid)
            if len(got) >= 300:
                done.set()

    try:
        sub = bus.subscribe(
            f"linli.events.{gate[0].community_code}.vehicle.entered", handler, durable=durable
        )
        assert service.deliver_outbox(session_factory, bus) == 301  # published with asynchronous acks
        assert done.wait(20), f"{len(got)} of 300 arrived"
        assert got == [f"nb-{token}-{i}" for i in range(300)]  # each once, in the order stored
        assert result.stored == 300
        sub.unsubscribe()
    finally:
        try:
            bus.delete_durable(durable)
        finally:
            bus.close()
