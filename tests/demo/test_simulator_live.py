"""The simulator against the real thing: a live hub over HTTP (uvicorn, fresh SQLite), the real Mosquitto."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from linli.app import create_app
from linli.core.auth.service import Principal
from linli.core.timeutil import LOCAL_TZ
from linli.db import unit_of_work
from linli.demo import simulator_fleet as fleet
from linli.demo import simulator_send as sim
from linli.demo.simulator import SimDevice
from linli.devices.events import Envelope
from linli.devices.models import RawPayload, StoredEvent
from linli.devices.mqtt import broker_address, events_topic, parse_topic
from linli.registry import vehicles
from linli.registry.models import Vehicle
from linli.settings import Settings
from tests.builders import World, build_world

MQTT_URL = os.environ.get("LINLI_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
PLATES = [f"陕A{n:05d}" for n in range(52_100, 52_160)]


@dataclass
class Hub:
    url: str
    factory: sessionmaker[Session]
    world: World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _past(hour: int, minute: int = 0) -> datetime:
    """The latest hh:mm (Asia/Shanghai) that is at least ten minutes ago."""
    now = datetime.now(LOCAL_TZ)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at <= now - timedelta(minutes=10) else at - timedelta(days=1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[Hub]:
    """A hub served by uvicorn on a free port, on a fresh SQLite holding the test world and 60 cars."""
    path = tmp_path_factory.mktemp("simulator") / "hub.db"
    extra = {"jobs_enabled": False} if "jobs_enabled" in Settings.model_fields else {}
    hub_settings = Settings(
        database_url=f"sqlite:///{path}",
        auto_migrate=True,
        secret_key=settings.secret_key,  # the same keys: pii is configured process-wide
        pii_key=settings.pii_key,
        mqtt_url="",
        **extra,  # type: ignore[arg-type]
    )
    app = create_app(hub_settings)
    factory = app.state.session_factory
    with unit_of_work(factory) as session:
        world = build_world(session, password="simulator-pass-1")
        for plate in PLATES:
            vehicles.upsert(session, Principal.system(), {"plate": plate}, community_code=world.tianfu)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="simulator-hub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Hub(f"http://127.0.0.1:{port}", factory, world)
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.engine.dispose()


def test_create_devices_registers_a_device_set_once_and_reads_secrets_back(hub: Hub) -> None:
    said: list[str] = []
    options = sim.Options(community=hub.world.yuyu, create_devices=True)
    first = sim.prepare(hub.factory, options, said.append)
    assert "已为社区" in said[0] and len(said) == 1 + len(first.devices)
    kinds = {d.kind for d in first.devices}
    assert {"face_terminal", "plate_gate", "patrol_tag", "smoke_sensor", "water_meter"} <= kinds
    assert set(first.secrets) == {d.serial for d in first.devices} and all(first.secrets.values())
    again = sim.prepare(hub.factory, options, said.append)
    assert again.devices == first.devices and "已有" in said[-1]
    with pytest.raises(Exception, match="--create-devices"):
        sim.prepare(hub.factory, sim.Options(community=hub.world.xingfu), said.append)


def test_two_seconds_over_http_store_events_linked_to_registered_vehicles(hub: Hub) -> None:
    registered = sim.prepare(hub.factory, sim.Options(community=hub.world.tianfu, create_devices=True), print)
    assert set(registered.plates) == set(PLATES)
    options = sim.Options(
        community=hub.world.tianfu,
        via="http",
        url=hub.url,
        rate=400,
        duration=2,
        day_seconds=600,  # 144x: two seconds play 4.8 minutes of the morning peak
        seed=5,
        start=_past(7, 40),
    )
    tally = sim.run(registered, options, print)
    assert tally.failures == 0 and tally.rejected == 0, tally.last_error
    assert tally.sent > 300 and tally.stored + tally.duplicates == tally.sent
    with hub.factory() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(StoredEvent)
            .where(StoredEvent.community_code == hub.world.tianfu, StoredEvent.source == "linli-sim")
        )
        reads = list(
            session.execute(
                select(StoredEvent.payload, StoredEvent.vehicle_id, StoredEvent.occurred_at).where(
                    StoredEvent.type.in_(["vehicle.entered", "vehicle.exited"])
                )
            )
        )
        cars = {plate: id_ for plate, id_ in session.execute(select(Vehicle.plate, Vehicle.id))}
    assert stored == tally.stored
    assert len(reads) > 10
    linked = [r for r in reads if r.payload["plate"] in cars]
    assert len(linked) > len(reads) / 2
    assert all(r.vehicle_id == cars[r.payload["plate"]] for r in linked)
    assert all(r.vehicle_id is None for r in reads if r.payload["plate"] not in cars)


def test_hikvision_format_reaches_the_store_through_the_adapter(hub: Hub) -> None:
    registered = sim.prepare(hub.factory, sim.Options(community=hub.world.tianfu, create_devices=True), print)
    options = sim.Options(
        community=hub.world.tianfu,
        url=hub.url,
        rate=400,
        duration=1,
        day_seconds=600,
        fmt="hikvision",
        seed=6,
        start=_past(18, 10),
    )
    tally = sim.run(registered, options, print)
    assert tally.failures == 0 and tally.rejected == 0, tally.last_error
    with hub.factory() as session:
        counted = select(StoredEvent.source, func.count())
        sources = {source: n for source, n in session.execute(counted.group_by(StoredEvent.source))}
        hik_plates = list(
            session.execute(
                select(StoredEvent.vehicle_id).where(
                    StoredEvent.source == "hikvision_isapi", StoredEvent.type == "vehicle.entered"
                )
            ).scalars()
        )
        pushed = dict(
            session.execute(
                select(RawPayload.content_type, func.count())
                .where(RawPayload.source == "push:hikvision_isapi")
                .group_by(RawPayload.content_type)
            ).all()
        )
    assert sources.get("hikvision_isapi", 0) > 0.5 * tally.stored  # cameras, gates and access terminals
    assert sources.get("linli-sim", 0) > 0  # sensors and meters stay in our schema
    assert any(vehicle_id is not None for vehicle_id in hik_plates)
    # Each ISAPI event reached the hub as the device's own XML on the push endpoint, one alert a request,
    # kept raw there and read by the hub's adapter.
    assert list(pushed) == ["application/xml; charset=UTF-8"]
    assert pushed["application/xml; charset=UTF-8"] == sources["hikvision_isapi"]


def _broker_up() -> bool:
    host, port, _, _ = broker_address(MQTT_URL)
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.skipif(not _broker_up(), reason=f"integration: no MQTT broker at {MQTT_URL}")
def test_mqtt_publishes_valid_envelopes_on_each_devices_topic() -> None:
    community = f"t{uuid.uuid4().hex[:10]}"
    devices = tuple(
        SimDevice(f"SIM-{community}-{kind}-{n}", kind, community, f"{n}号楼")
        for kind in ("face_terminal", "plate_gate", "smoke_sensor", "water_meter", "camera")
        for n in (1, 2)
    )
    registered = fleet.Registered(devices=devices, secrets={}, plates=("陕A52100", "陕A52101"))
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_message = lambda _c, _u, message: got.append(message)
    host, port, _, _ = broker_address(MQTT_URL)
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe(f"linli/{community}/+/events", qos=1)
        assert subscribed.wait(5)
        options = sim.Options(
            community=community, via="mqtt", url=MQTT_URL, rate=300, duration=1.5, day_seconds=600, seed=9
        )
        tally = sim.run(registered, options, print)
        deadline = time.monotonic() + 10
        while len(got) < tally.sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    assert tally.sent > 100 and tally.acknowledged == tally.sent and tally.failures == 0
    assert len(got) == tally.sent
    serials = {d.serial for d in devices}
    for message in got:
        envelope = Envelope.model_validate_json(message.payload)
        envelope.typed_payload()
        assert message.topic == events_topic(community, envelope.device)
        assert parse_topic(message.topic) == (community, envelope.device, "events")
        assert envelope.device in serials and message.qos == 1
