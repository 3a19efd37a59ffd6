"""ingest(): validation, dedup, dead letters, links to the register, rollups and the outbox."""

from __future__ import annotations

import json
from datetime import timedelta

import orjson
from sqlalchemy import event, func, select

from linli.core import outbox
from linli.core.auth.service import Principal
from linli.core.timeutil import as_utc
from linli.devices import linking, queries, service, store
from linli.devices.events import Envelope, content_hash
from linli.devices.models import DeadLetter, Device, EventRollup, StoredEvent
from linli.registry import vehicles
from tests.builders import person
from tests.devices.helpers import T0, device, envelope, plate_read
from tests.registry.helpers import house, resident


def _count(session, model) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(model))


def test_same_batch_twice_is_stored_once(session, gate) -> None:
    gate_device, _ = gate
    batch = [plate_read(gate_device.serial, "陕A12345", at=T0 + timedelta(seconds=i)) for i in range(3)]
    first = service.ingest(session, batch, source="http", received_at=T0 + timedelta(seconds=5))
    again = service.ingest(session, batch, source="http", received_at=T0 + timedelta(seconds=9))
    assert (first.stored, first.duplicates, first.rejected) == (3, 0, [])
    assert (again.stored, again.duplicates, again.rejected) == (0, 3, [])
    assert sorted(again.duplicate_ids) == sorted(first.event_ids)
    assert _count(session, StoredEvent) == 3 + 1  # and the gate's device.online on first contact


def test_repeat_within_a_batch_counts_as_duplicate(session, gate) -> None:
    one = plate_read(gate[0].serial, "陕A12345")
    result = service.ingest(session, [one, dict(one)], source="mqtt", received_at=T0)
    assert (result.stored, result.duplicates) == (1, 1)


def test_same_event_id_from_two_devices_is_two_events(session, world, gate) -> None:
    other, _ = device(session, world.tianfu, serial="DS-TCG227-TF-N01", kind="plate_gate", location="北门")
    batch = [
        plate_read(gate[0].serial, "陕A12345", uid="1001"),
        plate_read(other.serial, "陕D67890", uid="1001"),
    ]
    result = service.ingest(session, batch, source="http", received_at=T0)
    assert (result.stored, result.duplicates) == (2, 0)


def test_one_bad_event_never_drops_the_good_ones(session, gate) -> None:
    serial = gate[0].serial
    batch = [
        plate_read(serial, "陕A12345", at=T0),
        envelope(serial, "vehicle.entered", payload={"plate_colour": "blue"}),  # no plate
        plate_read(serial, "陕AD12345", at=T0 + timedelta(seconds=20)),
        envelope(serial, "door.opened"),  # not a type of schema v1
        {"id": "x", "device": serial},  # hardly an envelope
        7,
    ]
    result = service.ingest(session, batch, source="http", received_at=T0 + timedelta(minutes=1))
    assert result.stored == 2
    assert [i for i, _ in result.rejected] == [1, 3, 4, 5]
    reasons = dict(result.rejected)
    assert "payload.plate: Field required" in reasons[1]
    assert reasons[3].startswith("schema: type:")
    assert "occurred_at" in reasons[4] and "payload" in reasons[4]
    assert "must be a JSON object" in reasons[5]
    letters = list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))
    assert [d.reason for d in letters] == [r for _, r in result.rejected]
    assert letters[0].area_code == gate[0].area_code and letters[0].status == "new"
    assert '"plate_colour": "blue"' in letters[0].body


def test_unknown_device_future_and_old_events_are_dead_letters(session, gate) -> None:
    serial = gate[0].serial
    now = T0
    batch = [
        envelope("NO-SUCH-CAM-01"),
        envelope(serial, at=now + timedelta(minutes=6)),
        envelope(serial, at=now + timedelta(minutes=4)),  # a device clock a little ahead: fine
        envelope(serial, at=now - timedelta(days=31)),
        envelope(serial, at=now - timedelta(days=29)),
    ]
    result = service.ingest(session, batch, source="http", received_at=now)
    assert result.stored == 2
    reasons = dict(result.rejected)
    assert reasons[0] == "unknown device: NO-SUCH-CAM-01 is not registered"
    assert reasons[1].startswith("future: ")
    assert reasons[3].startswith("too old: ")
    unknown = session.scalar(select(DeadLetter).where(DeadLetter.device_serial == "NO-SUCH-CAM-01"))
    assert unknown is not None and unknown.area_code is None


