"""Seed the demo district into the register: areas, buildings, houses, people, organisations, cars, users.

Rows go in community by community as bulk inserts with ids assigned here (no ORM objects, no change
records: one audit entry says what was seeded); the caller owns the transaction. On SQLite the rows are
prepared with the columns' own bind processors and written by the driver's executemany (see writer.py);
elsewhere they are Core inserts. At district scale a forked worker generates the next communities while
this process writes, which keeps two cores busy.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from linli.areas.models import Area, Level
from linli.core import audit
from linli.core.audit import Actor
from linli.core.auth import service as accounts
from linli.core.auth.roles import Role
from linli.core.errors import Conflict, Invalid
from linli.core.timeutil import utcnow
from linli.db import bulk_insert, starts_with
from linli.demo import writer
from linli.demo.data import TIANFU, YUYU, Community, District, district
from linli.demo.generator import Batch, Ids, generate_community
from linli.registry.models import Building, House, Organisation, Person, PersonTag, Residence, Vehicle

SCALES = ("small", "district")
DEMO_PASSWORD = "linli-demo-2026"
_CACHE_KIB = 256 * 1024
_AHEAD = 2  # communities generated ahead of the one being inserted
_ACTOR = Actor.system("demo")
EVENT_HOURS = 24  # the pilot communities' devices have sent this much before the demo starts
DEMO_CARDS = 400
EVENT_WINDOW = timedelta(minutes=5)  # the events of a window are received at its end, in one batch
_TABLES: dict[str, Any] = {
    "building": Building,
    "house": House,
    "person": Person,
    "residence": Residence,
    "tag": PersonTag,
    "organisation": Organisation,
    "vehicle": Vehicle,
}


def is_seeded(session: Session) -> bool:
    """True if the database holds any area (then `make run` leaves it alone)."""
    stmt = select(Area.id).limit(1).execution_options(skip_scope=True)
    return session.scalar(stmt) is not None


def seed(
    session: Session,
    *,
    scale: str = "small",
    seed: int = 20211,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Insert the demo district; "small" fills the three pilot communities, "district" all 142. No commit."""
    if scale not in SCALES:
        raise Invalid(f"未知规模：{scale}（可选 small、district）", field="scale")
    say = progress or (lambda _message: None)
    tree = district()
    taken = select(Area.id).where(Area.area_code == tree.code).execution_options(skip_scope=True)
    if session.scalar(taken) is not None:
        raise Conflict(f"演示新区 {tree.code} 已存在", field="scale")
    now = utcnow()
    areas = _area_rows(tree, first_id=_max_id(session, Area) + 1)
    writer.insert_rows(session, cast(Table, Area.__table__), areas, now)
    say(f"区域 {len(areas)} 个（{len(tree.communities)} 个社区）")
    communities = tree.communities if scale == "district" else [c for c in tree.communities if c.pilot]
    counts = {"areas": len(areas)} | _seed_communities(session, communities, seed=seed, now=now, say=say)
    counts["users"] = _create_users(session, tree)
    from linli.vision import demo as vision_demo  # the vision domain sits above the register it uses

    pilots = [c.code for c in tree.communities if c.pilot]
    counts["throw_cameras"] = vision_demo.seed(session, pilots, now=now)
    counts |= seed_device_events(session, pilots, seed=seed, now=now)
    say(f"设备 {counts['devices']} 台，最近 {EVENT_HOURS} 小时事件 {counts['device_events']} 条")
    _advance_sequences(session)
    audit.record(
        session,
        actor=_ACTOR,
        action="demo.seed",
        target_type="district",
        target_id=tree.code,
        area_code=tree.code,
        detail={"scale": scale, "seed": seed, **counts},
    )
    return counts


