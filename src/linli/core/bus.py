"""The event bus: publish and subscribe by subject, in-process by default, NATS JetStream when configured.

Subjects are dot-separated tokens (`linli.events.{community}.{type}`); patterns use NATS wildcards:
`*` matches one token, `>` matches the rest. Handlers get a Message and run after the publisher's
transaction has committed (the outbox sees to that), so they may open their own unit of work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from linli.core import jsonio

if TYPE_CHECKING:
    from linli.settings import Settings

logger = logging.getLogger(__name__)

STREAM = "LINLI_EVENTS"
STREAM_SUBJECTS = "linli.events.>"
STREAM_MAX_AGE_S = 7 * 24 * 3600

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """One message as a handler receives it."""

    subject: str
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return jsonio.loads(self.body)


Handler = Callable[[Message], None]


class Subscription(Protocol):
    """A live subscription."""

    def unsubscribe(self) -> None:
        """Stop receiving messages (a durable consumer keeps its position on the server)."""


class Bus(Protocol):
    """What every bus implementation offers."""

    def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
        """Publish one message; returns once the bus has accepted it."""

    def subscribe(
        self, subject_pattern: str, handler: Handler, *, durable: str | None = None
    ) -> Subscription:
        """Call handler for every message whose subject matches; durable names a consumer that survives."""

    def close(self) -> None:
        """Release connections and threads."""


def encode(data: bytes | dict[str, Any]) -> bytes:
    """Message bytes: bytes as they are, a dict as compact UTF-8 JSON."""
    if isinstance(data, bytes):
        return data
    return jsonio.dumps(data)


def subject_matches(pattern: str, subject: str) -> bool:
    """True if subject matches a NATS-style pattern (`*` one token, `>` one or more trailing tokens)."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(have) == len(want)


class _LocalSubscription:
    def __init__(self, bus: InProcessBus, pattern: str, handler: Handler) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler

    def unsubscribe(self) -> None:
        self.bus._remove(self)


