"""The MQTT transport against the real Mosquitto: delivery, ack after handling, nothing lost on failure."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from linli.devices.mqtt import (
    RECV_CHUNK,
    Message,
    Subscriber,
    broker_address,
    events_topic,
    parse_topic,
)
from tests.devices.mqtt_helpers import URL, broker_up
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
needs_broker = pytest.mark.skipif(not broker_up(), reason=f"integration: no MQTT broker at {URL}")


def test_topics_and_urls() -> None:
    assert parse_topic(events_topic("611102001001", "GATE-01")) == ("611102001001", "GATE-01", "events")
    assert parse_topic("linli//x/events") is None and parse_topic("other/a/b/events") is None
    assert broker_address("mqtt://u:p@broker:1884") == ("broker", 1884, "u", "p")
    with pytest.raises(ValueError):
        broker_address("http://broker")


def _publish_all(topic_prefix: str, n: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    host, port, _, _ = broker_address(URL)
    client.connect(host, port)
    client.loop_start()
    infos = [
        client.publish(f"{topic_prefix}/D{i % 5}/events", f'{{"n": {i}}}'.encode(), qos=1) for i in range(n)
    ]
    for info in infos:
        info.wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@needs_broker
def test_every_message_arrives_once_in_batches() -> None:
    community = f"t{uuid.uuid4().hex[:10]}"
    got: list[Message] = []
    sub = Subscriber(
        URL, got.extend, client_id=f"linli-test-{community}", subscription=f"linli/{community}/+/events"
    )
    sub.start()
    try:
        assert sub.connected.wait(5)
        time.sleep(0.2)
        _publish_all(f"linli/{community}", 300)
        assert wait_until(lambda: len(got) >= 300)
        time.sleep(0.3)
    finally:
        sub.stop()
    numbers = sorted(int(m.payload.decode().split(":")[1].strip(" }")) for m in got)
    assert numbers == list(range(300))
    assert {m.community for m in got} == {community} and {m.device for m in got} == {
        f"D{i}" for i in range(5)
    }


@needs_broker
def test_messages_larger_and_smaller_than_a_read_arrive_whole_and_acknowledged_in_bulk() -> None:
    # The subscriber reads the socket in RECV_CHUNK pieces: a packet may start in one piece and end in a
    # later one, or span several; many small ones share a piece. Each arrives whole, once, and the
    # batch's PUBACKs (one write) acknowledge them all: the same client id back finds nothing waiting.
    community = f"t{uuid.uuid4().hex[:10]}"
    client_id = f"linli-test-{community}"
    subscription = f"linli/{community}/+/events"
    sizes = [3 * RECV_CHUNK + 17, 5, RECV_CHUNK - 3, 1, RECV_CHUNK + 1] + [40 + i % 300 for i in range(400)]
    bodies = [bytes([65 + i % 26]) * size + f"#{i}".encode() for i, size in enumerate(sizes)]
    got: list[Message] = []
    sub = Subscriber(URL, got.extend, client_id=client_id, subscription=subscription)
    sub.start()
    try:
        assert sub.connected.wait(5)
        assert sub.subscribed.wait(5)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        host, port, _, _ = broker_address(URL)
        client.connect(host, port)
        client.loop_start()
        infos = [client.publish(f"linli/{community}/D1/events", body, qos=1) for body in bodies]
        for info in infos:
            info.wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
        assert wait_until(lambda: len(got) >= len(bodies))
        time.sleep(0.3)  # the last batch's acknowledgements leave
    finally:
        sub.stop()
    assert sorted(m.payload for m in got) == sorted(bodies)
    again: list[Message] = []
    second = Subscriber(URL, again.extend, client_id=client_id, subscription=subscription)
    second.start()
    try:
        assert second.connected.wait(5)
        time.sleep(0.5)
    finally:
        second.stop()
    assert again == []


@needs_broker
def test_unhandled_messages_come_back_after_a_restart() -> None:
    community = f"t{uuid.uuid4().hex[:10]}"
    client_id = f"linli-test-{community}"
    subscription = f"linli/{community}/+/events"
    failing_calls = threading.Event()

    def database_down(batch: list[Message]) -> None:
        failing_calls.set()
        raise RuntimeError("database is down")

    first = Subscriber(URL, database_down, client_id=client_id, subscription=subscription)
    first.start()
    assert first.connected.wait(5)
    time.sleep(0.2)
    _publish_all(f"linli/{community}", 40)
    assert failing_calls.wait(5)
    first.stop()  # nothing was acknowledged

    got: list[Message] = []
    second = Subscriber(URL, got.extend, client_id=client_id, subscription=subscription)
    second.start()
    try:
        assert wait_until(lambda: len({m.payload for m in got}) >= 40)
    finally:
        second.stop()
    assert len({m.payload for m in got}) == 40  # every message, none lost


@needs_broker
def test_a_failing_batch_is_retried_not_dropped() -> None:
    community = f"t{uuid.uuid4().hex[:10]}"
    got: list[Message] = []
    attempts = {"n": 0}

    def flaky(batch: list[Message]) -> None:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("transient")
        got.extend(batch)

    sub = Subscriber(
        URL, flaky, client_id=f"linli-test-{community}", subscription=f"linli/{community}/+/events"
    )
    sub.start()
    try:
        assert sub.connected.wait(5)
        time.sleep(0.2)
        _publish_all(f"linli/{community}", 10)
        assert wait_until(lambda: len(got) >= 10)
    finally:
        sub.stop()
    assert attempts["n"] >= 2 and len(got) == 10


class _FakeClient:
    """What the Subscriber asks of paho's client while acknowledging: subscribe and ack (one or many)."""

    def __init__(self) -> None:
        self.acks: list[int] = []

    def subscribe(self, topics: object) -> None:
        pass

    def ack(self, mid: int, qos: int) -> None:
        self.acks.append(mid)

    def ack_many(self, mids: list[int]) -> None:
        self.acks.extend(mids)


