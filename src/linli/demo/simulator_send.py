"""The simulator's sending side: play a generated stream on a simulated clock, over HTTP or MQTT.

- HTTP: one signed request per device and batch (`X-Linli-Device/Timestamp/Signature`, built with
  `devices.signing.sign` and the device's own secret), to `{url}/api/v1/ingest/events`, retried with
  back-off on network errors and 5xx (dedup makes a retry safe).
- MQTT: one envelope per message, QoS 1, on `linli/{community}/{device}/events`.
- `--format hikvision`: events of plate gates, face terminals, card readers and cameras are written as the
  ISAPI XML those devices push (simulator_hikvision.py). Over HTTP each is one POST of that XML to the
  hub's vendor push endpoint (`/api/v1/ingest/push/hikvision_isapi/{serial}?key=…`), as a Hikvision
  device set up with the hub as its alarm server does, and the hub's `hikvision_isapi` adapter reads it.
  Over MQTT, which those devices do not speak, the simulator reads the XML with the same adapter and
  publishes its envelopes. Events with no ISAPI form (sensors, meters, alarms) stay in our schema.

The clock: a simulated day lasts `day_seconds` of wall time (86,400: real time). An event is sent when the
simulated clock reaches its occurred_at, so the day's peaks come out as bursts. A compressed run replays
the stretch of simulated time that ends now (never the future: the hub refuses events more than 5 minutes
ahead of its clock).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from linli.areas import service as areas
from linli.core.errors import Invalid
from linli.core.timeutil import LOCAL_TZ
from linli.db import unit_of_work
from linli.demo import simulator_fleet as fleet
from linli.demo.simulator import DAY_S, Scenario, Simulation, natural_daily_events, volume_for
from linli.demo.simulator_hikvision import HEADERS as HIKVISION_HEADERS
from linli.demo.simulator_hikvision import render, through_adapter
from linli.devices import signing
from linli.devices.events import Envelope
from linli.devices.mqtt import broker_address, events_topic

INGEST_PATH = "/api/v1/ingest/events"
PUSH_PATH = "/api/v1/ingest/push"  # /{adapter}/{serial}?key=…: a vendor's own push
DEFAULT_HTTP_URL = "http://127.0.0.1:8000"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
BATCH = 500
MAX_REPLAY = timedelta(days=29)  # the hub refuses events older than 30 days
FORMATS = ("linli", "hikvision")
HIKVISION_ADAPTER = "hikvision_isapi"
VIAS = ("http", "mqtt")


@dataclass
class Tally:
    """What a run sent and what became of it."""

    sent: int = 0  # envelopes handed to the transport
    stored: int = 0  # HTTP: stored by the hub
    duplicates: int = 0
    rejected: int = 0
    acknowledged: int = 0  # MQTT: PUBACKs from the broker
    requests: int = 0
    failures: int = 0  # requests or publishes that failed for good
    by_type: Counter[str] = field(default_factory=Counter)
    last_error: str = ""

    def summary(self) -> dict[str, Any]:
        """The tally as plain JSON."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("by_type", "last_error")}
        out["by_type"] = dict(sorted(self.by_type.items()))
        if self.last_error:
            out["last_error"] = self.last_error
        return out


class Sender(Protocol):
    """A transport: sends a batch of due envelopes, then is closed."""

    def send(self, envelopes: Sequence[Envelope], tally: Tally) -> None:
        """Send the envelopes, counting the outcome in tally."""

    def close(self, tally: Tally) -> None:
        """Finish what is in flight and release the connection."""


def as_sent(envelope: Envelope) -> dict[str, Any]:
    """An envelope as a device sends it (the hub's own fields left out)."""
    return envelope.model_dump(mode="json", exclude_none=True, exclude={"received_at", "community"})


def body_of(envelopes: Sequence[Envelope] | Envelope) -> bytes:
    """The JSON body of one envelope, or of a batch as an array."""
    data = as_sent(envelopes) if isinstance(envelopes, Envelope) else [as_sent(e) for e in envelopes]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_headers(serial: str, secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed ingest request for body."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        signing.DEVICE_HEADER: serial,
        signing.TIMESTAMP_HEADER: str(ts),
        signing.SIGNATURE_HEADER: signing.sign(secret, ts, body),
        "Content-Type": "application/json",
    }


