"""MQTT ingest: each batch from the broker in one unit of work — events to the store, acks to commands.

The topic says who sent a message (linli/{community}/{serial}/events): that device must be registered in
that community, and its envelopes must be its own (or, for a gateway, those of its community's devices),
as over HTTP. Bad content becomes dead letters; only an infrastructure failure (the database) raises, so
that the Subscriber keeps the batch unacknowledged and tries again. The Runner also carries commands out:
its bus relays the outbox's command messages to the broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from linli.core import outbox
from linli.core.bus import Bus, Handler, Subscription, encode, subject_matches
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import utcnow
from linli.db import unit_of_work, writing
from linli.devices import commands, deadletters, register, store
from linli.devices.models import Device
from linli.devices.mqtt import (
    ACKS_SUBSCRIPTION,
    EVENTS_SUBSCRIPTION,
    SESSION_EXPIRY_S,
    Message,
    Subscriber,
    parse_topic,
)
from linli.devices.receive import parse_events, reject_malformed
from linli.devices.service import Origin, check_all, ingest, stage

log = logging.getLogger(__name__)

SOURCE = "mqtt"
MAX_PAYLOAD_BYTES = 256 * 1024  # LINLI_MQTT_MAX_BYTES: a larger message is a dead letter, not parsed
KEEP_OF_OVERSIZED = 4096  # bytes of an oversized message kept (raw body and dead letter) to diagnose it


@dataclass
class Stats:
    """What the MQTT ingest has done (per batch, or summed since start)."""

    batches: int = 0
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    acks: int = 0
    ignored: int = 0  # acks for unknown commands, malformed acks, messages on other topics
    failed: int = 0  # batches that raised (the database failed: a lost connection, a deadlock): tried again

    def add(self, other: Stats) -> None:
        """Add other's counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def handle_batch(
    messages: list[Message],
    *,
    session_factory: sessionmaker[Session],
    bus: Bus,
    now: datetime | None = None,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    published: outbox.Published | None = None,
) -> Stats:
    """Store a batch of event and ack messages in one write transaction, then deliver the outbox.

    The messages are parsed and their events judged and linked first, in a read transaction
    (service.stage): on SQLite, with several ingest processes, one batch is read while another writes.
    Every event message is kept raw, all of them in one insert at the end, already linked to the events or
    the dead letter each became (their ids are drawn first, so dead letters can point to them).

    published: the worker's outbox.Published. The batch's outbox rows are then held (outbox.hold),
    published from memory right after the commit with no transaction of their own, and deleted in the
    next batch's write transaction: one turn on SQLite's writers' queue per batch instead of two.
    """
    received_at = now or utcnow()
    stats = Stats(batches=1, messages=len(messages))
    with unit_of_work(session_factory, write=False) as session:
        devices = register.by_serials(session, {m.device for m in messages if m.device})
        topics = {topic: _kind(topic) for topic in {m.topic for m in messages}}  # a batch shares a few
        kinds = [topics[m.topic] for m in messages]
        taking = [m for m, kind in zip(messages, kinds, strict=True) if kind == "events"]
        refusals: dict[tuple[str, str], str] = {}  # (device, community) -> topic_refusal, once each
        read = {id(m): _read(m, devices.get(m.device), max_payload_bytes, refusals) for m in taking}
        events: list[Any] = []
        senders: list[Device | None] = []
        nul_free = True  # as receive.read_json: JSON writes a NUL as \u0000, a message without it has none
        for message in taking:
            taken = read[id(message)]
            if taken.reason is None and taken.malformed is None:
                events += taken.items
                senders += [devices.get(message.device)] * len(taken.items)
                nul_free = nul_free and b"\\u0000" not in message.payload
        staged = None
        if events:  # one ingest for the whole batch: each event keeps its sender and raw body
            events = check_all(events, nul_free=nul_free)  # validated together
            staged = stage(
                session, events, received_at=received_at, origins=[Origin(sender) for sender in senders]
            )
        session.commit()  # the read ends; what it loaded stays in the session for the write
        writing(session)
        if published is not None:
            outbox.hold(session)
            published.forget(session)  # the earlier batches' rows, published already
        raw_ids = store.allocate_raw_ids(session, len(taking))
        raw_of = {id(m): raw_id for m, raw_id in zip(taking, raw_ids, strict=True)}
        links: dict[int, tuple[list[int], int | None]] = {}
        origins: list[Origin] = []
        for message, kind in zip(messages, kinds, strict=True):
            device = devices.get(message.device)
            if kind == "events":
                raw_id = raw_of[id(message)]
                taken = read[id(message)]
                dead = _reject(session, message, taken, device, raw_id, received_at, stats)
                links[raw_id] = ([], dead)
                if dead is None:
                    origins += [Origin(device, raw_id)] * len(taken.items)
            elif kind == "acks":
                _ack(session, message, device, received_at, stats)
            else:
                log.warning("MQTT message on %s ignored: not an events or acks topic", message.topic[:200])
                stats.ignored += 1
        if events:
            result = ingest(
                session,
                events,
                source=SOURCE,
                received_at=received_at,
                origins=origins,
                link_raws=False,
                staged=staged,
            )
            links.update(result.raw_links)
            stats.stored += result.stored
            stats.duplicates += result.duplicates
            stats.rejected += len(result.rejected)
        store.save_raws(
            session,
            [(raw_of[id(m)], _kept(m, max_payload_bytes), m.device, links[raw_of[id(m)]]) for m in taking],
            received_at=received_at,
            source=SOURCE,
        )
        queued = outbox.written(session)
    try:
        if published is not None:
            published.publish(session_factory, bus, queued)
        else:
            deliver_outbox(session_factory, bus, written=queued)
    except Exception:  # the batch is committed; the outbox catch-up job delivers the rest
        log.exception("delivering the outbox after an MQTT batch failed")
    return stats


