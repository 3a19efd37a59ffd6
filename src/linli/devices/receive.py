"""The HTTP way in: authenticate a signed body, keep it raw, parse it, and ingest the events it holds.

take_body (keep raw, parse, dead-letter malformed JSON) is shared with the MQTT way in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from linli.core import jsonio
from linli.core.errors import LinliError
from linli.devices import deadletters, signing, store
from linli.devices.models import Device
from linli.devices.service import IngestResult, ingest

SOURCE = "http"


class MalformedJson(LinliError):
    """The body is not JSON; says where parsing stopped."""

    status_code = 400
    code = "malformed_json"

    def __init__(self, exc: ValueError, *, dead_letter_id: int) -> None:
        self.line = getattr(exc, "lineno", None)
        self.column = getattr(exc, "colno", None)
        self.position = getattr(exc, "pos", getattr(exc, "start", None))
        where = (
            f"line {self.line} column {self.column} (char {self.position})"
            if self.line
            else f"byte {self.position}"
        )
        detail = getattr(exc, "msg", None) or getattr(exc, "reason", None) or str(exc)
        super().__init__(f"malformed JSON at {where}: {detail}")
        self.dead_letter_id = dead_letter_id

    def to_dict(self) -> dict[str, object]:
        """The JSON body: where parsing failed and the dead letter that keeps the body."""
        body = super().to_dict()
        body.update(
            line=self.line, column=self.column, position=self.position, dead_letter_id=self.dead_letter_id
        )
        return body


@dataclass
class Received:
    """The outcome of one request: the ingest result, or an error to answer after the commit."""

    result: IngestResult | None
    error: LinliError | None = None


def events_of(parsed: Any) -> list[Any]:
    """The events of a body: a JSON array, {"events": [...]}, or one envelope."""
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict) and isinstance(parsed.get("events"), list) and "type" not in parsed:
        return list(parsed["events"])
    return [parsed]


@dataclass
class Body:
    """A received body, kept raw and parsed: its events, or the dead letter of malformed JSON."""

    raw_id: int
    events: list[Any]
    error: MalformedJson | None = None


def take_body(
    session: Session,
    *,
    body: bytes,
    source: str,
    received_at: datetime,
    sender: Device | None,
    device_serial: str,
    content_type: str = "application/json",
) -> Body:
    """Keep a body raw and parse it; malformed JSON becomes a dead letter (the error says where)."""
    raw_id = store.save_raw(
        session,
        received_at=received_at,
        source=source,
        body=body,
        content_type=content_type,
        device_serial=device_serial,
    )
    try:
        events = parse_events(body)
    except ValueError as exc:
        error = reject_malformed(
            session, exc, body=body, source=source, received_at=received_at, sender=sender, raw_id=raw_id
        )
        store.link_raw(session, raw_id, event_ids=[], dead_letter_id=error.dead_letter_id)
        return Body(raw_id, [], error)
    return Body(raw_id, events)


def parse_events(body: bytes) -> list[Any]:
    """The events of a JSON body (see events_of); ValueError says where the JSON is malformed."""
    # JSONDecodeError, and UnicodeDecodeError for bytes that are not text: both are ValueErrors.
    return events_of(jsonio.loads(body))


def reject_malformed(
    session: Session,
    exc: ValueError,
    *,
    body: bytes,
    source: str,
    received_at: datetime,
    sender: Device | None,
    raw_id: int | None,
) -> MalformedJson:
    """Keep a body that is not JSON as a dead letter; the error names it and where parsing stopped."""
    error = MalformedJson(exc, dead_letter_id=0)
    letter = deadletters.record(
        session,
        reason=error.message,
        item=body,
        source=source,
        received_at=received_at,
        sender=sender,
        raw_id=raw_id,
    )
    error.dead_letter_id = letter.id
    return error


def receive(
    session: Session,
    *,
    serial: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    content_type: str,
    now: datetime,
    skew_seconds: int,
) -> Received:
    """Authenticate, keep the raw body, then ingest its events (malformed JSON becomes a dead letter)."""
    device = signing.authenticate(
        session,
        serial=serial,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
        skew_seconds=skew_seconds,
    )
    taken = take_body(
        session,
        body=body,
        source=SOURCE,
        received_at=now,
        sender=device,
        device_serial=device.serial,
        content_type=content_type,
    )
    if taken.error is not None:
        return Received(None, taken.error)
    result = ingest(session, taken.events, source=SOURCE, received_at=now, sender=device, raw_id=taken.raw_id)
    return Received(result)
