"""Times typed in Asia/Shanghai, as console forms send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from linli.core.timeutil import LOCAL_TZ, parse_local


def test_a_typed_time_is_read_in_asia_shanghai() -> None:
    assert parse_local("2026-12-06T08:30") == datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # datetime-local
    assert parse_local("2026-12-06 08:30:15") == datetime(2026, 12, 6, 0, 30, 15, tzinfo=UTC)
    assert parse_local("  2026-12-06 ") == datetime(
        2026, 12, 5, 16, 0, tzinfo=UTC
    )  # a day: its first instant
    assert parse_local("2026-12-06T08:30").tzinfo is LOCAL_TZ  # type: ignore[union-attr]
    with_offset = parse_local("2026-12-06T08:30+00:00")  # an offset given is kept, not replaced
    assert with_offset == datetime(2026, 12, 6, 8, 30, tzinfo=timezone(timedelta(0)))
    assert parse_local("") is None and parse_local("   ") is None


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T08:00", "2026-12-06T25:00", "06/12/2026", "0"])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_local(text)