def _kept(message: Message, max_payload_bytes: int) -> bytes:
    """The raw body kept of a message: all of it, or the first KEEP_OF_OVERSIZED bytes of an oversized one."""
    if len(message.payload) > max_payload_bytes:
        return message.payload[:KEEP_OF_OVERSIZED]
    return message.payload


def topic_refusal(message: Message, device: Device | None) -> str:
    """Why the device the topic names may not send this message ("" if it may)."""
    if device is None:
        return f"unknown device: {message.device[:64]} (topic {message.topic[:200]}) is not registered"
    if register.is_retired(device):
        return f"retired device: {device.serial} no longer sends to the hub"
    if device.community_code != message.community:
        return (
            f"wrong community: topic {message.topic[:200]} names community {message.community[:32]}, "
            f"but {device.serial} is registered in {device.community_code}"
        )
    return ""


@dataclass
class _Taken:
    """An events message read: its items, or why it is refused as a whole (written in the write phase)."""

    items: list[Any]  # its events; for a refused message, the items to keep a dead letter each of
    reason: str | None = None  # oversized, or the topic's device may not send
    malformed: ValueError | None = None  # not JSON: where parsing stopped


def _kind(topic: str) -> str:
    """The kind of a linli/{community}/{device}/{kind} topic ("" for another topic)."""
    return (parse_topic(topic) or ("", "", ""))[2]


def _read(
    message: Message, device: Device | None, max_payload_bytes: int, refusals: dict[tuple[str, str], str]
) -> _Taken:
    """Parse an events message (no database): its events, or why it is refused (refusals: the topic
    refusals found so far in the batch, by device and community)."""
    size = len(message.payload)
    if size > max_payload_bytes:
        reason = (
            f"oversized: a message of {size} bytes exceeds the limit of {max_payload_bytes} bytes "
            f"(LINLI_MQTT_MAX_BYTES); send smaller batches"
        )
        return _Taken([message.payload[:KEEP_OF_OVERSIZED]], reason)
    try:
        taken = parse_events(message.payload)
    except ValueError as exc:
        return _Taken([], malformed=exc)
    where = (message.device, message.community)
    refusal = refusals.get(where)
    if refusal is None:
        refusal = refusals[where] = topic_refusal(message, device)
    return _Taken(taken, refusal or None)


def _reject(
    session: Session,
    message: Message,
    taken: _Taken,
    device: Device | None,
    raw_id: int,
    received_at: datetime,
    stats: Stats,
) -> int | None:
    """The dead letter(s) of a refused message; the id of its first (None: its events go on)."""
    if taken.malformed is not None:
        error = reject_malformed(
            session,
            taken.malformed,
            body=message.payload,
            source=SOURCE,
            received_at=received_at,
            sender=device,
            raw_id=raw_id,
        )
        stats.rejected += 1
        return error.dead_letter_id
    if taken.reason is None:
        return None
    letters = [_dead(session, taken.reason, item, device, raw_id, received_at) for item in taken.items]
    stats.rejected += len(letters)
    return letters[0] if letters else None


def _dead(
    session: Session, reason: str, item: Any, device: Device | None, raw_id: int, received_at: datetime
) -> int:
    letter = deadletters.record(
        session,
        reason=reason,
        item=item,
        source=SOURCE,
        received_at=received_at,
        sender=device,
        raw_id=raw_id,
    )
    return letter.id


def _ack(
    session: Session, message: Message, device: Device | None, received_at: datetime, stats: Stats
) -> None:
    refusal = topic_refusal(message, device)
    if refusal or device is None:
        log.warning("MQTT ack on %s ignored: %s", message.topic[:200], refusal)
        stats.ignored += 1
        return
    try:
        ack = commands.AckIn.model_validate_json(message.payload)
    except ValidationError as exc:
        log.warning("malformed ack on %s ignored: %s", message.topic[:200], exc.errors()[0]["msg"])
        stats.ignored += 1
        return
    if commands.acknowledge(session, device=device, ack=ack, now=received_at) is None:
        stats.ignored += 1
    else:
        stats.acks += 1


Publish = Callable[[str, bytes], None]


