"""The registry API end to end: buildings, houses, organisations, vehicles, exports, bad input."""

from __future__ import annotations

import io

import openpyxl

from tests.builders import person


def _uscc() -> str:
    """A valid USCC built with the checks under test (a property company in Xianyang)."""
    from linli.registry.validation import gb11714_check_char, gb32100_check_char

    org_code = "MA6XK3LW"
    body = "916104" + "00" + org_code + gb11714_check_char(org_code)
    return body + gb32100_check_char(body)


def test_building_house_person_vehicle_flow(client, login, world) -> None:
    headers = login("shequ")
    building = client.post(
        "/api/v1/buildings",
        headers=headers,
        json={"community": world.tianfu, "number": "3号楼", "floors": 18, "units": 2},
    )
    assert building.json()["outcome"] == "created"
    bid = building.json()["id"]
    house = client.post(
        "/api/v1/houses",
        headers=headers,
        json={
            "community": world.tianfu,
            "building_id": bid,
            "unit": "2单元",
            "room": "1203室",
            "area_m2": 89.5,
            "use": "住宅",
            "ownership": "回迁安置",
        },
    )
    assert house.status_code == 200, house.text
    detail = client.get(f"/api/v1/houses/{house.json()['id']}", headers=headers).json()
    assert (detail["floor"], detail["full_address"]) == (12, "天府和苑3号楼2单元1203室")
    p = client.post(
        "/api/v1/people",
        headers=headers,
        json={**person(name="周桂芳", male=False), "house_id": detail["id"], "relation": "户主"},
    )
    assert p.json()["outcome"] == "created"
    car = client.post(
        "/api/v1/vehicles",
        headers=headers,
        json={
            "community": world.tianfu,
            "plate": "陕ad 12345",
            "owner_person_id": p.json()["id"],
            "colour": "白",
        },
    )
    assert car.status_code == 200, car.text
    profile = client.get(f"/api/v1/people/{p.json()['id']}", headers=headers).json()
    assert profile["vehicles"][0]["plate"] == "陕AD12345"
    assert profile["residences"][0]["address"] == "天府和苑3号楼2单元1203室"
    assert profile["phone"] == "138****8000"


def test_house_said_to_be_in_another_community_is_refused(client, login, world) -> None:
    headers = login("jiedao")  # the street sees both communities
    bid = client.post(
        "/api/v1/buildings", headers=headers, json={"community": world.tianfu, "number": "5"}
    ).json()["id"]
    r = client.post(
        "/api/v1/houses", headers=headers, json={"community": world.yuyu, "building_id": bid, "room": "101"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "building_id"


def test_bad_values_name_their_field(client, login, world) -> None:
    headers = login("shequ")
    cases = [
        (
            "/api/v1/organisations",
            {"community": world.tianfu, "name": "某公司", "uscc": "91610400MA6XK3LW8A"},
            "uscc",
        ),
        ("/api/v1/vehicles", {"community": world.tianfu, "plate": "陕A1234"}, "plate"),
        ("/api/v1/people", {**person(phone="1380013800"), "community": world.tianfu}, "phone"),
        ("/api/v1/people", {**person(), "community": "999999999999"}, "community"),
        ("/api/v1/buildings", {"community": world.tianfu, "number": "三号楼"}, "building"),
    ]
    for url, body, field in cases:
        r = client.post(url, headers=headers, json=body)
        assert r.status_code in (404, 422), (url, r.text)
        assert r.json()["error"]["field"] == field, (url, r.json())


def test_organisation_dedup_on_uscc(client, login, world) -> None:
    headers = login("shequ")
    uscc = _uscc()
    body = {
        "community": world.tianfu,
        "name": "西咸天府物业服务有限公司",
        "uscc": uscc,
        "org_type": "物业公司",
        "contact_phone": "13991234567",
        "employees": 12,
    }
    first = client.post("/api/v1/organisations", headers=headers, json=body).json()
    again = client.post("/api/v1/organisations", headers=headers, json={**body, "uscc": uscc.lower()}).json()
    assert first["id"] == again["id"] and (first["outcome"], again["outcome"]) == ("created", "unchanged")
    listed = client.get("/api/v1/organisations", headers=headers).json()
    assert [o["contact_phone"] for o in listed] == ["139****4567"]


def test_exports_of_each_list_are_masked_and_audited(client, login, world) -> None:
    headers = login("shequ")
    client.post(
        "/api/v1/people", headers=headers, json={**person(name="导出测试"), "community": world.tianfu}
    )
    for path in (
        "/api/v1/export/people.xlsx",
        "/api/v1/export/houses.xlsx",
        "/api/v1/export/organisations.xlsx",
        "/api/v1/export/vehicles.xlsx",
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 200, path
        sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
        assert sheet.max_row >= 1
    people_sheet = openpyxl.load_workbook(
        io.BytesIO(client.get("/api/v1/export/people.xlsx", headers=headers).content)
    ).active
    values = [c.value for row in people_sheet.iter_rows(min_row=2) for c in row]
    assert "导出测试" in values and any(str(v).count("*") == 11 for v in values)
    audit = client.get("/api/v1/audit", headers=login("admin"), params={"action": "export"}).json()
    assert {e["target_type"] for e in audit} >= {"people", "houses", "organisations", "vehicles"}
    assert client.get("/api/v1/export/people.xlsx", headers=login("wuye")).status_code == 403


def test_permission_change_is_audited(client, login, world) -> None:
    admin = login("admin")
    users = client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "newgrid",
            "password": "grid-worker-1",
            "role": "grid_worker",
            "areas": [world.tianfu_grid],
        },
    )
    assert users.status_code == 201
    uid = users.json()["id"]
    r = client.put(
        f"/api/v1/users/{uid}/permissions",
        headers=admin,
        json={"role": "community_worker", "areas": [world.tianfu]},
    )
    assert r.json()["role"] == "community_worker"
    entries = client.get("/api/v1/audit", headers=admin, params={"action": "user.permissions"}).json()
    assert entries[0]["detail"]["old"]["role"] == "grid_worker"
    # A street worker cannot hand out areas outside the street.
    assert client.put(
        f"/api/v1/users/{uid}/permissions",
        headers=login("jiedao"),
        json={"role": "community_worker", "areas": [world.xingfu]},
    ).status_code in (403, 404)


def test_organisation_at_an_address_shows_on_the_house(client, login, world, session) -> None:
    from linli.registry import organisations

    headers = login("shequ")
    bid = client.post(
        "/api/v1/buildings", headers=headers, json={"community": world.tianfu, "number": "1"}
    ).json()
    hid = client.post(
        "/api/v1/houses",
        headers=headers,
        json={"building_id": bid["id"], "unit": "1", "room": "101", "use": "商铺"},
    ).json()["id"]
    body = {"community": world.tianfu, "name": "天府便民超市", "uscc": _uscc(), "house_id": hid}
    org = client.post("/api/v1/organisations", headers=headers, json=body).json()
    detail = client.get(f"/api/v1/organisations/{org['id']}", headers=headers).json()
    assert detail["address"] == "天府和苑1号楼1单元101室"
    assert [o.name for o in organisations.at_house(session, house_id=hid)] == ["天府便民超市"]
    other = client.post(
        "/api/v1/organisations", headers=login("shequ2"), json={**body, "community": world.yuyu}
    )
    assert other.status_code == 404  # Yuyu's worker cannot see Tianfu's house
