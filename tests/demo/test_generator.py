"""The demo district: static facts, deterministic valid registers, and a small-scale seed into SQLite."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from stdnum.cn import uscc as stdnum_uscc

import linli.areas.models
import linli.core.audit
import linli.core.auth.models
import linli.registry.models  # noqa: F401  (the tables must be known to the metadata)
from linli.areas.models import Area
from linli.core import pii
from linli.core.audit import AuditEntry
from linli.core.auth import service as accounts
from linli.core.errors import Conflict
from linli.core.text import name_pinyin_keys
from linli.db import Base, Scope, make_engine, make_session_factory, set_scope
from linli.demo import service, writer
from linli.demo.data import TIANFU, XINGFULI, YUYU, District, district
from linli.demo.generator import AS_OF, Batch, Ids, generate_community
from linli.demo.geo import Box
from linli.registry import people, places, search, validation
from linli.registry.models import ChangeRecord, Person, PersonTag, Residence, Vehicle

SEED = 20211
PILOTS = (TIANFU, YUYU, XINGFULI)
GRID_NAMES = ("第一网格", "第二网格", "第三网格", "第四网格")
HOME_PROVINCES = ("陕西省", "河南省", "甘肃省", "山西省", "四川省", "宁夏", "重庆市", "河北省", "安徽省")


def _age(birth: date) -> int:
    return AS_OF.year - birth.year - ((AS_OF.month, AS_OF.day) < (birth.month, birth.day))


def _metres(box: Box) -> tuple[float, float]:
    lat = (box.south + box.north) / 2
    return (box.east - box.west) * 111_320 * math.cos(math.radians(lat)), (box.north - box.south) * 111_320


@pytest.fixture(scope="module")
def tree() -> District:
    return district()


@pytest.fixture(scope="module")
def pilots(tree: District) -> dict[str, Batch]:
    """The three pilot communities, generated once (ids overlap between batches: each starts at 1)."""
    return {name: generate_community(tree.community(name), seed=SEED) for name in PILOTS}


@pytest.fixture(scope="module")
def others(tree: District) -> list[Batch]:
    """A few ordinary communities from different new cities."""
    picks = [c for c in tree.communities if not c.pilot][::40]
    return [generate_community(c, seed=SEED) for c in picks]


def _all(pilots: dict[str, Batch], others: list[Batch] | None = None) -> list[Batch]:
    return [*pilots.values(), *(others or [])]


# ---------------------------------------------------------------------------------------------- static facts


def test_district_has_five_new_cities_and_142_communities_96_resettled(tree: District) -> None:
    assert (tree.code, tree.name) == ("6111", "西咸新区")
    assert [(c.code, c.name) for c in tree.new_cities] == [
        ("611101", "空港新城"), ("611102", "沣东新城"), ("611103", "秦汉新城"), ("611104", "沣西新城"),
        ("611105", "泾河新城"),
    ]  # fmt: skip
    assert all(c.name_en.endswith("New City") for c in tree.new_cities)
    assert all(3 <= len(c.streets) <= 5 for c in tree.new_cities)
    fengdong = [s.name for s in tree.new_cities[1].streets]
    assert fengdong == ["斗门街道", "王寺街道", "上林街道", "建章路街道", "三桥街道"]
    communities = tree.communities
    assert len(communities) == 142
    assert sum(c.resettlement for c in communities) == 96
    assert len({c.name for c in communities}) == 142
    assert [c.index for c in communities] == list(range(142))
    for street in tree.streets:
        assert re.fullmatch(r"6111\d{5}", street.code) and street.name.endswith(("街道", "镇"))
        for c in street.communities:
            assert c.code[:9] == street.code and re.fullmatch(r"\d{12}", c.code)
            assert c.name.endswith(("苑", "园", "社区", "小区", "里", "居"))
            assert 1 <= len(c.grids) <= 4
            assert [g.code for g in c.grids] == [f"{c.code}{i:02d}" for i in range(1, len(c.grids) + 1)]
            assert [g.name for g in c.grids] == list(GRID_NAMES[: len(c.grids)])


def test_community_facts_and_geometry_are_plausible(tree: District) -> None:
    assert tree.box.contains(tree.box)
    for city in tree.new_cities:
        assert tree.box.contains(city.box)
        for street in city.streets:
            assert city.box.contains(street.box)
            for c in street.communities:
                assert street.box.contains(c.box)
                assert all(c.box.padded(1).contains(g.box) for g in c.grids)
                lat, lon = c.box.centre
                assert 34.20 <= lat <= 34.50 and 108.55 <= lon <= 109.0
                width, height = _metres(c.box)
                assert 299 <= width <= 601 and 299 <= height <= 601
                assert 2.0 <= c.plot_ratio <= 3.5 and 0.30 <= c.green_ratio <= 0.40
                assert c.floor_area > c.households * 70
                if not c.pilot:
                    assert 1500 <= c.households <= 4500 and c.buildings >= 4
    # Communities do not overlap.
    boxes = [c.box for c in tree.communities]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a.east <= b.west or b.east <= a.west or a.north <= b.south or b.north <= a.south
    ring = tree.communities[0].box.polygon()["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5


def test_pilot_communities_have_the_study_figures(tree: District, pilots: dict[str, Batch]) -> None:
    expected = {TIANFU: (20, 5399), YUYU: (8, 2860), XINGFULI: (32, 3300)}
    for name, (buildings, households) in expected.items():
        community = tree.community(name)
        assert community.resettlement
        assert (community.buildings, community.households) == (buildings, households)
        batch = pilots[name]
        assert len(batch.buildings) == buildings
        assert sum(h["use"] == "residence" for h in batch.houses) == households
    assert tree.community(TIANFU).name_en == "Tianfu Heyuan"
    assert tree.community(XINGFULI).name_en == "Xingfuli"


# ---------------------------------------------------------------------------------------------- generator


def test_generator_is_deterministic(tree: District, pilots: dict[str, Batch]) -> None:
    again = generate_community(tree.community(TIANFU), seed=SEED)
    assert again.people[:1000] == pilots[TIANFU].people[:1000]
    assert again.vehicles == pilots[TIANFU].vehicles and again.organisations == pilots[TIANFU].organisations
    other = generate_community(tree.community(TIANFU), seed=SEED + 1)
    firsts = [(p["name"], p["id_number"]) for p in other.people[:1000]]
    assert firsts != [(p["name"], p["id_number"]) for p in pilots[TIANFU].people[:1000]]


def test_every_resident_id_is_valid_and_matches_birth_and_sex(pilots: dict[str, Batch]) -> None:
    for batch in _all(pilots):
        for p in batch.people:
            rid = validation.parse_resident_id(p["id_number"])
            assert (rid.birth_date, rid.sex) == (p["birth_date"], p["sex"])
            assert rid.region_code[:2] in {"61", "41", "62", "14", "51", "64", "50", "13", "34"}
            assert p["id_hash"] == people.id_hash("resident_id", p["id_number"])
            assert p["id_tail"] == p["id_number"][-4:]
            assert (p["name_pinyin"], p["name_initials"]) == name_pinyin_keys(p["name"])
            assert 2 <= len(p["name"]) <= 3 and p["hukou_place"].startswith(HOME_PROVINCES)


def test_identifiers_are_unique_across_communities(pilots: dict[str, Batch], others: list[Batch]) -> None:
    batches = _all(pilots, others)
    numbers = [p["id_number"] for b in batches for p in b.people]
    plates = [v["plate"] for b in batches for v in b.vehicles]
    codes = [o["uscc"] for b in batches for o in b.organisations]
    assert len(numbers) == len(set(numbers)) > 50_000
    assert len(plates) == len(set(plates)) > 5_000
    assert len(codes) == len(set(codes))
    addresses = [h["address_code"] for b in batches for h in b.houses]
    assert len(addresses) == len(set(addresses))


def test_phones_plates_and_usccs_are_valid(pilots: dict[str, Batch], others: list[Batch]) -> None:
    for batch in _all(pilots, others):
        for p in batch.people:
            if p["phone"] is None:
                assert p["phone_hash"] is None and p["phone_tail"] == ""
                continue
            assert validation.normalise_mobile(p["phone"]) == p["phone"]
            assert p["phone_hash"] == pii.lookup_hash("phone", p["phone"])
            assert p["phone_tail"] == p["phone"][-4:]
        for v in batch.vehicles:
            plate = validation.parse_plate(v["plate"])
            assert (plate.number, plate.kind) == (v["plate"], v["plate_kind"])
        for o in batch.organisations:
            assert validation.validate_uscc(o["uscc"]) == o["uscc"] and stdnum_uscc.is_valid(o["uscc"])
            assert validation.normalise_mobile(o["contact_phone"]) == o["contact_phone"]
        kinds = Counter(o["org_type"] for o in batch.organisations)
        assert kinds["property"] == 1 and kinds["enterprise"] >= 1
    plates = [v["plate"] for b in _all(pilots, others) for v in b.vehicles]
    assert any(p.startswith("陕A") for p in plates) and any(p.startswith("陕D") for p in plates)
    assert any(len(p) == 8 for p in plates)  # new-energy plates


def test_buildings_and_houses_form_standard_addresses(tree: District, pilots: dict[str, Batch]) -> None:
    for batch in _all(pilots):
        community = batch.community
        grids = {g.code: g for g in community.grids}
        buildings = {b["id"]: b for b in batch.buildings}
        assert {b["area_code"] for b in batch.buildings} == set(grids)  # every grid has buildings
        for b in batch.buildings:
            assert b["address_code"] == places.building_code(community.code, b["number"])
            assert b["name"] == f"{b['number']}号楼"
            assert b["full_address"] == f"{community.name}{b['name']}"
            assert 6 <= b["floors"] <= 33 and 1 <= b["units"] <= 4
            ring = b["footprint"]["coordinates"][0]
            footprint = Box(ring[0][1], ring[0][0], ring[2][1], ring[2][0])
            assert grids[b["area_code"]].box.padded(1).contains(footprint)
            assert community.box.padded(1).contains(footprint)
        for h in batch.houses:
            b = buildings[h["building_id"]]
            assert h["area_code"] == b["area_code"] and h["community_code"] == community.code
            assert re.fullmatch(r"[1-9]\d?0[1-4]", h["room"])
            assert h["floor"] == places.floor_of_room(h["room"])
            assert 1 <= h["floor"] <= b["floors"] and 1 <= int(h["unit"]) <= b["units"]
            assert h["address_code"] == places.house_code(b["address_code"], h["unit"], h["room"])
            assert h["full_address"] == f"{b['full_address']}{h['unit']}单元{h['room']}室"
            assert 55 <= h["area_m2"] <= 140
            assert h["use"] == "residence" or (h["use"] == "shop" and h["floor"] == 1)
        ownership = Counter(h["ownership"] for h in batch.houses if h["use"] == "residence")
        assert ownership.most_common(1)[0][0] == "resettlement"


def test_households_people_and_care_tags_look_real(pilots: dict[str, Batch]) -> None:
    batches = _all(pilots)
    everyone = [p for b in batches for p in b.people]
    assert 27_000 <= len(everyone) <= 33_000  # ≈11,500 households
    for batch in batches:
        houses = {h["id"]: h for h in batch.houses}
        persons = {p["id"]: p for p in batch.people}
        by_house: dict[int, list[dict]] = {}
        for r in batch.residences:
            house, person = houses[r["house_id"]], persons[r["person_id"]]
            assert house["use"] == "residence" and house["occupancy"] != "vacant"
            assert r["area_code"] == house["area_code"] == person["area_code"]
            assert r["move_in"] >= person["birth_date"] and r["move_out"] is None
            by_house.setdefault(house["id"], []).append(r)
        assert len(batch.residences) == len(batch.people)
        for house_id, rows in by_house.items():
            assert 1 <= len(rows) <= 4
            relations = {r["relation"] for r in rows}
            if houses[house_id]["occupancy"] == "rented":
                assert relations == {"tenant"}
            else:
                assert rows[0]["relation"] == "owner" and "tenant" not in relations
        assert any(r["relation"] == "resettled" for r in batch.residences)
        for v in batch.vehicles:
            owner = persons[v["owner_person_id"]]
            assert 20 <= _age(owner["birth_date"]) <= 73 and v["area_code"] == owner["area_code"]
        owned = sum(1 for h in batch.houses if h["use"] == "residence" and h["occupancy"] != "vacant")
        assert 0.25 <= len(batch.vehicles) / owned <= 0.45
    ages = [_age(p["birth_date"]) for p in everyone]
    assert min(ages) == 0 and 90 <= max(ages) <= 100
    elderly = sum(a >= 60 for a in ages) / len(ages)
    assert 0.20 <= elderly <= 0.40  # resettled villagers are older than the city
    assert sum(a < 18 for a in ages) / len(ages) >= 0.12
    assert 0.45 <= sum(p["sex"] == "M" for p in everyone) / len(everyone) <= 0.55
    ethnic = Counter(p["ethnicity"] for p in everyone)
    assert ethnic["汉族"] / len(everyone) > 0.97 and ethnic["回族"] > 0
    tags = Counter(t["tag"] for b in batches for t in b.tags)
    seventy = sum(a >= 70 for a in ages)
    assert 0.015 <= tags["elderly_alone"] / seventy <= 0.045
    assert 0.01 <= tags["low_income"] / len(everyone) <= 0.035
    assert 0.008 <= tags["disability"] / len(everyone) <= 0.025
    assert 0.005 <= tags["veteran"] / len(everyone) <= 0.02
    assert 0 < tags["left_behind_minor"] < 0.01 * len(everyone)
    assert 0 < tags["key_care"] < 0.005 * len(everyone)


def test_shifted_batches_keep_their_links(tree: District) -> None:
    community = tree.communities[5]
    batch = generate_community(community, seed=SEED)
    prepared = writer.prepare(generate_community(community, seed=SEED), datetime.now(UTC))
    start = Ids(building=11, house=101, person=1001, residence=2001, tag=31, organisation=41, vehicle=51)
    batch.shift(start)
    prepared.shift(start)
    assert batch.end() == prepared.end()
    assert batch.people[0]["id"] == 1001 and batch.residences[0]["person_id"] == 1001
    assert batch.houses[0]["building_id"] == 11 and batch.residences[0]["house_id"] >= 101
    for name, _ in writer.TABLES:
        columns = prepared.columns[name]
        for row, values in zip(getattr(batch, name), prepared.rows[name], strict=True):
            for key, value in zip(columns, values, strict=False):
                if key in ("id_number", "phone", "contact_phone") and value is not None:
                    assert pii.decrypt(value) == row[key]  # encrypted by the column type
                elif key in ("birth_date", "move_in"):
                    assert value == row[key].isoformat()
                elif key not in ("footprint", "created_at", "updated_at", "move_out"):
                    assert value == row[key], (name, key)


def test_worker_process_generates_the_same_rows(tree: District) -> None:
    communities = tree.communities[10:14]
    now = datetime.now(UTC)
    produced = list(service._batches(communities, seed=SEED, now=now, fast=False))
    assert [b.community.code for b in produced] == [c.code for c in communities]
    for community, batch in zip(communities, produced, strict=True):
        assert isinstance(batch, Batch)
        assert batch.people == generate_community(community, seed=SEED).people


# ---------------------------------------------------------------------------------------------- seeding


@pytest.fixture(scope="module")
def seeded(tree: District) -> Iterator[tuple[sessionmaker[Session], dict[str, int]]]:
    """The small scale seeded once into a fresh in-memory SQLite database."""
    engine = make_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        assert not service.is_seeded(session)
        counts = service.seed(session, scale="small", seed=SEED)
        session.commit()
    yield factory, counts
    engine.dispose()


def test_small_seed_counts(seeded: tuple[sessionmaker[Session], dict[str, int]], tree: District) -> None:
    factory, counts = seeded
    grids = sum(len(c.grids) for c in tree.communities)
    assert counts["areas"] == 1 + 5 + 21 + 142 + grids
    assert counts["buildings"] == 20 + 8 + 32 and counts["users"] == 8
    assert counts["throw_cameras"] == 3  # one calibrated throw camera per pilot community
    assert 27_000 <= counts["people"] == counts["residences"] <= 33_000
    with factory() as session:
        assert service.is_seeded(session)
        assert session.scalar(select(func.count()).select_from(Person)) == counts["people"]
        assert session.scalar(select(func.count()).select_from(Vehicle)) == counts["vehicles"]
        assert session.scalar(select(func.count()).select_from(Area)) == counts["areas"]
        assert session.scalar(select(func.count()).select_from(Area).where(Area.resettlement)) == 96
        tianfu = session.scalar(select(Area).where(Area.area_code == tree.community(TIANFU).code))
        assert tianfu is not None and tianfu.level == "community"
        assert (tianfu.buildings, tianfu.households) == (20, 5399)
        assert tianfu.boundary is not None and tianfu.boundary["type"] == "Polygon"
        assert session.scalar(select(func.count()).select_from(ChangeRecord)) == 0
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "demo.seed")))
        assert len(entries) == 1 and entries[0].detail["people"] == counts["people"]
        with pytest.raises(Conflict):
            service.seed(session, scale="small", seed=SEED)


def test_pilot_devices_have_sent_a_day_of_events_through_the_hub(
    seeded: tuple[sessionmaker[Session], dict[str, int]], tree: District
) -> None:
    from linli.devices.models import Device, EventRollup, StoredEvent

    factory, counts = seeded
    pilots = {c.code for c in tree.communities if c.pilot}
    with factory() as session:
        per_community = dict(
            session.execute(select(Device.community_code, func.count()).group_by(Device.community_code)).all()
        )
        assert set(per_community) == pilots and sum(per_community.values()) >= counts["devices"] > 100
        stored = session.scalar(select(func.count()).select_from(StoredEvent))
        made = StoredEvent.type.in_(["device.online", "device.offline"])  # the hub's own, on first contact
        sent = session.scalar(select(func.count()).select_from(StoredEvent).where(~made))
        # A day at natural volume: about 77,000 events in 天府和苑, fewer in the smaller pilots.
        assert sent == counts["device_events"] and 150_000 <= sent <= 260_000
        assert 0 < stored - sent <= sum(per_community.values())
        types = set(session.scalars(select(StoredEvent.type).distinct()))
        assert {"device.heartbeat", "access.granted", "vehicle.entered", "vehicle.exited"} <= types
        span = session.execute(
            select(func.min(StoredEvent.occurred_at), func.max(StoredEvent.occurred_at))
        ).one()
        assert timedelta(hours=20) <= span[1] - span[0] <= timedelta(hours=service.EVENT_HOURS)
        linked = select(func.count()).select_from(StoredEvent).where(StoredEvent.vehicle_id.is_not(None))
        assert session.scalar(linked) > 100  # registered cars' plates point at their vehicles
        access = select(func.count()).select_from(StoredEvent).where(StoredEvent.type == "access.granted")
        by_person = session.scalar(access.where(StoredEvent.person_id.is_not(None)))
        assert by_person >= 0.9 * session.scalar(access)  # enrolled faces and cards point at residents
        # A face terminal recognises the residents of its own unit: the person lives in the door's building.
        from linli.devices.models import Device as Door
        from linli.registry.models import House as Home
        from linli.registry.models import Residence as Lives

        faced = (
            select(Door.building_id, Home.building_id)
            .select_from(StoredEvent)
            .join(Door, Door.id == StoredEvent.device_id)
            .join(Lives, Lives.person_id == StoredEvent.person_id)
            .join(Home, Home.id == Lives.house_id)
            .where(StoredEvent.type == "access.granted", Door.kind == "face_terminal")
            .where(Lives.move_out.is_(None))
        )
        pairs = session.execute(faced).all()
        assert len(pairs) > 1000 and all(door == home for door, home in pairs)
        from linli.demo import simulator_fleet

        # `linli simulate` plays the same enrolled cards and face ids, so its door events link too.
        loaded = simulator_fleet.load(session, tree.community(TIANFU).code)
        assert len(loaded.cards) == service.DEMO_CARDS
        assert sum(1 for d in loaded.devices if d.kind == "face_terminal") == len(loaded.faces) > 50
        assert session.scalar(select(func.sum(EventRollup.count))) == stored
        # The last hour at the natural volume: the devices that send heartbeats are online at the start.
        online = session.scalar(select(func.count()).select_from(Device).where(Device.online))
        assert online >= 0.8 * sum(per_community.values())


def test_personal_data_is_encrypted_and_searchable(
    seeded: tuple[sessionmaker[Session], dict[str, int]], pilots: dict[str, Batch]
) -> None:
    factory, _ = seeded
    with factory() as session:
        someone = session.scalar(select(Person).where(Person.phone.is_not(None)).order_by(Person.id).limit(1))
        assert someone is not None
        raw = session.connection().exec_driver_sql(
            "SELECT id_number, phone FROM people WHERE id = ?", (someone.id,)
        )
        stored_id, stored_phone = raw.one()
        assert someone.id_number not in stored_id and someone.phone not in stored_phone
        validation.parse_resident_id(someone.id_number)  # decrypts to the valid number
        found = people.find_by_id_number(session, id_type="resident_id", number=someone.id_number)
        assert found is not None and found.id == someone.id
        by_initials = search.search(session, text="zs", limit=20)
        assert by_initials and all(p.name_initials.startswith("zs") for p in by_initials)
        by_tail = search.search(session, text=someone.id_number[-4:], limit=500)
        assert someone.id in {p.id for p in by_tail}
        alone = select(func.count()).select_from(PersonTag).where(PersonTag.tag == "elderly_alone")
        assert (session.scalar(alone) or 0) > 50


def test_scopes_see_only_their_own_community_and_grid(
    seeded: tuple[sessionmaker[Session], dict[str, int]], tree: District, pilots: dict[str, Batch]
) -> None:
    factory, _ = seeded
    tianfu, yuyu = tree.community(TIANFU), tree.community(YUYU)
    with factory() as session:
        set_scope(session, Scope(codes=(tianfu.code,)))
        seen = session.scalars(select(Person.area_code)).all()
        assert len(seen) == len(pilots[TIANFU].people)
        assert all(code.startswith(tianfu.code) for code in seen)
        outsider = pilots[YUYU].people[0]
        assert search.search(session, text=outsider["id_number"]) == []
        assert session.scalar(select(func.count()).select_from(Residence)) == len(pilots[TIANFU].residences)
        grid = tianfu.grids[0].code
        set_scope(session, Scope(codes=(grid,)))
        in_grid = session.scalars(select(Person.area_code)).all()
        assert in_grid and set(in_grid) == {grid}
        set_scope(session, Scope(codes=(yuyu.code,)))
        assert {p.area_code[:12] for p in search.search(session, text="w", limit=100)} == {yuyu.code}


def test_demo_users_sign_in_with_the_demo_password(
    seeded: tuple[sessionmaker[Session], dict[str, int]], tree: District
) -> None:
    factory, _ = seeded
    tianfu = tree.community(TIANFU)
    expected = {
        "admin": ("district_admin", "6111"), "jiedao": ("street_staff", tianfu.street_code),
        "shequ": ("community_worker", tianfu.code), "wangge": ("grid_worker", tianfu.grids[0].code),
        "wuye": ("property_staff", tianfu.code), "jingwu": ("police_liaison", "6111"),
        "shequ2": ("community_worker", tree.community(YUYU).code), "jumin": ("resident", tianfu.code),
    }  # fmt: skip
    with factory() as session:
        for username, (role, code) in expected.items():
            user = accounts.get_by_username(session, username=username)
            assert user is not None and (user.role, user.area_codes) == (role, (code,))
        password, lockout = service.DEMO_PASSWORD, timedelta(minutes=1)
        user = accounts.authenticate(
            session, username="shequ", password=password, max_failures=5, lockout=lockout
        )
        assert user.username == "shequ"
        session.rollback()


def test_core_insert_path_encrypts_through_the_column_type(tree: District) -> None:
    """The path used for PostgreSQL: Core inserts of dict rows, EncryptedText encrypting on bind."""
    engine = make_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    smallest = min((c for c in tree.communities if not c.pilot), key=lambda c: c.households)
    batch = generate_community(smallest, seed=SEED)
    with make_session_factory(engine)() as session:
        writer.insert_rows(session, Area.__table__, service._area_rows(tree, first_id=1), datetime.now(UTC))
        writer.insert_batch(session, batch, datetime.now(UTC))
        session.commit()
        first = session.get(Person, batch.people[0]["id"])
        assert first is not None and first.id_number == batch.people[0]["id_number"]
        raw = session.connection().exec_driver_sql("SELECT id_number FROM people WHERE id = ?", (first.id,))
        stored = raw.scalar()
        assert stored != first.id_number and pii.decrypt(stored) == first.id_number
        assert session.scalar(select(func.count()).select_from(Person)) == len(batch.people)
    engine.dispose()
