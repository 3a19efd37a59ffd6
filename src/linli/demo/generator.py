"""Deterministic synthetic registers of one community: buildings, houses, households, organisations, cars.

Everything about a community follows from (seed, community code) alone, so a community comes out the
same whether it is generated alone, in district order or in a worker process. Rows are plain dicts with
the columns of the registry tables; personal data is in plaintext here (the column type encrypts it).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from typing import Any

from linli.core import pii
from linli.core.text import pinyin_keys
from linli.demo import pools
from linli.demo.data import Community, Grid
from linli.demo.geo import Box, box_around, sub_box
from linli.demo.identities import Identities
from linli.registry import places
from linli.registry.people import id_hash

AS_OF = date(2026, 7, 1)  # ages and dates are reckoned from this day, so output does not depend on today
_AS_OF_ORDINAL = AS_OF.toordinal()
_M_PER_DEG_LAT = 111_320.0

# Household shapes and their weights: owners in resettlement housing, other owners, tenants.
_RESETTLED_KINDS = {
    "elderly_single": 2,
    "single": 3,
    "elderly_couple": 18,
    "middle_couple": 12,
    "couple": 7,
    "couple_kids": 26,
    "three_gen": 26,
    "skipped": 3,
    "parent_child": 6,
}
_OWNER_KINDS = {
    "elderly_single": 1,
    "single": 10,
    "elderly_couple": 8,
    "middle_couple": 10,
    "couple": 18,
    "couple_kids": 37,
    "three_gen": 12,
    "skipped": 1,
    "parent_child": 4,
}
_TENANT_KINDS = {"single": 30, "couple": 30, "couple_kids": 30, "shared": 10}


# The id columns of each batch table and which table's ids they hold.
LINKS: dict[str, dict[str, str]] = {
    "buildings": {"id": "building"},
    "houses": {"id": "house", "building_id": "building"},
    "people": {"id": "person"},
    "residences": {"id": "residence", "person_id": "person", "house_id": "house"},
    "tags": {"id": "tag", "person_id": "person"},
    "organisations": {"id": "organisation", "house_id": "house"},
    "vehicles": {"id": "vehicle", "owner_person_id": "person"},
}


@dataclass
class Ids:
    """The next id of each table."""

    building: int = 1
    house: int = 1
    person: int = 1
    residence: int = 1
    tag: int = 1
    organisation: int = 1
    vehicle: int = 1


@dataclass
class Batch:
    """One community's generated rows, ids starting at start."""

    community: Community
    start: Ids
    buildings: list[dict[str, Any]] = field(default_factory=list)
    houses: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    residences: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    organisations: list[dict[str, Any]] = field(default_factory=list)
    vehicles: list[dict[str, Any]] = field(default_factory=list)

    def end(self) -> Ids:
        """The ids that follow this batch."""
        return Ids(
            building=self.start.building + len(self.buildings),
            house=self.start.house + len(self.houses),
            person=self.start.person + len(self.people),
            residence=self.start.residence + len(self.residences),
            tag=self.start.tag + len(self.tags),
            organisation=self.start.organisation + len(self.organisations),
            vehicle=self.start.vehicle + len(self.vehicles),
        )

    def shift(self, start: Ids) -> None:
        """Renumber every row (and every link between them) so the batch begins at start."""
        delta = {f.name: getattr(start, f.name) - getattr(self.start, f.name) for f in fields(Ids)}
        for name, links in LINKS.items():
            for key, kind in links.items():
                if delta[kind]:
                    for row in getattr(self, name):
                        if row[key] is not None:
                            row[key] += delta[kind]
        self.start = replace(start)


def generate_community(community: Community, *, seed: int, start: Ids | None = None) -> Batch:
    """Every register row of one community, deterministic in (seed, community code)."""
    return _Builder(community, seed=seed, start=start or Ids()).build()


@dataclass
class _Member:
    age: int
    sex: str
    own_surname: bool  # False: married in, keeps their own surname