def _publish_each(bus: Bus, messages: list[tuple[str, bytes | dict[str, Any]]]) -> int:
    """Publish one by one; how many before the bus refused one (raises if it refuses the first)."""
    for sent, (subject, data) in enumerate(messages):
        try:
            bus.publish(subject, data)
        except Exception:
            if sent == 0:
                raise
            log.exception("publishing %s failed", subject)
            return sent
    return len(messages)


class CommandRelay:
    """A bus that publishes the outbox's command messages to the MQTT broker and passes the rest on.

    A command message holds the MQTT topic and the message; if the broker does not take it the publish
    raises, so the outbox keeps it for the next delivery (QoS 1 from the outbox to the broker).
    """

    pattern = f"{commands.SUBJECT_PREFIX}.>"

    def __init__(self, bus: Bus, publish: Publish) -> None:
        self.inner = bus
        self._publish = publish

    def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
        """Commands go to the broker, everything else to the inner bus."""
        if self._is_command(subject, data):
            assert isinstance(data, dict)
            self._publish(str(data["topic"]), encode(data["message"]))
            return
        self.inner.publish(subject, data)

    def publish_many(self, messages: list[tuple[str, bytes | dict[str, Any]]]) -> int:
        """publish for each message in order, runs of events through the inner bus's publish_many; how
        many were published before one was refused (raises if the first one is)."""
        inner_many = getattr(self.inner, "publish_many", None)
        done = 0
        while done < len(messages):
            end = done
            while end < len(messages) and not self._is_command(*messages[end]):
                end += 1
            wanted = max(1, end - done)
            try:
                if end == done:  # a command: to the broker
                    self.publish(*messages[done])
                    taken = 1
                elif inner_many is not None:
                    taken = int(inner_many(messages[done:end]))
                else:
                    taken = _publish_each(self.inner, messages[done:end])
            except Exception:
                if done == 0:
                    raise
                log.exception("publishing %s failed", messages[done][0])
                return done
            done += taken
            if taken < wanted:
                return done
        return done

    def _is_command(self, subject: str, data: bytes | dict[str, Any]) -> bool:
        return subject_matches(self.pattern, subject) and isinstance(data, dict) and "topic" in data

    def subscribe(
        self, subject_pattern: str, handler: Handler, *, durable: str | None = None
    ) -> Subscription:
        """Subscribe on the inner bus."""
        return self.inner.subscribe(subject_pattern, handler, durable=durable)

    def close(self) -> None:
        """Close the inner bus."""
        self.inner.close()


class Runner:
    """The MQTT ingest worker: a Subscriber to events and acks, a session factory, and the bus."""

    def __init__(
        self,
        url: str,
        *,
        session_factory: sessionmaker[Session],
        bus: Bus,
        client_id: str = "linli-ingest",
        subscriptions: Sequence[str] = (EVENTS_SUBSCRIPTION, ACKS_SUBSCRIPTION),
        session_expiry_s: int = SESSION_EXPIRY_S,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        share_group: str = "",
    ) -> None:
        self.session_factory = session_factory
        self.max_payload_bytes = max_payload_bytes
        if share_group:  # MQTT v5 shared subscription: the group's workers split the messages
            subscriptions = [f"$share/{share_group}/{topic}" for topic in subscriptions]
        self.subscriber = Subscriber(
            url,
            self.handle_batch,
            client_id=client_id,
            subscription=subscriptions,
            session_expiry_s=session_expiry_s,
            on_idle=self._flush,
        )
        self.bus = CommandRelay(bus, self.subscriber.publish)
        # The batches' outbox rows, published right after each commit and deleted by the next batch (or
        # when the messages stop: _flush), see handle_batch.
        self.published = outbox.Published()
        self.stats = Stats()
        self._changed = threading.Condition()

    def handle_batch(self, messages: list[Message]) -> None:
        """Handle one batch (the Subscriber acknowledges it when this returns; if it raises, the Subscriber
        tries it again, and the failure is counted)."""
        try:
            done = handle_batch(
                messages,
                session_factory=self.session_factory,
                bus=self.bus,
                max_payload_bytes=self.max_payload_bytes,
                published=self.published,
            )
        except Exception:
            with self._changed:
                self.stats.failed += 1
            raise
        with self._changed:
            self.stats.add(done)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Stats], bool], timeout: float) -> bool:
        """Block until predicate(stats) holds or timeout passes; returns whether it holds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.stats), timeout)

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        with self._changed:
            return self.stats.as_dict()

    def start(self) -> None:
        """Connect and start handling."""
        self.subscriber.start()

    def _flush(self) -> None:
        """Delete the published batches' outbox rows once no batch came to do it (see handle_batch)."""
        self.published.flush(self.session_factory)

    def stop(self) -> None:
        """Finish the batch in hand, disconnect, and delete the outbox rows of what it published."""
        self.subscriber.stop()
        try:
            self._flush()
        except Exception:  # the rows stay: the outbox catch-up publishes them again after outbox.HELD_FOR
            log.exception("deleting the published outbox rows of the MQTT ingest failed")
