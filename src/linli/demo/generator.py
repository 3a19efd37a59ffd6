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
from itertools import count
from typing import Any

from linli.core import pii
from linli.core.text import name_pinyin_keys, pinyin_keys
from linli.demo import pools
from linli.demo.data import Community, Grid
from linli.demo.geo import Box, box_around, sub_box
from linli.demo.households import OWNERS, RESETTLED, SURNAMES, TENANTS, Member, Weighted, between, pick
from linli.demo.households import ethnicity as draw_ethnicity
from linli.demo.households import members as draw_members
from linli.demo.identities import Identities
from linli.registry import places
from linli.registry.people import id_hash

AS_OF = date(2026, 7, 1)  # ages and dates are reckoned from this day, so output does not depend on today
_AS_OF_ORDINAL = AS_OF.toordinal()
_M_PER_DEG_LAT = 111_320.0
_LAYOUTS = tuple((units, per_floor) for units in (1, 2, 3, 4) for per_floor in (2, 3, 4))
_SHOP_OCCUPANCY = Weighted({"rented": 60, "owner_occupied": 25, "vacant": 15})
_RESETTLED_OWNERSHIP = Weighted({"resettlement": 88, "commercial": 9, "rental": 3})
_OTHER_OWNERSHIP = Weighted({"commercial": 94, "rental": 6})
_OCCUPANCY = {
    "resettlement": Weighted({"owner_occupied": 66, "rented": 26, "vacant": 8}),
    "commercial": Weighted({"owner_occupied": 76, "rented": 15, "vacant": 9}),
    "rental": Weighted({"rented": 90, "vacant": 10}),
}

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


