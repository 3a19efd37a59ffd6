"""The long-running workers of the `linli` command: `linli ingest mqtt` and `linli jobs run`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from linli import gc_tuning
from linli.core import pii
from linli.db import make_engine, make_session_factory
from linli.settings import get_settings

ingest_app = typer.Typer(help="Ingest workers", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs", no_args_is_help=True)


def _session_factory() -> sessionmaker[Session]:
    settings = get_settings()
    pii.configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    return make_session_factory(make_engine(settings.database_url))


def _run_until_stopped(report: Callable[[], None], *, every_s: float = 30.0) -> None:
    """Block until SIGTERM or Ctrl-C, calling report every every_s seconds."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(every_s):
        report()


def _worker_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our jobs log their own results


@ingest_app.command("mqtt")
def ingest_mqtt(
    url: Annotated[
        str | None, typer.Option(help="broker, mqtt://user:pass@host:1883 (LINLI_MQTT_URL)")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (LINLI_MQTT_CLIENT_ID)")] = None,
) -> None:
    """Ingest device events and command acks from the MQTT broker until SIGTERM / Ctrl-C."""
    from linli.core.bus import make_bus
    from linli.devices.mqtt_ingest import Runner

    settings = get_settings()
    url = url or settings.mqtt_url
    if not url:
        typer.echo("错误 / error: no broker: give --url or set LINLI_MQTT_URL", err=True)
        raise typer.Exit(2)
    _worker_logging()
    factory = _session_factory()
    runner = Runner(
        url,
        session_factory=factory,
        bus=make_bus(settings),
        client_id=client_id or settings.mqtt_client_id,
        max_payload_bytes=settings.mqtt_max_bytes,
        share_group=settings.mqtt_share_group,
    )
    gc_tuning.settle()  # start-up's objects frozen (full collections skip them), fewer young collections
    runner.start()
    log = logging.getLogger("linli.ingest")
    log.info("MQTT ingest started on %s", url.split("@")[-1])
    try:
        _run_until_stopped(lambda: log.info("MQTT ingest: %s", json.dumps(runner.snapshot())))
    finally:
        runner.stop()
        runner.bus.close()
        log.info("MQTT ingest stopped: %s", json.dumps(runner.snapshot()))


@jobs_app.command("run")
def jobs_run() -> None:
    """Run the scheduled jobs (offline checks, command expiry, outbox catch-up, purges) until stopped."""
    from linli.core.bus import Bus, make_bus
    from linli.devices.mqtt import Publisher
    from linli.devices.mqtt_ingest import CommandRelay
    from linli.jobs import Jobs, build_scheduler

    settings = get_settings()
    _worker_logging()
    factory = _session_factory()
    bus: Bus = make_bus(settings)
    publisher = None
    if settings.mqtt_url:  # the outbox catch-up may hold commands for MQTT devices
        publisher = Publisher(settings.mqtt_url)
        publisher.start()
        bus = CommandRelay(bus, publisher.publish)
    scheduler = build_scheduler(Jobs(session_factory=factory, bus=bus, settings=settings))
    scheduler.start()
    log = logging.getLogger("linli.jobs")
    log.info("jobs started: %s", ", ".join(job.id for job in scheduler.get_jobs()))
    try:
        _run_until_stopped(lambda: None, every_s=3600)
    finally:
        scheduler.shutdown()
        if publisher is not None:
            publisher.stop()
        bus.close()
