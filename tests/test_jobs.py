"""Scheduled jobs, called directly with a hand-moved clock; the app's lifespan starts and stops them."""

from __future__ import annotations

import gc
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from linli import gc_tuning
from linli.app import create_app
from linli.cli import serve_settings
from linli.core import outbox
from linli.core.bus import InProcessBus
from linli.core.timeutil import utcnow
from linli.devices import service, store
from linli.devices.models import RawPayload
from linli.devices.mqtt_ingest import CommandRelay, Runner
from linli.jobs import Jobs, build_scheduler, run_safely
from linli.settings import Settings
from tests.devices.helpers import Clock, Recorder, device, envelope
from tests.devices.mqtt_helpers import URL, forget_session, needs_broker, unique


@pytest.fixture
def bus() -> InProcessBus:
    """A fresh in-process bus."""
    return InProcessBus()


@pytest.fixture
def jobs(session_factory, bus, settings) -> tuple[Jobs, Clock]:  # type: ignore[no-untyped-def]
    """The jobs on the test's database, with a clock the test moves."""
    clock = Clock()
    return Jobs(session_factory=session_factory, bus=bus, settings=settings, clock=lambda: clock.now), clock


def test_check_offline_marks_silent_devices_and_publishes_after_commit(
    session, session_factory, world, bus, jobs
) -> None:
    job, clock = jobs
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-JOB-01")
    service.ingest(session, [envelope(cam.serial, at=clock.now)], source="http", received_at=clock.now)
    session.commit()
    outbox.deliver_outbox(session_factory, bus)
    recorder = Recorder(bus)
    clock.advance(minutes=4)
    assert job.check_offline() == 0
    clock.advance(minutes=2)
    assert job.check_offline() == 1
    assert [(m["device"], m["type"]) for m in recorder.data] == [(cam.serial, "device.offline")]
    session.refresh(cam)
    assert cam.online is False


def test_outbox_catch_up_leaves_young_messages_to_their_writer(session, bus, jobs) -> None:
    job, _ = jobs
    recorder = Recorder(bus, pattern="linli.test.>")
    now = utcnow()
    outbox.add(session, [("linli.test.old", {"n": 1})], now=now - timedelta(minutes=1))
    outbox.add(session, [("linli.test.young", {"n": 2})], now=now)
    session.commit()
    assert job.catch_up_outbox() == 1
    assert [m.subject for m in recorder.messages] == ["linli.test.old"]
    assert outbox.pending(session) == 1


def test_purges_keep_recent_rows(session, session_factory, bus, jobs, settings) -> None:
    job, clock = jobs
    old = clock.now - timedelta(days=settings.raw_retention_days + 1)
    store.save_raw(session, received_at=old, source="http", body=b"[]")
    kept = store.save_raw(session, received_at=clock.now - timedelta(days=1), source="http", body=b"[]")
    outbox.add(session, [("linli.test.a", {}), ("linli.test.b", {})], now=clock.now)
    session.commit()
    assert outbox.deliver_outbox(session_factory, bus) == 2
    assert job.purge_raw() == 1
    assert list(session.scalars(select(RawPayload.id))) == [kept]
    clock.now = utcnow()
    assert job.purge_outbox() == 0  # delivered just now: kept a day
    clock.advance(days=2)
    assert job.purge_outbox() == 2


def test_a_failing_job_is_logged_and_survived(caplog) -> None:
    def broken() -> int:
        raise RuntimeError("database is down")

    with caplog.at_level(logging.INFO, logger="linli.jobs"):
        assert run_safely("broken", broken) is None
        assert run_safely("fine", lambda: 3) == 3
    assert "job broken failed" in caplog.text and "database is down" in caplog.text
    assert "job fine: 3" in caplog.text


def test_the_scheduler_runs_every_job(session_factory, bus, settings) -> None:
    scheduler = build_scheduler(Jobs(session_factory=session_factory, bus=bus, settings=settings))
    triggers = {job.id: str(job.trigger) for job in scheduler.get_jobs()}
    assert triggers == {
        "check_offline": "interval[0:01:00]",
        "expire_commands": "interval[0:01:00]",
        "catch_up_outbox": "interval[0:00:30]",
        "poll_sources": "interval[0:00:10]",
        "purge_raw": "cron[hour='3', minute='17']",
        "purge_media": "cron[hour='3', minute='17']",
        "purge_outbox": "cron[hour='4', minute='17']",
    }


def test_the_test_app_starts_no_jobs_and_no_mqtt(client) -> None:
    assert client.app.state.scheduler is None and client.app.state.mqtt_runner is None


def test_serve_turns_jobs_on_unless_told_not_to(monkeypatch) -> None:
    monkeypatch.delenv("LINLI_JOBS_ENABLED", raising=False)
    assert Settings().jobs_enabled is False
    assert serve_settings(Settings()).jobs_enabled is True
    monkeypatch.setenv("LINLI_JOBS_ENABLED", "false")
    assert serve_settings(Settings()).jobs_enabled is False


def _app_settings(tmp_path: Path, **overrides: object) -> Settings:
    # The harness's secret key: create_app configures the process-wide PII keys from it.
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        secret_key="test-secret",
        auto_migrate=True,
        **overrides,
    )


def test_the_lifespan_runs_the_scheduler_and_closes_the_bus(tmp_path) -> None:
    app = create_app(_app_settings(tmp_path, jobs_enabled=True))
    with TestClient(app):
        scheduler = app.state.scheduler
        assert scheduler is not None and scheduler.running
        first_bus = app.state.bus
        first_bus.subscribe("linli.events.>", lambda m: None)
        assert first_bus.subscriber_count == 1
    assert not scheduler.running and app.state.scheduler is None
    assert first_bus.subscriber_count == 0 and app.state.bus is not first_bus
    app.state.engine.dispose()


def test_the_lifespan_freezes_start_up_and_collects_young_objects_less_often(tmp_path) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's default
    frozen = gc.get_freeze_count()
    try:
        app = create_app(_app_settings(tmp_path))
        with TestClient(app):
            assert gc.get_threshold() == (gc_tuning.GEN0_THRESHOLD, *gc_tuning.OLDER_THRESHOLDS)
            assert gc.get_freeze_count() > frozen
        app.state.engine.dispose()
    finally:
        gc.set_threshold(*before)


@pytest.mark.integration
@needs_broker
def test_the_lifespan_runs_the_mqtt_ingest_when_a_broker_is_set(tmp_path) -> None:
    app = create_app(_app_settings(tmp_path, mqtt_url=URL, mqtt_client_id=unique("linli-test-serve")))
    with TestClient(app):
        runner = app.state.mqtt_runner
        assert isinstance(runner, Runner) and isinstance(app.state.bus, CommandRelay)
        assert runner.subscriber.subscribed.wait(5)
    assert not runner.subscriber.connected.is_set() and app.state.mqtt_runner is None
    app.state.engine.dispose()
    forget_session(app.state.settings.mqtt_client_id)
