"""Health: online/offline by kind with a hand-moved clock, device.online on return, uptime from the events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from linli.core.timeutil import as_utc
from linli.devices import health, service
from linli.devices.models import Device, StoredEvent
from tests.devices.helpers import T0, Clock, device, envelope


def _link_events(session, device_id: int) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    stmt = (
        select(StoredEvent.type, StoredEvent.occurred_at)
        .where(StoredEvent.device_id == device_id, StoredEvent.type.in_(["device.online", "device.offline"]))
        .order_by(StoredEvent.id)
    )
    return [(t, as_utc(at)) for t, at in session.execute(stmt)]


def _beat(session, serial: str, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    service.ingest(session, [envelope(serial, at=clock.now)], source="mqtt", received_at=clock.now)


def test_silent_camera_goes_offline_once_and_comes_back(session, world, clock) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-GATE-01")
    meter, _ = device(session, world.tianfu, serial="WM-TF-3-2-501", kind="water_meter", vendor="三川")
    _beat(session, cam.serial, clock)
    _beat(session, meter.serial, clock)
    assert cam.online and meter.online

    clock.advance(minutes=4)
    assert health.check_offline(session, clock.now) == []
    clock.advance(minutes=2)  # 6 minutes of silence: past a camera's 5, far from a meter's 24 hours
    assert [d.serial for d in health.check_offline(session, clock.now)] == [cam.serial]
    assert not cam.online and meter.online
    clock.advance(minutes=10)
    assert health.check_offline(session, clock.now) == []  # offline is reported once

    clock.advance(minutes=1)
    back_at = clock.now
    _beat(session, cam.serial, clock)
    assert cam.online
    assert _link_events(session, cam.id) == [
        ("device.online", T0),
        ("device.offline", T0 + timedelta(minutes=6)),
        ("device.online", back_at),
    ]
    clock.advance(hours=25)
    assert [d.serial for d in health.check_offline(session, clock.now)] == [cam.serial, meter.serial]


def test_patrol_tags_never_go_offline_and_retired_devices_are_left_alone(session, world, clock) -> None:
    tag, _ = device(session, world.tianfu, serial="PT-TF-CP-07", kind="patrol_tag", vendor="兰德华")
    sensor, _ = device(session, world.tianfu, serial="NB-SMK-TF-0501", kind="smoke_sensor", vendor="海曼")
    checkin = {"checkpoint": "7号楼地下车库", "guard": "巡逻一组"}
    service.ingest(
        session,
        [envelope(tag.serial, "patrol.checked_in", at=clock.now, payload=checkin)],
        source="http",
        received_at=clock.now,
    )
    _beat(session, sensor.serial, clock)
    sensor.state = "maintenance"
    checked_at = clock.now
    clock.advance(days=10)
    assert health.check_offline(session, clock.now) == []
    # Not monitored: the tag's own check-in moved its last-seen time and nothing else (no device.online).
    assert not tag.online and as_utc(tag.last_seen_at) == checked_at
    said = select(StoredEvent.type).where(
        StoredEvent.device_id == tag.id, StoredEvent.source == "linli.health"
    )
    assert list(session.scalars(said)) == []


def test_a_handsets_check_in_is_when_its_checkpoint_tag_was_last_patrolled(session, world, clock) -> None:
    handset, _ = device(session, world.tianfu, serial="PH-TF-01", kind="patrol_handset", location="物业中心")
    named, _ = device(session, world.tianfu, serial="PT-TF-CP-01", kind="patrol_tag", location="1号楼东门")
    placed, _ = device(session, world.tianfu, serial="PT-TF-CP-02", kind="patrol_tag", location="7号楼车库")
    twins = [
        device(session, world.tianfu, serial=f"PT-TF-CP-0{i}", kind="patrol_tag", location="南门岗亭")[0]
        for i in (3, 4)
    ]
    far, _ = device(session, world.yuyu, serial="PT-YY-CP-01", kind="patrol_tag", location="7号楼车库")
    start = clock.now

    def rounds(*checks: tuple[str, int]) -> None:
        batch = [
            envelope(
                handset.serial,
                "patrol.checked_in",
                at=start + timedelta(minutes=minute),
                payload={"checkpoint": checkpoint, "guard": "巡逻一组"},
            )
            for checkpoint, minute in checks
        ]
        result = service.ingest(session, batch, source="http", received_at=start + timedelta(minutes=30))
        assert result.stored == len(checks)

    # By the tag's serial, by its location (one tag there), an ambiguous location, a place with no tag.
    rounds(("PT-TF-CP-01", 0), ("7号楼车库", 5), ("南门岗亭", 10), ("不存在的点", 15), ("PT-TF-CP-01", 20))
    session.expire_all()
    assert as_utc(named.last_seen_at) == start + timedelta(minutes=20)  # its latest touch of the batch
    assert as_utc(placed.last_seen_at) == start + timedelta(minutes=5)
    assert [t.last_seen_at for t in twins] == [None, None]  # which of the two was touched is unknown
    assert far.last_seen_at is None  # the same location in another community is another tag
    assert handset.online and not named.online and not placed.online  # tags stay "not monitored"
    said = select(StoredEvent.device_id).where(StoredEvent.type == "device.online")
    assert list(session.scalars(said)) == [handset.id]
    rounds(("7号楼车库", 1))  # an older check-in, uploaded late, does not move it back
    session.expire_all()
    assert as_utc(placed.last_seen_at) == start + timedelta(minutes=5)


def test_an_old_backlog_does_not_bring_a_device_back_online(session, world, clock) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-B2-01")
    _beat(session, cam.serial, clock)
    clock.advance(hours=2)
    health.check_offline(session, clock.now)
    backlog = [
        envelope(cam.serial, "motion.detected", at=T0 + timedelta(minutes=m), payload={}) for m in (30, 40)
    ]
    service.ingest(session, backlog, source="http", received_at=clock.now)
    assert not cam.online
    assert as_utc(cam.last_seen_at) == T0 + timedelta(minutes=40)  # type: ignore[arg-type]


def test_last_seen_is_written_in_one_statement_and_only_moves_forward(session, world, clock) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-B3-02")
    _beat(session, cam.serial, clock)
    stored = select(Device.last_seen_at).where(Device.id == cam.id)
    assert as_utc(session.execute(stored).scalar_one()) == T0
    # Another writer stored a later beat since this session read the device: its copy is stale.
    later = T0 + timedelta(minutes=3)
    devices = Device.__table__
    session.connection().execute(update(devices).where(devices.c.id == cam.id).values(last_seen_at=later))
    assert as_utc(cam.last_seen_at) == T0  # type: ignore[arg-type]
    clock.advance(minutes=2)
    _beat(session, cam.serial, clock)  # T0 + 2 min: later than the stale copy, earlier than the database
    assert as_utc(session.execute(stored).scalar_one()) == later
    clock.advance(minutes=2)
    _beat(session, cam.serial, clock)
    assert as_utc(session.execute(stored).scalar_one()) == T0 + timedelta(minutes=4)
    assert as_utc(cam.last_seen_at) == T0 + timedelta(minutes=4)  # type: ignore[arg-type]
    assert cam not in session.dirty  # the statement wrote it: the flush has nothing left to update


def test_uptime_over_7_and_30_days(session, world, clock) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-LIFT-03")
    assert health.uptime(session, device_id=cam.id, now=clock.now, days=7) is None
    _beat(session, cam.serial, clock)  # online at T0
    clock.advance(hours=18)
    _beat(session, cam.serial, clock)
    clock.advance(minutes=6)
    health.check_offline(session, clock.now)  # offline at T0 + 18h06m
    clock.advance(hours=6)
    _beat(session, cam.serial, clock)  # back at T0 + 24h06m
    clock.advance(hours=23, minutes=54)  # now T0 + 48h: online 18h06m + 23h54m = 42h of 48h
    assert health.uptime(session, device_id=cam.id, now=clock.now, days=7) == pytest.approx(42 / 48)
    clock.advance(days=9)
    _beat(session, cam.serial, clock)  # still online: the 7-day window holds no change, only the state before
    assert health.uptime(session, device_id=cam.id, now=clock.now, days=7) == pytest.approx(1.0)
    assert health.uptime(session, device_id=cam.id, now=clock.now, days=30) == pytest.approx(
        (11 * 24 - 6) / (11 * 24)
    )


def test_timeouts_per_kind() -> None:
    assert health.offline_after("camera") == timedelta(minutes=5)
    assert health.offline_after("smoke_sensor") == timedelta(minutes=30)
    assert health.offline_after("electricity_meter") == timedelta(hours=24)
    assert health.offline_after("patrol_tag") is None


def test_a_batch_judged_before_a_return_says_it_once(session, world, clock) -> None:
    """A batch staged (judged and linked) before its write transaction may have read the device as
    offline; if another batch brought it back in between, the device.online is not said twice."""
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-LOBBY-02")
    _beat(session, cam.serial, clock)
    clock.advance(minutes=10)
    assert [d.serial for d in health.check_offline(session, clock.now)] == [cam.serial]
    clock.advance(minutes=1)
    staged_at = clock.now
    late = [envelope(cam.serial, at=staged_at)]
    staged = service.stage(session, late, received_at=staged_at)  # reads the camera as offline
    assert not staged.fresh[0].device.online
    clock.advance(seconds=5)
    service.ingest(session, [envelope(cam.serial, at=clock.now)], source="mqtt", received_at=clock.now)
    assert session.scalar(select(Device.online).where(Device.id == cam.id))  # back: device.online said
    # the staged batch still holds the camera as it read it (another process's session would)
    set_committed_value(cam, "online", False)
    result = service.ingest(session, late, source="mqtt", received_at=staged_at, staged=staged)
    assert result.stored == 1
    said = [t for t, _ in _link_events(session, cam.id)]
    assert said == ["device.online", "device.offline", "device.online"]


def test_a_staged_batch_belongs_to_its_items_and_time(session, world, clock) -> None:
    cam, _ = device(session, world.tianfu, serial="DS-2CD-TF-LOBBY-03")
    items = [envelope(cam.serial, at=clock.now)]
    staged = service.stage(session, items, received_at=clock.now)
    with pytest.raises(ValueError, match="another batch"):
        service.ingest(session, items * 2, source="mqtt", received_at=clock.now, staged=staged)
    with pytest.raises(ValueError, match="another batch"):
        later = clock.now + timedelta(seconds=1)
        service.ingest(session, items, source="mqtt", received_at=later, staged=staged)


def test_a_batch_writes_its_devices_in_device_order(session, world, clock) -> None:
    """Two batches writing at once (PostgreSQL) must take their devices' row locks in one order: every
    write to devices, last_seen moves and a return online alike, goes in device id order."""
    import re

    from sqlalchemy import event

    cams = [device(session, world.tianfu, serial=f"DS-2CD-TF-ORDER-{i}")[0] for i in range(4)]
    for cam in cams:
        _beat(session, cam.serial, clock)
    clock.advance(minutes=10)
    session.execute(update(Device).where(Device.id == cams[2].id).values(online=False))
    clock.advance(minutes=1)
    written: list[int] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "UPDATE DEVICES" not in statement.upper():
            return
        # the parameter that says which row: by its name (PostgreSQL) or its position (SQLite's ?), or
        # the JSON [[id, time], ...] of PostgreSQL's one statement for last_seen moves (it locks them
        # in order)
        named = re.search(r"\bid = %\((\w+)\)s", statement)
        positional = re.search(r"\bid = \?", statement)
        for row in parameters if executemany else [parameters]:
            if isinstance(row, dict) and "moved" in row:
                written.extend(int(i) for i, _seen in json.loads(row["moved"]))
            elif named:
                written.append(int(row[named.group(1)]))
            else:
                assert positional is not None, statement
                written.append(int(row[statement[: positional.start()].count("?")]))

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        batch = [envelope(c.serial, at=clock.now) for c in reversed(cams)]  # sent in the other order
        service.ingest(session, batch, source="mqtt", received_at=clock.now)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    ids = [c.id for c in cams]
    assert written == sorted(written) and set(written) == set(ids)
    assert ids[2] in written  # the camera that came back: marked online in its place in the order
    assert [t for t, _ in _link_events(session, cams[2].id)][-1] == "device.online"
