"""The live demo: the pilot communities' simulated devices go on sending through the hub, tick by tick."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from linli.core.timeutil import as_utc, to_local, utcnow
from linli.demo import live
from linli.demo import simulator_fleet as fleet
from linli.demo.live import LiveDemo
from linli.devices import service
from linli.devices.models import Device, DeviceKind, StoredEvent
from linli.jobs import Jobs, build_scheduler
from tests.devices.helpers import envelope


def _demo_events(session, since):  # type: ignore[no-untyped-def]
    stmt = select(StoredEvent).where(StoredEvent.source == "linli-sim", StoredEvent.occurred_at > since)
    return session.scalars(stmt.order_by(StoredEvent.occurred_at)).all()


@pytest.fixture
def seeded(session, world):  # type: ignore[no-untyped-def]
    """天府和苑's demo device set, and one demo event at the latest morning peak (08:00 in Xianyang, at
    least 30 minutes ago), as `linli demo` leaves them: the doors are busy then whatever the seed."""
    devices = fleet.create_devices(session, world.tianfu)
    latest = to_local(utcnow() - timedelta(minutes=30))
    peak = latest.replace(hour=8, minute=0, second=0, microsecond=0)
    t0 = as_utc(peak if peak <= latest else peak - timedelta(days=1))
    service.ingest(
        session,
        [envelope(devices[0].serial, at=t0, uid="seeded-1", source="linli-sim")],
        source="demo",
        received_at=t0,
    )
    session.commit()
    return devices, t0


def test_it_plays_on_from_the_newest_demo_event_without_repeating(session, session_factory, seeded) -> None:
    devices, t0 = seeded
    demo = LiveDemo(session_factory)
    first = demo.tick(t0 + timedelta(minutes=10))
    rows = _demo_events(session, t0)
    assert first == len(rows) > len(devices)  # heartbeats alone: a camera or a door beats every 3 minutes
    assert all(t0 <= as_utc(r.occurred_at) < t0 + timedelta(minutes=10) for r in rows)
    cameras = {d.id for d in devices if d.kind == DeviceKind.CAMERA}
    beating = {r.device_id for r in rows if r.type == "device.heartbeat"}
    assert cameras and cameras <= beating  # a camera beats every 3 minutes: each did in 10
    assert {"device.heartbeat", "access.granted"} <= {r.type for r in rows}

    assert demo.tick(t0 + timedelta(minutes=10)) == 0  # nothing new at the same time
    assert demo.tick(t0 + timedelta(minutes=5)) == 0  # a clock gone back plays nothing
    second = demo.tick(t0 + timedelta(minutes=20))
    rows = _demo_events(session, t0)
    assert second > 0 and len(rows) == first + second
    assert len({(r.device_id, r.event_uid) for r in rows}) == len(rows)
    assert max(as_utc(r.occurred_at) for r in rows) < t0 + timedelta(minutes=20)
    # The devices that beat are online, with their last heartbeat as last seen.
    session.expire_all()
    online = session.scalars(select(Device.online).where(Device.id.in_(cameras))).all()
    assert online and all(online)


def test_after_a_pause_it_catches_up_an_hour_at_most(session, session_factory, world) -> None:
    devices = fleet.create_devices(session, world.tianfu)
    now = utcnow().replace(microsecond=0)
    long_ago = now - timedelta(hours=5)
    service.ingest(
        session,
        [envelope(devices[0].serial, at=long_ago, source="linli-sim")],
        source="demo",
        received_at=long_ago,
    )
    session.commit()
    assert LiveDemo(session_factory).tick(now) > 0
    rows = _demo_events(session, long_ago)
    assert min(as_utc(r.occurred_at) for r in rows) >= now - live.CATCH_UP
    late = [r for r in rows if as_utc(r.received_at) - as_utc(r.occurred_at) > live.WINDOW]
    assert late == []  # each received at the end of its window, as the hub would have, never an hour late


def test_one_span_follows_another(session, session_factory, seeded, monkeypatch) -> None:
    _devices, t0 = seeded
    monkeypatch.setattr(live, "SPAN", timedelta(minutes=4))
    demo = LiveDemo(session_factory)
    stored = sum(demo.tick(t0 + timedelta(minutes=m)) for m in range(1, 11))
    rows = _demo_events(session, t0)
    assert stored == len(rows)
    minutes = {int((as_utc(r.occurred_at) - t0).total_seconds() // 60) for r in rows}
    assert minutes == set(range(10))  # every minute of the three spans has events
    assert len({(r.device_id, r.event_uid) for r in rows}) == len(rows)


def test_without_demo_events_it_plays_nothing_and_says_why(session_factory, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="linli.demo.live"):
        assert LiveDemo(session_factory).tick(utcnow()) == 0
    assert "no simulated events" in caplog.text


def test_the_scheduler_plays_the_demo_only_when_asked(session_factory, settings) -> None:  # type: ignore[no-untyped-def]
    from linli.core.bus import InProcessBus

    def ids(demo_live: bool) -> set[str]:
        jobs = Jobs(session_factory, InProcessBus(), settings.model_copy(update={"demo_live": demo_live}))
        return {job.id for job in build_scheduler(jobs).get_jobs()}

    assert "play_demo" in ids(True) and "play_demo" not in ids(False)


def test_the_play_demo_job_publishes_what_it_stored(session, session_factory, seeded, settings) -> None:
    from linli.core.bus import InProcessBus
    from tests.devices.helpers import Recorder

    _devices, t0 = seeded
    bus = InProcessBus()
    recorder = Recorder(bus)
    jobs = Jobs(session_factory, bus, settings, clock=lambda: t0 + timedelta(minutes=3))
    stored = jobs.play_demo()
    assert stored > 0
    # Each stored event goes on the bus once (with the seeded one, which its fixture left undelivered).
    published = sorted(m["event_uid"] for m in recorder.data if m.get("source") == "linli-sim")
    kept = select(StoredEvent.event_uid).where(StoredEvent.source == "linli-sim")
    assert published == sorted(session.scalars(kept)) and len(published) == stored + 1


def test_a_restart_plays_on_with_new_chances_not_the_same_minutes_again(
    session, session_factory, seeded
) -> None:  # type: ignore[no-untyped-def]
    """Each start draws its own simulation: restarting the server (a new LiveDemo) does not replay the
    same doors opening for the same residents at the same offsets as the start before it."""
    _devices, t0 = seeded

    def played(start, rows):  # type: ignore[no-untyped-def]
        return [
            (r.device_id, r.type, r.person_id, round((as_utc(r.occurred_at) - start).total_seconds()))
            for r in rows
            if r.type != "device.heartbeat"
        ]

    assert LiveDemo(session_factory).tick(t0 + timedelta(minutes=10)) > 0
    first = played(t0, _demo_events(session, t0))
    start = max(as_utc(r.occurred_at) for r in _demo_events(session, t0))  # where a restart plays on from
    assert LiveDemo(session_factory).tick(start + timedelta(minutes=10)) > 0
    second = played(start, _demo_events(session, start))
    assert first and second and first != second
