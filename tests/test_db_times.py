"""Times in queries: an aware time in any zone means the same instant on SQLite as on PostgreSQL.

SQLite keeps a time as text without its zone, and times are stored in UTC; a time in Asia/Shanghai (a
console's local-day filter, an API caller's +08:00) must be compared as the instant it is, not as its
wall-clock digits (which would be 8 hours off).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from linli.core import audit
from linli.core.audit import AuditEntry
from linli.core.timeutil import LOCAL_TZ


def test_an_aware_time_filters_as_the_instant_it_is(session, system) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)  # 04:00 on 6 December in Asia/Shanghai
    entry = AuditEntry(at=at, actor="times-test", action="login", area_code=None)
    session.add(entry)
    session.flush()
    mine = select(AuditEntry.id).where(AuditEntry.actor == "times-test")
    local_day = datetime(2026, 12, 6, tzinfo=LOCAL_TZ)  # the local day it falls in: 16:00 UTC on the 5th
    assert session.scalars(mine.where(AuditEntry.at >= local_day)).all() == [entry.id]
    assert session.scalars(mine.where(AuditEntry.at < local_day)).all() == []
    assert session.scalars(mine.where(AuditEntry.at < local_day + timedelta(days=1))).all() == [entry.id]
    same = at.astimezone(LOCAL_TZ)
    assert session.scalars(mine.where(AuditEntry.at == same)).all() == [entry.id]
    # An aware time written in another zone is stored as the same UTC instant.
    other = AuditEntry(at=same + timedelta(hours=1), actor="times-test", action="login", area_code=None)
    session.add(other)
    session.flush()
    session.expire_all()
    assert session.scalars(mine.where(AuditEntry.at == at + timedelta(hours=1))).all() == [other.id]
    found = audit.query(session, scope=system.scope, actor="times-test", since=local_day, until=local_day)
    assert found == []  # an empty range
    found = audit.query(
        session, scope=system.scope, actor="times-test", since=local_day, until=local_day + timedelta(days=1)
    )
    assert {e.id for e in found} == {entry.id, other.id}