class _Accepted:
    is_failure = False


def _delivered(sub: Subscriber, client: _FakeClient, mid: int, payload: bytes) -> None:
    msg = mqtt.MQTTMessage(mid=mid, topic=b"linli/611102001001/GATE-01/events")
    msg.payload, msg.qos = payload, 1
    sub._on_message(client, None, msg)  # type: ignore[arg-type]


def test_a_batch_taken_under_one_connection_is_not_acknowledged_on_the_next() -> None:
    fake = _FakeClient()
    handled: list[list[bytes]] = []
    sub = Subscriber(URL, lambda batch: None, client_id="linli-test-fake", max_wait_s=0.0)
    sub.client = fake  # type: ignore[assignment]
    sub._on_connect(fake, None, None, _Accepted(), None)  # type: ignore[arg-type]
    _delivered(sub, fake, 1, b'{"n": "old"}')
    batch = sub._next_batch()

    def reconnect_while_handling(messages: list[Message]) -> None:
        handled.append([m.payload for m in messages])
        sub._on_disconnect(fake, None, None, "keepalive timeout", None)  # type: ignore[arg-type]
        sub._on_connect(fake, None, None, _Accepted(), None)  # type: ignore[arg-type]
        # the broker redelivers the old message and sends a new one; packet ids start again at 1
        _delivered(sub, fake, 1, b'{"n": "new"}')
        _delivered(sub, fake, 2, b'{"n": "old"}')

    sub.handle_batch = reconnect_while_handling
    sub._handle_until_done(batch)
    assert fake.acks == [] and sub.stale_acks == 1  # mid 1 now names the new message: not acknowledged

    sub.handle_batch = lambda messages: handled.append([m.payload for m in messages])
    sub._handle_until_done(sub._next_batch())
    assert handled == [[b'{"n": "old"}'], [b'{"n": "new"}', b'{"n": "old"}']]
    assert fake.acks == [1, 2]  # on the connection they came on


def _take_over(client_id: str) -> None:
    """Connect under client_id (the broker drops the subscriber's connection, keeping its session)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    host, port, _, _ = broker_address(URL)
    intruder = mqtt.Client(  # manual_ack, never used: the session's message must stay unacknowledged
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 300  # a clean start would throw the unacknowledged message away
    intruder.connect(host, port, clean_start=False, properties=properties)
    intruder.loop_start()
    assert wait_until(intruder.is_connected, 5)
    intruder.disconnect()
    intruder.loop_stop()


@needs_broker
def test_a_reconnect_during_a_batch_leaves_it_to_the_broker_to_send_again() -> None:
    community = f"t{uuid.uuid4().hex[:10]}"
    client_id = f"linli-test-{community}"
    seen: list[bytes] = []

    def handle(batch: list[Message]) -> None:
        seen.extend(m.payload for m in batch)
        if len(seen) == 1:  # the connection is lost while the first batch is being stored
            _take_over(client_id)
            assert wait_until(lambda: sub._generation >= 3, 10), "the subscriber did not reconnect"

    sub = Subscriber(URL, handle, client_id=client_id, subscription=f"linli/{community}/+/events")
    sub.start()
    try:
        assert sub.connected.wait(5)
        time.sleep(0.2)
        _publish_all(f"linli/{community}", 1)
        assert wait_until(lambda: len(seen) >= 2, 15), seen  # not acknowledged: the broker sent it again
        time.sleep(0.5)
    finally:
        sub.stop()
    assert seen == [b'{"n": 0}', b'{"n": 0}'] and sub.stale_acks == 1

    again: list[Message] = []
    after = Subscriber(URL, again.extend, client_id=client_id, subscription=f"linli/{community}/+/events")
    after.start()
    try:
        assert after.connected.wait(5)
        time.sleep(1.0)
    finally:
        after.stop()
    assert again == []  # the second delivery was acknowledged on its own connection