def _seed_communities(
    session: Session, communities: list[Community], *, seed: int, now: datetime, say: Callable[[str], None]
) -> dict[str, int]:
    start = Ids(**{name: _max_id(session, model) + 1 for name, model in _TABLES.items()})
    totals = dict.fromkeys(("buildings", "houses", "people", "residences", "organisations", "vehicles"), 0)
    fast = writer.fast_path(session)
    began = time.perf_counter()
    with _sqlite_cache(session, enabled=fast and len(communities) > 3):
        for n, batch in enumerate(_batches(communities, seed=seed, now=now, fast=fast), start=1):
            batch.shift(start)
            start = batch.end()
            if isinstance(batch, writer.Prepared):
                writer.insert_prepared(session, batch)
                sizes = batch.counts
            else:
                writer.insert_batch(session, batch, now)
                sizes = {name: len(getattr(batch, name)) for name, _ in writer.TABLES}
            for key in totals:
                totals[key] += sizes[key]
            rate = totals["people"] / max(time.perf_counter() - began, 1e-6)
            say(
                f"[{n}/{len(communities)}] {batch.community.name}：{sizes['people']:,} 人，"
                f"累计 {totals['people']:,} 人（{rate:,.0f} 人/秒）"
            )
    return totals


def _generate(community: Community, seed: int, now: datetime, fast: bool) -> Batch | writer.Prepared:
    """One community's rows, ready for the writer (runs in the worker process at district scale)."""
    batch = generate_community(community, seed=seed)
    return writer.prepare(batch, now) if fast else batch


def _batches(
    communities: list[Community], *, seed: int, now: datetime, fast: bool
) -> Iterator[Batch | writer.Prepared]:
    """Each community's rows in order; with many, a worker process generates ahead of the writer."""
    forkable = "fork" in multiprocessing.get_all_start_methods()
    if len(communities) <= 3 or (os.cpu_count() or 1) < 2 or not forkable:
        for community in communities:
            yield _generate(community, seed, now, fast)
        return
    # fork: the worker inherits the configured PII keys, which encryption and look-up hashes need.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: deque[Future[Batch | writer.Prepared]] = deque()
        for community in communities:
            pending.append(pool.submit(_generate, community, seed, now, fast))
            if len(pending) > _AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def _sqlite_cache(session: Session, *, enabled: bool) -> Iterator[None]:
    """A bigger SQLite page cache while writing a million rows (fewer spills to the WAL), then the old one."""
    if not enabled:
        yield
        return
    connection = session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


def _max_id(session: Session, model: Any) -> int:
    stmt = select(func.max(model.id)).execution_options(skip_scope=True)
    return int(session.scalar(stmt) or 0)


def _area_rows(tree: District, *, first_id: int) -> list[dict[str, Any]]:
    """Every area of the tree as a row, top down, with ids from first_id."""
    blank = {
        "resettlement": False,
        "buildings": None,
        "floor_area": None,
        "plot_ratio": None,
        "green_ratio": None,
        "households": None,
    }
    rows: list[dict[str, Any]] = []

    def add(
        code: str, level: Level, parent: str | None, name: str, name_en: str, box: Any, **facts: Any
    ) -> None:
        lat, lon = box.centre
        rows.append(
            {
                "id": first_id + len(rows),
                "area_code": code,
                "level": level.value,
                "parent_code": parent,
                "name": name,
                "name_en": name_en,
                "lat": lat,
                "lon": lon,
                "boundary": box.polygon(),
                **blank,
                **facts,
            }
        )

    add(tree.code, Level.DISTRICT, None, tree.name, tree.name_en, tree.box)
    for city in tree.new_cities:
        add(city.code, Level.NEW_CITY, tree.code, city.name, city.name_en, city.box)
        for street in city.streets:
            add(street.code, Level.STREET, city.code, street.name, street.name_en, street.box)
            for c in street.communities:
                add(
                    c.code,
                    Level.COMMUNITY,
                    street.code,
                    c.name,
                    c.name_en,
                    c.box,
                    resettlement=c.resettlement,
                    buildings=c.buildings,
                    floor_area=c.floor_area,
                    plot_ratio=c.plot_ratio,
                    green_ratio=c.green_ratio,
                    households=c.households,
                )
                for i, grid in enumerate(c.grids, start=1):
                    add(grid.code, Level.GRID, c.code, grid.name, f"Grid {i}", grid.box)
    return rows


