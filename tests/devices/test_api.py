"""Staff API: the device register, secrets, scoping per role, events, dead letters and their replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linli.core.auth.service import Principal
from linli.core.timeutil import LOCAL_TZ
from linli.devices import service
from linli.registry import places
from tests.devices.helpers import T0, body_of, device, envelope, plate_read, signed


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_register_a_device_and_see_its_secret_once(client, login, session, world) -> None:
    headers = login("shequ")
    building, _ = places.upsert_building(session, Principal.system(), community_code=world.tianfu, number="3")
    session.commit()
    created = client.post(
        "/api/v1/devices",
        headers=headers,
        json={
            "serial": "DS-2CD3T46-TF-0301",
            "kind": "摄像机",
            "community": world.tianfu,
            "grid": world.tianfu_grid,
            "name": "3号楼电梯厅",
            "vendor": "海康威视",
            "model": "DS-2CD3T46WDV3-I3",
            "protocol": "onvif",
            "building_id": building.id,
            "floor": 1,
            "lat": 34.3012,
            "lon": 108.7021,
            "installed_on": "2023-11-08",
        },
    )
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["kind"] == "camera" and data["kind_label"] == "摄像机"
    assert data["area_code"] == world.tianfu_grid and data["community_code"] == world.tianfu
    assert len(data["secret"]) >= 40
    detail = client.get(f"/api/v1/devices/{data['id']}", headers=headers).json()
    assert "secret" not in detail and detail["uptime_7d"] is None and detail["online"] is False
    listed = client.get("/api/v1/devices", headers=headers, params={"kind": "camera"}).json()
    assert [d["serial"] for d in listed] == ["DS-2CD3T46-TF-0301"]
    assert all("secret" not in d for d in listed)
    dup = client.post(
        "/api/v1/devices",
        headers=headers,
        json={"serial": "DS-2CD3T46-TF-0301", "kind": "camera", "community": world.tianfu},
    )
    assert dup.status_code == 409 and dup.json()["error"]["field"] == "serial"


def test_bad_device_input_names_the_field(client, login, world) -> None:
    headers = login("shequ")
    base = {"serial": "X-1", "kind": "camera", "community": world.tianfu}
    cases = [
        ({"kind": "toaster"}, "kind"),
        ({"serial": "有 空格"}, "serial"),
        ({"lat": 123.0}, "lat"),
        ({"grid": world.tianfu_grid.replace("01", "09", 1)}, "grid"),
    ]
    for change, field in cases:
        r = client.post("/api/v1/devices", headers=headers, json={**base, **change})
        assert r.status_code in (404, 422), (change, r.text)
        assert r.json()["error"]["field"] == field, (change, r.text)
    other = client.post("/api/v1/devices", headers=headers, json={**base, "community": world.yuyu})
    assert other.status_code == 404


def test_edit_retire_delete_and_rotate(client, login, session, world) -> None:
    headers = login("wuye")
    cam, old_secret = device(session, world.tianfu, serial="DH-IPC-TF-0105")
    session.commit()
    r = client.patch(
        f"/api/v1/devices/{cam.id}", headers=headers, json={"state": "维修", "location": "东门岗亭"}
    )
    assert r.json()["state"] == "maintenance" and r.json()["location"] == "东门岗亭"
    rotated = client.post(f"/api/v1/devices/{cam.id}/secret", headers=headers).json()
    assert rotated["serial"] == cam.serial and rotated["secret"] != old_secret
    body = body_of([envelope(cam.serial, at=_now())])
    assert (
        client.post(
            "/api/v1/ingest/events", content=body, headers=signed(cam.serial, old_secret, body)
        ).status_code
        == 401
    )
    ok = client.post(
        "/api/v1/ingest/events", content=body, headers=signed(cam.serial, rotated["secret"], body)
    )
    assert ok.json()["stored"] == 1
    assert client.delete(f"/api/v1/devices/{cam.id}", headers=headers).status_code == 409  # it has events
    spare, _ = device(session, world.tianfu, serial="DH-IPC-TF-SPARE")
    session.commit()
    assert client.delete(f"/api/v1/devices/{spare.id}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/devices/{spare.id}", headers=headers).status_code == 404


def test_a_community_worker_sees_only_their_community(client, login, session, world, gate, camera) -> None:
    service.ingest(
        session, [plate_read(gate[0].serial, "陕A12345", at=_now())], source="http", received_at=_now()
    )
    service.ingest(session, [envelope(camera[0].serial, at=_now())], source="http", received_at=_now())
    session.commit()
    shequ = login("shequ")
    assert [d["serial"] for d in client.get("/api/v1/devices", headers=shequ).json()] == [gate[0].serial]
    assert client.get(f"/api/v1/devices/{camera[0].id}", headers=shequ).status_code == 404
    assert (
        client.patch(f"/api/v1/devices/{camera[0].id}", headers=shequ, json={"name": "x"}).status_code == 404
    )
    assert client.post(f"/api/v1/devices/{camera[0].id}/secret", headers=shequ).status_code == 404
    events = client.get("/api/v1/events", headers=shequ).json()["items"]
    assert {e["device_serial"] for e in events} == {gate[0].serial}
    admin = client.get("/api/v1/events", headers=login("admin")).json()["items"]
    assert {e["device_serial"] for e in admin} == {gate[0].serial, camera[0].serial}
    street = client.get("/api/v1/devices", headers=login("jiedao")).json()
    assert {d["serial"] for d in street} == {gate[0].serial, camera[0].serial}
    assert client.get("/api/v1/devices", headers=login("shequ3")).json() == []


@pytest.mark.parametrize(
    ("username", "devices", "write", "events"),
    [
        ("admin", 200, 201, 200),
        ("jiedao", 200, 201, 200),
        ("shequ", 200, 201, 200),
        ("wuye", 200, 201, 200),
        ("wangge", 403, 403, 200),
        ("jingwu", 403, 403, 200),
        ("jumin", 403, 403, 403),
    ],
)
def test_permissions_per_role(client, login, world, username, devices, write, events) -> None:
    headers = login(username)
    assert client.get("/api/v1/devices", headers=headers).status_code == devices
    body = {"serial": f"SOS-TF-{username}", "kind": "sos_button", "community": world.tianfu}
    assert client.post("/api/v1/devices", headers=headers, json=body).status_code == write
    assert client.get("/api/v1/events", headers=headers).status_code == events
    assert client.get("/api/v1/events").status_code == 401


def test_event_filters_and_cursor_paging(client, login, session, world, gate) -> None:
    serial = gate[0].serial
    start = _now() - timedelta(hours=1)
    reads = [
        plate_read(serial, "陕A12345" if i % 2 else "陕D67890", at=start + timedelta(minutes=i))
        for i in range(7)
    ]
    result = service.ingest(session, reads, source="http", received_at=_now())
    session.commit()
    headers = login("shequ")
    params = {"type": "vehicle.entered", "limit": 3, "device_id": gate[0].id}
    page1 = client.get("/api/v1/events", headers=headers, params=params).json()
    assert [e["id"] for e in page1["items"]] == result.event_ids[::-1][:3]
    page2 = client.get("/api/v1/events", headers=headers, params={**params, "before": page1["before"]}).json()
    page3 = client.get("/api/v1/events", headers=headers, params={**params, "before": page2["before"]}).json()
    assert [e["id"] for e in page2["items"] + page3["items"]] == result.event_ids[::-1][3:]
    assert page3["before"] is None
    newer = client.get(
        "/api/v1/events", headers=headers, params={**params, "after": result.event_ids[1]}
    ).json()
    assert [e["id"] for e in newer["items"]] == result.event_ids[2:5][::-1]
    window = {
        "since": (start + timedelta(minutes=2)).isoformat(),
        "until": (start + timedelta(minutes=4)).isoformat(),
    }
    timed = client.get("/api/v1/events", headers=headers, params={**window, "type": "vehicle.entered"}).json()
    assert [e["id"] for e in timed["items"]] == result.event_ids[2:4][::-1]
    # The same window written in Asia/Shanghai (+08:00) is the same instants, on SQLite as on PostgreSQL.
    local = {name: datetime.fromisoformat(at).astimezone(LOCAL_TZ).isoformat() for name, at in window.items()}
    assert "+08:00" in local["since"]
    again = client.get("/api/v1/events", headers=headers, params={**local, "type": "vehicle.entered"}).json()
    assert [e["id"] for e in again["items"]] == result.event_ids[2:4][::-1]
    area = client.get("/api/v1/events", headers=headers, params={"community": world.yuyu}).json()
    assert area["items"] == []
    hourly = client.get(
        "/api/v1/events/hourly", headers=headers, params={"since": (start - timedelta(hours=1)).isoformat()}
    )
    assert sum(r["count"] for r in hourly.json() if r["type"] == "vehicle.entered") == 7


def test_dead_letter_replay_after_registering_the_device(client, login, session, world, gate) -> None:
    alarm = envelope(
        "NB-SMK-TF-0902", "alarm.raised", at=_now(), payload={"alarm": "smoke", "level": "critical"}
    )
    mine = envelope(gate[0].serial, "vehicle.entered", at=_now(), payload={})
    service.ingest(session, [alarm, mine], source="mqtt", received_at=_now())
    session.commit()
    admin, shequ, shequ2 = login("admin"), login("shequ"), login("shequ2")
    everything = client.get("/api/v1/dead-letters", headers=admin).json()
    assert [d["device_serial"] for d in everything] == [gate[0].serial, "NB-SMK-TF-0902"]
    # the unknown device's letter has no area yet: only the unrestricted scope sees it
    assert [d["device_serial"] for d in client.get("/api/v1/dead-letters", headers=shequ).json()] == [
        gate[0].serial
    ]
    assert client.get("/api/v1/dead-letters", headers=shequ2).json() == []
    unknown_id = everything[1]["id"]
    assert client.post(f"/api/v1/dead-letters/{unknown_id}/replay", headers=shequ).status_code == 404

    refused = client.post(f"/api/v1/dead-letters/{unknown_id}/replay", headers=admin).json()
    assert refused["dead_letter"]["status"] == "new" and refused["dead_letter"]["attempts"] == 1
    assert refused["result"]["rejected"][0]["reason"].startswith("unknown device")
    assert len(client.get("/api/v1/dead-letters", headers=admin).json()) == 2  # no new letter for a replay

    client.post(
        "/api/v1/devices",
        headers=shequ,
        json={
            "serial": "NB-SMK-TF-0902",
            "kind": "烟感",
            "community": world.tianfu,
            "location": "9号楼1单元",
        },
    )
    replayed = client.post(f"/api/v1/dead-letters/{unknown_id}/replay", headers=admin).json()
    assert replayed["result"]["stored"] == 1
    letter = replayed["dead_letter"]
    assert letter["status"] == "replayed" and letter["event_id"] and letter["area_code"] == world.tianfu
    events = client.get("/api/v1/events", headers=shequ, params={"type": "alarm.raised"}).json()["items"]
    assert [e["id"] for e in events] == [letter["event_id"]]
    assert client.post(f"/api/v1/dead-letters/{unknown_id}/replay", headers=admin).status_code == 409
    discarded = client.post(f"/api/v1/dead-letters/{everything[0]['id']}/discard", headers=shequ).json()
    assert discarded["status"] == "discarded"
    assert [
        d["id"] for d in client.get("/api/v1/dead-letters", headers=admin, params={"status": "new"}).json()
    ] == []


def test_replay_publishes_on_the_bus_after_commit(client, login, session, world) -> None:
    from tests.devices.helpers import Recorder

    service.ingest(session, [envelope("WM-TF-0001", at=_now())], source="http", received_at=_now())
    device(session, world.tianfu, serial="WM-TF-0001", kind="water_meter", vendor="三川")
    session.commit()
    headers = login("admin")
    letter_id = client.get("/api/v1/dead-letters", headers=headers).json()[0]["id"]
    rec = Recorder(client.app.state.bus)
    try:
        client.post(f"/api/v1/dead-letters/{letter_id}/replay", headers=headers)
    finally:
        rec.close()
    assert [d["type"] for d in rec.data] == ["device.heartbeat", "device.online"]


def test_uptime_in_the_device_detail(client, login, session, world) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-UP-01")
    now = _now()
    service.ingest(
        session,
        [envelope(cam.serial, at=now - timedelta(hours=2))],
        source="http",
        received_at=now - timedelta(hours=2),
    )
    session.commit()
    detail = client.get(f"/api/v1/devices/{cam.id}", headers=login("shequ")).json()
    assert detail["uptime_7d"] == pytest.approx(1.0) and detail["online"] is True
    assert detail["last_seen_at"] is not None


def test_old_events_use_the_clock_given(session, gate) -> None:
    result = service.ingest(
        session, [envelope(gate[0].serial, at=T0)], source="http", received_at=T0 + timedelta(days=29)
    )
    assert result.stored == 1


def test_a_kind_that_never_connects_is_not_monitored_and_never_offline(client, login, session, world) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-MON-01")  # registered, not heard from yet
    tag, _ = device(
        session, world.tianfu, serial="XG-TF-MON-01", kind="patrol_tag", vendor="兰德华", model="L"
    )
    session.commit()
    headers = login("shequ")
    offline = client.get("/api/v1/devices", headers=headers, params={"online": False}).json()
    serials = {d["serial"]: d for d in offline}
    assert cam.serial in serials and tag.serial not in serials  # a tag is touched, never heard from
    assert serials[cam.serial]["monitored"] is True
    detail = client.get(f"/api/v1/devices/{tag.id}", headers=headers).json()
    assert detail["monitored"] is False and detail["online"] is False and detail["uptime_7d"] is None
    listed = client.get("/api/v1/devices", headers=headers, params={"kind": "patrol_tag"}).json()
    assert [d["serial"] for d in listed if d["serial"] == tag.serial] == [tag.serial]


def test_bulk_replay_of_a_devices_dead_letters_after_registering_it(
    client, login, session, world, gate
) -> None:
    from linli.devices import deadletters

    now = _now()
    smoke = [
        envelope("NB-SMK-TF-0903", "alarm.raised", at=now, payload={"alarm": "smoke"}, uid=f"smk-{i}")
        for i in range(3)
    ]
    other = envelope("NB-SMK-TF-0904", "alarm.raised", at=now, payload={"alarm": "smoke"}, uid="smk-x")
    bad = envelope(gate[0].serial, "vehicle.entered", at=now, payload={}, uid="no-plate")  # stays bad
    service.ingest(session, [*smoke, other, bad], source="mqtt", received_at=now)
    broken = deadletters.record(session, reason="not JSON", item=b"{not json", source="http", received_at=now)
    session.commit()
    admin, shequ = login("admin"), login("shequ")

    # A community worker replays only the letters of their areas: the gate's, refused again.
    mine = client.post("/api/v1/dead-letters/replay", headers=shequ).json()
    assert mine == {"replayed": 0, "refused": 1, "remaining": 1}
    assert client.post("/api/v1/dead-letters/replay", headers=login("jingwu")).status_code == 403

    registered = client.post(
        "/api/v1/devices",
        headers=shequ,
        json={"serial": "NB-SMK-TF-0903", "kind": "烟感", "community": world.tianfu, "location": "9号楼"},
    )
    assert registered.status_code == 201
    one = client.post(
        "/api/v1/dead-letters/replay", headers=admin, params={"device": "NB-SMK-TF-0903", "limit": 1}
    ).json()
    assert one == {"replayed": 1, "refused": 0, "remaining": 2}  # oldest first, at most limit
    rest = client.post(
        "/api/v1/dead-letters/replay", headers=admin, params={"device": "NB-SMK-TF-0903"}
    ).json()
    assert rest == {"replayed": 2, "refused": 0, "remaining": 0}
    stored = client.get("/api/v1/events", headers=shequ, params={"type": "alarm.raised"}).json()["items"]
    assert sorted(e["event_uid"] for e in stored) == ["smk-0", "smk-1", "smk-2"]

    # Everything left: the unknown device's, the gate's and the body that is not JSON are refused; the
    # last cannot be replayed at all and stays exactly as it was, without stopping the others.
    left = client.post("/api/v1/dead-letters/replay", headers=admin).json()
    assert left == {"replayed": 0, "refused": 3, "remaining": 3}
    session.expire_all()
    assert broken.status == "new" and broken.attempts == 0 and broken.reason == "not JSON"
    by_source = client.post("/api/v1/dead-letters/replay", headers=admin, params={"source": "http"}).json()
    assert by_source == {"replayed": 0, "refused": 1, "remaining": 1}
