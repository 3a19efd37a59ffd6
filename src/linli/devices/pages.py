"""Device hub console pages: devices, a device's health and events, the event log, dead letters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.errors import Invalid
from linli.core.outbox import deliver_outbox
from linli.core.pagination import PageWindow
from linli.core.timeutil import local_today, parse_local, utcnow
from linli.devices import deadletters, exports, health, queries, readings, register, service, sse
from linli.devices.events import EventType
from linli.devices.models import Device
from linli.devices.pages_common import community_names, device_places, labels, person_names, silent_for
from linli.devices.pages_manage import STREAM_SECONDS, command_context
from linli.devices.pages_manage import router as manage_router
from linli.registry import people, places, vehicles
from linli.registry.models import Building
from linli.registry.pages_areas import map_features
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render, xlsx_download

router = APIRouter(include_in_schema=False)
router.include_router(manage_router)  # first: /devices/new is not a device id
PAGE_SIZE = 50
DEVICE_EVENTS = 50
DEVICE_EVENTS_DAYS = 30  # a device's page lists its events of the last month
ALL_TYPES = "all"  # the event log's type filter for every event, heartbeats too
# Without a type, the event log shows what happened: a heartbeat only says a device is alive (its page's
# health says so), and they are most of what the devices send (a camera beats every 3 minutes).
WITHOUT_HEARTBEATS = [t.value for t in EventType if t != EventType.DEVICE_HEARTBEAT]
PERSON_EVENTS = 20
Community = Annotated[str, Query(max_length=32, pattern=r"^[0-9]*$")]
REASON_PATTERN = "^(" + "|".join(deadletters.REASONS) + ")?$"  # a kind of refusal, or none

NOTICES: dict[str, str] = {"saved": "设备信息已保存", "state": "设备状态已更新"}
OUTCOMES: dict[str, str] = {
    "replayed": "已重放，事件已入库",
    "refused": "重放未成功，原因已更新",
    "discarded": "已丢弃",
}


class DeviceFilters:
    """The device list's filters from the query string (the page and its .xlsx export share them): kind,
    community, state, online or offline (offline: silent too long, never a kind that is not monitored)
    and words (q) in the serial, name, model or location or naming a kind."""

    NAMES = ("kind", "community", "state", "link", "q")

    def __init__(
        self,
        kind: Annotated[str, Query(max_length=32)] = "",
        community: Community = "",
        state: Annotated[str, Query(pattern=r"^(active|maintenance|retired)?$")] = "",
        link: Annotated[str, Query(pattern=r"^(online|offline)?$")] = "",
        q: Annotated[str, Query(max_length=100)] = "",
    ) -> None:
        self.kind, self.community, self.state, self.link, self.q = kind, community, state, link, q.strip()

    def query(self) -> dict[str, Any]:
        """register.get_all's filters."""
        return {
            "area": self.community or None,
            "kind": self.kind or None,
            "state": self.state or None,
            "online": {"online": True, "offline": False}.get(self.link),
            "text": self.q or None,
        }

    def given(self) -> dict[str, str]:
        """The filters given, by query parameter, as typed."""
        return {name: getattr(self, name) for name in self.NAMES if getattr(self, name)}