class _Builder:
    def __init__(self, community: Community, *, seed: int, start: Ids) -> None:
        self.c = community
        self.rng = random.Random(f"linli-demo:{seed}:{community.code}")
        self.ids = Identities(self.rng, community.index)
        self.next = replace(start)
        self.batch = Batch(community=community, start=replace(start))
        self.built = date(community.built_year, 1 + self.rng.randrange(12), 1)
        self.local_regions = pools.LOCAL_REGIONS[community.new_city_code]
        self.shops: list[dict[str, Any]] = []
        self.homes: list[dict[str, Any]] = []

    def _id(self, table: str) -> int:
        value: int = getattr(self.next, table)
        setattr(self.next, table, value + 1)
        return value

    def build(self) -> Batch:
        rng, c = self.rng, self.c
        weights = [rng.uniform(0.85, 1.15) for _ in range(c.buildings)]
        total = sum(weights)
        per_building = [int(c.households * w / total) for w in weights]
        for i in rng.sample(range(c.buildings), c.households - sum(per_building)):
            per_building[i] += 1
        number = 0
        for g, grid in enumerate(c.grids):
            count = c.buildings // len(c.grids) + (1 if g < c.buildings % len(c.grids) else 0)
            cells = _cells(grid.box, count)
            for cell in cells:
                number += 1
                self._building(grid, number, cell, per_building[number - 1])
        self._organisations()
        return self.batch

    # ------------------------------------------------------------------ buildings and houses

    def _building(self, grid: Grid, number: int, cell: Box, households: int) -> None:
        rng = self.rng
        options = [(u, r) for u in (1, 2, 3, 4) for r in (2, 3, 4)]
        rng.shuffle(options)
        shops = rng.random() < 0.25
        first = 2 if shops else 1
        units, per_floor = next(
            ((u, r) for u, r in options if 6 <= math.ceil(households / (u * r)) + first - 1 <= 33),
            (4, 4),
        )
        floors = math.ceil(households / (units * per_floor)) + first - 1
        lat, lon = cell.centre
        width_m = (cell.east - cell.west) * _M_PER_DEG_LAT * math.cos(math.radians(lat))
        height_m = (cell.north - cell.south) * _M_PER_DEG_LAT
        footprint = box_around(lat, lon, min(width_m * 0.8, 18 * units + 10), min(height_m * 0.6, 15))
        code = places.building_code(self.c.code, str(number))
        building = {
            "id": self._id("building"),
            "area_code": grid.code,
            "community_code": self.c.code,
            "number": str(number),
            "name": f"{number}号楼",
            "address_code": code,
            "full_address": f"{self.c.name}{number}号楼",
            "floors": floors,
            "units": units,
            "lat": lat,
            "lon": lon,
            "footprint": footprint.polygon(),
        }
        self.batch.buildings.append(building)
        sizes = [round(rng.uniform(55, 140), 2) for _ in range(per_floor)]
        if shops:
            for unit in range(1, units + 1):
                for k in range(1, per_floor + 1):
                    self._house(building, unit, f"1{k:02d}", sizes[k - 1], use="shop")
        made = 0
        for floor in range(first, floors + 1):
            for unit in range(1, units + 1):
                for k in range(1, per_floor + 1):
                    if made == households:
                        return
                    self._house(building, unit, f"{floor}{k:02d}", sizes[k - 1], use="residence")
                    made += 1

    def _house(self, building: dict[str, Any], unit: int, room: str, area: float, *, use: str) -> None:
        rng = self.rng
        if use == "shop":
            ownership = "commercial"
            occupancy = rng.choices(("rented", "owner_occupied", "vacant"), (60, 25, 15))[0]
        else:
            if self.c.resettlement:
                ownership = rng.choices(("resettlement", "commercial", "rental"), (88, 9, 3))[0]
            else:
                ownership = rng.choices(("commercial", "rental"), (94, 6))[0]
            if ownership == "rental":
                occupancy = rng.choices(("rented", "vacant"), (90, 10))[0]
            elif ownership == "resettlement":
                occupancy = rng.choices(("owner_occupied", "rented", "vacant"), (66, 26, 8))[0]
            else:
                occupancy = rng.choices(("owner_occupied", "rented", "vacant"), (76, 15, 9))[0]
        house = {
            "id": self._id("house"),
            "area_code": building["area_code"],
            "building_id": building["id"],
            "community_code": self.c.code,
            "unit": str(unit),
            "floor": places.floor_of_room(room),
            "room": room,
            "address_code": places.house_code(building["address_code"], str(unit), room),
            "full_address": f"{building['full_address']}{unit}单元{room}室",
            "area_m2": area,
            "use": use,
            "ownership": ownership,
            "occupancy": occupancy,
        }
        self.batch.houses.append(house)
        if use == "shop":
            if occupancy != "vacant":
                self.shops.append(house)
        else:
            self.homes.append(house)
            if occupancy != "vacant":
                self._household(house)

    # ------------------------------------------------------------------ households and people

    def _household(self, house: dict[str, Any]) -> None:
        rng = self.rng
        tenants = house["occupancy"] == "rented"
        resettled = house["ownership"] == "resettlement"
        kinds = _TENANT_KINDS if tenants else _RESETTLED_KINDS if resettled else _OWNER_KINDS
        kind = rng.choices(list(kinds), list(kinds.values()))[0]
        members = _members(rng, kind)
        if tenants or not resettled:
            region = (
                rng.choice(pools.MIGRANT_REGIONS)
                if tenants or rng.random() < 0.6
                else rng.choice(self.local_regions)
            )
        else:
            region = rng.choice(self.local_regions)
        ethnicity = _ethnicity(rng, region)
        surname = _surname(rng)
        if tenants:
            move_in = date.fromordinal(max(self.built.toordinal(), _AS_OF_ORDINAL - rng.randint(30, 1500)))
        elif rng.random() < 0.85:
            move_in = self.built + timedelta(days=rng.randint(0, 700))
        else:
            move_in = date.fromordinal(rng.randint(self.built.toordinal(), _AS_OF_ORDINAL - 30))
        low_income = rng.random() < (0.025 if resettled else 0.01)
        adults = []
        for i, m in enumerate(members):
            own = surname if m.own_surname and kind != "shared" else _surname(rng)
            home = region if m.own_surname or rng.random() < 0.7 else rng.choice(self.local_regions)
            relation = "tenant" if tenants else "owner" if i == 0 else "resettled" if resettled else "family"
            person = self._person(house, own, m, home, relation, move_in, ethnicity, local_birth=not tenants)
            tags = []
            if kind == "elderly_single" and m.age >= 70:
                tags.append("elderly_alone")
            if low_income:
                tags.append("low_income")
            if rng.random() < 0.004 + 0.00025 * m.age:
                tags.append("disability")
            if m.sex == "M" and 30 <= m.age <= 80 and rng.random() < 0.03:
                tags.append("veteran")
            if kind == "skipped" and m.age < 16 and rng.random() < 0.6:
                tags.append("left_behind_minor")
            if m.age >= 18 and rng.random() < 0.002:
                tags.append("key_care")
            for tag in tags:
                self.batch.tags.append(
                    {
                        "id": self._id("tag"),
                        "person_id": person["id"],
                        "tag": tag,
                        "area_code": house["area_code"],
                    }
                )
            if 20 <= m.age <= 72:
                adults.append(person)
        if adults:
            cars = 2 if rng.random() < 0.03 else 1 if rng.random() < 0.32 else 0
            for _ in range(cars):
                self._vehicle(rng.choice(adults), house)

    def _person(
        self,
        house: dict[str, Any],
        surname: str,
        m: _Member,
        region: str,
        relation: str,
        move_in: date,
        ethnicity: str,
        *,
        local_birth: bool,
    ) -> dict[str, Any]:
        rng = self.rng
        birth = date.fromordinal(_AS_OF_ORDINAL - int((m.age + rng.random()) * 365.2425))
        if local_birth and birth.year >= 2015 and birth >= self.built:
            region = self.c.new_city_code  # born here after the new area began registering births
        number, birth = self.ids.resident_id(region, birth, m.sex)
        name = surname + rng.choice(pools.GIVEN_NAMES[(pools.cohort(birth.year), m.sex)])
        full, initials = pinyin_keys(name)
        phone = self.ids.mobile() if m.age >= 14 and (m.age < 85 or rng.random() < 0.5) else None
        person = {
            "id": self._id("person"),
            "area_code": house["area_code"],
            "name": name,
            "name_pinyin": full,
            "name_initials": initials,
            "id_type": "resident_id",
            "id_number": number,
            "id_hash": id_hash("resident_id", number),
            "id_tail": number[-4:],
            "birth_date": birth,
            "sex": m.sex,
            "phone": phone,
            "phone_hash": pii.lookup_hash("phone", phone) if phone else None,
            "phone_tail": phone[-4:] if phone else "",
            "hukou_place": pools.REGIONS[region],
            "ethnicity": ethnicity,
            "notes": "",
            "merged_into_id": None,
        }
        self.batch.people.append(person)
        self.batch.residences.append(
            {
                "id": self._id("residence"),
                "person_id": person["id"],
                "house_id": house["id"],
                "relation": relation,
                "move_in": max(move_in, birth),
                "move_out": None,
                "area_code": house["area_code"],
            }
        )
        return person

    def _vehicle(self, owner: dict[str, Any], house: dict[str, Any]) -> None:
        rng = self.rng
        plate, kind = self.ids.plate()
        where = rng.random()
        space = (
            f"B1-{rng.randint(1, 999):03d}"
            if where < 0.6
            else f"地上{rng.randint(1, 300):03d}"
            if where < 0.8
            else ""
        )
        self.batch.vehicles.append(
            {
                "id": self._id("vehicle"),
                "area_code": house["area_code"],
                "plate": plate,
                "plate_kind": kind,
                "vehicle_type": "car",
                "colour": rng.choice(pools.COLOURS),
                "owner_person_id": owner["id"],
                "owner_org_id": None,
                "parking_space": space,
            }
        )

    # ------------------------------------------------------------------ organisations

    def _organisations(self) -> None:
        rng, c = self.rng, self.c
        word = rng.choice(pools.ENTERPRISE_WORDS)
        self._org(
            f"陕西{word}物业服务有限公司", "property", None, f"{c.name}物业服务中心", rng.randint(20, 80)
        )
        short = c.name[:2]
        for house in self.shops:
            kind = rng.choice(pools.SHOP_KINDS)
            name = f"{_surname(rng)}记{kind}" if rng.random() < 0.4 else f"{short}{kind}"
            self._org(name, "shop", house, house["full_address"], rng.randint(1, 6))
        for _ in range(rng.randint(1, 4)):
            name = f"陕西{rng.choice(pools.ENTERPRISE_WORDS)}{rng.choice(pools.ENTERPRISE_TRADES)}有限公司"
            office = rng.choice(self.homes) if self.homes else None
            address = office["full_address"] if office else c.name
            self._org(name, "enterprise", office, address, rng.randint(2, 40))
        if rng.random() < 0.6:
            self._org(f"{c.name}{rng.choice(pools.SOCIAL_ORGS)}", "social", None, c.name, rng.randint(3, 15))

    def _org(
        self, name: str, org_type: str, house: dict[str, Any] | None, address: str, employees: int
    ) -> None:
        rng = self.rng
        boss = _surname(rng) + rng.choice(pools.GIVEN_NAMES[("mid", rng.choice("MF"))])
        phone = self.ids.mobile()
        self.batch.organisations.append(
            {
                "id": self._id("organisation"),
                "area_code": house["area_code"] if house else self.c.code,
                "name": name,
                "name_initials": pinyin_keys(name)[1],
                "uscc": self.ids.uscc(org_type, self.c.new_city_code),
                "org_type": org_type,
                "address": address,
                "house_id": house["id"] if house else None,
                "legal_rep": boss,
                "contact_name": boss,
                "contact_phone": phone,
                "phone_tail": phone[-4:],
                "employees": employees,
            }
        )


