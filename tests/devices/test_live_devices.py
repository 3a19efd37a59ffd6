"""The devices the ingest keeps between batches (register.live_by_serials): kept while the register is
unchanged, loaded again as soon as the database says it changed (devices_version, set by triggers)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.devices import register, service
from linli.devices.models import Device, StoredEvent
from tests.devices.helpers import T0, device, envelope

# The columns the hub moves itself with every batch or change of link: changing them keeps the devices.
UNWATCHED = {"last_seen_at", "online", "online_changed_at", "updated_at"}


def _token(session: Session) -> str:
    return str(session.execute(text("SELECT token FROM devices_version WHERE id = 1")).scalar_one())


def _device_queries(session: Session) -> list[str]:
    """Record the statements on the session's connection that read the devices table."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM devices " in statement and "devices_version" not in statement:
            seen.append(statement)

    event.listen(session.connection(), "before_cursor_execute", record)
    return seen


@pytest.fixture
def cameras(session, world) -> list[Device]:  # type: ignore[no-untyped-def]
    made = [device(session, world.tianfu, serial=f"DS-LIVE-{i}")[0] for i in range(3)]
    session.commit()
    return made


def test_devices_are_loaded_once_while_the_register_is_unchanged(session_factory, cameras) -> None:
    serials = {d.serial for d in cameras}
    with session_factory() as first:
        loaded = register.live_by_serials(first, serials)
    with session_factory() as second:
        queries = _device_queries(second)
        again = register.live_by_serials(second, serials)
    assert {s: d.id for s, d in again.items()} == {d.serial: d.id for d in cameras}
    assert queries == []  # the token only
    assert all(again[s] is loaded[s] for s in serials)  # the very objects, kept
    assert all(d not in second for d in again.values())  # detached: no session of a request holds them


def test_a_change_of_state_community_or_kind_is_seen_on_the_next_call(
    session, session_factory, world, cameras
):  # type: ignore[no-untyped-def]
    camera = cameras[0]
    with session_factory() as first:
        register.live_by_serials(first, {camera.serial})
    register.update(session, Principal.system(), device_id=camera.id, data={"community": world.yuyu})
    camera.state = "retired"
    session.commit()
    with session_factory() as second:
        seen = register.live_by_serials(second, {camera.serial})[camera.serial]
    assert (seen.community_code, seen.state) == (world.yuyu, "retired")


def test_a_device_registered_after_its_serial_was_asked_for_is_found(session, session_factory, world):  # type: ignore[no-untyped-def]
    with session_factory() as first:
        assert register.live_by_serials(first, {"DS-LIVE-NEW"}) == {}
    made, _ = device(session, world.tianfu, serial="DS-LIVE-NEW")
    session.commit()
    with session_factory() as second:
        assert register.live_by_serials(second, {"DS-LIVE-NEW"})["DS-LIVE-NEW"].id == made.id


def test_a_deleted_device_is_gone(session, session_factory, cameras) -> None:  # type: ignore[no-untyped-def]
    camera = cameras[1]
    with session_factory() as first:
        assert camera.serial in register.live_by_serials(first, {camera.serial})
    register.delete(session, Principal.system(), device_id=camera.id)
    session.commit()
    with session_factory() as second:
        assert register.live_by_serials(second, {camera.serial}) == {}


def test_every_column_but_the_hubs_own_changes_the_token(session, cameras) -> None:
    """The triggers watch each column of devices (a column added later must join them): setting one, even
    to its own value, gives a new token; the four the hub moves with every batch do not."""
    devices = Device.__table__
    for column in devices.columns:
        before = _token(session)
        session.execute(update(devices).where(devices.c.id == cameras[2].id).values({column.name: column}))
        changed = _token(session) != before
        assert changed is (column.name not in UNWATCHED), column.name


def test_the_callers_own_device_objects_are_returned(session, cameras) -> None:
    """A device the caller's session holds is that object: the hub's marks on it show there."""
    found = register.live_by_serials(session, {d.serial for d in cameras})
    assert all(found[d.serial] is d for d in cameras)


def test_the_ingest_judges_with_the_register_as_it_is_now(session, session_factory, world) -> None:
    """Events of a device kept between batches follow the register: moved to another community, its next
    event is stored there; retired, its next event is refused."""
    sensor, _ = device(session, world.tianfu, serial="DS-LIVE-DOOR", kind="door_sensor")
    session.commit()

    def send(uid: str) -> service.IngestResult:
        with session_factory() as batch:
            result = service.ingest(
                batch, [envelope(sensor.serial, uid=uid, at=T0)], source="gateway", received_at=T0
            )
            batch.commit()
            return result

    assert send("a").stored == 1
    register.update(session, Principal.system(), device_id=sensor.id, data={"community": world.yuyu})
    session.commit()
    assert send("b").stored == 1
    stored = session.execute(select(StoredEvent.event_uid, StoredEvent.community_code)).all()
    assert {(uid, c) for uid, c in stored if uid in ("a", "b")} == {("a", world.tianfu), ("b", world.yuyu)}
    sensor.state = "retired"
    session.commit()
    refused = send("c")
    assert refused.stored == 0 and refused.rejected[0][1].startswith("retired device")
