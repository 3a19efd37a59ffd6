"""Commands down to devices: validation, scoping, audit, credentials, acks, expiry, HTTP polling."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from linli.core import outbox
from linli.core.audit import AuditEntry
from linli.core.auth.service import Principal
from linli.core.errors import Invalid
from linli.devices import commands, service
from linli.devices.models import DeviceCommand, DeviceCredential, StoredEvent
from linli.devices.mqtt import Message
from linli.devices.mqtt_ingest import CommandRelay, handle_batch
from linli.jobs import Jobs
from tests.builders import person
from tests.devices.helpers import T0, body_of, device, envelope, signed
from tests.registry.helpers import house, resident

SYSTEM = Principal.system()


@pytest.fixture
def door(session, world):  # type: ignore[no-untyped-def]
    """A face terminal at Tianfu's building 5 that speaks MQTT (device, secret)."""
    return device(
        session, world.tianfu, serial="FT-TF-5-1", kind="face_terminal", vendor="宇视", protocol="mqtt"
    )


@pytest.fixture
def http_door(session, world):  # type: ignore[no-untyped-def]
    """A face terminal that only speaks HTTP, committed so that requests see it (device, secret)."""
    made = device(session, world.tianfu, serial="FT-TF-6-1", kind="face_terminal", protocol="http")
    session.commit()
    return made


def _send(session, target, command: str, args: dict, **kw):  # type: ignore[no-untyped-def]
    return commands.send(
        session, SYSTEM, device_id=target.id, command=command, args=args, now=kw.pop("now", T0), **kw
    )


def test_an_mqtt_command_is_recorded_audited_and_queued_in_the_outbox(session, door) -> None:
    row = _send(session, door[0], "open_door", {"door": "5号楼单元门"}, ttl=timedelta(seconds=30))
    assert (row.status, row.sent_at, row.requested_by) == ("sent", T0, "system")
    assert row.expires_at == T0 + timedelta(seconds=30) and row.area_code == door[0].area_code
    [queued] = session.scalars(
        select(outbox.OutboxMessage).where(outbox.OutboxMessage.subject.like("linli.commands%"))
    )
    assert queued.subject == f"linli.commands.{door[0].community_code}"
    assert queued.data == {
        "topic": f"linli/{door[0].community_code}/FT-TF-5-1/commands",
        "message": {
            "id": row.id,
            "command": "open_door",
            "args": {"door": "5号楼单元门"},
            "expires_at": (T0 + timedelta(seconds=30)).isoformat(),
        },
    }
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "device.command"))
    assert entry is not None and entry.target_id == str(door[0].id) and entry.actor == "system"
    assert entry.detail["command"] == "open_door" and entry.detail["command_id"] == row.id


def test_the_relay_sends_commands_to_the_broker_and_keeps_them_when_it_is_down(
    session, session_factory, bus, recorder, door, gate
) -> None:
    _send(session, door[0], "reboot", {})
    service.ingest(session, [envelope(gate[0].serial)], source="http", received_at=T0)
    session.commit()
    down: list[str] = []

    def broker_down(topic: str, payload: bytes) -> None:
        down.append(topic)
        raise ConnectionError("not connected to the MQTT broker")

    assert outbox.deliver_outbox(session_factory, CommandRelay(bus, broker_down)) == 0
    assert down == ["linli/611102001001/FT-TF-5-1/commands"] and recorder.data == []
    # the command first, then its state for the console, then the events: nothing is lost or reordered
    assert outbox.pending(session) == 4

    published: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    relay = CommandRelay(bus, lambda topic, payload: published.append((topic, json.loads(payload))))
    assert outbox.deliver_outbox(session_factory, relay) == 4
    assert [(t, m["command"]) for t, m in published] == [("linli/611102001001/FT-TF-5-1/commands", "reboot")]
    assert [m["type"] for m in recorder.data] == ["device.heartbeat", "device.online"]