class HttpSender:
    """Signed HTTP batches, one request per device and up to `batch` of its due events."""

    def __init__(
        self,
        url: str,
        secrets: Mapping[str, str],
        *,
        batch: int = BATCH,
        timeout: float = 30.0,
        retries: int = 3,
        client: httpx.Client | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.url = self.base + INGEST_PATH
        self.secrets = secrets
        self.batch = batch
        self.retries = retries
        self.client = client or httpx.Client(timeout=timeout)

    def send(self, envelopes: Sequence[Envelope], tally: Tally) -> None:
        """Post the envelopes grouped by device."""
        groups: dict[str, list[Envelope]] = {}
        for envelope in envelopes:
            groups.setdefault(envelope.device, []).append(envelope)
        for serial, group in groups.items():
            secret = self.secrets.get(serial)
            if secret is None:
                tally.failures += 1
                tally.last_error = f"no secret for {serial}"
                continue
            for start in range(0, len(group), self.batch):
                chunk = group[start : start + self.batch]
                tally.sent += len(chunk)
                body = body_of(chunk)
                # Signed again on each attempt: a retry carries a fresh timestamp.
                self._post(self.url, body, partial(signed_headers, serial, secret, body), tally)

    def push(self, adapter: str, serial: str, body: bytes, headers: Mapping[str, str], tally: Tally) -> None:
        """One vendor push, as the device makes it: its own format to the adapter's push endpoint,
        authenticated with its secret as `key`."""
        secret = self.secrets.get(serial)
        tally.sent += 1
        if secret is None:
            tally.failures += 1
            tally.last_error = f"no secret for {serial}"
            return
        url = f"{self.base}{PUSH_PATH}/{adapter}/{serial}"
        self._post(url, body, partial(dict, headers), tally, params={"key": secret})

    def _post(
        self,
        url: str,
        body: bytes,
        headers: Callable[[], dict[str, str]],
        tally: Tally,
        *,
        params: Mapping[str, str] | None = None,
    ) -> None:
        delay = 0.5
        for attempt in range(1, self.retries + 1):
            tally.requests += 1
            try:
                response = self.client.post(url, content=body, headers=headers(), params=params)
            except httpx.HTTPError as exc:
                tally.last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    answer = response.json()
                    tally.stored += int(answer.get("stored", 0))
                    tally.duplicates += int(answer.get("duplicates", 0))
                    rejected = answer.get("rejected") or []
                    tally.rejected += len(rejected)
                    if rejected:
                        tally.last_error = f"rejected: {rejected[0].get('reason', '')[:200]}"
                    return
                tally.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code < 500:
                    break  # 4xx: sending the same request again cannot help
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        tally.failures += 1

    def close(self, tally: Tally) -> None:
        """Close the HTTP connection pool."""
        self.client.close()


class MqttSender:
    """QoS 1 publishes, one envelope per message, on each device's events topic."""

    def __init__(
        self, url: str, communities: Mapping[str, str], *, client_id: str = "", inflight: int = 1000
    ):
        host, port, user, password = broker_address(url)
        self.communities = communities
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if user:
            self.client.username_pw_set(user, password)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda *_args: self.connected.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(10):
            self.client.loop_stop()
            raise ConnectionError(f"MQTT broker at {host}:{port} did not accept the connection")
        self.in_flight: deque[mqtt.MQTTMessageInfo] = deque()

    def send(self, envelopes: Sequence[Envelope], tally: Tally) -> None:
        """Publish each envelope on its device's topic."""
        for envelope in envelopes:
            topic = events_topic(self.communities[envelope.device], envelope.device)
            info = self.client.publish(topic, body_of(envelope), qos=1)
            tally.sent += 1
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                tally.failures += 1
                tally.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
                continue
            self.in_flight.append(info)
        self._count_acks(tally)

    def _count_acks(self, tally: Tally) -> None:
        while self.in_flight and self.in_flight[0].is_published():
            self.in_flight.popleft()
            tally.acknowledged += 1

    def close(self, tally: Tally, timeout: float = 10.0) -> None:
        """Wait for the broker to acknowledge what is in flight, then disconnect."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            self.in_flight[0].wait_for_publish(max(0.0, deadline - time.monotonic()))
            self._count_acks(tally)
        if self.in_flight:
            tally.failures += len(self.in_flight)
            tally.last_error = f"{len(self.in_flight)} messages not acknowledged by the broker"
        self.client.disconnect()
        self.client.loop_stop()


def in_format(envelopes: Iterable[Envelope], fmt: str, kinds: Mapping[str, str]) -> list[Envelope]:
    """The envelopes as the hub receives them in that format (hikvision: through the ISAPI adapter)."""
    if fmt == "linli":
        return list(envelopes)
    out: list[Envelope] = []
    for envelope in envelopes:
        out.extend(through_adapter(envelope, kinds.get(envelope.device, "")))
    return out


def play(
    events: Iterable[Envelope],
    deliver: Callable[[list[Envelope]], None],
    *,
    sim_start: float,
    speed: float,
    duration: float,
    tick: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[float, float], None] | None = None,
    progress_every: float = 5.0,
) -> float:
    """Deliver each event when the simulated clock reaches it, for `duration` wall seconds; returns them.

    The simulated clock runs `speed` simulated seconds per wall second from sim_start. A transport slower
    than the stream falls behind and catches up with larger batches; nothing is skipped.
    """
    wall0 = clock()
    deadline = wall0 + duration
    next_report = wall0 + progress_every
    iterator = iter(events)
    upcoming = next(iterator, None)
    while upcoming is not None:
        now = clock()
        if now >= deadline:
            break
        sim_now = sim_start + (now - wall0) * speed
        due: list[Envelope] = []
        while upcoming is not None and upcoming.occurred_at.timestamp() <= sim_now:
            due.append(upcoming)
            upcoming = next(iterator, None)
        if due:
            deliver(due)
        elif upcoming is not None:
            wait = (upcoming.occurred_at.timestamp() - sim_now) / speed
            sleep(max(0.0, min(tick, wait, deadline - now)))
        if progress is not None and clock() >= next_report:
            next_report += progress_every
            progress(clock() - wall0, sim_start + (clock() - wall0) * speed)
    return clock() - wall0


@dataclass
class Options:
    """What `linli simulate` was asked to do."""

    community: str
    via: str = "http"
    rate: float | None = None  # mean events per wall second over a simulated day; None: natural volume
    duration: float = 60.0
    url: str | None = None
    fmt: str = "linli"
    seed: int = 1
    day_seconds: float = DAY_S
    create_devices: bool = False
    start: datetime | None = None  # first simulated instant; default: see start_of

    def check(self) -> None:
        """Invalid naming the option that makes no sense."""
        if self.via not in VIAS:
            raise Invalid(f"--via must be one of {', '.join(VIAS)}", field="via")
        if self.fmt not in FORMATS:
            raise Invalid(f"--format must be one of {', '.join(FORMATS)}", field="format")
        if self.rate is not None and self.rate <= 0:
            raise Invalid("--rate must be positive", field="rate")
        if self.duration <= 0:
            raise Invalid("--duration must be positive", field="duration")
        if self.day_seconds <= 0:
            raise Invalid("--day-seconds must be positive", field="day_seconds")


def start_of(options: Options, now: datetime) -> datetime:
    """The first simulated instant: real time starts now; a compressed run ends now (at most 29 days back)."""
    if options.start is not None:
        return options.start
    speed = DAY_S / options.day_seconds
    if speed <= 1:
        return now
    return now - min(timedelta(seconds=options.duration * speed), MAX_REPLAY)


def prepare(
    factory: sessionmaker[Session], options: Options, echo: Callable[[str], None]
) -> fleet.Registered:
    """The community's devices, secrets and plates; registers a device set first if asked and it has none."""
    with unit_of_work(factory) as session:
        areas.get_community_or_raise(session, code=options.community)
        registered = fleet.load(session, options.community)
        if registered.devices and options.create_devices:
            echo(f"社区 {options.community} 已有 {len(registered.devices)} 台设备，直接使用（未新建）")
        if not registered.devices and options.create_devices:
            created = fleet.create_devices(session, options.community)
            echo(f"已为社区 {options.community} 登记 {len(created)} 台模拟设备 / registered devices:")
            for device in created:
                echo(f"  {device.serial:40s} {device.kind:18s} {device.location}")
            registered = fleet.load(session, options.community)
    if not registered.devices:
        raise Invalid(
            f"社区 {options.community} 没有登记设备；加 --create-devices 登记一套模拟设备",
            field="community",
        )
    return registered


def make_sender(options: Options, registered: fleet.Registered) -> Sender:
    """The transport the options ask for."""
    if options.via == "mqtt":
        communities = {d.serial: d.community for d in registered.devices}
        return MqttSender(options.url or DEFAULT_MQTT_URL, communities, client_id="")
    return HttpSender(options.url or DEFAULT_HTTP_URL, registered.secrets)


def run(
    registered: fleet.Registered,
    options: Options,
    echo: Callable[[str], None],
    *,
    sender: Sender | None = None,
    now: datetime | None = None,
) -> Tally:
    """Generate the community's stream and play it through the transport; returns the tally."""
    options.check()
    devices, plates = registered.devices, registered.plates
    speed = DAY_S / options.day_seconds
    volume = volume_for(options.rate, options.day_seconds, devices, plates) if options.rate else 1.0
    start = start_of(options, now or datetime.now(UTC))
    span = options.duration * speed
    scaled, fixed = natural_daily_events(devices, plates)
    per_wall_second = (scaled * volume + fixed) / options.day_seconds
    echo(
        f"模拟 / simulating {len(devices)} devices, {len(plates)} registered plates of {options.community}: "
        f"{speed:g}x real time from {start.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M:%S} (Asia/Shanghai), "
        f"volume x{volume:.3g} (~{per_wall_second:.1f} events/s on average), via {options.via}, "
        f"format {options.fmt}, seed {options.seed}"
    )
    scenario = Scenario(
        devices=devices,
        plates=plates,
        seed=options.seed,
        volume=volume,
        cards=registered.cards,
        faces=registered.faces,
    )
    events = Simulation(scenario, start.timestamp(), start.timestamp() + span)
    transport = sender or make_sender(options, registered)
    kinds = {d.serial: d.kind for d in devices}
    tally = Tally()

    pushes = options.fmt == "hikvision" and isinstance(transport, HttpSender)

    def deliver(due: list[Envelope]) -> None:
        if pushes:  # ISAPI devices push their XML to the hub's push endpoint, which reads it
            assert isinstance(transport, HttpSender)
            ours = []
            for envelope in due:
                xml = render(envelope, kinds.get(envelope.device, ""))
                if xml is None:
                    ours.append(envelope)
                    continue
                tally.by_type[envelope.type.value] += 1
                transport.push(HIKVISION_ADAPTER, envelope.device, xml, HIKVISION_HEADERS, tally)
            due = ours
        ready = in_format(due, options.fmt, kinds)
        tally.by_type.update(e.type.value for e in ready)
        transport.send(ready, tally)

    def progress(elapsed: float, sim_now: float) -> None:
        clock = datetime.fromtimestamp(sim_now, LOCAL_TZ)
        echo(
            f"  {elapsed:5.0f}s  sim {clock:%m-%d %H:%M}  sent {tally.sent}  stored {tally.stored}  "
            f"acked {tally.acknowledged}  failures {tally.failures}"
        )

    try:
        elapsed = play(
            events,
            deliver,
            sim_start=start.timestamp(),
            speed=speed,
            duration=options.duration,
            progress=progress,
        )
    finally:
        transport.close(tally)
    echo(f"完成 / done in {elapsed:.1f}s: {json.dumps(tally.summary(), ensure_ascii=False)}")
    return tally