def test_a_device_may_send_only_its_own_events_unless_it_is_a_gateway(session, world, gate, camera) -> None:
    smoke, _ = device(session, world.tianfu, serial="NB-SMK-TF-0301", kind="smoke_sensor", vendor="海曼")
    hub, _ = device(session, world.tianfu, serial="GW-TF-01", kind="gateway", vendor="华为")
    alarm = {"alarm": "smoke", "level": "critical", "detail": "3号楼2单元501厨房"}
    from_gate = service.ingest(
        session,
        [envelope(smoke.serial, "alarm.raised", payload=alarm)],
        source="http",
        received_at=T0,
        sender=gate[0],
    )
    assert from_gate.rejected == [
        (0, f"wrong device: {gate[0].serial} may not send events of {smoke.serial}")
    ]
    from_hub = service.ingest(
        session,
        [envelope(smoke.serial, "alarm.raised", payload=alarm)],
        source="http",
        received_at=T0,
        sender=hub,
    )
    assert from_hub.stored == 1
    other_community = service.ingest(
        session, [envelope(camera[0].serial)], source="http", received_at=T0, sender=hub
    )
    assert other_community.rejected and other_community.rejected[0][1].startswith("wrong device")


def test_retired_devices_are_refused(session, gate) -> None:
    gate[0].state = "retired"
    result = service.ingest(session, [envelope(gate[0].serial)], source="http", received_at=T0)
    assert result.rejected == [(0, f"retired device: {gate[0].serial} no longer sends to the hub")]


def test_plate_links_to_the_vehicle_and_through_it_to_the_owner(session, world, gate) -> None:
    system = Principal.system()
    owner = resident(session, system, house(session, system, world.tianfu), person(name="王建国"))
    car, _ = vehicles.upsert(
        session, system, {"plate": "陕A·12345"}, community_code=world.tianfu, owner=owner
    )
    batch = [
        plate_read(gate[0].serial, "陕a12345"),
        plate_read(gate[0].serial, "京N 99999"),
        plate_read(gate[0].serial, "??"),
    ]
    result = service.ingest(session, batch, source="http", received_at=T0)
    assert result.stored == 3  # a misread plate is still an event
    events = {
        e.id: e for e in session.scalars(select(StoredEvent).where(StoredEvent.id.in_(result.event_ids)))
    }
    linked = [events[i].vehicle_id for i in result.event_ids]
    assert linked == [car.id, None, None]
    assert events[result.event_ids[0]].person_id is None  # the owner is reached through the vehicle
    assert events[result.event_ids[0]].payload["plate"] == "陕a12345"  # as read
    by_owner = queries.get_events(session, person_id=owner.id)
    assert [e.id for e in by_owner] == [result.event_ids[0]]
    assert [e.id for e in queries.get_events(session, vehicle_id=car.id)] == [result.event_ids[0]]


def test_card_and_device_person_ids_link_to_people(session, world) -> None:
    system = Principal.system()
    home = house(session, system, world.tianfu, building="5", room="302")
    li = resident(session, system, home, person(name="李秀英", male=False))
    zhao = resident(session, system, home, person(name="赵伟"))
    door, _ = device(session, world.tianfu, serial="FT-TF-5-1", kind="face_terminal", vendor="宇视")
    linking.add_credential(session, community=world.tianfu, kind="card", value="0012345678", person_id=li.id)
    linking.add_credential(
        session, community=world.tianfu, kind="person_ref", value="u-88", person_id=zhao.id, device_id=door.id
    )
    batch = [
        envelope(
            door.serial,
            "access.granted",
            payload={"credential": "card", "card_no": "0012345678", "door": "5号楼单元门"},
        ),
        envelope(
            door.serial,
            "access.granted",
            payload={"credential": "face", "person_ref": "u-88", "similarity": 0.93},
        ),
        envelope(
            door.serial,
            "access.denied",
            payload={"credential": "card", "card_no": "99", "reason": "unknown card"},
        ),
    ]
    result = service.ingest(session, batch, source="http", received_at=T0)
    people = [session.get(StoredEvent, i).person_id for i in result.event_ids]  # type: ignore[union-attr]
    assert people == [li.id, zhao.id, None]
    assert (
        linking.find_person(
            session, community=world.tianfu, device_id=door.id, kind="person_ref", value="u-88"
        )
        == zhao.id
    )


