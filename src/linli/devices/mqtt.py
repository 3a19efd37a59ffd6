"""MQTT transport of the device hub: events and acks in, commands out, QoS 1 (topics: docs/mqtt.md).

Messages are acknowledged only after the batch holding them has been handled (stored and committed), so a
crash or a database outage loses nothing: the broker keeps unacknowledged messages in the persistent
session (MQTT v5, clean_start off, a session expiry) and delivers them again. A batch whose handling fails
is retried with back-off; the loop never dies. Bad *content* is the handler's business (dead letters):
the handler raises only when it could not do its work at all.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

EVENTS_SUBSCRIPTION = "linli/+/+/events"
ACKS_SUBSCRIPTION = "linli/+/+/acks"
PUBLISH_TIMEOUT_S = 5.0
RECEIVE_MAXIMUM = 2000  # unacknowledged QoS 1 messages the broker may send us at once (room for a batch)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue a week while we are down
_TOPICS_KEPT = 100_000  # topics whose (community, device) a subscriber keeps: one per device, at most
RECV_CHUNK = 64 * 1024  # bytes read from the socket at once by the subscriber's client
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2), packet id
_U16 = struct.Struct("!H")

# A received PUBLISH as the subscriber takes it: (topic, payload, packet id, QoS).
Receive = Callable[[str, bytes, int, int], None]


class _Client(mqtt.Client):
    """paho's client, reading and acknowledging in bulk (for a subscriber taking thousands of messages a
    second): paho reads each packet's fixed header a byte per recv call and writes each PUBACK on its own
    (waking its network thread through a socket pair each time); this one reads the socket in chunks of
    RECV_CHUNK and hands paho the bytes it asks for from them, and sends a batch's PUBACKs in one write.
    The protocol on the wire is the same. Relies on paho 2's `_sock_recv`, `_create_socket` and
    `_packet_queue` (pinned below 3 in pyproject; tests/devices/test_mqtt_transport.py runs it against
    Mosquitto).

    A subscriber that sets `receive` also takes QoS 0 and 1 PUBLISH packets straight from the bytes read:
    topic, packet id and payload, its MQTT v5 properties skipped (it has no use for them), without paho's
    per-message objects (a Properties parser, an MQTTMessage, the topic matcher), which cost a worker
    about a fifth of its CPU at thousands of messages a second. `read_done` is called once the packets
    read at once are handled (the subscriber queues them for its worker in one go). A packet it cannot
    read that way, and every QoS 2 one, goes through paho as before."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._chunk, self._chunk_pos = b"", 0
        self.receive: Receive | None = None
        self.read_done: Callable[[], None] | None = None

    def _create_socket(self):
        self._chunk, self._chunk_pos = b"", 0  # nothing read on a former connection carries over
        return super()._create_socket()

    def _sock_recv(self, bufsize: int) -> bytes:
        chunk, pos = self._chunk, self._chunk_pos
        if pos >= len(chunk):
            chunk = super()._sock_recv(max(bufsize, RECV_CHUNK))  # BlockingIOError when there is none
            if len(chunk) <= bufsize:
                self._chunk, self._chunk_pos = b"", 0
                return chunk
            pos = 0
        end = min(pos + bufsize, len(chunk))
        self._chunk, self._chunk_pos = chunk, end
        return chunk[pos:end]

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Handle every packet already read: the network loop waits in select() on the socket, which
        does not know about the bytes held here."""
        try:
            rc = super().loop_read(max_packets)
            while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._chunk_pos < len(self._chunk):
                rc = super().loop_read(max_packets)
        finally:
            if self.read_done is not None:
                self.read_done()
        return rc

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        receive = self.receive
        qos = (self._in_packet["command"] & 0x06) >> 1
        read = (
            None
            if receive is None or qos > 1
            else read_publish(self._in_packet["packet"], qos, v5=self._protocol == mqtt.MQTTv5)
        )
        if receive is None or read is None:
            return super()._handle_publish()
        topic, mid, payload = read
        receive(topic, payload, mid, qos)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK these QoS 1 messages in one write (manual_ack)."""
        if mids:
            packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            self._packet_queue(mqtt.PUBACK, packet, 0, 1)


def read_publish(packet: bytes | bytearray, qos: int, *, v5: bool) -> tuple[str, int, bytes] | None:
    """(topic, packet id, payload) of a PUBLISH packet's variable header and payload (what follows its
    fixed header), skipping MQTT v5 properties; None if it cannot be read so (an empty topic, which v5
    allows with a topic alias, a cut packet, a topic that is not UTF-8): paho then reads it and says why."""
    try:
        (length,) = _U16.unpack_from(packet, 0)
        pos = 2 + length
        if length == 0 or pos > len(packet):
            return None
        topic = packet[2:pos].decode("utf-8")
        mid = 0
        if qos:
            (mid,) = _U16.unpack_from(packet, pos)
            pos += 2
        if v5:  # the properties' length, a variable byte integer of up to 4 bytes, then the properties
            size, shift = 0, 0
            while True:
                byte = packet[pos]
                pos += 1
                size |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    return None
            pos += size
            if pos > len(packet):
                return None
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    return topic, mid, bytes(packet[pos:])


