"""A device's readings over time: series per quantity, a meter's usage, thinning, scope and bad windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linli.core.errors import Invalid
from linli.devices import readings, service
from tests.devices.helpers import device, envelope

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _reading(serial: str, at: datetime, quantity: str, value: float, unit: str, meter: bool = False):  # type: ignore[no-untyped-def]
    kind = "meter.reading" if meter else "sensor.reading"
    return envelope(serial, kind, at=at, payload={"quantity": quantity, "value": value, "unit": unit})


@pytest.fixture
def smoke(session, world):  # type: ignore[no-untyped-def]
    """A smoke sensor that read smoke and temperature every 10 minutes for 6 hours, and sent heartbeats."""
    sensor, _ = device(
        session, world.tianfu, serial="NB-SMK-TF-R1", kind="smoke_sensor", location="3号楼1单元"
    )
    start = NOW - timedelta(hours=6)
    items = []
    for i in range(36):
        at = start + timedelta(minutes=10 * i)
        items.append(_reading(sensor.serial, at, "temperature", 20 + (i % 6), "°C"))
        items.append(_reading(sensor.serial, at, "smoke", 0.01 * (i % 3), "%obs/m"))
        items.append(envelope(sensor.serial, at=at + timedelta(seconds=30)))
    assert service.ingest(session, items, source="http", received_at=NOW).stored == 36 * 3
    session.commit()
    return sensor


def test_a_sensors_quantities_each_make_a_series(session, smoke) -> None:  # type: ignore[no-untyped-def]
    found = readings.get_series(session, device_id=smoke.id, since=NOW - timedelta(hours=24), until=NOW)
    assert [(s.quantity, s.unit, s.meter, s.count) for s in found] == [
        ("smoke", "%obs/m", False, 36),
        ("temperature", "°C", False, 36),
    ]
    temperature = found[1]
    assert (temperature.first, temperature.last, temperature.low, temperature.high) == (20, 25, 20, 25)
    assert temperature.usage is None  # a sensor counts nothing
    assert temperature.first_at == NOW - timedelta(hours=6) and temperature.points[0] == (
        temperature.first_at,
        20,
    )
    assert [at for at, _ in temperature.points] == sorted(at for at, _ in temperature.points)
    # The window is [since, until): the first reading at since is in, nothing before the window is.
    later = readings.get_series(session, device_id=smoke.id, since=NOW - timedelta(hours=3), until=NOW)
    assert [s.count for s in later] == [18, 18]


def test_a_long_window_is_thinned_to_slice_means(session, smoke) -> None:  # type: ignore[no-untyped-def]
    found = readings.get_series(
        session, device_id=smoke.id, since=NOW - timedelta(hours=6), until=NOW, points=6
    )
    temperature = found[1]
    assert temperature.count == 36 and len(temperature.points) == 6
    # Each hour holds six readings, 20 … 25: each slice's mean is 22.5, at the mean of its times (+25 min).
    assert [v for _, v in temperature.points] == [22.5] * 6
    assert temperature.points[0][0] == NOW - timedelta(hours=6) + timedelta(minutes=25)
    assert (temperature.low, temperature.high) == (20, 25)  # from the readings, not the means


def test_a_meters_usage_over_the_window(session, world) -> None:  # type: ignore[no-untyped-def]
    meter, _ = device(session, world.tianfu, serial="LXSY-TF-R2", kind="water_meter", location="2号楼总水表")
    start = NOW - timedelta(hours=4)
    items = [
        _reading(meter.serial, start + timedelta(minutes=15 * i), "water", 1000 + 0.5 * i, "m3", True)
        for i in range(16)
    ]
    service.ingest(session, items, source="http", received_at=NOW)
    session.commit()
    (water,) = readings.get_series(session, device_id=meter.id, since=NOW - timedelta(hours=24), until=NOW)
    assert water.meter and water.count == 16 and water.usage == pytest.approx(7.5)
    # A meter replaced in the window starts again from zero: its usage cannot be told from first and last.
    service.ingest(
        session,
        [_reading(meter.serial, NOW - timedelta(minutes=5), "water", 3.0, "m3", True)],
        source="http",
        received_at=NOW,
    )
    session.commit()
    (water,) = readings.get_series(session, device_id=meter.id, since=NOW - timedelta(hours=24), until=NOW)
    assert water.count == 17 and water.usage is None


def test_bad_windows_are_refused_naming_the_field(session, smoke) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Invalid) as empty:
        readings.get_series(session, device_id=smoke.id, since=NOW, until=NOW)
    assert empty.value.field == "until"
    with pytest.raises(Invalid) as long:
        readings.get_series(session, device_id=smoke.id, since=NOW - timedelta(days=401), until=NOW)
    assert long.value.field == "since"


def test_the_api_answers_in_the_callers_areas_only(client, login, session, smoke) -> None:  # type: ignore[no-untyped-def]
    headers = login("shequ")
    got = client.get(
        f"/api/v1/devices/{smoke.id}/readings",
        headers=headers,
        params={"since": (NOW - timedelta(hours=24)).isoformat(), "until": NOW.isoformat(), "points": 12},
    )
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["device_id"] == smoke.id and [s["quantity"] for s in data["series"]] == [
        "smoke",
        "temperature",
    ]
    temperature = data["series"][1]
    assert (
        temperature["type"] == "sensor.reading"
        and temperature["count"] == 36
        and temperature["usage"] is None
    )
    assert len(temperature["points"]) <= 12 and temperature["min"] == 20 and temperature["max"] == 25
    # The default window is the last 24 hours.
    assert [
        s["count"]
        for s in client.get(f"/api/v1/devices/{smoke.id}/readings", headers=headers).json()["series"]
    ] == [36, 36]
    bad = client.get(
        f"/api/v1/devices/{smoke.id}/readings",
        headers=headers,
        params={"since": NOW.isoformat(), "until": (NOW - timedelta(hours=1)).isoformat()},
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "until"
    # A community worker of another community does not see the device at all; a resident reads no events.
    assert client.get(f"/api/v1/devices/{smoke.id}/readings", headers=login("shequ2")).status_code == 404
    assert client.get(f"/api/v1/devices/{smoke.id}/readings", headers=login("jumin")).status_code == 403
