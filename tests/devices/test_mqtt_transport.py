"""The MQTT transport against the real Mosquitto: delivery, ack after handling, nothing lost on failure."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from linli.devices.mqtt import Message, Subscriber, broker_address, events_topic, parse_topic
from tests.devices.mqtt_helpers import URL, broker_up

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


def _wait(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


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
        assert _wait(lambda: len(got) >= 300)
        time.sleep(0.3)
    finally:
        sub.stop()
    numbers = sorted(int(m.payload.decode().split(":")[1].strip(" }")) for m in got)
    assert numbers == list(range(300))
    assert {m.community for m in got} == {community} and {m.device for m in got} == {
        f"D{i}" for i in range(5)
    }


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
        assert _wait(lambda: len({m.payload for m in got}) >= 40)
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
        assert _wait(lambda: len(got) >= 10)
    finally:
        sub.stop()
    assert attempts["n"] >= 2 and len(got) == 10