def test_pushed_credentials_link_later_access_events_and_revoking_unlinks(session, world, door) -> None:
    home = house(session, SYSTEM, world.tianfu, building="5", room="402")
    wang = resident(session, SYSTEM, home, person(name="王建国"))
    _send(
        session, door[0], "push_credential", {"person_id": wang.id, "kind": "card", "card_no": "0099887766"}
    )
    _send(session, door[0], "push_credential", {"person_id": wang.id, "kind": "face"})
    _send(session, door[0], "push_credential", {"person_id": wang.id, "kind": "face"})  # pushed again
    mapped = session.scalars(select(DeviceCredential).where(DeviceCredential.device_id == door[0].id))
    assert sorted((c.kind, c.value) for c in mapped) == [("card", "0099887766"), ("person_ref", str(wang.id))]

    def access(**payload: str) -> int | None:
        batch = [envelope(door[0].serial, "access.granted", payload=payload)]
        result = service.ingest(session, batch, source="mqtt", received_at=T0)
        return session.get(StoredEvent, result.event_ids[0]).person_id  # type: ignore[union-attr]

    assert access(credential="card", card_no="0099887766") == wang.id
    assert access(credential="face", person_ref=str(wang.id)) == wang.id
    _send(session, door[0], "revoke_credential", {"person_id": wang.id, "kind": "card"})
    assert access(credential="card", card_no="0099887766") is None
    assert access(credential="face", person_ref=str(wang.id)) == wang.id


def test_acks_settle_commands_once_and_late_acks_keep_expired(session, door) -> None:
    ok = _send(session, door[0], "open_door", {"door": "1"}, ttl=timedelta(seconds=60))
    failed = _send(session, door[0], "reboot", {}, ttl=timedelta(seconds=60))
    late = _send(session, door[0], "reboot", {}, ttl=timedelta(seconds=60))

    def ack(row: DeviceCommand, status: str, detail: str, seconds: int) -> DeviceCommand | None:
        answer = commands.AckIn(id=row.id, status=status, detail=detail)  # type: ignore[arg-type]
        return commands.acknowledge(session, device=door[0], ack=answer, now=T0 + timedelta(seconds=seconds))

    assert ack(ok, "ok", "opened", 5) is ok and ok.status == "acknowledged" and ok.result == "opened"
    assert ack(ok, "failed", "redelivered", 6) is ok and ok.status == "acknowledged"  # the first answer wins
    assert (
        ack(failed, "failed", "busy", 7) is failed and failed.status == "failed" and failed.result == "busy"
    )
    assert commands.expire_commands(session, T0 + timedelta(seconds=59)) == 0
    assert commands.expire_commands(session, T0 + timedelta(seconds=60)) == 1
    session.refresh(late)
    assert late.status == "expired"
    assert ack(late, "ok", "rebooted at last", 90) is late
    assert (late.status, late.result) == ("expired", "late ack (ok): rebooted at last")
    stranger = commands.AckIn(id=999_999, status="ok")
    assert commands.acknowledge(session, device=door[0], ack=stranger, now=T0) is None


def test_the_expiry_job_uses_its_clock(
    session, session_factory, bus, settings, clock, door, http_door
) -> None:
    queued = _send(
        session, http_door[0], "open_door", {"door": "6号楼"}, ttl=timedelta(minutes=2), now=clock.now
    )
    sent = _send(session, door[0], "open_door", {"door": "5号楼"}, ttl=timedelta(minutes=5), now=clock.now)
    session.commit()
    jobs = Jobs(session_factory=session_factory, bus=bus, settings=settings, clock=lambda: clock.now)
    clock.advance(minutes=1)
    assert jobs.expire_commands() == 0
    clock.advance(minutes=1)
    assert jobs.expire_commands() == 1
    clock.advance(minutes=3)
    assert jobs.expire_commands() == 1
    session.expire_all()
    assert (queued.status, sent.status) == ("expired", "expired")