class InProcessBus:
    """Delivers each message synchronously to this process's matching handlers (the embedded setup)."""

    def __init__(self) -> None:
        self._subs: list[_LocalSubscription] = []
        self._lock = threading.Lock()

    def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
        """Call every matching handler; a failing handler is logged and does not stop the others."""
        message = Message(subject=subject, body=encode(data))
        with self._lock:
            targets = [s for s in self._subs if subject_matches(s.pattern, subject)]
        for sub in targets:
            try:
                sub.handler(message)
            except Exception:  # one subscriber's bug must not lose the message for the others
                logger.exception("bus handler for %s failed on %s", sub.pattern, subject)

    def subscribe(
        self, subject_pattern: str, handler: Handler, *, durable: str | None = None
    ) -> Subscription:
        """Register handler (durable has no meaning in one process)."""
        sub = _LocalSubscription(self, subject_pattern, handler)
        with self._lock:
            self._subs.append(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are live."""
        with self._lock:
            return len(self._subs)

    def _remove(self, sub: _LocalSubscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def close(self) -> None:
        """Drop every subscription."""
        with self._lock:
            self._subs.clear()


class _NatsSubscription:
    def __init__(self, bus: NatsBus, sub: Any) -> None:
        self.bus, self.sub = bus, sub

    def unsubscribe(self) -> None:
        self.bus._call(self.sub.unsubscribe())


class NatsBus:
    """NATS JetStream: stream LINLI_EVENTS on linli.events.>, durable consumers, ack after handling.

    nats-py is asynchronous; this class runs its own event loop in a daemon thread so that the
    (synchronous) services and routes can publish with a plain call.
    """

    def __init__(self, url: str, *, stream: str = STREAM, timeout: float = 10.0) -> None:
        self.url, self.stream, self.timeout = url, stream, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="linli-nats", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._js: Any = None
        self._connecting: asyncio.Lock | None = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout * 2)

    async def _jetstream(self) -> Any:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._js is None:
                from nats.aio.client import Client
                from nats.js.errors import NotFoundError

                nc = Client()
                try:
                    # Reconnect forever once connected; the first connection has the timeout (nats-py
                    # would otherwise retry an unreachable server forever).
                    await asyncio.wait_for(
                        nc.connect(
                            self.url,
                            connect_timeout=max(1, int(self.timeout)),
                            max_reconnect_attempts=-1,
                            name="linli",
                        ),
                        self.timeout,
                    )
                except BaseException:
                    await nc.close()
                    raise
                self._nc = nc
                js = nc.jetstream()
                try:
                    await js.stream_info(self.stream)
                except NotFoundError:
                    await js.add_stream(
                        name=self.stream, subjects=[STREAM_SUBJECTS], max_age=STREAM_MAX_AGE_S
                    )
                self._js = js
        return self._js

    def connect(self) -> None:
        """Connect and make sure the stream exists (otherwise done on first use)."""
        self._call(self._jetstream())

    def publish(self, subject: str, data: bytes | dict[str, Any]) -> None:
        """Publish; event subjects go to the stream and wait for its acknowledgement."""
        self._call(self._publish(subject, encode(data)))

    def publish_many(self, messages: list[tuple[str, bytes | dict[str, Any]]]) -> int:
        """Publish in order without waiting for each acknowledgement in turn; how many the stream took.

        The count is of the leading messages acknowledged; the outbox publishes the rest again later (at
        least once). Raises only if the bus took none of them.
        """
        return self._call(self._publish_many([(s, encode(d)) for s, d in messages]))

    async def _publish_many(self, messages: list[tuple[str, bytes]]) -> int:
        js = await self._jetstream()
        pending: list[Any] = []
        for subject, body in messages:
            if subject_matches(STREAM_SUBJECTS, subject):
                pending.append(await js.publish_async(subject, body, stream=self.stream))
            else:
                await self._nc.publish(subject, body)
                pending.append(None)
        taken = 0
        for future in pending:
            if future is not None:
                try:
                    await asyncio.wait_for(future, self.timeout)
                except Exception:
                    if taken == 0:
                        raise
                    logger.exception("NATS: %d of %d messages acknowledged", taken, len(messages))
                    break
            taken += 1
        return taken

    async def _publish(self, subject: str, body: bytes) -> None:
        js = await self._jetstream()
        if subject_matches(STREAM_SUBJECTS, subject):
            await js.publish(subject, body, stream=self.stream, timeout=self.timeout)
        else:
            await self._nc.publish(subject, body)

    def subscribe(
        self, subject_pattern: str, handler: Handler, *, durable: str | None = None
    ) -> Subscription:
        """A push consumer (durable when named): ack after handler returns, nak (redeliver) if it raises.

        Without a durable name only messages published from now on arrive (for live listeners). A pattern
        outside the stream's subjects is a plain NATS subscription (live only, never durable).
        """
        return _NatsSubscription(self, self._call(self._subscribe(subject_pattern, handler, durable)))

    async def _subscribe(self, pattern: str, handler: Handler, durable: str | None) -> Any:
        js = await self._jetstream()
        loop = asyncio.get_running_loop()
        if not subject_matches(STREAM_SUBJECTS, pattern):
            # Not kept in the stream (published on core NATS, e.g. command states): live listeners only.
            if durable:
                raise ValueError(f"{pattern} is not in the stream {self.stream}: no durable consumer")

            async def on_live(msg: Any) -> None:
                try:
                    await loop.run_in_executor(None, handler, Message(subject=msg.subject, body=msg.data))
                except Exception:
                    logger.exception("bus handler for %s failed on %s", pattern, msg.subject)

            return await self._nc.subscribe(pattern, cb=on_live)

        async def on_message(msg: Any) -> None:
            try:
                await loop.run_in_executor(None, handler, Message(subject=msg.subject, body=msg.data))
            except Exception:
                logger.exception("bus handler for %s failed on %s; redelivering", pattern, msg.subject)
                await msg.nak()
                return
            await msg.ack()

        from nats.js.api import DeliverPolicy

        # A durable consumer starts with everything the stream holds and then resumes where it stopped;
        # an ephemeral one (a live page) wants only what is published from now on.
        policy = DeliverPolicy.ALL if durable else DeliverPolicy.NEW
        return await js.subscribe(
            pattern,
            durable=durable,
            cb=on_message,
            manual_ack=True,
            stream=self.stream,
            deliver_policy=policy,
        )

    def delete_durable(self, name: str) -> None:
        """Remove a durable consumer from the stream (when a subscriber is retired for good)."""
        self._call(self._delete_durable(name))

    async def _delete_durable(self, name: str) -> None:
        js = await self._jetstream()
        await js.delete_consumer(self.stream, name)

    def close(self) -> None:
        """Drain the connection and stop the loop thread."""
        if self._nc is not None:
            try:
                self._call(self._nc.drain())
            except Exception:  # closing must finish even if the server went away
                logger.warning("NATS drain failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=self.timeout)


def make_bus(settings: Settings) -> Bus:
    """The bus the settings ask for: NATS JetStream when bus_url is set, else in-process."""
    if settings.bus_url:
        return NatsBus(settings.bus_url)
    return InProcessBus()