@router.get("/devices", response_class=HTMLResponse)
def device_list(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    filters: Annotated[DeviceFilters, Depends()],
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    """Devices in the caller's areas, by serial, by DeviceFilters, with the counts of those in use."""
    principal.require(Perm.DEVICES_READ)
    window = PageWindow(page, PAGE_SIZE)
    found = register.get_all(session, **filters.query(), limit=window.limit, offset=window.offset)
    names = community_names(session)
    shown, has_more = window.split(found)
    kept = filters.given()
    community, kind = filters.community, filters.kind
    return render(
        request,
        "devices/devices.html",
        devices=shown,
        has_more=has_more,
        page=page,
        kind=kind,
        community=community,
        state=filters.state,
        link=filters.link,
        q=filters.q,
        can_export=principal.can(Perm.EXPORT),
        export_limit=exports.DEVICE_EXPORT_LIMIT,
        now=utcnow(),
        silent_for=silent_for,
        query=urlencode(kept),
        # The summary's links: the devices in use of this kind and community, online or offline.
        in_use={k: v for k, v in kept.items() if k in ("kind", "community")} | {"state": "active"},
        summary=register.link_summary(session, area=community or None, kind=kind or None),
        by_kind=register.link_summary_by_kind(session, area=community or None) if not kind else {},
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
        community_names=names,
        can_write=principal.can(Perm.DEVICES_WRITE),
        **labels(),
    )


@router.get("/devices.xlsx")
def device_export(
    session: DB, principal: PagePrincipal, filters: Annotated[DeviceFilters, Depends()]
) -> Response:
    """The device register as .xlsx, by the list's filters (at most exports.DEVICE_EXPORT_LIMIT devices),
    in the columns the import reads; audited."""
    principal.require(Perm.EXPORT)
    data, _ = exports.devices_xlsx(session, principal, query=filters.query(), given=filters.given())
    return xlsx_download(data, f"设备台账-{local_today():%Y%m%d}.xlsx", fallback="devices.xlsx")


def _device_events(session: DB, device: Device, now: datetime) -> list[Any]:
    """A device's latest events for its page. A heartbeat says only that the device is alive, which its
    health says: the list shows what happened, in the last DEVICE_EVENTS_DAYS (a bound on the rows read:
    the type is not in the device's index, and a camera beats 480 times a day); older ones are in the
    event log, one click away."""
    return queries.get_events(
        session,
        device_id=device.id,
        types=WITHOUT_HEARTBEATS,
        since=now - timedelta(days=DEVICE_EVENTS_DAYS),
        limit=DEVICE_EVENTS,
    )


@router.get("/devices/{device_id:int}/events", response_class=HTMLResponse)
def device_events(request: Request, device_id: int, session: DB, principal: PagePrincipal) -> Response:
    """A device's latest events alone (an htmx part): its page fetches them again when its live stream
    (/events/stream?device=…) says one was stored."""
    principal.require(Perm.EVENTS_READ)
    device = register.get_or_raise(session, device_id=device_id)  # 404 outside the caller's areas
    events = _device_events(session, device, utcnow())
    return render(
        request,
        "devices/_device_events.html",
        events=events,
        person_names=person_names(session, principal, events),
        community_names=community_names(session),
        **labels(),
    )


READING_RANGES: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CHART_W, CHART_H, CHART_PAD = 600.0, 120.0, 8.0


@dataclass(frozen=True)
class Chart:
    """A series drawn in a CHART_W × CHART_H box: its line, and its dots when they are few."""

    series: readings.Series
    line: str  # SVG polyline points, "x,y x,y …"
    dots: list[tuple[float, float]]


def _chart(series: readings.Series, *, since: datetime, until: datetime) -> Chart:
    span = (until - since).total_seconds()
    low, high = series.low, series.high
    usable = CHART_H - 2 * CHART_PAD

    def y(value: float) -> float:
        return round(
            CHART_H / 2 if high == low else CHART_H - CHART_PAD - (value - low) / (high - low) * usable, 1
        )

    coords = [
        (round((at - since).total_seconds() / span * CHART_W, 1), y(value)) for at, value in series.points
    ]
    return Chart(series, " ".join(f"{x},{yy}" for x, yy in coords), coords if len(coords) <= 60 else [])


@router.get("/devices/{device_id:int}", response_class=HTMLResponse)
def device_page(
    request: Request,
    device_id: int,
    session: DB,
    principal: PagePrincipal,
    notice: Annotated[str, Query(max_length=16)] = "",
    period: Annotated[str, Query(pattern=r"^(24h|7d|30d)$")] = "24h",
) -> Response:
    """A device: its facts, health (uptime over 7 and 30 days), its readings over the last day, week or
    month (a sensor's or a meter's), its latest events but heartbeats, and its commands."""
    principal.require(Perm.DEVICES_READ)
    device = register.get_or_raise(session, device_id=device_id)
    now = utcnow()
    can_events = principal.can(Perm.EVENTS_READ)
    events = _device_events(session, device, now) if can_events else []
    # What it did hour by hour (a door's passes, a gate's reads, a camera's detections): a reader that
    # stopped at noon shows; a sensor's or meter's readings are charted below instead.
    acts = [t for t in WITHOUT_HEARTBEATS if t not in (EventType.DEVICE_ONLINE, EventType.DEVICE_OFFLINE)]
    activity = (
        queries.device_hourly(session, device_id=device.id, now=now, types=acts)
        if can_events and device.kind not in readings.READING_KINDS and device.kind not in health.UNMONITORED
        else []
    )
    since = now - READING_RANGES[period]
    charts = (
        [
            _chart(s, since=since, until=now)
            for s in readings.get_series(session, device_id=device.id, since=since, until=now)
        ]
        if can_events
        else []
    )
    placed = device.building_id is not None or device.lat is not None
    buildings = places.list_buildings(session, community_code=device.community_code) if placed else []
    building = next((b for b in buildings if b.id == device.building_id), None)
    return render(
        request,
        "devices/device.html",
        device=device,
        building=building,
        map_data=_device_map(session, device, buildings),
        uptime_7d=health.uptime(session, device_id=device.id, now=now, days=7),
        uptime_30d=health.uptime(session, device_id=device.id, now=now, days=30),
        events=events,
        charts=charts,
        activity=activity,
        show_readings=can_events and (bool(charts) or device.kind in readings.READING_KINDS),
        reading_period=period,
        reading_since=since,
        reading_until=now,
        chart_size=(CHART_W, CHART_H),
        person_names=person_names(session, principal, events),
        can_events=can_events,
        can_write=principal.can(Perm.DEVICES_WRITE),
        can_command=principal.can(Perm.DEVICES_COMMAND),
        notice=NOTICES.get(notice, ""),
        community_names=community_names(session),
        **command_context(session, principal, device),
        **labels(),
    )


class EventFilters:
    """The event log's filters from the query string (the page and its .xlsx export share them): type
    (none: every type but heartbeats; ALL_TYPES: every one), community, person (with the person's
    vehicles), vehicle, plate (registered or not), device and a time range typed in local time (since
    inclusive, until exclusive). A malformed time or an empty range is refused (422, naming the field)
    when query() reads them: after the route has checked permissions."""

    NAMES = ("type", "community", "person", "vehicle", "plate", "device", "since", "until")

    def __init__(
        self,
        type: Annotated[str, Query(max_length=32)] = "",
        community: Community = "",
        person: Annotated[int | None, Query(ge=1)] = None,
        vehicle: Annotated[int | None, Query(ge=1)] = None,
        plate: Annotated[str, Query(max_length=32)] = "",
        device: Annotated[int | None, Query(ge=1)] = None,
        since: Annotated[str, Query(max_length=32)] = "",
        until: Annotated[str, Query(max_length=32)] = "",
    ) -> None:
        self.type, self.community, self.person, self.vehicle = type, community, person, vehicle
        self.plate, self.device, self.since, self.until = plate.strip(), device, since.strip(), until.strip()

    def query(self) -> dict[str, Any]:
        """queries.get_events' filters; Invalid for a malformed time or an empty range."""
        start, end = _local_time(self.since, "since"), _local_time(self.until, "until")
        if start is not None and end is not None and end <= start:
            raise Invalid("结束时间须晚于开始时间", field="until")
        return {
            "area": self.community or None,
            "types": self.types(),
            "person_id": self.person,
            "vehicle_id": self.vehicle,
            "plate": self.plate or None,
            "device_id": self.device,
            "since": start,
            "until": end,
        }

    def types(self) -> list[str] | None:
        """The types the log shows: one, every one (None), or by default every one but heartbeats."""
        if self.type == ALL_TYPES:
            return None
        return [self.type] if self.type else WITHOUT_HEARTBEATS

    def given(self) -> dict[str, Any]:
        """The filters given, by query parameter, as typed."""
        return {name: getattr(self, name) for name in self.NAMES if getattr(self, name)}


@router.get("/events", response_class=HTMLResponse)
def event_list(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    filters: Annotated[EventFilters, Depends()],
    before: Annotated[int | None, Query(ge=1)] = None,
    part: Annotated[str, Query(pattern=r"^(rows)?$")] = "",
) -> Response:
    """Latest events in the caller's areas, newest first, by EventFilters; page by id. part=rows: the
    table alone, which the first page fetches again when its live stream (/events/stream) says so."""
    principal.require(Perm.EVENTS_READ)
    rows = queries.get_events(session, **filters.query(), before=before, limit=PAGE_SIZE + 1)
    shown = rows[:PAGE_SIZE]
    kept = filters.given()
    # The last day's hourly counts (the rollups: by community and type only), on the first page of a log
    # that filters by nothing else.
    by_rollup = not before and not part and kept.keys() <= {"type", "community"}
    hourly = (
        queries.hourly_totals(session, now=utcnow(), area=filters.community or None, types=filters.types())
        if by_rollup
        else None
    )
    return render(
        request,
        "devices/_event_rows.html" if part else "devices/events.html",
        events=shown,
        person_names=person_names(session, principal, shown, also=filters.person),
        device_places=device_places(session, shown),
        older=shown[-1].id if len(rows) > PAGE_SIZE else None,
        # The page's filters as a query string, for the pager and the export; and without one of them,
        # for its × link.
        query=urlencode(kept),
        without={name: urlencode({k: v for k, v in kept.items() if k != name}) for name in filters.NAMES},
        type=filters.type,
        all_types=ALL_TYPES,
        community=filters.community,
        person=filters.person,
        vehicle=filters.vehicle,
        vehicle_plate=_plate(session, principal, filters.vehicle),
        plate=filters.plate,
        device=filters.device,
        device_found=register.get(session, device_id=filters.device) if filters.device else None,
        since=filters.since,
        until=filters.until,
        before=before,
        hourly=hourly,
        can_export=principal.can(Perm.EXPORT),
        export_limit=exports.EVENT_EXPORT_LIMIT,
        communities=areas.get_all(session, level=Level.COMMUNITY.value),
        community_names=community_names(session),
        **labels(),
    )


@router.get("/events/stream")
async def event_stream(
    request: Request,
    principal: PagePrincipal,
    filters: Annotated[EventFilters, Depends()],
    timeout: Annotated[float, Query(gt=0, le=3600)] = STREAM_SECONDS,
) -> Response:
    """Server-Sent Events for the event log's first page: an `event` each time an event its filters may
    show is stored in the caller's areas (the page then fetches its rows again). Plate and time are
    left to that fetch: a vehicle event is announced whatever its plate."""
    principal.require(Perm.EVENTS_READ)
    filters.query()  # a malformed time is refused here too
    scope = principal.scope
    wanted = {"device_id": filters.device, "vehicle_id": filters.vehicle}
    wanted = {key: value for key, value in wanted.items() if value is not None}
    types = filters.types()
    shown = set(types) if types is not None else None
    community, person = filters.community, filters.person

    def pick(data: dict[str, Any]) -> tuple[str, str] | None:
        area = data.get("area_code")
        if not scope.allows(area) or (community and not str(area or "").startswith(community)):
            return None
        if shown is not None and data.get("type") not in shown:
            return None  # by default a heartbeat, which the log does not show, reloads nothing
        if any(data.get(key) != value for key, value in wanted.items()):
            return None
        if person is not None and data.get("person_id") != person and data.get("vehicle_id") is None:
            return None  # a person's log also holds their vehicles' reads
        return "event", str(data.get("id"))

    return sse.stream(request, request.app.state.bus, "linli.events.>", pick, timeout=timeout, limit=100_000)


@router.get("/events.xlsx")
def event_export(
    session: DB, principal: PagePrincipal, filters: Annotated[EventFilters, Depends()]
) -> Response:
    """The event log as .xlsx, by the page's filters, newest first (at most exports.EVENT_EXPORT_LIMIT
    rows); audited."""
    principal.require(Perm.EXPORT)
    data, _ = exports.events_xlsx(session, principal, query=filters.query(), given=filters.given())
    return xlsx_download(data, f"设备事件-{local_today():%Y%m%d}.xlsx", fallback="events.xlsx")


def _device_map(session: DB, device: Device, buildings: list[Building]) -> dict[str, Any] | None:
    """The device's community (boundary, buildings) as GeoJSON for its page's map, with the device's own
    point and building to mark; None when neither is known (nothing to show)."""
    point = [device.lat, device.lon] if device.lat is not None and device.lon is not None else None
    area = areas.get(session, code=device.community_code)
    if area is None or (point is None and device.building_id is None):
        return None
    return {**map_features(area, buildings), "device": {"point": point, "building": device.building_id}}


def _local_time(text: str, field: str) -> datetime | None:
    """A time filter typed in Asia/Shanghai (timeutil.parse_local); Invalid naming the field if malformed."""
    try:
        return parse_local(text)
    except ValueError:
        raise Invalid(f"时间格式不正确：{text}（应为 2026-12-06T08:30）", field=field) from None


def _plate(session: DB, principal: PagePrincipal, vehicle_id: int | None) -> str:
    """The plate of a vehicle the caller may see ("" if none or out of scope), for the filter's label."""
    if vehicle_id is None or not principal.can(Perm.VEHICLES_READ):
        return ""
    found = vehicles.get(session, vehicle_id=vehicle_id)
    return found.plate if found is not None else ""


@router.get("/people/{person_id}/events", response_class=HTMLResponse)
def person_events(request: Request, person_id: int, session: DB, principal: PagePrincipal) -> Response:
    """The latest events of a person (theirs and their vehicles'), for the person's page (an htmx part)."""
    principal.require(Perm.EVENTS_READ)
    principal.require(Perm.PEOPLE_READ)
    person = people.get_or_raise(session, person_id=person_id)  # 404 outside the caller's areas
    events = queries.get_events(session, person_id=person.id, limit=PERSON_EVENTS)
    return render(
        request,
        "devices/_person_events.html",
        person=person,
        events=events,
        person_names={person.id: person.name},
        device_places=device_places(session, events),
        community_names=community_names(session),
        **labels(),
    )


@router.get("/vehicles/{vehicle_id}/events", response_class=HTMLResponse)
def vehicle_events(request: Request, vehicle_id: int, session: DB, principal: PagePrincipal) -> Response:
    """The latest plate reads of a vehicle, for the vehicle's page (an htmx part)."""
    principal.require(Perm.EVENTS_READ)
    principal.require(Perm.VEHICLES_READ)
    vehicle = vehicles.get_or_raise(session, vehicle_id=vehicle_id)  # 404 outside the caller's areas
    events = queries.get_events(session, vehicle_id=vehicle.id, limit=PERSON_EVENTS)
    return render(
        request,
        "devices/_vehicle_events.html",
        vehicle=vehicle,
        events=events,
        person_names=person_names(session, principal, events),
        device_places=device_places(session, events),
        community_names=community_names(session),
        **labels(),
    )


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(request: Request, event_id: int, session: DB, principal: PagePrincipal) -> Response:
    """One event: what it says, its device and links, its pictures and clips."""
    principal.require(Perm.EVENTS_READ)
    event = queries.get_event_or_raise(session, event_id=event_id)
    return render(
        request,
        "devices/event.html",
        event=event,
        person_names=person_names(session, principal, [event]),
        community_names=community_names(session),
        **labels(),
    )


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letter_list(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    status: Annotated[str, Query(max_length=16)] = "",
    device: Annotated[str, Query(max_length=64)] = "",
    source: Annotated[str, Query(max_length=64)] = "",
    reason: Annotated[str, Query(pattern=REASON_PATTERN)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
    outcome: Annotated[str, Query(max_length=16)] = "",
    replayed: Annotated[int, Query(ge=0)] = 0,
    refused: Annotated[int, Query(ge=0)] = 0,
    remaining: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Events the hub could not store, in the caller's areas, by status, device and way in; replay or
    discard one, or replay all the new ones shown (devices.write)."""
    principal.require(Perm.DEVICES_READ)
    device, source = device.strip(), source.strip()
    matching = deadletters.Matching(status=status, device_serial=device, source=source, reason=reason)
    rows = deadletters.get_all(
        session, scope=principal.scope, match=matching, before_id=before, limit=PAGE_SIZE + 1
    )
    shown = rows[:PAGE_SIZE]
    filters = {"status": status, "device": device, "source": source, "reason": reason}
    kept = {name: value for name, value in filters.items() if value}
    return render(
        request,
        "devices/dead_letters.html",
        letters=shown,
        older=shown[-1].id if len(rows) > PAGE_SIZE else None,
        status=status,
        device=device,
        source=source,
        reason=reason,
        sources=deadletters.sources(session, scope=principal.scope),
        query=urlencode(kept),
        new_count=deadletters.count(session, scope=principal.scope, match=replace(matching, status="new")),
        bulk_limit=service.BULK_REPLAY,
        bulk={"replayed": replayed, "refused": refused, "remaining": remaining}
        if outcome == "bulk"
        else None,
        outcome=OUTCOMES.get(outcome, ""),
        can_write=principal.can(Perm.DEVICES_WRITE),
        **labels(),
    )


@router.post("/dead-letters/{dead_letter_id}/replay")
def replay_letter(
    dead_letter_id: int,
    request: Request,
    session: DB,
    principal: PagePrincipal,
    background: BackgroundTasks,
) -> Response:
    """Ingest a dead letter again; back to the list saying whether it was stored."""
    letter, _ = service.replay(session, principal, dead_letter_id=dead_letter_id, now=utcnow())
    # Runs after the request's transaction has committed: the events reach the bus then.
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    outcome = "replayed" if letter.status == "replayed" else "refused"
    return RedirectResponse(f"/dead-letters?outcome={outcome}", status_code=303)


@router.post("/dead-letters/replay")
def replay_letters(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    background: BackgroundTasks,
    device: Annotated[str, Form(max_length=64)] = "",
    source: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(pattern=REASON_PATTERN)] = "",
) -> Response:
    """Replay the new dead letters of the list's device, way in and kind of refusal (all, if none), oldest
    first, at most service.BULK_REPLAY; back to the list with how many were stored, refused and left."""
    device, source = device.strip(), source.strip()
    done = service.replay_many(
        session, principal, now=utcnow(), device_serial=device, source=source, reason=reason or None
    )
    background.add_task(deliver_outbox, request.app.state.session_factory, request.app.state.bus)
    query = {"status": "new", "device": device, "source": source, "reason": reason, "outcome": "bulk"}
    counts = {"replayed": done.replayed, "refused": done.refused, "remaining": done.remaining}
    kept = urlencode({k: v for k, v in {**query, **counts}.items() if v != ""})
    return RedirectResponse(f"/dead-letters?{kept}", status_code=303)


@router.post("/dead-letters/{dead_letter_id}/discard")
def discard_letter(dead_letter_id: int, session: DB, principal: PagePrincipal) -> Response:
    """Mark a dead letter as dealt with, without storing it; back to the list."""
    principal.require(Perm.DEVICES_WRITE)
    letter = deadletters.get_or_raise(session, scope=principal.scope, dead_letter_id=dead_letter_id)
    deadletters.discard(session, letter)
    return RedirectResponse("/dead-letters?outcome=discarded", status_code=303)