def test_the_outbox_holds_a_batch_by_reference_and_makes_its_messages_again_as_they_were_sent(
    session, world, gate
) -> None:
    """The store queues a batch's bus messages by reference (the events' ids); the catch-up makes them
    again from the stored rows: the same subjects and JSON as those published from memory, links, media,
    microseconds and the hub's own device.online included."""
    system = Principal.system()
    owner = resident(session, system, house(session, system, world.tianfu), person(name="王建国"))
    car, _ = vehicles.upsert(
        session, system, {"plate": "陕A·12345"}, community_code=world.tianfu, owner=owner
    )
    door, _ = device(session, world.tianfu, serial="FT-TF-6-1", kind="face_terminal", vendor="宇视")
    linking.add_credential(
        session, community=world.tianfu, kind="card", value="0012345678", person_id=owner.id
    )
    batch = [
        plate_read(gate[0].serial, "陕a12345", at=T0 + timedelta(microseconds=250)),
        plate_read(gate[0].serial, "京N 99999", entered=False),
        envelope(
            door.serial,
            "access.granted",
            payload={"credential": "card", "card_no": "0012345678", "door": "6号楼单元门"},
            at=T0 - timedelta(minutes=3),
        ),
        envelope(door.serial, "device.heartbeat", payload={}, uid="hb-1"),
    ]
    batch[2]["media"] = [{"kind": "image", "ref": "https://cam.example/snap/1.jpg"}]
    result = service.ingest(session, batch, source="http", received_at=T0 + timedelta(seconds=5))
    queued = outbox.written(session)
    assert result.stored == 4 and len(queued.batches) == 1
    row_id, sent = queued.batches[0]
    held = session.get(outbox.OutboxMessage, row_id)
    assert held is not None and held.data["ref"] == "linli.devices.store"
    assert "messages" not in held.data and len(held.data["ids"]) == len(sent) == 6  # and two device.online
    again = store.outbox_messages(session, held.data["ids"])
    assert [s for s, _ in again] == [s for s, _ in sent]
    assert [json.loads(m) for _, m in again] == [json.loads(m) for _, m in sent]
    linked = {m["type"]: m for m in (json.loads(m) for _, m in sent)}
    assert linked["access.granted"]["person_id"] == owner.id and linked["access.granted"]["media"]
    assert any(json.loads(m).get("vehicle_id") == car.id for _, m in sent)
    assert json.loads(sent[0][1])["occurred_at"].endswith(".000250+00:00")
    first, second = held.data["ids"][:2]
    assert store.outbox_messages(session, [second, 10**9, first]) == [again[1], again[0]]  # as asked


def test_rollups_count_per_hour_community_kind_and_type(session, gate, camera) -> None:
    serial = gate[0].serial
    batch = [plate_read(serial, "陕A12345", at=T0 + timedelta(minutes=m)) for m in (0, 10, 40)]
    batch += [plate_read(serial, "陕A12345", at=T0 + timedelta(minutes=m), entered=False) for m in (5, 35)]
    service.ingest(session, batch, source="http", received_at=T0 + timedelta(minutes=41))
    service.ingest(
        session,
        [plate_read(serial, "陕A54321", at=T0 + timedelta(minutes=15)), envelope(camera[0].serial, at=T0)],
        source="http",
        received_at=T0 + timedelta(minutes=42),
    )
    rows = {
        (r.hour.hour, r.area_code, r.device_kind, r.type): r.count
        for r in session.scalars(select(EventRollup).where(EventRollup.type != "device.online"))
    }
    tianfu, yuyu = gate[0].community_code, camera[0].community_code
    assert rows == {  # T0 is 08:30 UTC; the second batch adds one entry at 08:45 to the same row
        (8, tianfu, "plate_gate", "vehicle.entered"): 3,
        (9, tianfu, "plate_gate", "vehicle.entered"): 1,
        (8, tianfu, "plate_gate", "vehicle.exited"): 1,
        (9, tianfu, "plate_gate", "vehicle.exited"): 1,
        (8, yuyu, "camera", "device.heartbeat"): 1,
    }


