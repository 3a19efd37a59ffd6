"""The device simulator's pure parts: daily patterns, plates, patrols, schema, determinism, pacing."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from linli.core.errors import Invalid
from linli.core.timeutil import LOCAL_TZ
from linli.demo.simulator import (
    DAY_S,
    PATROL_HOURS,
    Scenario,
    SimDevice,
    Simulation,
    day_of,
    natural_daily_events,
    stream,
    volume_for,
)
from linli.demo.simulator_fleet import BuildingRef, plan_devices
from linli.demo.simulator_hikvision import render, through_adapter
from linli.demo.simulator_send import Options, body_of, in_format, play, start_of
from linli.devices.events import Envelope, EventType
from linli.devices.register import normalise_serial

COMMUNITY = "611102001001"
DAY = datetime(2026, 3, 5, tzinfo=LOCAL_TZ)
BUILDINGS = [BuildingRef(None, str(n), 2 + n % 2) for n in range(1, 7)]
PLATES = tuple(f"陕A{n:05d}" for n in range(10_000, 10_400))
NIGHT = range(0, 5)
PEAKS = (7, 8, 17, 18, 19)


def _devices() -> tuple[SimDevice, ...]:
    return tuple(
        SimDevice(d["serial"], d["kind"], d["community"], d["location"])
        for d in plan_devices(COMMUNITY, BUILDINGS)
    )


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario(devices=_devices(), plates=PLATES, seed=7)


@pytest.fixture(scope="module")
def day(scenario: Scenario) -> list[Envelope]:
    """One local day at natural volume."""
    return day_of(scenario, DAY)


@pytest.fixture(scope="module")
def alarms() -> list[Envelope]:
    """A day of a few alarm-raising devices whose (rare) alarms are made 300 times as frequent."""
    kinds = ("smoke_sensor", "door_sensor", "sos_button", "water_sensor", "face_terminal")
    devices = tuple(SimDevice(f"A-{kind}-{n}", kind, COMMUNITY, f"{n}号楼") for kind in kinds for n in (1, 2))
    simulation = Simulation(Scenario(devices=devices, seed=4), DAY.timestamp(), DAY.timestamp() + DAY_S)
    simulation.alarming = [
        (device, alarm, level, 300 * rate) for device, alarm, level, rate in simulation.alarming
    ]
    return [e for e in simulation if e.type.value.startswith("alarm.")]


def _hour(envelope: Envelope) -> int:
    return envelope.occurred_at.astimezone(LOCAL_TZ).hour


def _per_hour(events: list[Envelope], prefix: str) -> Counter[int]:
    return Counter(_hour(e) for e in events if e.type.value.startswith(prefix))


@pytest.mark.parametrize("prefix", ["access.", "vehicle."])
def test_morning_and_evening_peaks_stand_well_above_the_night(day: list[Envelope], prefix: str) -> None:
    hours = _per_hour(day, prefix)
    night = sum(hours[h] for h in NIGHT) / len(NIGHT)
    for peak in PEAKS:
        assert hours[peak] > 5 * max(night, 1), (prefix, peak, sorted(hours.items()))
    assert hours[12] < hours[8] and hours[12] < hours[18]  # midday sits between the peaks


def test_people_leave_in_the_morning_and_come_home_in_the_evening(day: list[Envelope]) -> None:
    def share_out(hours: range) -> float:
        doors = [e for e in day if e.type == EventType.ACCESS_GRANTED and _hour(e) in hours]
        return sum(e.payload["direction"] == "out" for e in doors) / len(doors)

    assert share_out(range(6, 10)) > 0.6 > 0.4 > share_out(range(17, 21))
    exits = sum(1 for e in day if e.type == EventType.VEHICLE_EXITED and 6 <= _hour(e) < 10)
    entries = sum(1 for e in day if e.type == EventType.VEHICLE_ENTERED and 6 <= _hour(e) < 10)
    assert exits > 1.5 * entries


def test_plates_are_mostly_the_registered_ones_with_some_visitors(day: list[Envelope]) -> None:
    reads = [e.payload["plate"] for e in day if e.type.value.startswith("vehicle.")]
    registered = sum(plate in PLATES for plate in reads) / len(reads)
    assert len(reads) > 500
    assert 0.75 < registered < 0.95
    visitors = {plate for plate in reads if plate not in PLATES}
    assert len(visitors) > 20 and all(p[0] in "陕甘豫川晋" and 7 <= len(p) <= 8 for p in visitors)
    assert all(e.payload["plate_colour"] == "green" for e in day if len(e.payload.get("plate", "")) == 8)


def test_patrol_rounds_every_two_hours_at_night_touch_every_checkpoint(
    scenario: Scenario, day: list[Envelope]
) -> None:
    tags = [d for d in scenario.devices if d.kind == "patrol_tag"]
    handsets = {d.serial for d in scenario.devices if d.kind == "patrol_handset"}
    checks = [e for e in day if e.type == EventType.PATROL_CHECKED_IN]
    assert checks and {e.device for e in checks} <= handsets
    by_round = Counter(_hour(e) for e in checks)
    assert set(by_round) <= {22, 23, 0, 1, 2, 3, 4, 5}
    started = {h for h in PATROL_HOURS if by_round[h] > 0}
    assert len(started) >= 3  # a handset may be in one of its silent spells during a round
    complete = 0
    for hour in started:
        round_points = {e.payload["checkpoint"] for e in checks if _hour(e) in (hour, (hour + 1) % 24)}
        assert round_points <= {t.location for t in tags}
        complete += round_points == {t.location for t in tags}
    assert complete >= 2  # the others were cut short by a silent handset


def test_sensors_report_on_schedule_and_meters_only_grow(day: list[Envelope]) -> None:
    readings = [e for e in day if e.type == EventType.SENSOR_READING]
    assert {e.payload["quantity"] for e in readings} >= {"smoke", "temperature", "humidity", "pressure"}
    temps = defaultdict(list)
    for e in readings:
        if e.payload["quantity"] == "temperature":
            temps[_hour(e)].append(e.payload["value"])
    assert sum(temps[15]) / len(temps[15]) > sum(temps[4]) / len(temps[4]) + 4  # warm afternoon, cold night
    meters: dict[str, list[float]] = defaultdict(list)
    for e in day:
        if e.type == EventType.METER_READING:
            assert e.payload["quantity"] == "water" and e.payload["unit"] == "m3"
            meters[e.device].append(e.payload["value"])
    assert len(meters) == len(BUILDINGS)
    for values in meters.values():
        assert values == sorted(values) and values[-1] > values[0]


def test_rare_alarms_are_raised_and_cleared(day: list[Envelope], alarms: list[Envelope]) -> None:
    assert sum(e.type == EventType.ALARM_RAISED for e in day) < 0.001 * len(day)  # rare
    raised = [e for e in alarms if e.type == EventType.ALARM_RAISED]
    cleared = [e for e in alarms if e.type == EventType.ALARM_CLEARED]
    assert {e.payload["alarm"] for e in raised} >= {
        "smoke",
        "door_forced",
        "door_open_too_long",
        "sos",
        "water",
    }
    assert {e.payload["level"] for e in raised} == {"critical", "warning"}
    assert len(cleared) > 0.8 * len(raised)  # each is cleared 3 to 30 minutes later (unless the day ends)
    first_raised: dict[tuple[str, str], datetime] = {}
    for e in raised:
        first_raised.setdefault((e.device, e.payload["alarm"]), e.occurred_at)
    for e in cleared:
        assert e.occurred_at >= first_raised[(e.device, e.payload["alarm"])] + timedelta(minutes=3)


def test_devices_go_silent_for_a_while(scenario: Scenario) -> None:
    start = DAY.timestamp()
    simulation = Simulation(scenario, start, start + 4 * DAY_S)
    events = list(simulation)
    spells = [(serial, a, b) for serial, found in simulation.offline.items() for a, b in found]
    assert spells, "some devices should go offline within four days"
    for serial, a, b in spells:
        assert 15 * 60 <= b - a <= 2 * 3600
        assert not [e for e in events if e.device == serial and a <= e.occurred_at.timestamp() < b]
    silent = {serial for serial, _, _ in spells}
    beating = {e.device for e in events if e.type == EventType.DEVICE_HEARTBEAT}
    assert beating - silent  # the others keep beating


def test_every_envelope_validates_against_the_schema(day: list[Envelope], alarms: list[Envelope]) -> None:
    seen: set[str] = set()
    for envelope in [*day, *alarms]:
        wire = json.loads(body_of(envelope))
        again = Envelope.model_validate(wire)
        again.typed_payload()
        assert again.occurred_at.utcoffset() == timedelta(hours=8)
        seen.add(again.type.value)
    assert len({e.id for e in day}) == len(day)
    assert seen >= {t.value for t in EventType} - {"device.online", "device.offline", "throw.detected"}


def test_the_same_seed_gives_the_same_stream_and_another_seed_another(scenario: Scenario) -> None:
    start, end = DAY + timedelta(hours=7), DAY + timedelta(hours=9)
    first = [e.model_dump(mode="json") for e in stream(scenario, start, end)]
    again = [e.model_dump(mode="json") for e in stream(scenario, start, end)]
    other = Scenario(devices=scenario.devices, plates=scenario.plates, seed=scenario.seed + 1)
    different = [e.model_dump(mode="json") for e in stream(other, start, end)]
    assert first == again
    assert first != different
    times = [e["occurred_at"] for e in first]
    assert times == sorted(times) and times[0] >= start.isoformat()


def test_runs_started_at_different_times_never_share_event_ids(scenario: Scenario) -> None:
    one = {e.id for e in stream(scenario, DAY, DAY + timedelta(minutes=10))}
    two = {e.id for e in stream(scenario, DAY + timedelta(seconds=1), DAY + timedelta(minutes=10))}
    assert one and two and not one & two


def test_volume_for_hits_the_wanted_mean_rate(scenario: Scenario) -> None:
    rate, day_seconds = 50.0, 600.0  # 50 events/s, a day in ten minutes → 30,000 events a day
    volume = volume_for(rate, day_seconds, scenario.devices, scenario.plates)
    loud = Scenario(devices=scenario.devices, plates=scenario.plates, seed=3, volume=volume)
    count = len(day_of(loud, DAY))
    assert abs(count - rate * day_seconds) < 0.05 * rate * day_seconds
    scaled, fixed = natural_daily_events(scenario.devices, scenario.plates)
    assert scaled > 10_000 and fixed == len(PATROL_HOURS) * sum(
        d.kind == "patrol_tag" for d in scenario.devices
    )


def test_the_planned_device_set_is_realistic_and_registrable() -> None:
    planned = plan_devices(COMMUNITY, BUILDINGS)
    kinds = Counter(d["kind"] for d in planned)
    assert kinds["face_terminal"] == sum(b.units for b in BUILDINGS)
    assert kinds["plate_gate"] == 2 and kinds["card_reader"] == 2
    assert kinds["smoke_sensor"] == kinds["water_meter"] == len(BUILDINGS)
    assert kinds["patrol_tag"] >= 4 and kinds["patrol_handset"] == 2 and kinds["camera"] == 4
    assert kinds["sos_button"] >= 1 and kinds["water_sensor"] >= 1
    assert len({d["serial"] for d in planned}) == len(planned)
    assert all(normalise_serial(d["serial"]) == d["serial"] for d in planned)
    assert Counter(d["kind"] for d in plan_devices(COMMUNITY, BUILDINGS, per_entrance=2))[
        "face_terminal"
    ] == 2 * sum(b.units for b in BUILDINGS)


def test_hikvision_format_goes_through_the_isapi_adapter(scenario: Scenario, day: list[Envelope]) -> None:
    kinds = {d.serial: d.kind for d in scenario.devices}
    wanted = {"vehicle.entered", "vehicle.exited", "access.granted", "access.denied", "motion.detected"}
    samples: dict[tuple[str, str], Envelope] = {}
    for envelope in day:
        samples.setdefault((kinds[envelope.device], envelope.type.value), envelope)
    converted = 0
    for (kind, type_), envelope in samples.items():
        out = through_adapter(envelope, kind)
        assert len(out) == 1
        parsed = out[0]
        assert (parsed.type, parsed.device, parsed.occurred_at) == (
            envelope.type,
            envelope.device,
            envelope.occurred_at,
        )
        if render(envelope, kind) is None:
            assert parsed is envelope  # sensors, meters, alarms: still our schema
            continue
        converted += 1
        assert parsed.source == "hikvision_isapi" and parsed.id.startswith("hik:")
        if type_.startswith("vehicle."):
            assert parsed.payload["plate"] == envelope.payload["plate"]
        if type_.startswith("access."):
            assert parsed.payload["credential"] == envelope.payload["credential"]
            assert parsed.payload.get("person_ref") == envelope.payload.get("person_ref")
    assert converted >= len(wanted)
    xml = render(next(e for e in day if e.type == EventType.VEHICLE_ENTERED), "plate_gate")
    assert (
        xml is not None and b"<eventType>ANPR</eventType>" in xml and b"<direction>forward</direction>" in xml
    )
    assert len(in_format(day[:200], "hikvision", kinds)) == 200


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


def test_play_sends_each_event_once_its_simulated_time_has_come(scenario: Scenario) -> None:
    start = DAY + timedelta(hours=8)
    events = list(stream(scenario, start, start + timedelta(hours=1)))
    clock = FakeClock()
    sent: list[tuple[float, list[Envelope]]] = []

    def deliver(batch: list[Envelope]) -> None:
        sent.append((clock.now, batch))
        clock.now += 0.01  # sending takes a little time

    speed = 60.0  # an hour in a minute
    elapsed = play(
        events, deliver, sim_start=start.timestamp(), speed=speed, duration=30, clock=clock, sleep=clock.sleep
    )
    assert 30 <= elapsed < 30.5
    delivered = [e for _, batch in sent for e in batch]
    assert delivered == events[: len(delivered)]  # in order, none skipped
    assert len(delivered) > 0.4 * len(events)  # half the hour in 30 s
    for at, batch in sent:
        sim_now = start.timestamp() + (at - 1000.0) * speed
        assert all(e.occurred_at.timestamp() <= sim_now for e in batch)  # never ahead of the clock


def test_start_of_replays_the_past_when_compressed_and_options_are_checked() -> None:
    now = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)
    assert start_of(Options(community=COMMUNITY), now) == now
    compressed = Options(community=COMMUNITY, duration=60, day_seconds=600)  # 144x: 60 s → 2.4 h
    assert start_of(compressed, now) == now - timedelta(hours=2.4)
    long = Options(community=COMMUNITY, duration=3600, day_seconds=60)
    assert now - start_of(long, now) == timedelta(days=29)
    for bad in (
        Options(community=COMMUNITY, via="ftp"),
        Options(community=COMMUNITY, fmt="dahua"),
        Options(community=COMMUNITY, rate=0),
        Options(community=COMMUNITY, duration=0),
    ):
        with pytest.raises(Invalid):
            bad.check()


def test_card_reads_use_the_enrolled_cards_when_given(scenario: Scenario) -> None:
    enrolled = ("2021000001", "2021000002", "2021000003")
    carded = Scenario(devices=scenario.devices, plates=scenario.plates, seed=scenario.seed, cards=enrolled)
    granted = [
        e.payload["card_no"]
        for e in day_of(carded, DAY)
        if e.type == EventType.ACCESS_GRANTED and e.payload.get("credential") == "card"
    ]
    assert len(granted) > 20 and set(granted) == set(enrolled)


def test_a_face_terminal_recognises_its_own_units_residents_when_given(scenario: Scenario) -> None:
    door = next(d.serial for d in scenario.devices if d.kind == "face_terminal")
    faced = Scenario(
        devices=scenario.devices, plates=scenario.plates, seed=scenario.seed, faces={door: ("p7", "p9")}
    )
    seen = [
        e.payload["person_ref"]
        for e in day_of(faced, DAY)
        if e.type == EventType.ACCESS_GRANTED and e.device == door
    ]
    others = [
        e.payload["person_ref"]
        for e in day_of(faced, DAY)
        if e.type == EventType.ACCESS_GRANTED and e.device != door and "person_ref" in e.payload
    ]
    assert len(seen) > 5 and set(seen) <= {"p7", "p9"}
    assert others and all(ref.startswith("u") for ref in others)  # doors without a list keep u1 … u3000