def _cells(box: Box, count: int) -> list[Box]:
    """count cells of a roughly square lattice over box, filled column by column (west to east)."""
    lat = (box.south + box.north) / 2
    width = (box.east - box.west) * math.cos(math.radians(lat))
    height = box.north - box.south
    cols = max(1, min(count, round(math.sqrt(count * width / height))))
    rows = math.ceil(count / cols)
    cols = math.ceil(count / rows)
    return [
        sub_box(box, x0=col / cols, y0=row / rows, x1=(col + 1) / cols, y1=(row + 1) / rows)
        for i in range(count)
        for col, row in [divmod(i, rows)]
    ]


def _surname(rng: random.Random) -> str:
    return rng.choices(pools.SURNAMES, cum_weights=pools.SURNAME_CUM_WEIGHTS)[0]


def _ethnicity(rng: random.Random, region: str) -> str:
    draw = rng.random()
    hui = pools.HUI_SHARE.get(region, 0.006)
    return (
        "回族" if draw < hui else "满族" if draw < hui + 0.002 else "蒙古族" if draw < hui + 0.003 else "汉族"
    )


def _members(rng: random.Random, kind: str) -> list[_Member]:
    """Ages and sexes of a household of kind, the owner (householder) first."""
    r = rng.randint
    if kind == "elderly_single":
        return [_Member(int(rng.triangular(70, 96, 76)), rng.choice("MF"), True)]
    if kind == "single":
        return [_Member(int(rng.triangular(22, 65, 30)), rng.choice("MF"), True)]
    if kind == "elderly_couple":
        husband = int(rng.triangular(62, 94, 70))
        return [_Member(husband, "M", True), _Member(max(58, husband + r(-6, 3)), "F", False)]
    if kind == "middle_couple":
        husband = r(48, 66)
        return [_Member(husband, "M", True), _Member(max(45, husband + r(-5, 2)), "F", False)]
    if kind == "couple":
        husband = r(24, 40)
        return [_Member(husband, "M", True), _Member(max(22, husband + r(-4, 2)), "F", False)]
    if kind == "shared":
        return [_Member(r(20, 38), rng.choice("MF"), True) for _ in range(r(2, 3))]
    if kind == "couple_kids":
        father = r(28, 56)
        mother = max(24, father + r(-5, 2))
        kids = [
            _Member(r(0, min(mother - 20, 26)), rng.choice("MF"), True)
            for _ in range(1 if rng.random() < 0.6 else 2)
        ]
        return [_Member(father, "M", True), _Member(mother, "F", False), *kids]
    if kind == "skipped":
        grandfather = r(55, 78)
        elders = [_Member(grandfather, "M", True), _Member(grandfather + r(-4, 2), "F", False)]
        return [*elders[: r(1, 2)], _Member(r(4, 15), rng.choice("MF"), True)]
    if kind == "parent_child":
        elder = int(rng.triangular(65, 95, 78))
        return [
            _Member(elder, rng.choice("MF"), True),
            _Member(r(35, min(60, elder - 22)), rng.choice("MF"), True),
        ]
    # three generations, at most four people
    son = r(28, 55)
    elder = min(95, son + r(24, 34))
    grandpa, grandma = _Member(elder, "M", True), _Member(max(50, elder + r(-5, 2)), "F", False)
    adult, spouse = _Member(son, "M", True), _Member(max(24, son + r(-4, 2)), "F", False)
    child = _Member(r(0, min(son - 22, 20)), rng.choice("MF"), True)
    shape = rng.random()
    if shape < 0.4:
        return [grandpa, grandma, adult, child]
    if shape < 0.75:
        return [rng.choice((grandpa, grandma)), adult, spouse, child]
    return [grandpa, grandma, adult, spouse]