def test_acks_over_mqtt_topics(session, session_factory, bus, world, door) -> None:
    row = _send(session, door[0], "open_door", {"door": "1"})
    session.commit()

    def on(community: str, body: bytes) -> Message:
        return Message(f"linli/{community}/FT-TF-5-1/acks", community, "FT-TF-5-1", body, 1, 1)

    stats = handle_batch(
        [
            on(world.yuyu, json.dumps({"id": row.id, "status": "ok"}).encode()),  # wrong community: ignored
            on(world.tianfu, b"{not json"),
            on(world.tianfu, json.dumps({"id": 424242, "status": "ok"}).encode()),
            on(world.tianfu, json.dumps({"id": row.id, "status": "failed", "detail": "门锁故障"}).encode()),
        ],
        session_factory=session_factory,
        bus=bus,
        now=T0 + timedelta(seconds=3),
    )
    assert (stats.acks, stats.ignored) == (1, 3)
    session.refresh(row)
    assert (row.status, row.result) == ("failed", "门锁故障")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": "open_door", "args": {}}, "args.door"),
        ({"command": "open_door", "args": {"door": "1", "speed": 3}}, "args.speed"),
        ({"command": "push_credential", "args": {"person_id": 1, "kind": "card"}}, "args.card_no"),
        ({"command": "push_credential", "args": {"person_id": 1, "kind": "iris"}}, "args.kind"),
        ({"command": "push_credential", "args": {"person_id": 987654, "kind": "face"}}, "args.person_id"),
        ({"command": "self_destruct"}, "command"),
        ({"command": "open_barrier", "args": {"lane": "入口1"}}, "command"),  # a face terminal has no barrier
        ({"command": "reboot", "ttl_seconds": 1}, "ttl_seconds"),
    ],
)
def test_invalid_commands_name_the_field(client, login, session, door, body, field) -> None:
    session.commit()
    r = client.post(f"/api/v1/devices/{door[0].id}/commands", json=body, headers=login("shequ"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert session.scalar(select(DeviceCommand.id)) is None


def test_a_card_reader_takes_no_faces(session, world) -> None:
    reader, _ = device(session, world.tianfu, serial="CR-TF-1", kind="card_reader")
    with pytest.raises(Invalid) as caught:
        _send(session, reader, "push_credential", {"person_id": 1, "kind": "face"})
    assert caught.value.field == "args.kind"


def test_nothing_can_be_sent_to_a_patrol_tag_which_never_connects(session, world) -> None:
    tag, _ = device(session, world.tianfu, serial="XG-TF-CMD-01", kind="patrol_tag", vendor="兰德华")
    with pytest.raises(Invalid) as caught:
        _send(session, tag, "reboot", {})
    assert caught.value.field == "command"
    assert session.scalar(select(DeviceCommand.id)) is None


def test_commands_are_scoped_to_the_callers_areas(client, login, session, door, camera) -> None:
    session.commit()
    open_door = {"command": "open_door", "args": {"door": "1"}}
    shequ = login("shequ")
    assert (
        client.post(
            f"/api/v1/devices/{camera[0].id}/commands", json={"command": "reboot"}, headers=shequ
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/devices/{camera[0].id}/commands", headers=shequ).status_code == 404
    for who in ("wangge", "jingwu"):  # grid workers and police liaisons read, but do not command
        r = client.post(f"/api/v1/devices/{door[0].id}/commands", json=open_door, headers=login(who))
        assert r.status_code == 403, who
    for who in ("shequ", "wuye", "jiedao", "admin"):
        r = client.post(f"/api/v1/devices/{door[0].id}/commands", json=open_door, headers=login(who))
        assert r.status_code == 201, (who, r.text)
    listed = client.get(f"/api/v1/devices/{door[0].id}/commands", headers=shequ).json()
    assert [c["requested_by"] for c in listed] == ["admin", "jiedao", "wuye", "shequ"]
    assert client.get(f"/api/v1/devices/{camera[0].id}/commands", headers=login("shequ2")).json() == []


def test_an_http_only_device_fetches_its_commands_and_acks_them(client, login, door, http_door) -> None:
    serial, secret = http_door[0].serial, http_door[1]
    staff = login("shequ")
    sent = client.post(
        f"/api/v1/devices/{http_door[0].id}/commands",
        json={"command": "open_door", "args": {"door": "6号楼单元门"}, "ttl_seconds": 120},
        headers=staff,
    )
    assert sent.status_code == 201, sent.text
    command = sent.json()
    assert (command["status"], command["sent_at"]) == ("queued", None)

    fetched = client.get("/api/v1/ingest/commands", headers=signed(serial, secret, b""))
    assert fetched.status_code == 200, fetched.text
    [wire] = fetched.json()["commands"]
    assert (wire["id"], wire["command"], wire["args"]) == (
        command["id"],
        "open_door",
        {"door": "6号楼单元门"},
    )
    assert client.get("/api/v1/ingest/commands", headers=signed(serial, secret, b"")).json() == {
        "commands": []
    }
    assert client.get("/api/v1/ingest/commands").status_code == 401

    url = f"/api/v1/ingest/commands/{command['id']}/ack"
    body = body_of({"status": "ok", "detail": "已开门"})
    other = client.post(url, content=body, headers=signed(door[0].serial, door[1], body))
    assert other.status_code == 404  # not that device's command
    bad = body_of({"status": "maybe"})
    assert (
        client.post(url, content=bad, headers=signed(serial, secret, bad)).json()["error"]["field"]
        == "status"
    )
    acked = client.post(url, content=body, headers=signed(serial, secret, body))
    assert acked.status_code == 200, acked.text
    [listed] = client.get(f"/api/v1/devices/{http_door[0].id}/commands", headers=staff).json()
    assert (listed["status"], listed["result"]) == ("acknowledged", "已开门")
    assert listed["sent_at"] is not None and listed["acked_at"] is not None


def test_staff_name_the_person_of_a_credential_as_they_know_them(session, world, as_user) -> None:  # type: ignore[no-untyped-def]
    """A name, an ID number, an address or #id finds the one person meant, the device's community's
    first; several or none are refused naming the field, the several by name and their ID number's tail."""
    from linli.core.errors import Forbidden
    from tests.builders import resident_id

    home = house(session, SYSTEM, world.tianfu, building="6", room="301")
    other_home = house(session, SYSTEM, world.tianfu, building="7", room="502")
    yuyu_home = house(session, SYSTEM, world.yuyu, building="1", room="101")

    def add(where, name, born, male=True):  # type: ignore[no-untyped-def]
        return resident(
            session, SYSTEM, where, person(name=name, id_number=resident_id(born=born, male=male))
        )

    li = add(home, "李秀兰", date(1960, 1, 2), male=False)
    li2 = add(other_home, "李秀兰", date(1971, 5, 6), male=False)
    zhao = add(home, "赵德胜", date(1955, 8, 9))
    zhao2 = add(house(session, SYSTEM, world.tianfu, building="8", room="101"), "赵德胜华", date(1988, 3, 3))
    sun = add(home, "孙丽", date(1990, 4, 4), male=False)
    add(yuyu_home, "孙丽", date(1992, 6, 6), male=False)  # the same name in another community
    session.commit()
    staff = as_user("shequ")

    def find(text: str, who=staff) -> int:  # type: ignore[no-untyped-def]
        return commands.find_person(session, who, text=text, community_code=world.tianfu)

    assert find("赵德胜") == zhao.id  # the exact name, among 赵德胜 and 赵德胜华
    assert find(" 赵德胜华 ") == zhao2.id
    assert find(li2.id_number) == li2.id
    assert find("7-502") == li2.id  # an address
    assert find(f"#{li.id}") == li.id
    assert find("孙丽", as_user("admin")) == sun.id  # the device's community first, for district staff too
    with pytest.raises(Invalid) as several:
        find("李秀兰")
    assert several.value.field == "person" and "对应 2 位人员" in several.value.message
    assert li.id_number[-4:] in several.value.message and li.id_number[3:10] not in several.value.message
    with pytest.raises(Invalid) as prefix:
        find("赵德")
    assert "对应 2 位人员" in prefix.value.message
    with pytest.raises(Invalid) as none:
        find("不存在的人")
    assert none.value.field == "person" and "没有找到" in none.value.message
    with pytest.raises(Forbidden):  # who may not read people cannot look them up
        find("赵德胜", as_user("jumin"))