class _Builder:
    def __init__(self, community: Community, *, seed: int, start: Ids) -> None:
        self.c = community
        self.rng = random.Random(f"linli-demo:{seed}:{community.code}")
        self.ids = Identities(self.rng, community.index)
        self.batch = Batch(community=community, start=replace(start))
        self.next_id = {f.name: count(getattr(start, f.name)) for f in fields(Ids)}
        self.built = date(community.built_year, between(self.rng, 1, 12), 1)
        self.local_regions = pools.LOCAL_REGIONS[community.new_city_code]
        self.shops: list[dict[str, Any]] = []
        self.homes: list[dict[str, Any]] = []

    def build(self) -> Batch:
        rng, c = self.rng, self.c
        weights = [rng.uniform(0.85, 1.15) for _ in range(c.buildings)]
        total = sum(weights)
        per_building = [int(c.households * w / total) for w in weights]
        for i in rng.sample(range(c.buildings), c.households - sum(per_building)):
            per_building[i] += 1
        number = 0
        for g, grid in enumerate(c.grids):
            share = c.buildings // len(c.grids) + (1 if g < c.buildings % len(c.grids) else 0)
            for cell in _cells(grid.box, share):
                number += 1
                self._building(grid, number, cell, per_building[number - 1])
        self._organisations()
        return self.batch

    # ------------------------------------------------------------------ buildings and houses

    def _building(self, grid: Grid, number: int, cell: Box, households: int) -> None:
        rng = self.rng
        shops = rng.random() < 0.25
        first = 2 if shops else 1  # shops take the ground floor
        layouts = rng.sample(_LAYOUTS, len(_LAYOUTS))
        fits = [(u, r) for u, r in layouts if 6 <= math.ceil(households / (u * r)) + first - 1 <= 33]
        units, per_floor = fits[0] if fits else (4, 4)
        floors = math.ceil(households / (units * per_floor)) + first - 1
        lat, lon = cell.centre
        width_m = (cell.east - cell.west) * _M_PER_DEG_LAT * math.cos(math.radians(lat))
        height_m = (cell.north - cell.south) * _M_PER_DEG_LAT
        footprint = box_around(lat, lon, min(width_m * 0.8, 18 * units + 10), min(height_m * 0.6, 15))
        building = {
            "id": next(self.next_id["building"]),
            "area_code": grid.code,
            "community_code": self.c.code,
            "number": str(number),
            "name": f"{number}号楼",
            "address_code": places.building_code(self.c.code, str(number)),
            "full_address": f"{self.c.name}{number}号楼",
            "floors": floors,
            "units": units,
            "lat": lat,
            "lon": lon,
            "footprint": footprint.polygon(),
        }
        self.batch.buildings.append(building)
        sizes = [round(rng.uniform(55, 140), 2) for _ in range(per_floor)]  # same plan on every floor
        if shops:
            for unit in range(1, units + 1):
                for k in range(1, per_floor + 1):
                    self._house(building, unit, f"1{k:02d}", sizes[k - 1], shop=True)
        made = 0
        for floor in range(first, floors + 1):
            for unit in range(1, units + 1):
                for k in range(1, per_floor + 1):
                    if made == households:
                        return
                    self._house(building, unit, f"{floor}{k:02d}", sizes[k - 1], shop=False)
                    made += 1

    def _house(self, building: dict[str, Any], unit: int, room: str, area: float, *, shop: bool) -> None:
        rng = self.rng
        if shop:
            ownership, occupancy = "commercial", _SHOP_OCCUPANCY.draw(rng)
        else:
            ownership = (_RESETTLED_OWNERSHIP if self.c.resettlement else _OTHER_OWNERSHIP).draw(rng)
            occupancy = _OCCUPANCY[ownership].draw(rng)
        house = {
            "id": next(self.next_id["house"]),
            "area_code": building["area_code"],
            "building_id": building["id"],
            "community_code": self.c.code,
            "unit": str(unit),
            "floor": places.floor_of_room(room),
            "room": room,
            "address_code": places.house_code(building["address_code"], str(unit), room),
            "full_address": f"{building['full_address']}{unit}单元{room}室",
            "area_m2": area,
            "use": "shop" if shop else "residence",
            "ownership": ownership,
            "occupancy": occupancy,
        }
        self.batch.houses.append(house)
        if shop:
            if occupancy != "vacant":
                self.shops.append(house)
            return
        self.homes.append(house)
        if occupancy != "vacant":
            self._household(house)

    # ------------------------------------------------------------------ households and people

    def _household(self, house: dict[str, Any]) -> None:
        rng = self.rng
        tenants = house["occupancy"] == "rented"
        resettled = house["ownership"] == "resettlement"
        kind = (TENANTS if tenants else RESETTLED if resettled else OWNERS).draw(rng)
        if resettled or (not tenants and rng.random() < 0.4):
            region = pick(rng, self.local_regions)
        else:
            region = pick(rng, pools.MIGRANT_REGIONS)
        ethnicity = draw_ethnicity(rng, region)
        surname = SURNAMES.draw(rng)
        built = self.built.toordinal()
        if tenants:
            move_in = date.fromordinal(max(built, _AS_OF_ORDINAL - between(rng, 30, 1500)))
        elif rng.random() < 0.85:
            move_in = self.built + timedelta(days=between(rng, 0, 700))
        else:
            move_in = date.fromordinal(between(rng, built, _AS_OF_ORDINAL - 30))
        low_income = rng.random() < (0.025 if resettled else 0.01)
        adults = []
        for i, m in enumerate(draw_members(rng, kind)):
            family = surname if m.own_surname and kind != "shared" else SURNAMES.draw(rng)
            home = region if m.own_surname or rng.random() < 0.7 else pick(rng, self.local_regions)
            relation = "tenant" if tenants else "owner" if i == 0 else "resettled" if resettled else "family"
            person = self._person(
                house, family, m, home, relation, move_in, ethnicity, local_birth=not tenants
            )
            self._tags(person, m, kind=kind, low_income=low_income)
            if 20 <= m.age <= 72:
                adults.append(person)
        if adults:
            draw = rng.random()
            for _ in range(2 if draw < 0.03 else 1 if draw < 0.35 else 0):
                self._vehicle(pick(rng, adults), house)

    def _person(
        self,
        house: dict[str, Any],
        surname: str,
        m: Member,
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
            region = self.c.new_city_code  # born here, registered by the new area
        number, birth = self.ids.resident_id(region, birth, m.sex)
        name = surname + pick(rng, pools.GIVEN_NAMES[(pools.cohort(birth.year), m.sex)])
        full, initials = name_pinyin_keys(name)  # as registry.people.columns derives them
        phone = self.ids.mobile() if m.age >= 14 and (m.age < 85 or rng.random() < 0.5) else None
        person = {
            "id": next(self.next_id["person"]),
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
        self.batch.residences.append({
            "id": next(self.next_id["residence"]),
            "person_id": person["id"],
            "house_id": house["id"],
            "relation": relation,
            "move_in": max(move_in, birth),
            "move_out": None,
            "area_code": house["area_code"],
        })  # fmt: skip
        return person

    def _tags(self, person: dict[str, Any], m: Member, *, kind: str, low_income: bool) -> None:
        rng = self.rng
        tags = []
        if kind == "elderly_single" and m.age >= 70:
            tags.append("elderly_alone")
        if low_income:
            tags.append("low_income")
        if rng.random() < 0.004 + 0.00025 * m.age:
            tags.append("disability")
        if m.sex == "M" and 30 <= m.age <= 80 and rng.random() < 0.03:
            tags.append("veteran")
        if kind == "skipped" and m.age < 16 and rng.random() < 0.4:
            tags.append("left_behind_minor")
        if m.age >= 18 and rng.random() < 0.002:
            tags.append("key_care")
        for tag in tags:
            self.batch.tags.append({
                "id": next(self.next_id["tag"]), "person_id": person["id"], "tag": tag,
                "area_code": person["area_code"],
            })  # fmt: skip

    def _vehicle(self, owner: dict[str, Any], house: dict[str, Any]) -> None:
        rng = self.rng
        plate, kind = self.ids.plate()
        where = rng.random()
        if where < 0.6:
            space = f"B1-{between(rng, 1, 999):03d}"
        else:
            space = f"地上{between(rng, 1, 300):03d}" if where < 0.8 else ""
        self.batch.vehicles.append({
            "id": next(self.next_id["vehicle"]), "area_code": house["area_code"], "plate": plate,
            "plate_kind": kind, "vehicle_type": "car", "colour": pick(rng, pools.COLOURS),
            "owner_person_id": owner["id"], "owner_org_id": None, "parking_space": space,
        })  # fmt: skip

    # ------------------------------------------------------------------ organisations

    def _organisations(self) -> None:
        rng, c = self.rng, self.c
        company = f"陕西{pick(rng, pools.ENTERPRISE_WORDS)}物业服务有限公司"
        self._org(company, "property", None, f"{c.name}物业服务中心", between(rng, 20, 80))
        for house in self.shops:
            kind = pick(rng, pools.SHOP_KINDS)
            name = f"{SURNAMES.draw(rng)}记{kind}" if rng.random() < 0.4 else f"{c.name[:2]}{kind}"
            self._org(name, "shop", house, house["full_address"], between(rng, 1, 6))
        for _ in range(between(rng, 1, 4)):
            name = f"陕西{pick(rng, pools.ENTERPRISE_WORDS)}{pick(rng, pools.ENTERPRISE_TRADES)}有限公司"
            office = pick(rng, self.homes) if self.homes else None
            address = office["full_address"] if office else c.name
            self._org(name, "enterprise", office, address, between(rng, 2, 40))
        if rng.random() < 0.6:
            self._org(f"{c.name}{pick(rng, pools.SOCIAL_ORGS)}", "social", None, c.name, between(rng, 3, 15))

    def _org(
        self, name: str, org_type: str, house: dict[str, Any] | None, address: str, employees: int
    ) -> None:
        rng = self.rng
        boss = SURNAMES.draw(rng) + pick(rng, pools.GIVEN_NAMES[("mid", pick(rng, "MF"))])
        phone = self.ids.mobile()
        self.batch.organisations.append({
            "id": next(self.next_id["organisation"]),
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
        })  # fmt: skip


def _cells(box: Box, number: int) -> list[Box]:
    """number cells of a roughly square lattice over box, filled column by column (west to east)."""
    lat = (box.south + box.north) / 2
    width = (box.east - box.west) * math.cos(math.radians(lat))
    height = box.north - box.south
    cols = max(1, min(number, round(math.sqrt(number * width / height))))
    rows = math.ceil(number / cols)
    cols = math.ceil(number / rows)
    return [
        sub_box(box, x0=col / cols, y0=row / rows, x1=(col + 1) / cols, y1=(row + 1) / rows)
        for col, row in (divmod(i, rows) for i in range(number))
    ]
