"""Device simulator, the pure part: a community's devices → a deterministic stream of envelopes in time.

Given the devices of a community, the plates of its registered vehicles and a seed, `stream` yields
schema-v1 envelopes in the order of their `occurred_at`, as the devices would send them over a stretch
of (simulated) time. No I/O, no clock, no database: sending is `simulator_send.py`'s business, and the
device set comes from `simulator_fleet.py`.

What the stream looks like:

- People at face terminals and card readers, with a morning (7–9) and an evening (17–20) peak and a
  quiet night; mostly going out in the morning and coming home in the evening; a few refusals.
- Vehicles at plate gates with the same peaks: registered cars (their plates link to the register)
  leave in the morning and come back in the evening; about one read in seven is a visitor's plate.
- Patrol rounds every two hours at night (22:00, 00:00, 02:00, 04:00): a guard's handset touches
  every checkpoint tag in turn.
- Sensor readings on a schedule (smoke level and temperature, humidity, water-leak rooms, hydrant
  pressure) following the day's temperature curve; meters whose totals grow with the household
  water/electricity use of the hour.
- Rare alarms (smoke, gas, water, door forced, door open too long, SOS …), each cleared some minutes
  later; motion and line crossings at cameras, mostly at night.
- Heartbeats, and devices that go offline now and then: a device falls silent (no heartbeat, no event)
  for 15 minutes to 2 hours, about once every two days.

Volume: every stream except the patrol rounds is scaled by `Scenario.volume`. 1.0 is a community's
natural volume (`natural_daily_events`); `volume_for` gives the factor that makes a stream average a
wanted number of events per second of wall time when a day is played in `day_seconds`. The daily shape
and the mix of the community are kept whatever the volume.

Determinism: the same scenario (devices, plates, seed, volume) over the same [start, end) yields the
same envelopes, ids included. Event ids are `sim<seed>-<start in ms, hex>-<n>`, so two runs started at
different times never collide in the hub's dedup.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from linli.core.timeutil import LOCAL_TZ
from linli.devices.events import Envelope, EventType
from linli.devices.models import DeviceKind

DAY_S = 86_400.0
LOCAL_OFFSET_S = 8 * 3600  # Asia/Shanghai has no daylight saving: a fixed offset keeps the hour maths fast
PATROL_HOURS = (22, 0, 2, 4)
REGISTERED_SHARE = 0.85  # of plate reads, when the community has registered vehicles
SOURCE = "linli-sim"


def _normalise(shape: tuple[float, ...]) -> tuple[float, ...]:
    mean = sum(shape) / len(shape)
    return tuple(v / mean for v in shape)


# Relative intensity per local hour 0..23 (normalised to a mean of 1, so a day's total is unchanged).
# fmt: off
PEOPLE_SHAPE = _normalise((0.15, 0.08, 0.05, 0.05, 0.08, 0.3, 0.9, 2.4, 2.6, 1.3, 0.8, 0.8,
                           1.0, 0.8, 0.7, 0.8, 1.0, 2.2, 2.5, 2.2, 1.3, 0.8, 0.45, 0.25))
VEHICLE_SHAPE = _normalise((0.1, 0.05, 0.03, 0.03, 0.05, 0.2, 0.9, 2.8, 2.6, 1.1, 0.7, 0.7,
                            0.9, 0.8, 0.7, 0.8, 1.1, 2.5, 2.8, 2.2, 1.1, 0.6, 0.35, 0.15))
NIGHT_SHAPE = _normalise((2.0, 2.0, 2.0, 2.0, 1.8, 1.2, 0.8, 0.6, 0.5, 0.5, 0.5, 0.5,
                          0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 1.8, 2.0))
USE_SHAPE = _normalise((0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.8, 2.2, 1.5, 0.9, 0.8, 1.1,
                        1.5, 1.0, 0.7, 0.7, 0.9, 1.3, 2.0, 2.3, 1.9, 1.4, 0.9, 0.5))
FLAT = (1.0,) * 24
# fmt: on


@dataclass(frozen=True)
class SimDevice:
    """One device as the simulator needs it: what it is, where it is, and its community."""

    serial: str
    kind: str
    community: str
    location: str = ""


@dataclass(frozen=True)
class Scenario:
    """What to simulate: the devices, the registered plates of the community, a seed and a volume."""

    devices: tuple[SimDevice, ...]
    plates: tuple[str, ...] = ()
    seed: int = 1
    volume: float = 1.0
    cards: tuple[str, ...] = ()  # the access cards residents hold (default: 400 made-up numbers)
    # The face ids each face terminal knows, by serial (its unit's residents); default u1 … u3000 anywhere.
    faces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Behaviour:
    """How one kind of device behaves at natural volume (periods in simulated seconds)."""

    heartbeat_s: float | None = None
    reading_s: float | None = None
    readings: tuple[str, ...] = ()  # quantities sent every reading_s
    activity_per_day: float = 0.0  # access / vehicle / motion / throw events
    activity: str = ""  # "people", "card", "vehicle", "motion", "throw"
    alarms: tuple[tuple[str, str, float], ...] = ()  # (alarm, level, per device per day)
    goes_offline: bool = True


BEHAVIOURS: dict[str, Behaviour] = {
    DeviceKind.CAMERA: Behaviour(heartbeat_s=180, activity_per_day=24, activity="motion"),
    DeviceKind.FACE_TERMINAL: Behaviour(
        heartbeat_s=180, activity_per_day=300, activity="people", alarms=(("door_forced", "critical", 0.01),)
    ),
    DeviceKind.CARD_READER: Behaviour(
        heartbeat_s=180, activity_per_day=400, activity="card", alarms=(("door_forced", "critical", 0.01),)
    ),
    DeviceKind.PLATE_GATE: Behaviour(heartbeat_s=180, activity_per_day=150, activity="vehicle"),
    DeviceKind.BARRIER: Behaviour(heartbeat_s=300),
    DeviceKind.PATROL_TAG: Behaviour(goes_offline=False),
    DeviceKind.PATROL_HANDSET: Behaviour(heartbeat_s=3600),
    DeviceKind.SMOKE_SENSOR: Behaviour(
        heartbeat_s=900,
        reading_s=600,
        readings=("smoke", "temperature"),
        alarms=(("smoke", "critical", 0.01),),
    ),
    DeviceKind.GAS_SENSOR: Behaviour(
        heartbeat_s=900, reading_s=600, readings=("gas",), alarms=(("gas", "critical", 0.005),)
    ),
    DeviceKind.WATER_SENSOR: Behaviour(
        heartbeat_s=900,
        reading_s=600,
        readings=("humidity", "temperature"),
        alarms=(("water", "warning", 0.01),),
    ),
    DeviceKind.DOOR_SENSOR: Behaviour(
        heartbeat_s=900, alarms=(("door_forced", "critical", 0.02), ("door_open_too_long", "warning", 0.05))
    ),
    DeviceKind.SOS_BUTTON: Behaviour(heartbeat_s=900, alarms=(("sos", "critical", 0.05),)),
    DeviceKind.WATER_METER: Behaviour(heartbeat_s=3600, reading_s=900, readings=("water",)),
    DeviceKind.ELECTRICITY_METER: Behaviour(heartbeat_s=3600, reading_s=900, readings=("electricity",)),
    DeviceKind.GAS_METER: Behaviour(heartbeat_s=3600, reading_s=900, readings=("gas_volume",)),
    DeviceKind.ELEVATOR_MONITOR: Behaviour(heartbeat_s=300, alarms=(("elevator", "warning", 0.01),)),
    DeviceKind.HYDRANT_PRESSURE: Behaviour(
        heartbeat_s=900,
        reading_s=600,
        readings=("pressure",),
        alarms=(("hydrant_pressure", "warning", 0.005),),
    ),
    DeviceKind.THROW_CAMERA: Behaviour(heartbeat_s=180, activity_per_day=0.05, activity="throw"),
    DeviceKind.GATEWAY: Behaviour(heartbeat_s=60),
}
DEFAULT_BEHAVIOUR = Behaviour(heartbeat_s=300)
SHAPES = {"people": PEOPLE_SHAPE, "card": PEOPLE_SHAPE, "vehicle": VEHICLE_SHAPE, "motion": NIGHT_SHAPE}
UNITS = {
    "smoke": "%obs/m",
    "temperature": "°C",
    "humidity": "%",
    "gas": "%LEL",
    "pressure": "kPa",
    "water": "m3",
    "electricity": "kWh",
    "gas_volume": "m3",
}
# Meter consumption per simulated day (a building's total meter).
DAILY_USE = {"water": 60.0, "electricity": 900.0, "gas_volume": 80.0}
VISITOR_PREFIXES = ("陕A", "陕A", "陕A", "陕D", "陕D", "陕E", "陕C", "甘A", "豫A", "川A", "晋A")
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
GUARDS = ("夜班一组", "夜班二组")
VEHICLE_COLOURS = ("白", "黑", "银", "灰", "红", "蓝")


def behaviour(kind: str) -> Behaviour:
    """The behaviour of a device kind (a generic heartbeating device for kinds not listed)."""
    return BEHAVIOURS.get(kind, DEFAULT_BEHAVIOUR)


def _gates(devices: tuple[SimDevice, ...]) -> int:
    return sum(1 for d in devices if d.kind == DeviceKind.PLATE_GATE)


def activity_per_day(device: SimDevice, devices: tuple[SimDevice, ...], plates: tuple[str, ...]) -> float:
    """Natural access/vehicle/motion events per day of a device (a gate's grows with the cars)."""
    rule = behaviour(device.kind)
    if rule.activity == "vehicle":
        # A registered car leaves and comes back about 1.1 times a day; visitors add the rest.
        registered_reads = 2.2 * len(plates) / max(1, _gates(devices))
        return max(rule.activity_per_day, registered_reads / REGISTERED_SHARE)
    return rule.activity_per_day


def natural_daily_events(devices: tuple[SimDevice, ...], plates: tuple[str, ...] = ()) -> tuple[float, float]:
    """(events per day that scale with the volume, events per day that do not: the patrol rounds)."""
    scaled = 0.0
    for device in devices:
        rule = behaviour(device.kind)
        if rule.heartbeat_s:
            scaled += DAY_S / rule.heartbeat_s
        if rule.reading_s:
            scaled += DAY_S / rule.reading_s * len(rule.readings)
        scaled += activity_per_day(device, devices, plates)
        scaled += sum(2 * per_day for _, _, per_day in rule.alarms)  # raised and cleared
    tags = sum(1 for d in devices if d.kind == DeviceKind.PATROL_TAG)
    return scaled, float(len(PATROL_HOURS) * tags)


def volume_for(
    rate: float, day_seconds: float, devices: tuple[SimDevice, ...], plates: tuple[str, ...] = ()
) -> float:
    """The volume factor that makes the stream average `rate` events per wall second at that speed."""
    scaled, fixed = natural_daily_events(devices, plates)
    wanted = rate * day_seconds
    if scaled <= 0:
        return 1.0
    return max((wanted - fixed) / scaled, 1e-6)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean < 30:
        limit, k, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))


