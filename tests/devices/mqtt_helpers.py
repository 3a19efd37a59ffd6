"""MQTT test helpers: the broker's address, a skip when it is down, publishing, and a fake device."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from linli.devices.mqtt import acks_topic, broker_address, commands_topic

URL = os.environ.get("LINLI_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def broker_up() -> bool:
    """True if something listens at the test broker's address."""
    host, port, _, _ = broker_address(URL)
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(
    not broker_up(), reason=f"integration: no MQTT broker at {URL} (start mosquitto; .ci/run does)"
)


def unique(prefix: str) -> str:
    """A serial or client id no earlier run used (the broker keeps persistent sessions between runs)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _client(client_id: str = "") -> mqtt.Client:
    host, port, user, password = broker_address(URL)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    return client


def forget_session(client_id: str) -> None:
    """Make the broker drop a persistent session a test left (a clean start with no expiry)."""
    client = _client(client_id)
    client.disconnect()
    client.loop_stop()


def publish_all(messages: list[tuple[str, bytes]]) -> None:
    """Publish (topic, payload) pairs at QoS 1, in order, and wait until the broker has them all."""
    client = _client()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll predicate until it holds or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class FakeDevice:
    """A device on the broker: receives its commands and answers each with an ack once released."""

    def __init__(self, community: str, serial: str, *, status: str = "ok", detail: str = "done") -> None:
        self.status, self.detail = status, detail
        self.commands: list[dict[str, Any]] = []
        self.release = threading.Event()  # acks wait for it, so the test decides when the hub sees them
        self._acks = acks_topic(community, serial)
        self._subscribed = threading.Event()
        self.client = _client(unique("fake-device"))
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.subscribe(commands_topic(community, serial), qos=1)
        assert self._subscribed.wait(5), "the fake device could not subscribe"

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        command = json.loads(msg.payload)
        self.commands.append(command)
        threading.Thread(target=self._answer, args=(command["id"],), daemon=True).start()

    def _answer(self, command_id: int) -> None:
        if self.release.wait(10):
            ack = {"id": command_id, "status": self.status, "detail": self.detail}
            self.client.publish(self._acks, json.dumps(ack).encode(), qos=1)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
