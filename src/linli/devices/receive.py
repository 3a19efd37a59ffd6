"""The HTTP way in: authenticate a signed body, keep it raw, parse it, and ingest the events it holds.

A JSON body is read and checked first (prepare, outside the write lock), then stored with its raw body
in one write; malformed JSON becomes a dead letter that names where parsing stopped. A multipart body
carries its events as JSON in a part named `events` and pictures in the other parts, which the events
reference as `upload:<part name>`; it goes the way of a vendor push (push.translate), pictures included.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from linli.core import jsonio, media, outbox
from linli.core.errors import LinliError
from linli.core.timeutil import utcnow
from linli.db import unit_of_work, writing
from linli.devices import deadletters, signing, store
from linli.devices.adapters.common import media_type
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.multipart import Part, split_multipart
from linli.devices.events import Envelope
from linli.devices.models import Device, DeviceState
from linli.devices.service import Checked, IngestResult, Staged, check_all, ingest, stage

log = logging.getLogger(__name__)
SOURCE = "http"
EVENTS_PART = "events"


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
class Handled:
    """An ingest request stored and committed: the answer for the device, or the error to answer with
    (raised after the commit: a dead letter is kept), and the outbox rows to deliver now (outbox.written)."""

    summary: dict[str, Any] | None
    error: LinliError | None
    written: outbox.Written | None


def handle(
    factory: sessionmaker[Session], signed: signing.Signed, *, content_type: str, hold: bool = False
) -> Handled:
    """One ingest request, start to commit, in one session: a JSON body is authenticated, read, checked,
    judged, linked and encoded in a read transaction (prepare), then stored in a write transaction that
    holds the write lock only to write. Raises like signing.authenticate. The caller delivers `written`
    (outbox.deliver_outbox) once this returns: here, or in the server after an ingest process.
    hold: the outbox rows are held (outbox.hold) for the one who delivers `written`, the server's
    outbox.Deliverer, which publishes them before it deletes them.
    """
    now = utcnow()
    prepared = None
    with unit_of_work(factory, write=False) as session:
        if not is_multipart(content_type):
            prepared = prepare(session, signed, now=now)
            session.commit()  # the read ends; what it loaded stays in the session (expire_on_commit off)
        writing(session)
        if hold:
            outbox.hold(session)
        received = receive(session, signed, content_type=content_type, now=now, prepared=prepared)
        queued = outbox.written(session)
    if received.error is not None:  # what it queued is left to the outbox catch-up
        return Handled(None, received.error, None)
    assert received.result is not None
    return Handled(received.result.summary(), None, queued)


@dataclass
class Read:
    """A JSON body parsed and its events checked against the schema: no database, so this runs before
    the write transaction, while another request holds the write lock."""

    events: list[Checked]
    error: ValueError | None = None  # the body is not JSON: where parsing stopped


def read_json(body: bytes) -> Read:
    """Parse a JSON body and check each of its events against the schema."""
    try:
        events = parse_events(body)
    except ValueError as exc:
        return Read([], exc)
    # JSON can only write a NUL as \u0000 (a raw one is not JSON): a body without it needs no search per
    # event. With it (or the text "\\u0000"), each event is searched.
    nul_free = b"\\u0000" not in body
    return Read(check_all(events, nul_free=nul_free))


@dataclass
class Prepared:
    """A signed JSON request authenticated, read and staged before its write transaction (see prepare)."""

    device_id: int
    read: Read
    staged: Staged | None  # None: the body is not JSON
    kept: store.Kept  # the body as the raw payloads keep it (compressed here, not in the write)


def prepare(session: Session, signed: signing.Signed, *, now: datetime) -> Prepared:
    """Authenticate a JSON request in a read transaction, read its body and stage its events (judged and
    linked, service.stage); receive(prepared=...) stores them.

    Raises like signing.authenticate. The ingest's own transaction then holds the write lock only to
    store: on SQLite, one request is read, judged and linked while another writes.
    """
    device = signed.authenticate(session, now=now)
    read = read_json(signed.body)
    staged = None if read.error is not None else stage(session, read.events, received_at=now, sender=device)
    return Prepared(device.id, read, staged, store.kept_body(signed.body))


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
    signed: signing.Signed,
    *,
    content_type: str,
    now: datetime,
    prepared: Prepared | None = None,
) -> Received:
    """Authenticate, keep the raw body, then ingest its events (malformed JSON becomes a dead letter).

    prepared: the request authenticated and read already (prepare), for a JSON body.
    """
    body = signed.body
    device = _still_live(session, prepared.device_id) if prepared is not None else None
    if device is None:  # not prepared, or retired or removed since: authenticate says why
        device = signed.authenticate(session, now=now)
    if is_multipart(content_type):
        from linli.devices import push  # push builds on this module: imported when needed

        return push.translate(
            session,
            device=device,
            source=SOURCE,
            name="multipart",
            parse=parse_multipart,
            extract=multipart_pictures,
            body=body,
            headers={"content-type": content_type},
            now=now,
            replayable=False,  # the device's own format: no adapter or mapping to fix and read it again
        )
    read = prepared.read if prepared is not None else read_json(body)
    # The raw body is written once, after the ingest or the dead letter, already linked to what it
    # became: an update of its links would rewrite the whole body.
    raw_id = store.allocate_raw_ids(session, 1)[0]
    error: MalformedJson | None = None
    if read.error is not None:
        error = reject_malformed(
            session, read.error, body=body, source=SOURCE, received_at=now, sender=device, raw_id=raw_id
        )
        links: tuple[list[int], int | None] = ([], error.dead_letter_id)
        result = None
    else:
        result = ingest(
            session,
            read.events,
            source=SOURCE,
            received_at=now,
            sender=device,
            raw_id=raw_id,
            link_raws=False,
            staged=prepared.staged if prepared is not None else None,
        )
        links = result.raw_links.get(raw_id, ([], None))
    store.save_raws(
        session,
        [(raw_id, prepared.kept if prepared is not None else body, device.serial, links)],
        received_at=now,
        source=SOURCE,
        content_type=content_type,
    )
    return Received(result, error)


def _still_live(session: Session, device_id: int) -> Device | None:
    """The device prepare authenticated, if it is still registered and not retired: read again in the write
    transaction (its state only; the device as prepare loaded it stays), else None, the device reloaded."""
    devices = store.table(Device)
    state = session.scalar(select(devices.c.state).where(devices.c.id == device_id))
    if state is not None and state != DeviceState.RETIRED:
        return session.get(Device, device_id)
    session.get(Device, device_id, populate_existing=True)  # authenticate then finds it as it is now
    return None


def is_multipart(content_type: str) -> bool:
    """True for a multipart/form-data (or other multipart) body."""
    return content_type.strip().lower().startswith("multipart/")


def _parts(body: bytes, headers: Mapping[str, str]) -> tuple[Part, dict[str, bytes]]:
    """The events part and the pictures by part name; AdapterParseError names what is wrong."""
    _kind, params = media_type(headers)
    parts = split_multipart(body, params.get("boundary", ""))
    document = next((p for p in parts if p.name == EVENTS_PART), None)
    if document is None:
        raise AdapterParseError(f"multipart 中没有名为 {EVENTS_PART} 的 JSON 部分")
    pictures: dict[str, bytes] = {}
    for part in parts:
        if part is document:
            continue
        if not part.name:
            raise AdapterParseError("multipart 中有一个部分没有名称（Content-Disposition 的 name）")
        if part.name in pictures or part.name == EVENTS_PART:
            raise AdapterParseError(f"multipart 中部分名称 {part.name!r} 重复")
        pictures[part.name] = part.body
    return document, pictures


def parse_multipart(
    body: bytes, headers: Mapping[str, str], *, device: str | None = None, received_at: datetime | None = None
) -> list[Any]:
    """The events of a multipart body: Envelopes, and the items that are not (ingest rejects each)."""
    document, _pictures = _parts(body, headers)
    try:
        items = parse_events(document.body)
    except ValueError as exc:
        raise AdapterParseError(f"{EVENTS_PART} 部分不是合法 JSON：{exc}") from None
    out: list[Any] = []
    for item in items:
        try:
            out.append(Envelope.model_validate(item))
        except ValidationError:
            out.append(item)
    return out


def multipart_pictures(body: bytes, headers: Mapping[str, str]) -> dict[str, bytes]:
    """The picture parts of a multipart body by name (the keys of its events' upload: refs)."""
    return _parts(body, headers)[1]


def receive_media(
    session: Session,
    signed: signing.Signed,
    *,
    content_type: str,
    filename: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Authenticate a signed picture or clip and keep it in the media store for the device's area.

    Invalid (field "file") when the bytes are not an allowed picture or clip, TooLarge past the limit.
    Unclaimed until an event refers to it (see media.resolve_refs); the purge job removes it otherwise.
    """
    device = signed.authenticate(session, now=now)
    body = signed.body
    try:
        key = media.put(
            session, body, content_type=content_type, area_code=device.area_code, filename=filename
        )
    except LinliError as exc:
        log.warning("picture from %s refused: %s", device.serial, exc.message)
        raise
    return {"ref": key, "content_type": media.sniff(body) or content_type, "size": len(body)}