def test_outbox_holds_the_events_until_delivered_after_commit(
    session, session_factory, gate, bus, recorder
) -> None:
    result = service.ingest(session, [plate_read(gate[0].serial, "陕A12345")], source="http", received_at=T0)
    assert recorder.messages == []
    assert outbox.pending(session) == 2  # the read and the gate's device.online
    session.commit()
    assert service.deliver_outbox(session_factory, bus) == 2
    subjects = [m.subject for m in recorder.messages]
    community = gate[0].community_code
    assert subjects == [
        f"linli.events.{community}.vehicle.entered",
        f"linli.events.{community}.device.online",
    ]
    read = recorder.data[0]
    assert read["id"] == result.event_ids[0] and read["payload"]["plate"] == "陕A12345"
    assert read["community"] == community and read["device_kind"] == "plate_gate"
    # The message carries the row as stored: its payload's own JSON, its times as ISO 8601 in UTC.
    row = session.get(StoredEvent, result.event_ids[0])
    assert read["payload"] == row.payload and read["media"] == row.media == []
    assert read["occurred_at"] == as_utc(row.occurred_at).isoformat()
    assert read["received_at"] == T0.isoformat()
    assert read["event_uid"] == row.event_uid and read["vehicle_id"] == row.vehicle_id
    assert service.deliver_outbox(session_factory, bus) == 0  # delivered once


def test_outbox_keeps_messages_when_the_bus_fails(session, session_factory, gate) -> None:
    class Down:
        def publish(self, subject, data):  # type: ignore[no-untyped-def]
            raise ConnectionError("bus down")

    service.ingest(session, [envelope(gate[0].serial)], source="http", received_at=T0)
    session.commit()
    assert service.deliver_outbox(session_factory, Down()) == 0  # type: ignore[arg-type]
    assert outbox.pending(session) == 2


def test_content_hash_ignores_ids_and_hub_fields(gate) -> None:
    a = Envelope.model_validate(plate_read("G1", "陕A12345", uid="a"))
    b = Envelope.model_validate({**plate_read("G1", "陕A12345", uid="b"), "source": "hik-isapi"})
    c = Envelope.model_validate(plate_read("G1", "陕A12346", uid="a"))
    assert content_hash(a) == content_hash(b) != content_hash(c)
    assert len(content_hash(a)) == 64


def test_envelopes_and_hash_ids_dedup_like_device_ids(session, gate) -> None:
    envelope_obj = Envelope.model_validate(plate_read(gate[0].serial, "陕A12345", uid="tmp"))
    hashed = envelope_obj.model_copy(update={"id": content_hash(envelope_obj)})
    first = service.ingest(session, [hashed], source="adapter", received_at=T0)
    second = service.ingest(session, [hashed], source="adapter", received_at=T0)
    assert (first.stored, second.duplicates) == (1, 1)
    stored = session.get(StoredEvent, first.event_ids[0])
    assert stored is not None and stored.event_uid == content_hash(envelope_obj)


def test_raw_payloads_are_linked_and_purged_after_retention(session, gate) -> None:
    body = b'[{"id": "1"}]'
    old = store.save_raw(session, received_at=T0 - timedelta(days=8), source="http", body=body)
    new = store.save_raw(session, received_at=T0, source="http", body=body)
    result = service.ingest(session, [envelope(gate[0].serial)], source="http", received_at=T0, raw_id=new)
    assert store.purge_raw(session, now=T0, days=7) == 1
    from linli.devices.models import RawPayload

    kept = session.get(RawPayload, new)
    assert session.get(RawPayload, old) is None
    assert kept is not None and kept.event_ids == result.event_ids and kept.content == body


def test_device_last_seen_is_updated_once_per_batch(session, gate) -> None:
    serial = gate[0].serial
    batch = [envelope(serial, at=T0 + timedelta(seconds=s)) for s in (30, 10, 50)]
    service.ingest(session, batch, source="http", received_at=T0 + timedelta(minutes=1))
    gate_device = session.get(Device, gate[0].id)
    assert gate_device is not None and gate_device.online
    from linli.core.timeutil import as_utc

    assert as_utc(gate_device.last_seen_at) == T0 + timedelta(seconds=50)  # type: ignore[arg-type]


def test_nul_characters_are_refused_not_a_crash(session, gate) -> None:
    serial = gate[0].serial
    batch = [
        envelope(serial, "alarm.raised", payload={"alarm": "tamper", "detail": "lid\x00open"}),
        envelope("GATE\x00X"),
        envelope(serial),
    ]
    result = service.ingest(session, batch, source="http", received_at=T0)
    assert result.stored == 1
    assert [i for i, _ in result.rejected] == [0, 1]
    assert all("NUL" in reason for _, reason in result.rejected)
    letters = list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))
    assert letters[1].device_serial == "GATEX"


