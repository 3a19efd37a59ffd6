"""linli.db.allocate_ids: the ids a batch insert draws up front (the event store and raw bodies use them)."""

from __future__ import annotations

from sqlalchemy import func, select

from linli.db import allocate_ids, writing
from linli.devices.models import StoredEvent
from linli.devices.store import table


def test_ids_are_new_distinct_and_in_order(session) -> None:  # type: ignore[no-untyped-def]
    writing(session)
    events = table(StoredEvent)
    top = session.scalar(select(func.max(events.c.id))) or 0
    ids = allocate_ids(session, events, 500)
    assert len(ids) == len(set(ids)) == 500
    assert ids == sorted(ids) and ids[0] > top
    assert allocate_ids(session, events, 0) == []
    if session.get_bind().dialect.name == "postgresql":  # a sequence: a second draw never repeats the first
        again = allocate_ids(session, events, 3)
        assert min(again) > max(ids)
    else:  # max(id) + 1 ...: valid until the rows are inserted, as documented
        assert allocate_ids(session, events, 3) == ids[:3]
