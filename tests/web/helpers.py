"""Page-test helpers: sign in through the real login form; a small register in two communities."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core.auth.service import Principal
from linli.registry import organisations, people, places, vehicles
from linli.registry.validation import gb11714_check_char, gb32100_check_char
from tests.builders import World, person
from tests.conftest import PASSWORD

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page carries in its forms."""
    match = CSRF_FIELD.search(html)
    assert match, "no csrf field on the page"
    return match.group(1)


@dataclass
class Console:
    """A browser-like client of the console: HTML accepted, signed in through the login form."""

    client: TestClient

    def login(self, username: str, password: str = PASSWORD) -> Response:
        """Sign in as username through GET/POST /login; returns the page it lands on."""
        form = self.client.get("/login")
        assert form.status_code == 200
        landed = self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf": csrf_of(form.text), "next": "/"},
        )
        assert landed.status_code == 200, landed.text
        assert f"{username} ·" in landed.text
        return landed

    def csrf(self) -> str:
        """The signed-in session's CSRF token (from any page)."""
        return csrf_of(self.client.get("/").text)

    def get(self, url: str, **kwargs: object) -> Response:
        """GET a page."""
        return self.client.get(url, **kwargs)  # type: ignore[arg-type]


def make_uscc(body8: str) -> str:
    """A valid unified social credit code around an 8-character organisation code body."""
    first17 = "91610402" + body8 + gb11714_check_char(body8)
    return first17 + gb32100_check_char(first17)


def square(lon: float, lat: float, size: float) -> dict[str, object]:
    """A small GeoJSON square polygon."""
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclass(frozen=True)
class Register:
    """Ids of the register built for page tests: one set in Tianfu, one in Xingfu (another street)."""

    person: int
    house: int
    empty_house: int
    building: int
    org: int
    vehicle: int
    other_person: int
    other_house: int
    other_building: int
    other_org: int
    other_vehicle: int


def build_register(session: Session, world: World) -> Register:
    """Buildings, houses, people, an organisation at an address and a vehicle per community (committed)."""
    system = Principal.system()
    community = areas.get_or_raise(session, code=world.tianfu)
    community.boundary = square(108.6995, 34.2995, 0.0020)
    community.buildings, community.households, community.floor_area = 24, 1480, 156000.0
    community.plot_ratio, community.green_ratio = 2.3, 0.35
    b, _ = places.upsert_building(
        session,
        system,
        community_code=world.tianfu,
        number="3",
        floors=6,
        units=2,
        footprint=square(108.7001, 34.3001, 0.0004),
    )
    places.upsert_building(
        session,
        system,
        community_code=world.tianfu,
        number="5",
        floors=11,
        units=1,
        footprint=square(108.7008, 34.3001, 0.0003),
    )
    h, _ = places.upsert_house(
        session,
        system,
        building=b,
        unit="2",
        room="501",
        facts={"area_m2": "89.5", "use": "住宅", "occupancy": "自住"},
    )
    empty, _ = places.upsert_house(
        session, system, building=b, unit="1", room="302", facts={"occupancy": "空置"}
    )
    p, _ = people.upsert(
        session, system, person(name="张秀英", tags="独居老人", male=False), house=h, relation="户主"
    )
    people.upsert(session, system, person(name="李建国"), house=h, relation="家庭成员")
    org, _ = organisations.upsert(
        session,
        system,
        {
            "name": "天府和苑便民超市",
            "uscc": make_uscc("MA6CU7K1"),
            "org_type": "个体工商户",
            "contact_phone": "13912345678",
        },
        community_code=world.tianfu,
    )
    org.house_id = h.id
    v, _ = vehicles.upsert(
        session,
        system,
        {"plate": "陕A12345", "colour": "白色", "parking_space": "B-101"},
        community_code=world.tianfu,
        owner=p,
    )
    ob, _ = places.upsert_building(session, system, community_code=world.xingfu, number="8")
    oh, _ = places.upsert_house(session, system, building=ob, unit="1", room="101")
    op, _ = people.upsert(session, system, person(name="王幸福"), house=oh, relation="户主")
    oorg, _ = organisations.upsert(
        session, system, {"name": "幸福里物业", "uscc": make_uscc("MA6CU7K2")}, community_code=world.xingfu
    )
    ov, _ = vehicles.upsert(session, system, {"plate": "陕A54321"}, community_code=world.xingfu, owner=op)
    session.commit()
    return Register(
        person=p.id,
        house=h.id,
        empty_house=empty.id,
        building=b.id,
        org=org.id,
        vehicle=v.id,
        other_person=op.id,
        other_house=oh.id,
        other_building=ob.id,
        other_org=oorg.id,
        other_vehicle=ov.id,
    )
