"""The demo district kept alive: the pilot communities' devices go on sending while the platform runs.

`linli demo` plays the pilot communities' last 24 hours of device events into the hub; without more,
every device falls silent once the server starts and goes offline within minutes. With
`LINLI_DEMO_LIVE=1` (`make run` sets it) the jobs play the same simulation on, at its natural volume,
through the hub's own ingest (source `demo`): heartbeats keep the devices online, doors, gates and
sensors report through the day's peaks, a device now and then goes quiet and comes back, an alarm is
raised now and then. It plays the communities that hold simulated events, from the newest of them (at
most CATCH_UP back, after a pause), one simulated SPAN after another.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from linli.core.timeutil import as_utc
from linli.db import unit_of_work
from linli.demo import simulator_fleet as fleet
from linli.demo.simulator import SOURCE as SIMULATED
from linli.demo.simulator import Scenario, stream
from linli.devices import service as hub
from linli.devices.events import Envelope
from linli.devices.models import StoredEvent

log = logging.getLogger(__name__)

SOURCE = "demo"  # the way in, as `linli demo` ingests (each envelope's own source is the simulator's)
SPAN = timedelta(hours=24)  # one simulation per span: its devices keep their heartbeat rhythm within it
CATCH_UP = timedelta(hours=1)  # after a pause, the first tick plays at most this much
WINDOW = timedelta(minutes=5)  # a catch-up's events are received at the end of their window, as seeded
TICK_S = 10  # seconds between the job's ticks
SEED = 1_000  # the live streams' seeds (per community: SEED + its place): other than the seeded day's


@dataclass
class _Playing:
    """One community's simulation, read as time passes."""

    code: str
    seed: int
    ends: datetime  # where its current span ends: the next span starts there
    events: Iterator[Envelope]
    waiting: Envelope | None = None  # read from the stream but not due yet


class LiveDemo:
    """Plays the demo communities' devices up to the clock at each tick (one instance per process)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._playing: list[_Playing] | None = None  # None: not started (the first tick looks them up)
        self._played_until: datetime | None = None

    def tick(self, now: datetime) -> int:
        """Ingest what the demo's devices sent since the last tick, up to now; how many events were stored.

        A clock that went back plays nothing until it passes the last tick again."""
        now = as_utc(now)
        with unit_of_work(self.session_factory) as session:
            if self._playing is None:
                self._playing = self._start(session, now)
            if self._played_until is not None and now <= self._played_until:
                return 0
            due: list[Envelope] = []
            for playing in self._playing:
                due += self._take(session, playing, now)
            self._played_until = now
            return _ingest(session, sorted(due, key=lambda e: e.occurred_at), now)

    def _start(self, session: Session, now: datetime) -> list[_Playing]:
        """The communities holding simulated events (`linli demo`'s, or `linli simulate`'s), each from its
        newest one (at most CATCH_UP back)."""
        newest = select(StoredEvent.community_code, func.max(StoredEvent.occurred_at)).where(
            StoredEvent.source == SIMULATED
        )
        found = sorted(session.execute(newest.group_by(StoredEvent.community_code)).all())
        if not found:
            log.warning("LINLI_DEMO_LIVE is set but the database holds no simulated events: nothing to play")
        playing = []
        for place, (code, last) in enumerate(found):
            start = min(max(as_utc(last), now - CATCH_UP), now)
            seed = SEED + place
            playing.append(_Playing(code, seed, start + SPAN, _span(session, code, seed, start)))
            log.info("demo %s: playing its devices from %s", code, start.isoformat())
        return playing

    def _take(self, session: Session, playing: _Playing, now: datetime) -> list[Envelope]:
        """The community's envelopes that occurred before now, starting its next span when one ends."""
        due: list[Envelope] = []
        while True:
            envelope = playing.waiting or next(playing.events, None)
            playing.waiting = None
            if envelope is None:  # the span is played out
                if playing.ends > now:
                    return due
                start = playing.ends
                playing.ends = start + SPAN
                playing.events = _span(session, playing.code, playing.seed, start)
                continue
            if envelope.occurred_at >= now:
                playing.waiting = envelope
                return due
            due.append(envelope)


def _span(session: Session, code: str, seed: int, start: datetime) -> Iterator[Envelope]:
    """One SPAN of a community's simulation from start, with its devices, plates, cards and faces as
    registered now (a span picks up devices added or retired since the one before). Its seed is drawn
    from the community's and the start: a restart plays on from the newest event with chances of its
    own, not the same doors for the same residents at the same offsets as the start before it."""
    found = fleet.load(session, code)
    span_seed = random.Random(f"{seed}:{start.isoformat()}").randrange(10**9)
    scenario = Scenario(
        found.devices, found.plates, span_seed, volume=1.0, cards=found.cards, faces=found.faces
    )
    return stream(scenario, start, start + SPAN)


def _ingest(session: Session, envelopes: list[Envelope], now: datetime) -> int:
    """Ingest envelopes (in occurred_at order) as the hub would have received them: in WINDOW batches,
    each at its window's end, the last at now."""
    stored = 0
    window: list[Envelope] = []
    closes: datetime | None = None
    for envelope in envelopes:
        if closes is None:
            closes = envelope.occurred_at + WINDOW
        if envelope.occurred_at >= closes and window:
            stored += hub.ingest(session, window, source=SOURCE, received_at=min(closes, now)).stored
            window, closes = [], envelope.occurred_at + WINDOW
        window.append(envelope)
    if window:
        stored += hub.ingest(session, window, source=SOURCE, received_at=now).stored
    return stored
