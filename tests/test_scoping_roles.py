"""Scoping: each role sees its own area subtree and nothing else, through the real API.

A person lives in each of three communities; every role asks for every person. What a caller may not
see is a 404 (never a 403 that would confirm the record exists) and never appears in a list.
"""

from __future__ import annotations

import pytest

from linli.core.auth.service import Principal
from tests.builders import person
from tests.registry.helpers import house, resident

# username -> the communities whose residents the user may read (None: the role may not read people)
CAN_SEE = {
    "admin": {"tianfu", "yuyu", "xingfu"},
    "jingwu": {"tianfu", "yuyu", "xingfu"},
    "jiedao": {"tianfu", "yuyu"},
    "shequ": {"tianfu"},
    "shequ2": {"yuyu"},
    "shequ3": {"xingfu"},
    "wangge": {"tianfu"},  # only the grid's houses: the Tianfu resident lives in grid 1
    "wuye": {"tianfu"},
    "jumin": None,
}


@pytest.fixture
def residents(session, world) -> dict[str, int]:
    system = Principal.system()
    ids = {}
    for key, name in (("tianfu", "天府居民"), ("yuyu", "昱宇居民"), ("xingfu", "幸福居民")):
        community = getattr(world, key)
        home = house(session, system, community)
        p = resident(session, system, home, person(name=name))
        ids[key] = p.id
    # Tianfu's resident lives in grid 1 (houses of a grid carry the grid's code).
    from linli.registry.models import House, Person, Residence

    tianfu_house = session.get(House, session.get(Residence, _res_id(session, ids["tianfu"])).house_id)
    tianfu_house.area_code = world.tianfu_grid
    session.get(Residence, _res_id(session, ids["tianfu"])).area_code = world.tianfu_grid
    session.get(Person, ids["tianfu"]).area_code = world.tianfu_grid
    session.commit()
    return ids


def _res_id(session, person_id: int) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from linli.registry.models import Residence

    return session.scalar(select(Residence.id).where(Residence.person_id == person_id))


@pytest.mark.parametrize("username", sorted(CAN_SEE))
def test_role_sees_exactly_its_areas(client, login, residents, username) -> None:
    headers = login(username)
    allowed = CAN_SEE[username]
    listed = client.get("/api/v1/people", headers=headers, params={"limit": 500})
    if allowed is None:
        assert listed.status_code == 403
        assert client.get(f"/api/v1/people/{residents['tianfu']}", headers=headers).status_code == 403
        return
    assert listed.status_code == 200
    assert {p["id"] for p in listed.json()} == {residents[k] for k in allowed}
    for key, person_id in residents.items():
        r = client.get(f"/api/v1/people/{person_id}", headers=headers)
        if key in allowed:
            assert r.status_code == 200 and r.json()["id_number"].count("*") == 11
        else:
            assert r.status_code == 404, (username, key, r.text)
            assert "居民" not in r.text


def test_grid_worker_does_not_see_the_other_grid(client, login, residents, session, world) -> None:
    from linli.registry.models import Person

    session.get(Person, residents["tianfu"]).area_code = world.tianfu_grid2
    from sqlalchemy import update

    from linli.registry.models import Residence

    session.execute(update(Residence).where(Residence.person_id == residents["tianfu"])
                    .values(area_code=world.tianfu_grid2))
    session.commit()
    headers = login("wangge")
    assert client.get(f"/api/v1/people/{residents['tianfu']}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/people/{residents['tianfu']}", headers=login("shequ")).status_code == 200


def test_police_liaison_is_read_only(client, login, world) -> None:
    headers = login("jingwu")
    r = client.post("/api/v1/people", headers=headers, json={**person(), "community": world.tianfu})
    assert r.status_code == 403
    assert client.post("/api/v1/vehicles", headers=headers,
                       json={"community": world.tianfu, "plate": "陕A12345"}).status_code == 403


def test_worker_cannot_write_into_another_community(client, login, world) -> None:
    headers = login("shequ")
    r = client.post("/api/v1/people", headers=headers, json={**person(), "community": world.yuyu})
    assert r.status_code == 404
    assert r.json()["error"]["field"] == "community"
    r = client.post("/api/v1/buildings", headers=headers, json={"community": world.xingfu, "number": "1"})
    assert r.status_code == 404


def test_area_api_is_scoped(client, login, world) -> None:
    headers = login("shequ")
    assert client.get(f"/api/v1/areas/{world.tianfu}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/areas/{world.yuyu}", headers=headers).status_code == 404
    detail = client.get(f"/api/v1/areas/{world.tianfu}", headers=headers).json()
    assert [a["name"] for a in detail["ancestors"]] == ["西咸新区", "沣东新城", "斗门街道"]
    roots = client.get("/api/v1/areas", headers=headers).json()
    assert [a["code"] for a in roots] == [world.tianfu]
