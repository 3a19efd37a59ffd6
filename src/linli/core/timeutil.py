"""Time: stored in UTC, shown in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime read from the database as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_local(value: datetime) -> datetime:
    """A stored UTC time converted for display in Asia/Shanghai."""
    return as_utc(value).astimezone(LOCAL_TZ)


def format_local(value: datetime | date | None, *, with_seconds: bool = False) -> str:
    """Display form of a time in Asia/Shanghai ('' for None)."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return value.isoformat()
    return to_local(value).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def local_today() -> date:
    """Today's date in Asia/Shanghai (ages, move-in defaults)."""
    return datetime.now(LOCAL_TZ).date()


def parse_local(text: str) -> datetime | None:
    """A time typed in Asia/Shanghai, as a form sends it: "2026-12-06T08:30" (a datetime-local input),
    "2026-12-06 08:30:15", or a day alone ("2026-12-06", its first instant); '' is None. An offset given
    with the time is kept. ValueError for anything else (the caller names its field)."""
    text = text.strip()
    if not text:
        return None
    value = datetime.fromisoformat(text)  # ValueError names the text
    return value if value.tzinfo is not None else value.replace(tzinfo=LOCAL_TZ)