def local_hour(t: float) -> int:
    """The hour of day in Asia/Shanghai of a unix time."""
    return int((t + LOCAL_OFFSET_S) // 3600) % 24


def visitor_plate(rng: random.Random) -> str:
    """A plausible plate from outside the register (valid format, most from Shaanxi)."""
    prefix = VISITOR_PREFIXES[int(rng.random() * len(VISITOR_PREFIXES))]
    if rng.random() < 0.12:  # new energy: D/F then 5 characters
        head = "DF"[int(rng.random() * 2)]
        second = PLATE_LETTERS[int(rng.random() * len(PLATE_LETTERS))]
        return f"{prefix}{head}{second}{int(rng.random() * 10_000):04d}"
    first = PLATE_LETTERS[int(rng.random() * len(PLATE_LETTERS))] if rng.random() < 0.5 else ""
    digits = 5 - len(first)
    return f"{prefix}{first}{int(rng.random() * 10**digits):0{digits}d}"


def plate_colour(plate: str, rng: random.Random) -> str:
    """The colour a gate reports: green for new-energy (8 characters), a few yellow, else blue."""
    if len(plate) == 8:
        return "green"
    return "yellow" if rng.random() < 0.03 else "blue"


@dataclass(order=True)
class _Pending:
    at: float
    seq: int
    make: Callable[[], tuple[SimDevice, EventType, dict[str, Any]] | None] = field(compare=False)


@dataclass
class _Meter:
    total: float
    last_t: float


class _Plates:
    """Which registered cars are in or out, and which visitors are inside (lists: order is deterministic)."""

    def __init__(self, plates: tuple[str, ...], rng: random.Random) -> None:
        self.rng = rng
        self.inside: list[str] = []
        self.outside: list[str] = []
        for plate in plates:
            (self.inside if rng.random() < 0.7 else self.outside).append(plate)
        self.visitors_inside: list[str] = []
        self.regulars: list[str] = [visitor_plate(rng) for _ in range(max(10, len(plates) // 20))]

    def _take(self, pool: list[str]) -> str:
        i = int(self.rng.random() * len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        return pool.pop()

    def read(self, *, entering: bool) -> str:
        """The plate of the next car through the gate in that direction."""
        rng = self.rng
        registered = bool(self.inside or self.outside) and rng.random() < REGISTERED_SHARE
        if registered:
            source, target = (self.outside, self.inside) if entering else (self.inside, self.outside)
            if not source:
                source, target = target, source
            plate = self._take(source)
            target.append(plate)
            return plate
        if entering:
            plate = (
                self.regulars[int(rng.random() * len(self.regulars))]
                if rng.random() < 0.3
                else visitor_plate(rng)
            )
            self.visitors_inside.append(plate)
            if len(self.visitors_inside) > 500:  # visitors who left through a gate we do not see
                self.visitors_inside.pop(0)
            return plate
        return self._take(self.visitors_inside) if self.visitors_inside else visitor_plate(rng)


class Simulation:
    """The generator's state; `stream` is the way to use it."""

    def __init__(self, scenario: Scenario, start: float, end: float) -> None:
        self.scenario = scenario
        self.start, self.end = start, end
        self.volume = scenario.volume
        self.rng = random.Random(f"linli-sim:{scenario.seed}")
        self.devices = scenario.devices
        self.prefix = f"sim{scenario.seed}-{int(start * 1000):x}"
        self.seq = 0
        self.pending_seq = 0
        self.pending: list[_Pending] = []
        self.plates = _Plates(scenario.plates, self.rng)
        self.cards = list(scenario.cards) or [f"{int(self.rng.random() * 10**10):010d}" for _ in range(400)]
        self.by_activity: dict[str, list[tuple[SimDevice, float]]] = {}
        self.periodic: list[tuple[SimDevice, str, float, float]] = []  # (device, what, period, phase)
        self.alarming: list[tuple[SimDevice, str, str, float]] = []
        self.meters: dict[tuple[str, str], _Meter] = {}
        self.offline: dict[str, list[tuple[float, float]]] = {}
        self.tags = [d for d in self.devices if d.kind == DeviceKind.PATROL_TAG]
        self.handsets = [d for d in self.devices if d.kind == DeviceKind.PATROL_HANDSET]
        self._plan()

    # ------------------------------------------------------------------ set-up

    def _device_rng(self, device: SimDevice, what: str) -> random.Random:
        return random.Random(f"linli-sim:{self.scenario.seed}:{device.serial}:{what}")

    def _face(self, device: SimDevice, rng: random.Random) -> str:
        """A face id the terminal recognises: one of its unit's residents, or u1 … u3000."""
        known = self.scenario.faces.get(device.serial)
        if known:
            return known[int(rng.random() * len(known))]
        return f"u{int(rng.random() * 3000) + 1}"

    def _plan(self) -> None:
        volume = self.volume
        for device in self.devices:
            rule = behaviour(device.kind)
            rng = self._device_rng(device, "plan")
            if rule.heartbeat_s:
                period = rule.heartbeat_s / volume
                self.periodic.append((device, "heartbeat", period, rng.random() * period))
            if rule.reading_s:
                period = rule.reading_s / volume
                for quantity in rule.readings:
                    self.periodic.append((device, quantity, period, rng.random() * period))
                    if quantity in DAILY_USE:
                        self.meters[(device.serial, quantity)] = _Meter(
                            round(1000 + rng.random() * 20_000, 2), self.start
                        )
            if rule.activity:
                per_day = activity_per_day(device, self.devices, self.scenario.plates) * volume
                self.by_activity.setdefault(rule.activity, []).append((device, per_day))
            for alarm, level, per_day in rule.alarms:
                self.alarming.append((device, alarm, level, per_day * volume))
            if rule.goes_offline:
                self.offline[device.serial] = self._offline_spells(device)

    def _offline_spells(self, device: SimDevice) -> list[tuple[float, float]]:
        """When a device is silent: about once every two days, for 15 minutes to two hours."""
        rng = self._device_rng(device, "offline")
        spells: list[tuple[float, float]] = []
        t = self.start
        while True:
            t += rng.expovariate(1 / (2 * DAY_S))
            if t >= self.end:
                return spells
            length = rng.uniform(15 * 60, 2 * 3600)
            spells.append((t, t + length))
            t += length

    def is_offline(self, serial: str, t: float) -> bool:
        """True if the device is in one of its silent spells at t."""
        return any(a <= t < b for a, b in self.offline.get(serial, ()))

    # ------------------------------------------------------------------ the stream

    def slice_seconds(self) -> float:
        """The simulated length of one generation step: at most 60 s, or about 2,000 events."""
        scaled, fixed = natural_daily_events(self.devices, self.scenario.plates)
        per_second = (scaled * self.volume + fixed) / DAY_S
        return min(60.0, max(0.05, 2000.0 / per_second)) if per_second > 0 else 60.0

    def __iter__(self) -> Iterator[Envelope]:
        step = self.slice_seconds()
        a = self.start
        while a < self.end:
            b = min(a + step, self.end)
            events = self._slice(a, b)
            events.sort(key=lambda item: (item[0], item[1]))
            for t, _seq, device, event_type, payload in events:
                if not self.is_offline(device.serial, t):
                    yield self._envelope(t, device, event_type, payload)
            a = b

    def _envelope(
        self, t: float, device: SimDevice, event_type: EventType, payload: dict[str, Any]
    ) -> Envelope:
        self.seq += 1
        occurred = datetime.fromtimestamp(round(t, 3), LOCAL_TZ)
        return Envelope(
            id=f"{self.prefix}-{self.seq}",
            device=device.serial,
            type=event_type,
            occurred_at=occurred,
            source=SOURCE,
            payload=payload,
        )

    def _slice(self, a: float, b: float) -> list[tuple[float, int, SimDevice, EventType, dict[str, Any]]]:
        out: list[tuple[float, int, SimDevice, EventType, dict[str, Any]]] = []
        counter = iter(range(10**12))

        def add(t: float, device: SimDevice, event_type: EventType, payload: dict[str, Any]) -> None:
            out.append((t, next(counter), device, event_type, payload))

        hour = local_hour((a + b) / 2)
        rng = self.rng
        for activity, members in self.by_activity.items():
            shape = SHAPES.get(activity, FLAT)[hour]
            total = sum(per_day for _, per_day in members) * shape * (b - a) / DAY_S
            for _ in range(poisson(rng, total)):
                device = members[int(rng.random() * len(members))][0]
                t = a + rng.random() * (b - a)
                made = self._activity(activity, device, t)
                if made:
                    add(t, device, *made)
        for device, what, period, phase in self.periodic:
            k = math.ceil((a - self.start - phase) / period)
            t = self.start + phase + k * period
            while t < b:
                if t >= a:
                    add(t, device, *self._periodic(device, what, t))
                t += period
        for device, alarm, level, per_day in self.alarming:
            for _ in range(poisson(rng, per_day * (b - a) / DAY_S)):
                t = a + rng.random() * (b - a)
                add(t, device, *self._alarm(device, alarm, level, t))
        self._patrol_rounds(a, b)
        while self.pending and self.pending[0].at < b:
            item = heapq.heappop(self.pending)
            later = item.make()
            if later:
                add(item.at, *later)
        return out

    def _later(
        self, t: float, make: Callable[[], tuple[SimDevice, EventType, dict[str, Any]] | None]
    ) -> None:
        self.pending_seq += 1  # ids are given at yield time; pending items only need a stable order
        heapq.heappush(self.pending, _Pending(t, self.pending_seq, make))

    # ------------------------------------------------------------------ what devices say

    def _direction_out(self, t: float) -> bool:
        hour = local_hour(t)
        p_out = 0.72 if 5 <= hour < 10 else 0.3 if 16 <= hour < 21 else 0.5
        return self.rng.random() < p_out

    def _activity(
        self, activity: str, device: SimDevice, t: float
    ) -> tuple[EventType, dict[str, Any]] | None:
        rng = self.rng
        if activity == "vehicle":
            entering = not self._direction_out(t)
            plate = self.plates.read(entering=entering)
            payload: dict[str, Any] = {
                "plate": plate,
                "plate_colour": plate_colour(plate, rng),
                "lane": "入口" if entering else "出口",
                "confidence": round(0.88 + rng.random() * 0.11, 2),
            }
            if rng.random() < 0.8:
                payload["vehicle_colour"] = VEHICLE_COLOURS[int(rng.random() * len(VEHICLE_COLOURS))]
            return (EventType.VEHICLE_ENTERED if entering else EventType.VEHICLE_EXITED), payload
        if activity in ("people", "card"):
            direction = "out" if self._direction_out(t) else "in"
            door = device.location[:64]
            if activity == "people":
                if rng.random() < 0.04:
                    return EventType.ACCESS_DENIED, {
                        "credential": "face",
                        "door": door,
                        "direction": direction,
                        "reason": "face_not_matched",
                        "similarity": round(0.3 + rng.random() * 0.4, 3),
                    }
                return EventType.ACCESS_GRANTED, {
                    "credential": "face",
                    "door": door,
                    "direction": direction,
                    "person_ref": self._face(device, rng),
                    "similarity": round(0.86 + rng.random() * 0.13, 3),
                }
            if rng.random() < 0.03:
                return EventType.ACCESS_DENIED, {
                    "credential": "card",
                    "door": door,
                    "direction": direction,
                    "card_no": f"{int(rng.random() * 10**10):010d}",
                    "reason": "invalid_card",
                }
            card = self.cards[int(rng.random() * len(self.cards))]
            return EventType.ACCESS_GRANTED, {
                "credential": "card",
                "door": door,
                "direction": direction,
                "card_no": card,
            }
        if activity == "motion":
            kind = "line_crossing" if rng.random() < 0.4 else "intrusion" if rng.random() < 0.3 else "motion"
            target = "human" if rng.random() < 0.7 else "vehicle" if rng.random() < 0.6 else "unknown"
            return EventType.MOTION_DETECTED, {"kind": kind, "region": device.location[:64], "target": target}
        if activity == "throw":
            floor = 3 + int(rng.random() * 25)
            return EventType.THROW_DETECTED, {
                "floor": floor,
                "column": 1 + int(rng.random() * 4),
                "floor_uncertainty": 1.0,
                "confidence": round(0.6 + rng.random() * 0.35, 2),
                "trajectory": [[0.0, 400.0, 80.0], [0.2, 402.0, 150.0], [0.4, 405.0, 290.0]],
            }
        return None

    def _periodic(self, device: SimDevice, what: str, t: float) -> tuple[EventType, dict[str, Any]]:
        if what == "heartbeat":
            return EventType.DEVICE_HEARTBEAT, {"status": "ok"}
        if what in DAILY_USE:
            return EventType.METER_READING, {
                "quantity": what,
                "value": self._meter(device, what, t),
                "unit": UNITS[what],
            }
        return EventType.SENSOR_READING, {
            "quantity": what,
            "value": self._reading(what, t),
            "unit": UNITS[what],
        }

    def _meter(self, device: SimDevice, quantity: str, t: float) -> float:
        meter = self.meters[(device.serial, quantity)]
        # Consumption follows the hour's household use; readings only sample the growing total.
        use = DAILY_USE[quantity] * USE_SHAPE[local_hour(t)] * max(0.0, t - meter.last_t) / DAY_S
        meter.total += use * (0.8 + self.rng.random() * 0.4)
        meter.last_t = t
        return round(meter.total, 2)

    def _reading(self, quantity: str, t: float) -> float:
        rng = self.rng
        day = math.sin(2 * math.pi * (((t + LOCAL_OFFSET_S) % DAY_S) / DAY_S - 9 / 24))  # peaks about 15:00
        if quantity == "temperature":
            return round(18 + 5 * day + rng.gauss(0, 0.3), 1)
        if quantity == "humidity":
            return round(min(99.0, max(10.0, 55 - 12 * day + rng.gauss(0, 1.5))), 1)
        if quantity == "smoke":
            return round(abs(rng.gauss(0.02, 0.01)), 3)
        if quantity == "gas":
            return round(abs(rng.gauss(0.3, 0.2)), 2)
        if quantity == "pressure":
            return round(rng.gauss(320, 6), 1)
        return round(rng.random(), 3)

    def _alarm(self, device: SimDevice, alarm: str, level: str, t: float) -> tuple[EventType, dict[str, Any]]:
        detail = device.location[:256]
        cleared_after = self.rng.uniform(3 * 60, 30 * 60)

        def clear() -> tuple[SimDevice, EventType, dict[str, Any]]:
            return device, EventType.ALARM_CLEARED, {"alarm": alarm, "level": "info", "detail": detail}

        self._later(t + cleared_after, clear)
        return EventType.ALARM_RAISED, {"alarm": alarm, "level": level, "detail": detail}

    def _patrol_rounds(self, a: float, b: float) -> None:
        """Schedule a round's check-ins for each patrol hour that starts within [a, b)."""
        if not self.tags:
            return
        boundary = math.ceil((a + LOCAL_OFFSET_S) / 3600) * 3600 - LOCAL_OFFSET_S
        while boundary < b:
            hour = local_hour(boundary)
            if hour in PATROL_HOURS:
                self._schedule_round(boundary, PATROL_HOURS.index(hour))
            boundary += 3600

    def _schedule_round(self, t0: float, number: int) -> None:
        rng = self.rng
        guard = GUARDS[number % len(GUARDS)]
        handset = self.handsets[number % len(self.handsets)] if self.handsets else None
        t = t0 + rng.uniform(60, 300)
        for tag in self.tags:
            sender = handset or tag
            checkpoint = (tag.location or tag.serial)[:64]

            def check_in(
                sender: SimDevice = sender, checkpoint: str = checkpoint
            ) -> tuple[SimDevice, EventType, dict[str, Any]]:
                payload = {"checkpoint": checkpoint, "guard": guard, "route": "夜间巡逻线"}
                return sender, EventType.PATROL_CHECKED_IN, payload

            self._later(t, check_in)
            t += rng.uniform(90, 240)


def stream(scenario: Scenario, start: datetime, end: datetime) -> Iterator[Envelope]:
    """The envelopes the scenario's devices send between start and end, in occurred_at order."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    return iter(Simulation(scenario, start.timestamp(), end.timestamp()))


def day_of(scenario: Scenario, day: datetime) -> list[Envelope]:
    """Every envelope of one local day starting at `day` (00:00 Asia/Shanghai), for tests and previews."""
    start = day.astimezone(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    return list(stream(scenario, start, start + timedelta(days=1)))
