"""Scheduled jobs (APScheduler 3): offline checks, command expiry, outbox catch-up, purges, the live demo.

Each job runs in its own unit of work, logs what it did, and survives its own failures (the next run
tries again). They run inside `linli serve` (setting jobs_enabled) or in one `linli jobs run` worker:
in one process only, since two schedulers would do each job twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from linli.core import media, outbox
from linli.core.bus import Bus
from linli.core.timeutil import LOCAL_TZ, utcnow
from linli.db import unit_of_work
from linli.demo import live
from linli.devices import commands, health, store
from linli.devices.mappings import pull
from linli.settings import Settings

log = logging.getLogger(__name__)

OUTBOX_MIN_AGE = timedelta(seconds=10)  # younger messages are still being delivered by their writer
OUTBOX_KEEP = timedelta(days=1)


@dataclass
class Jobs:
    """The job functions, bound to a database, a bus, the settings and a clock (a test moves it)."""

    session_factory: sessionmaker[Session]
    bus: Bus
    settings: Settings
    clock: Callable[[], datetime] = field(default=utcnow)
    _demo: live.LiveDemo | None = field(default=None, init=False, repr=False)

    def check_offline(self) -> int:
        """Mark silent devices offline; their device.offline events then go to the bus."""
        with unit_of_work(self.session_factory) as session:
            gone = health.check_offline(session, self.clock())
        if gone:
            outbox.deliver_outbox(self.session_factory, self.bus)
        return len(gone)

    def expire_commands(self) -> int:
        """Expire commands nobody answered in time; their new state then goes to the bus."""
        with unit_of_work(self.session_factory) as session:
            expired = commands.expire_commands(session, self.clock())
        if expired:
            outbox.deliver_outbox(self.session_factory, self.bus)
        return expired

    def catch_up_outbox(self) -> int:
        """Deliver outbox messages their writer did not (a crash, a bus or broker outage)."""
        return outbox.deliver_outbox(self.session_factory, self.bus, older_than=OUTBOX_MIN_AGE)

    def purge_raw(self) -> int:
        """Delete raw bodies older than raw_retention_days."""
        with unit_of_work(self.session_factory) as session:
            return store.purge_raw(session, now=self.clock(), days=self.settings.raw_retention_days)

    def purge_media(self) -> int:
        """Delete media nobody claimed, and files no row refers to, older than raw_retention_days."""
        now, keep = self.clock(), timedelta(days=self.settings.raw_retention_days)
        with unit_of_work(self.session_factory) as session:
            gone = media.purge_orphans(session, now=now, older_than=keep)
        removed = media.remove_files(gone, older_than=now - keep)  # only once the rows are gone for good
        with unit_of_work(self.session_factory, write=False) as session:
            return removed + media.sweep_strays(session, now=now, older_than=keep)

    def poll_sources(self) -> int:
        """Poll the devices that only answer queries (pull sources) whose time has come."""
        polled = pull.poll_due(self.session_factory, now=self.clock())
        if polled:
            outbox.deliver_outbox(self.session_factory, self.bus)
        return polled

    def play_demo(self) -> int:
        """Play the demo communities' devices up to now (settings.demo_live); their events go to the bus."""
        if self._demo is None:
            self._demo = live.LiveDemo(self.session_factory)
        stored = self._demo.tick(self.clock())
        if stored:
            outbox.deliver_outbox(self.session_factory, self.bus)
        return stored

    def purge_outbox(self) -> int:
        """Delete outbox messages delivered more than a day ago."""
        with unit_of_work(self.session_factory) as session:
            return outbox.purge_delivered(session, now=self.clock(), keep=OUTBOX_KEEP)


def run_safely(name: str, job: Callable[[], int]) -> int | None:
    """Run one job, log its count; an exception is logged and swallowed (None), never kills the scheduler."""
    try:
        count = job()
    except Exception:
        log.exception("job %s failed; it runs again at its next time", name)
        return None
    if count:
        log.info("job %s: %d", name, count)
    return count


def build_scheduler(jobs: Jobs) -> BackgroundScheduler:
    """A (not yet started) scheduler running every job at its interval."""
    scheduler = BackgroundScheduler(
        timezone=LOCAL_TZ, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
    )
    every: list[tuple[str, Callable[[], int], dict[str, int]]] = [
        ("check_offline", jobs.check_offline, {"minutes": 1}),
        ("expire_commands", jobs.expire_commands, {"minutes": 1}),
        ("catch_up_outbox", jobs.catch_up_outbox, {"seconds": 30}),
        ("poll_sources", jobs.poll_sources, {"seconds": 10}),
    ]
    if jobs.settings.demo_live:
        every.append(("play_demo", jobs.play_demo, {"seconds": live.TICK_S}))
    for name, job, interval in every:
        scheduler.add_job(run_safely, "interval", args=(name, job), id=name, name=name, **interval)
    daily = [
        ("purge_raw", jobs.purge_raw, 3),
        ("purge_media", jobs.purge_media, 3),
        ("purge_outbox", jobs.purge_outbox, 4),
    ]
    for name, job, hour in daily:  # at night, Asia/Shanghai
        scheduler.add_job(run_safely, "cron", args=(name, job), id=name, name=name, hour=hour, minute=17)
    return scheduler