def test_a_batch_of_new_events_is_not_read_back_but_one_with_a_repeat_is(session, gate) -> None:
    # SQLite: the INSERT OR IGNORE's count says whether every row went in; only a batch it skipped rows of
    # is read back to find which were stored before (and their ids).
    serial = gate[0].serial
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        first = service.ingest(
            session,
            [plate_read(serial, "陕A12345", uid=f"n-{i}") for i in range(3)],
            source="http",
            received_at=T0,
        )
        new_batch = list(statements)
        statements.clear()
        batch = [plate_read(serial, "陕A12345", uid=u) for u in ("n-9", "n-1", "n-8")]
        again = service.ingest(session, batch, source="http", received_at=T0 + timedelta(seconds=5))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    read_back = [s for s in new_batch + statements if "FROM device_events WHERE id BETWEEN" in s]
    assert (first.stored, again.stored, again.duplicates) == (3, 2, 1)
    assert again.duplicate_ids == [first.event_ids[1]]
    assert _count(session, StoredEvent) == 5 + 1  # and the gate's device.online on first contact
    if engine.dialect.name == "sqlite":
        assert not [s for s in new_batch if "FROM device_events WHERE id BETWEEN" in s]
        assert len(read_back) == 1  # the batch with a repeat only


def test_a_concurrent_delivery_that_wins_the_race_counts_as_duplicate(session, gate, monkeypatch) -> None:
    serial = gate[0].serial
    first = service.ingest(
        session, [plate_read(serial, "陕A12345", uid="r-1")], source="mqtt", received_at=T0
    )
    # Another worker stores r-1 between this batch's dedup check and its insert: the check sees nothing.
    # (PostgreSQL checks before its COPY; SQLite's INSERT OR IGNORE is the check, so it has no such gap.)
    real, calls = store.existing_keys, []

    def blind_first(session, keys):  # type: ignore[no-untyped-def]
        calls.append(keys)
        return {} if len(calls) == 1 else real(session, keys)

    if session.get_bind().dialect.name == "postgresql":
        monkeypatch.setattr(store, "existing_keys", blind_first)
    batch = [plate_read(serial, "陕A12345", uid="r-1"), plate_read(serial, "陕A12345", uid="r-2")]
    result = service.ingest(session, batch, source="mqtt", received_at=T0)
    assert (result.stored, result.duplicates, result.duplicate_ids) == (1, 1, first.event_ids)
    assert _count(session, StoredEvent) == 3  # r-1, r-2 and the gate's device.online


def test_the_stores_time_text_is_the_one_sqlalchemy_would_bind_on_sqlite() -> None:
    # store.encode formats occurred_at itself on SQLite (one isoformat): it must be the column type's text
    # exactly, or the time indexes would order and compare rows wrongly.
    from datetime import UTC, datetime

    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    bind = StoredEvent.__table__.c.occurred_at.type.dialect_impl(dialect).bind_processor(dialect)
    samples = [
        datetime(2026, 12, 4, 8, 30, tzinfo=UTC),
        datetime(2026, 12, 4, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
        T0,
    ]
    for at in samples:
        assert store.sqlite_times(at) == (bind(at), at.isoformat()), at
        # A rollup's hour, keyed by the text's first 13 characters and made once per batch from the key.
        assert store.hour_of(store.sqlite_times(at)[1][:13]) == at.replace(minute=0, second=0, microsecond=0)


def test_an_events_message_says_its_time_as_the_envelope_model_would(session, gate) -> None:
    from datetime import UTC, datetime

    serial = gate[0].serial
    times = [datetime(2026, 3, 1, 8, 0, tzinfo=UTC), datetime(2026, 3, 1, 8, 0, 1, 250_000, tzinfo=UTC)]
    batch = [plate_read(serial, "陕A12345", uid=f"t-{i}", at=at) for i, at in enumerate(times)]
    service.ingest(session, batch, source="http", received_at=times[-1] + timedelta(seconds=1))
    sent = [orjson.loads(m) for _, m in outbox.written(session).batches[0][1]]
    reads = sorted((m for m in sent if m["type"] == "vehicle.entered"), key=lambda m: m["event_uid"])
    assert [m["occurred_at"] for m in reads] == [at.isoformat() for at in times]
    assert [datetime.fromisoformat(m["occurred_at"]) for m in reads] == times
    stored = session.scalars(select(StoredEvent.occurred_at).where(StoredEvent.event_uid.like("t-%")))
    assert sorted(as_utc(at) for at in stored) == times
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":  # the text encode wrote is the text the column type binds
        bind = StoredEvent.__table__.c.occurred_at.type.dialect_impl(dialect).bind_processor(dialect)
        sql = "SELECT occurred_at FROM device_events WHERE event_uid LIKE 't-%' ORDER BY event_uid"
        assert list(session.connection().exec_driver_sql(sql).scalars()) == [bind(at) for at in times]