def demo_users(tree: District) -> list[tuple[str, str, str, str]]:
    """(username, role, area code, display name) of the demo accounts; all use DEMO_PASSWORD."""
    tianfu, yuyu = tree.community(TIANFU), tree.community(YUYU)
    return [
        ("admin", Role.DISTRICT_ADMIN, tree.code, "新区管理员"),
        ("jiedao", Role.STREET_STAFF, tianfu.street_code, "街道工作人员"),
        ("shequ", Role.COMMUNITY_WORKER, tianfu.code, "天府和苑社区工作者"),
        ("wangge", Role.GRID_WORKER, tianfu.grids[0].code, "天府和苑第一网格网格员"),
        ("wuye", Role.PROPERTY_STAFF, tianfu.code, "天府和苑物业"),
        ("jingwu", Role.POLICE_LIAISON, tree.code, "警务联络员"),
        ("shequ2", Role.COMMUNITY_WORKER, yuyu.code, "昱宇西苑社区工作者"),
        ("jumin", Role.RESIDENT, tianfu.code, "天府和苑居民"),
    ]


def _create_users(session: Session, tree: District) -> int:
    made = 0
    for username, role, code, display in demo_users(tree):
        if accounts.get_by_username(session, username=username) is None:
            accounts.create(
                session,
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                area_codes=[code],
                display_name=display,
                actor=_ACTOR,
            )
            made += 1
    return made


def _advance_sequences(session: Session) -> None:
    """PostgreSQL: move each id sequence past the ids assigned here (SQLite needs nothing)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in (Area, *_TABLES.values()):
        name = model.__tablename__
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT COALESCE(max(id), 1) FROM {name}))"
            )
        )


def seed_device_events(
    session: Session, communities: list[str], *, seed: int, now: datetime
) -> dict[str, int]:
    """Register each community's device set and play its last EVENT_HOURS of simulated events into the hub.

    The events go through the hub's own ingest (validation, linking, health, rollups, the outbox), so the
    event lists, device pages and dashboards show a realistic day from the first start, at its natural
    volume (about 77,000 events a day in 天府和苑; the hourly charts show the day's peaks, as the live demo
    goes on at the same volume). The communities' streams are merged in time and received in windows of
    EVENT_WINDOW, each as the hub would have received it then.
    """
    from linli.demo import simulator_fleet as fleet  # the device hub sits above the register it links to
    from linli.demo.simulator import Scenario, stream
    from linli.devices import service as hub

    devices = 0
    streams: list[Iterator[Any]] = []
    start = now - timedelta(hours=EVENT_HOURS)
    for number, code in enumerate(communities):
        devices += len(fleet.create_devices(session, code))
        _seed_credentials(session, code, seed=seed + number)
        found = fleet.load(session, code)  # with the cards and each door's face ids just enrolled
        facts = (found.devices, found.plates, seed + number)
        streams.append(stream(Scenario(*facts, cards=found.cards, faces=found.faces), start, now))
    events = 0
    window: list[Any] = []
    closes = start + EVENT_WINDOW
    for envelope in heapq.merge(*streams, key=lambda e: e.occurred_at):
        while envelope.occurred_at >= closes:
            if window:
                events += hub.ingest(session, window, source="demo", received_at=closes).stored
                window = []
            closes += EVENT_WINDOW
        window.append(envelope)
    if window:
        events += hub.ingest(session, window, source="demo", received_at=min(closes, now)).stored
    return {"devices": devices, "device_events": events}


def _seed_credentials(session: Session, community: str, *, seed: int) -> None:
    """Enrol the community's residents on its access terminals: each a face id (`p<person id>`, which
    the face terminals of their unit recognise) and the first DEMO_CARDS an access card, so the demo's
    door events link to people as a real community's would."""
    from linli.devices.models import DeviceCredential  # the device hub sits above the register

    stmt = (
        select(Person.id)
        .where(starts_with(Person.area_code, community))
        .order_by(Person.id)
        .execution_options(skip_scope=True)
    )
    people = list(session.scalars(stmt))
    cards = [f"{seed % 10_000:04d}{i:06d}" for i in range(1, min(DEMO_CARDS, len(people)) + 1)]
    rows = [
        {"area_code": community, "device_id": None, "kind": "person_ref", "value": f"p{p}", "person_id": p}
        for p in people
    ] + [
        {"area_code": community, "device_id": None, "kind": "card", "value": card, "person_id": p}
        for card, p in zip(cards, people, strict=False)
    ]
    bulk_insert(session, cast(Table, DeviceCredential.__table__), rows, {"created_at": utcnow()})
