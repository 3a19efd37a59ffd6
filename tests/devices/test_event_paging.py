"""The event log's newest-first pages on SQLite, found by id windows: the same rows, in scope, as the plain
query, whatever the windows, cursors, types and scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from linli.db import get_scope, set_scope, starts_with
from linli.devices import queries, service
from linli.devices.events import EventType
from linli.devices.models import StoredEvent
from tests.devices.helpers import device, envelope


def _reference(session, *, area, types, before, limit):  # type: ignore[no-untyped-def]
    """The plain query, the session's scope applied by the session."""
    stmt = select(StoredEvent)
    if area:
        stmt = stmt.where(starts_with(StoredEvent.area_code, area))
    if types:
        stmt = stmt.where(StoredEvent.type.in_(types))
    if before is not None:
        stmt = stmt.where(StoredEvent.id < before)
    return [e.id for e in session.scalars(stmt.order_by(StoredEvent.id.desc()).limit(limit))]


@pytest.fixture
def mixed(session, world):  # type: ignore[no-untyped-def]
    """Two communities' doors, sensors and heartbeats, interleaved in id order."""
    now = datetime.now(UTC).replace(microsecond=0)
    tianfu, _ = device(
        session, world.tianfu, serial="DS-K1T-TF-PG-1", kind="face_terminal", grid=world.tianfu_grid
    )
    yuyu, _ = device(session, world.yuyu, serial="DS-K1T-YY-PG-2", kind="face_terminal")
    items = []
    for i in range(90):
        serial = tianfu.serial if i % 3 else yuyu.serial
        at = now - timedelta(minutes=200 - i)
        if i % 4 == 0:
            items.append(envelope(serial, "access.granted", at=at, payload={"credential": "face"}))
        elif i % 7 == 0:
            items.append(envelope(serial, "alarm.raised", at=at, payload={"alarm": "door_forced"}))
        else:
            items.append(envelope(serial, at=at))
    service.ingest(session, items, source="http", received_at=now)
    session.commit()


def test_windows_find_the_same_newest_rows_as_the_plain_query(
    session, world, as_user, mixed, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(queries, "ID_WINDOWS", (3, 10, 40))  # small: every path is taken, the last too
    all_ids = [e.id for e in session.scalars(select(StoredEvent).order_by(StoredEvent.id.desc()))]
    cursors = [None, all_ids[5], all_ids[30], all_ids[-3], all_ids[-1] + 0]
    no_beats = [t.value for t in EventType if t != EventType.DEVICE_HEARTBEAT]
    saved = get_scope(session)
    try:
        for who in (None, "shequ", "shequ2", "wangge"):
            set_scope(session, as_user(who).scope if who else saved)
            for area in (None, world.tianfu, world.yuyu):
                for types in (None, no_beats, ["access.granted", "alarm.raised"], ["alarm.raised"]):
                    for before in cursors:
                        for limit in (1, 7, 51):
                            got = queries.get_events(
                                session, area=area, types=types, before=before, limit=limit
                            )
                            want = _reference(session, area=area, types=types, before=before, limit=limit)
                            assert [e.id for e in got] == want, (who, area, types, before, limit)
        # A community worker never sees another community's events this way either.
        set_scope(session, as_user("shequ").scope)
        seen = queries.get_events(session, limit=1000)
        assert seen and {e.community_code for e in seen} == {world.tianfu}
        set_scope(session, as_user("wangge").scope)  # a grid worker: the grid's devices only
        assert {e.area_code for e in queries.get_events(session, limit=1000)} == {world.tianfu_grid}
    finally:
        set_scope(session, saved)


def test_an_empty_store_and_a_cursor_before_everything_give_nothing(session, as_user) -> None:  # type: ignore[no-untyped-def]
    assert queries.get_events(session, limit=10) == []
    assert queries.get_events(session, before=1, limit=10) == []