@dataclass(frozen=True)
class Message:
    """One received event message and where its topic says it came from."""

    topic: str
    community: str
    device: str
    payload: bytes
    mid: int
    qos: int
    generation: int = 0  # the connection it came on: its mid means something only on that connection


def events_topic(community: str, device: str) -> str:
    """The topic a device publishes its events on."""
    return f"linli/{community}/{device}/events"


def commands_topic(community: str, device: str) -> str:
    """The topic Linli publishes a device's commands on."""
    return f"linli/{community}/{device}/commands"


def acks_topic(community: str, device: str) -> str:
    """The topic a device answers its commands on."""
    return f"linli/{community}/{device}/acks"


def parse_topic(topic: str) -> tuple[str, str, str] | None:
    """(community, device, kind) of a linli/{community}/{device}/{kind} topic, None for anything else."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "linli" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2], parts[3]


def broker_address(url: str) -> tuple[str, int, str | None, str | None]:
    """(host, port, username, password) of mqtt://user:pass@host:port."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {parsed.scheme!r} (use mqtt://host:port)")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883, parsed.username, parsed.password


class Subscriber:
    """A durable QoS 1 subscriber that hands messages to handle_batch and acknowledges them afterwards."""

    def __init__(
        self,
        url: str,
        handle_batch: Callable[[list[Message]], None],
        *,
        client_id: str = "linli-ingest",
        subscription: str | Sequence[str] = EVENTS_SUBSCRIPTION,
        batch_size: int = 500,
        max_wait_s: float = 0.01,
        session_expiry_s: int = SESSION_EXPIRY_S,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.host, self.port, user, password = broker_address(url)
        self.handle_batch = handle_batch
        self.subscriptions = (subscription,) if isinstance(subscription, str) else tuple(subscription)
        self.session_expiry_s = session_expiry_s
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.on_idle = on_idle  # called by the worker when no message came for a while (0.2 s)
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker confirmed our subscriptions (SUBACK)
        # Messages received and not yet taken into a batch, with when each arrived (the network thread
        # appends, the worker takes whole batches at once).
        self._pending: deque[tuple[float, Message]] = deque()
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        # Counts connections and disconnections: a message is acknowledged only on the connection it came
        # on. Packet ids restart with each connection, so an old batch's mid acknowledged on the next one
        # would acknowledge another message (which might then be lost). Held while acknowledging a batch,
        # so the connection cannot change in between.
        self._generation = 0
        self._connection = threading.Lock()
        self.stale_acks = 0  # acknowledgements left out because the connection had changed
        self.client = _Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if user:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message  # what the client's own reading leaves to paho
        self.client.receive = self._received
        self.client.read_done = self._queue_received
        # Messages read by the network thread and not yet queued for the worker (see _queue_received).
        self._received_now: list[Message] = []
        self._topics: dict[str, tuple[str, str]] = {}  # topic -> (community, device), for the topics seen
        self.client.on_subscribe = lambda *_args: self.subscribed.set()

    def start(self) -> None:
        """Connect (in the background, reconnecting by itself) and start handling."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=properties
        )
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch in hand, then disconnect (unhandled messages stay with the broker)."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _properties: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connect to %s:%s refused: %s", self.host, self.port, reason)
            return
        with self._connection:
            self._generation += 1
        client.subscribe([(topic, 1) for topic in self.subscriptions])
        self.connected.set()
        log.info("MQTT connected to %s:%s, subscribed to %s", self.host, self.port, self.subscriptions)

    def publish(self, topic: str, payload: bytes, *, timeout: float = PUBLISH_TIMEOUT_S) -> None:
        """Publish at QoS 1 on this connection and wait for the broker's PUBACK (raises if it does not)."""
        publish_and_wait(self.client, self.connected, topic, payload, timeout=timeout)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object, _properties: object
    ) -> None:
        with self._connection:  # a batch taken before this is no longer acknowledged
            self._generation += 1
        self.connected.clear()
        self.subscribed.clear()
        self._received_now = []
        with self._arrived:  # the broker sends whatever we have not acknowledged again after reconnecting
            self._pending.clear()
        if not self._stop.is_set():
            log.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._received(msg.topic, bytes(msg.payload), msg.mid, msg.qos)
        self._queue_received()

    def _received(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """A message read by the network thread; _queue_received hands it to the worker."""
        where = self._topics.get(topic)
        if where is None:
            parsed = parse_topic(topic)
            where = (parsed[0], parsed[1]) if parsed else ("", "")
            if len(self._topics) >= _TOPICS_KEPT:
                self._topics.clear()
            self._topics[topic] = where
        # the network thread: the generation cannot change while it runs this
        self._received_now.append(Message(topic, where[0], where[1], payload, mid, qos, self._generation))

    def _queue_received(self) -> None:
        """Queue the messages read since the last call for the worker, under one lock."""
        if not self._received_now:
            return
        received, self._received_now = self._received_now, []
        now = time.monotonic()
        with self._arrived:
            was_empty = not self._pending
            self._pending.extend([(now, message) for message in received])
            if was_empty or len(self._pending) >= self.batch_size:
                self._arrived.notify()

    def _next_batch(self) -> list[Message]:
        """Up to batch_size messages, once that many wait or the oldest has waited max_wait_s.

        A busy worker finds a full batch waiting and takes it at once; a quiet one adds at most max_wait_s
        to the oldest message's way to the store.
        """
        with self._arrived:
            if not self._pending:
                self._arrived.wait(0.2)
                if not self._pending:
                    return []
            deadline = self._pending[0][0] + self.max_wait_s
            while len(self._pending) < self.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    break
                self._arrived.wait(remaining)
            count = min(len(self._pending), self.batch_size)
            return [self._pending.popleft()[1] for _ in range(count)]

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch:
                self._handle_until_done(batch)
            elif self.on_idle is not None and not self._stop.is_set():
                try:
                    self.on_idle()
                except Exception:  # the loop must survive anything
                    log.exception("the MQTT subscriber's idle work failed")

    def _handle_until_done(self, batch: list[Message]) -> None:
        delay = 0.5
        while True:
            try:
                self.handle_batch(batch)
            except Exception:  # the loop must survive anything; the batch stays unacknowledged
                log.exception("handling %d MQTT messages failed; retrying in %.1fs", len(batch), delay)
                if self._stop.wait(delay):
                    return  # stopping: the broker delivers the batch again next time
                delay = min(delay * 2, 30.0)
                continue
            self._acknowledge(batch)
            return

    def _acknowledge(self, batch: list[Message]) -> None:
        """PUBACK the batch's QoS 1 messages that came on the current connection; the broker sends the
        others again on the new one (the handler's dedup makes that harmless)."""
        with self._connection:
            current = self._generation
            stale = 0
            mids = []
            for message in batch:
                if message.qos == 0:
                    continue
                if message.generation != current:
                    stale += 1
                elif message.qos == 1:
                    mids.append(message.mid)
                else:
                    self.client.ack(message.mid, message.qos)
            self.client.ack_many(mids)
            self.stale_acks += stale
        if stale:
            log.warning(
                "%d MQTT message(s) handled after their connection was lost: not acknowledged, the broker "
                "sends them again",
                stale,
            )


def publish_and_wait(
    client: mqtt.Client, connected: threading.Event, topic: str, payload: bytes, *, timeout: float
) -> None:
    """Publish at QoS 1 on a running client; ConnectionError or TimeoutError unless the broker took it."""
    if not connected.is_set():
        raise ConnectionError(f"not connected to the MQTT broker; {topic} not published")
    info = client.publish(topic, payload, qos=1)
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        raise ConnectionError(f"publishing on {topic} failed: {mqtt.error_string(info.rc)}")
    info.wait_for_publish(timeout)
    if not info.is_published():
        raise TimeoutError(f"the MQTT broker did not acknowledge {topic} within {timeout} s")


class Publisher:
    """A long-lived QoS 1 publisher for processes that publish without subscribing (the jobs worker)."""

    def __init__(self, url: str, *, client_id: str = "") -> None:
        self.host, self.port, user, password = broker_address(url)
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if user:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_args: self.connected.clear()

    def _on_connect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object, _properties: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connect to %s:%s refused: %s", self.host, self.port, reason)
            return
        self.connected.set()

    def start(self) -> None:
        """Connect in the background (reconnecting by itself)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, timeout: float = PUBLISH_TIMEOUT_S) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (raises if it does not come)."""
        publish_and_wait(self.client, self.connected, topic, payload, timeout=timeout)

    def stop(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def publish(url: str, topic: str, payload: bytes, *, qos: int = 1, timeout: float = 5.0) -> None:
    """Publish one message and wait until the broker has it (for commands and tools, not for hot paths)."""
    host, port, user, password = broker_address(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=qos).wait_for_publish(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
