"""The MQTT transport against the real Mosquitto: delivery, ack after handling, nothing lost on failure."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.devices.mqtt import (
    RECV_CHUNK,
    Message,
    Subscriber,
    broker_address,
    events_topic,
    parse_topic,
    read_publish,
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


def _publish_packet(topic: str, payload: bytes, *, mid: int, qos: int, properties: bytes | None) -> bytes:
    """A PUBLISH packet's variable header and payload as the MQTT spec lays them out (what follows the
    fixed header): topic, packet id at QoS 1 and 2, then (v5) its properties, packed by paho."""
    encoded = topic.encode()
    out = len(encoded).to_bytes(2, "big") + encoded
    if qos:
        out += mid.to_bytes(2, "big")
    if properties is not None:
        out += properties
    return out + payload


def _properties(**values: object) -> bytes:
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return bytes(props.pack())


@pytest.mark.parametrize(
    ("topic", "payload", "mid", "qos", "properties"),
    [
        ("linli/611102001001/GATE-01/events", b'{"id":"e1"}', 7, 1, {}),
        ("linli/611102001001/GATE-01/events", b"", 65535, 1, {}),
        ("linli/611102001001/门禁-03/events", '{"门":1}'.encode(), 1, 0, {}),
        (
            "linli/611102001001/GATE-01/events",
            b"x" * 300,
            2,
            1,
            {
                "PayloadFormatIndicator": 1,
                "ContentType": "application/json",
                "UserProperty": [("k", "v" * 200)],
            },
        ),
        ("linli/611102001001/GATE-01/events", b"abc", 3, 1, None),  # MQTT 3.1.1: no properties
    ],
)
def test_a_publish_is_read_as_paho_reads_it(
    topic: str, payload: bytes, mid: int, qos: int, properties: dict[str, object] | None
) -> None:
    # The subscriber's own reading of PUBLISH packets gives what paho's decoder gives: properties
    # (here up to a length of two varint bytes) are skipped, the payload is whole.
    packed = None if properties is None else _properties(**properties)
    packet = _publish_packet(topic, payload, mid=mid, qos=qos, properties=packed)
    protocol = MQTTProtocolVersion.MQTTv311 if properties is None else MQTTProtocolVersion.MQTTv5
    paho = _packet.decode_publish(0x30 | qos << 1, packet, protocol)
    assert read_publish(packet, qos, v5=properties is not None) == (
        paho.topic.decode(),
        paho.mid,
        paho.payload,
    )
    expected = (topic, mid if qos else 0, payload)  # a QoS 0 message has no packet id
    assert read_publish(bytearray(packet), qos, v5=properties is not None) == expected


def test_a_publish_it_cannot_read_is_left_to_paho() -> None:
    whole = _publish_packet("linli/c/d/events", b"{}", mid=1, qos=1, properties=_properties(ContentType="x"))
    assert read_publish(whole, 1, v5=True) == ("linli/c/d/events", 1, b"{}")
    for cut in range(len("linli/c/d/events") + 5):  # cut inside the topic, packet id or properties
        assert read_publish(whole[:cut], 1, v5=True) is None
    assert read_publish(_publish_packet("", b"{}", mid=1, qos=1, properties=b"\x00"), 1, v5=True) is None
    assert read_publish(b"\x00\x02\xff\xfe\x00\x01\x00{}", 1, v5=True) is None  # topic not UTF-8
    assert read_publish(b"\x00\x01t\x00\x01\xff\xff\xff\xff\x01", 1, v5=True) is None  # varint > 4 bytes


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
def test_messages_with_properties_and_at_qos_0_are_read_by_the_subscriber_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MQTT v5 devices may send properties (content type, user properties): they are skipped, the
    # payload arrives whole. paho's own message path (Subscriber._on_message) is not taken.
    community = f"t{uuid.uuid4().hex[:10]}"
    through_paho: list[object] = []
    monkeypatch.setattr(Subscriber, "_on_message", lambda *args: through_paho.append(args))
    got: list[Message] = []
    sub = Subscriber(
        URL, got.extend, client_id=f"linli-test-{community}", subscription=f"linli/{community}/+/events"
    )
    sub.start()
    try:
        assert sub.connected.wait(5) and sub.subscribed.wait(5)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        host, port, _, _ = broker_address(URL)
        client.connect(host, port)
        client.loop_start()
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        props.UserProperty = [("vendor", "海康" * 100)]
        infos = [
            client.publish(
                f"linli/{community}/门禁-{i % 3}/events", f'{{"n":{i}}}'.encode(), qos=i % 2, properties=props
            )
            for i in range(50)
        ]
        for info in infos:
            info.wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        assert wait_until(lambda: len(got) >= 50)
    finally:
        sub.stop()
    assert sorted(int(m.payload[5:-1]) for m in got) == list(range(50))
    assert {(m.community, m.device) for m in got} == {(community, f"门禁-{i}") for i in range(3)}
    assert {m.qos for m in got} == {0, 1} and through_paho == []


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
