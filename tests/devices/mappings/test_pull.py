"""Pull sources against a real HTTP server on 127.0.0.1: paging, cursor, dedup, failures and backoff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from linli.core.bus import InProcessBus
from linli.core.errors import Invalid, NotFound
from linli.core.timeutil import as_utc, to_local
from linli.devices.mappings import pull, service
from linli.devices.mappings.models import PullSource
from linli.devices.models import DeadLetter, StoredEvent
from linli.jobs import Jobs, run_safely
from linli.settings import Settings
from tests.builders import World
from tests.conftest import Users
from tests.devices.helpers import T0, Recorder, device
from tests.devices.mappings.vendor_api import STAMP, Vendor

DOOR_API = """\
name: door-api
format: json
records: "$.data.list[*]"
type: {path: "$.result", map: {1: access.granted, 0: access.denied}}
id: {path: "$.id"}
occurred_at: {path: "$.time", format: "%Y-%m-%d %H:%M:%S"}
payload:
  credential: {const: card}
  card_no: {path: "$.cardNo"}
  door: {path: "$.door"}
"""


def _config(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "url": url,
        "params": {"startTime": "{cursor}", "pageNo": "{page}", "pageSize": "{size}"},
        "adapter": "mapping:door-api",
        "interval_s": 60,
        "timeout_s": 0.5,
        "cursor": {"kind": "since", "format": STAMP, "start": "2026-03-05T00:00:00+00:00", "overlap_s": 120},
        "paging": {"size": 2, "max_pages": 10},
        **overrides,
    }


def _access_events(session: Session) -> list[StoredEvent]:
    stmt = select(StoredEvent).where(StoredEvent.type.startswith("access.")).order_by(StoredEvent.occurred_at)
    return list(session.scalars(stmt))


def test_the_cursor_advances_pages_are_followed_and_overlaps_are_not_stored_twice(
    session: Session,
    session_factory: sessionmaker[Session],
    world: World,
    as_user: Users,
    vendor: tuple[Vendor, str],
) -> None:
    api, url = vendor
    for n in range(5):
        api.add(1001 + n, T0 - timedelta(minutes=50 - 10 * n), result=0 if n == 3 else 1)
    reader, _ = device(session, world.tianfu, serial="MJ-TF-2-01", kind="card_reader", vendor="某门禁")
    admin = as_user("admin")
    service.create(session, admin, community_code="", document=DOOR_API)
    source = pull.save(
        session,
        admin,
        device_id=reader.id,
        config=_config(url),
        headers={"Authorization": "Bearer t0k3n"},
        now=T0,
    )
    session.commit()

    assert pull.poll_due(session_factory, now=T0) == 1
    assert [r["pageNo"] for r in api.requests] == ["1", "2", "3"]  # 2 + 2 + 1 records
    assert api.requests[0]["startTime"] == "2026-03-05 07:58:00"  # the start, less the overlap, local time
    assert set(api.tokens) == {"Bearer t0k3n"}
    events = _access_events(session)
    assert [e.event_uid for e in events] == ["1001", "1002", "1003", "1004", "1005"]
    assert [e.type for e in events].count("access.denied") == 1
    session.refresh(source)
    assert source.cursor == (T0 - timedelta(minutes=10)).isoformat()
    assert (source.last_stored, source.failures, as_utc(source.next_poll_at)) == (
        5,
        0,
        T0 + timedelta(seconds=60),
    )
    session.refresh(reader)
    assert reader.online and reader.last_seen_at is not None

    # not due yet: nothing is asked
    api.requests.clear()
    assert pull.poll_due(session_factory, now=T0 + timedelta(seconds=30)) == 0 and api.requests == []

    # the next poll asks from the cursor less the overlap: the last record comes again and is a duplicate
    api.add(1006, T0 + timedelta(seconds=20))
    assert pull.poll_due(session_factory, now=T0 + timedelta(seconds=61)) == 1
    expected_since = to_local(T0 - timedelta(minutes=12)).strftime(STAMP)
    assert api.requests[0]["startTime"] == expected_since
    session.refresh(source)
    assert (source.last_stored, source.last_duplicates) == (1, 1)
    assert len(_access_events(session)) == 6
    assert source.cursor == (T0 + timedelta(seconds=20)).isoformat()


def test_failures_are_recorded_backed_off_and_never_stop_polling(
    session: Session,
    session_factory: sessionmaker[Session],
    world: World,
    as_user: Users,
    vendor: tuple[Vendor, str],
) -> None:
    api, url = vendor
    api.add(2001, T0 - timedelta(minutes=5))
    reader, _ = device(session, world.tianfu, serial="MJ-TF-3-01", kind="card_reader")
    admin = as_user("admin")
    service.create(session, admin, community_code="", document=DOOR_API)
    source = pull.save(session, admin, device_id=reader.id, config=_config(url), now=T0)
    session.commit()

    now = T0
    outcomes = []
    for mode in ("error", "slow", "garbage"):
        api.mode = mode
        assert pull.poll_due(session_factory, now=now) == 1
        session.refresh(source)
        outcomes.append((source.failures, source.last_error[:8], as_utc(source.next_poll_at) - now))
        now = as_utc(source.next_poll_at)
    assert outcomes == [
        (1, "HTTP 500", timedelta(seconds=120)),
        (2, "超时：0.5 秒", timedelta(seconds=240)),
        (3, "应答无法读取: ", timedelta(seconds=480)),
    ]
    assert "JSON" in source.last_error and source.cursor == "2026-03-05T00:00:00+00:00"
    letter = session.scalars(select(DeadLetter).where(DeadLetter.source == "pull:mapping:door-api")).one()
    assert "login expired" in letter.body and letter.area_code == world.tianfu
    assert _access_events(session) == []

    api.mode = "ok"
    assert pull.poll_due(session_factory, now=now) == 1
    session.refresh(source)
    assert (source.failures, source.last_error, source.last_stored) == (0, "", 1)
    assert len(_access_events(session)) == 1


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [pull.backoff(60, n).total_seconds() for n in (1, 2, 3, 6, 7, 20)] == [
        120,
        240,
        480,
        3600,
        3600,
        3600,
    ]
    assert pull.backoff(7200, 1) == timedelta(hours=2)  # never sooner than the interval itself


def test_pull_sources_are_scoped_and_checked(
    session: Session, world: World, as_user: Users, vendor: tuple[Vendor, str]
) -> None:
    _, url = vendor
    reader, _ = device(session, world.tianfu, serial="MJ-TF-4-01", kind="card_reader")
    tianfu = as_user("shequ")
    source = pull.save(
        session,
        tianfu,
        device_id=reader.id,
        config=_config(url, adapter="mapping:access_record_export"),
        now=T0,
    )
    assert [s.id for s, _ in pull.get_all(session, tianfu)] == [source.id]
    with pytest.raises(Invalid, match="url"):
        pull.save(session, tianfu, device_id=reader.id, config=_config("ftp://x/y"), now=T0)
    yuyu = as_user("shequ2")
    assert pull.get_all(session, yuyu) == []
    with pytest.raises(NotFound):
        pull.get_or_raise(session, yuyu, source_id=source.id)
    with pytest.raises(NotFound):
        pull.save(session, yuyu, device_id=reader.id, config=_config(url), now=T0)
    assert session.scalar(select(func.count()).select_from(PullSource)) == 1


def test_the_scheduled_job_polls_and_publishes_and_survives_a_dead_device(
    session: Session,
    session_factory: sessionmaker[Session],
    world: World,
    as_user: Users,
    vendor: tuple[Vendor, str],
    settings: Settings,
) -> None:
    api, url = vendor
    api.add(3001, T0 - timedelta(minutes=1))
    live, _ = device(session, world.tianfu, serial="MJ-TF-5-01", kind="card_reader")
    dead, _ = device(session, world.tianfu, serial="MJ-TF-5-02", kind="card_reader")
    admin = as_user("admin")
    service.create(session, admin, community_code="", document=DOOR_API)
    pull.save(session, admin, device_id=dead.id, config=_config("http://127.0.0.1:9/nothing-listens"), now=T0)
    pull.save(session, admin, device_id=live.id, config=_config(url), now=T0)
    session.commit()
    bus = InProcessBus()
    recorder = Recorder(bus)
    jobs = Jobs(session_factory=session_factory, bus=bus, settings=settings, clock=lambda: T0)
    assert run_safely("poll_sources", jobs.poll_sources) == 2
    assert [(m["device"], m["type"]) for m in recorder.data if m["type"].startswith("access")] == [
        ("MJ-TF-5-01", "access.granted")
    ]
    failed = session.scalars(select(PullSource).where(PullSource.device_id == dead.id)).one()
    assert failed.failures == 1 and failed.last_error.startswith("连接失败")
