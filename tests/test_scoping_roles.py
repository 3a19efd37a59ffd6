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
    """One resident per community; Tianfu's lives in a building of grid 1."""
    system = Principal.system()
    ids = {}
    for key, name in (("tianfu", "天府居民"), ("yuyu", "昱宇居民"), ("xingfu", "幸福居民")):
        grid = world.tianfu_grid if key == "tianfu" else None
        home = house(session, system, getattr(world, key), grid=grid)
        ids[key] = resident(session, system, home, person(name=name)).id
    session.commit()
    return ids


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


def test_grid_worker_does_not_see_the_other_grid(client, login, session, world) -> None:
    system = Principal.system()
    home = house(session, system, world.tianfu, building="9", grid=world.tianfu_grid2)
    other = resident(session, system, home, person(name="二网格居民")).id
    session.commit()
    assert client.get(f"/api/v1/people/{other}", headers=login("wangge")).status_code == 404
    assert client.get(f"/api/v1/people/{other}", headers=login("shequ")).status_code == 200


def test_building_grid_must_belong_to_the_community(session, world) -> None:
    from linli.core.errors import Invalid

    with pytest.raises(Invalid) as err:
        house(session, Principal.system(), world.yuyu, grid=world.tianfu_grid)
    assert err.value.field == "grid"


def test_police_liaison_is_read_only(client, login, world) -> None:
    headers = login("jingwu")
    r = client.post("/api/v1/people", headers=headers, json={**person(), "community": world.tianfu})
    assert r.status_code == 403
    assert (
        client.post(
            "/api/v1/vehicles", headers=headers, json={"community": world.tianfu, "plate": "陕A12345"}
        ).status_code
        == 403
    )


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
