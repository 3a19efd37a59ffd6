"""A device's readings over time (sensor.reading, meter.reading): one series per quantity, for charts.

A sensor's readings (temperature, pressure, gas) are shown as they vary; a meter's (meter.reading) are
its counter, which only grows: its series says how much was used in the window (last minus first). A long
window is thinned to at most `points` points per series, each the mean of the readings in its slice of
time, so a month of ten-minute readings draws as fast as a day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.errors import Invalid
from linli.core.timeutil import as_utc
from linli.devices.events import EventType
from linli.devices.models import DeviceKind, StoredEvent

# Kinds that measure something: their page shows a readings card even when a window holds none.
READING_KINDS = frozenset(
    {
        DeviceKind.SMOKE_SENSOR,
        DeviceKind.GAS_SENSOR,
        DeviceKind.WATER_SENSOR,
        DeviceKind.WATER_METER,
        DeviceKind.ELECTRICITY_METER,
        DeviceKind.GAS_METER,
        DeviceKind.HYDRANT_PRESSURE,
        DeviceKind.ELEVATOR_MONITOR,
    }
)
READING_TYPES = (EventType.SENSOR_READING.value, EventType.METER_READING.value)
MAX_ROWS = 50_000  # readings read for one window at most: the newest, if the device sent more
MAX_WINDOW = timedelta(days=400)
DEFAULT_POINTS = 240


@dataclass(frozen=True)
class Series:
    """One quantity's readings of one device in a window, oldest first."""

    quantity: str
    unit: str
    meter: bool  # a meter's counter (meter.reading): it only grows, and usage is what it counted
    count: int  # readings in the window
    first: float
    last: float
    low: float
    high: float
    first_at: datetime
    last_at: datetime
    points: list[tuple[datetime, float]]  # at most the points asked for: each a slice's mean

    @property
    def usage(self) -> float | None:
        """A meter's count over the window; None for a sensor, or a counter that went back (a new meter)."""
        if not self.meter or self.last < self.first:
            return None
        return self.last - self.first


def get_series(
    session: Session,
    *,
    device_id: int,
    since: datetime,
    until: datetime,
    points: int = DEFAULT_POINTS,
) -> list[Series]:
    """The device's readings in [since, until), one series per (quantity, unit), by quantity; only those
    in the caller's areas (the store's scope). Invalid for an empty or overlong window."""
    since, until = as_utc(since), as_utc(until)
    if until <= since:
        raise Invalid("结束时间须晚于开始时间", field="until")
    if until - since > MAX_WINDOW:
        raise Invalid(f"时间范围不能超过 {MAX_WINDOW.days} 天", field="since")
    stmt = (
        select(StoredEvent.occurred_at, StoredEvent.type, StoredEvent.payload)
        .where(
            StoredEvent.device_id == device_id,
            StoredEvent.occurred_at >= since,
            StoredEvent.occurred_at < until,
            StoredEvent.type.in_(READING_TYPES),
        )
        .order_by(StoredEvent.occurred_at.desc())
        .limit(MAX_ROWS)
    )
    grouped: dict[tuple[str, str, bool], list[tuple[datetime, float]]] = defaultdict(list)
    for at, event_type, payload in session.execute(stmt):
        value = (payload or {}).get("value")
        # A stored reading passed the schema; a value of another kind (an old row) is left out, not drawn.
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        key = (str(payload.get("quantity", "")), str(payload.get("unit", "")), event_type == READING_TYPES[1])
        grouped[key].append((as_utc(at), float(value)))
    found = []
    for (quantity, unit, meter), readings in sorted(grouped.items()):
        readings.reverse()  # read newest first (the limit keeps the newest), drawn oldest first
        values = [v for _, v in readings]
        found.append(
            Series(
                quantity=quantity,
                unit=unit,
                meter=meter,
                count=len(readings),
                first=values[0],
                last=values[-1],
                low=min(values),
                high=max(values),
                first_at=readings[0][0],
                last_at=readings[-1][0],
                points=thin(readings, since=since, until=until, points=points),
            )
        )
    return found


def thin(
    readings: list[tuple[datetime, float]], *, since: datetime, until: datetime, points: int
) -> list[tuple[datetime, float]]:
    """At most `points` points: the readings themselves if few enough, else per equal slice of the window
    the mean time and mean value of the readings in it (slices without readings are left out)."""
    if len(readings) <= points:
        return list(readings)
    width = (until - since) / points
    slices: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for at, value in readings:
        slices[min(int((at - since) / width), points - 1)].append((at, value))
    thinned = []
    for index in sorted(slices):
        part = slices[index]
        mean_at = part[0][0] + sum((at - part[0][0] for at, _ in part), timedelta()) / len(part)
        thinned.append((mean_at, sum(v for _, v in part) / len(part)))
    return thinned
