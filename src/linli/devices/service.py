"""Ingest: validate a batch of envelopes, link, deduplicate, store, track health, queue for the bus.

Every envelope is judged on its own: a bad one goes to the dead letters with the reason and never stops
the others. The caller owns the transaction and, after committing it, runs deliver_outbox so that the
stored events reach the bus only once they are really stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Invalid, LinliError
from linli.core.outbox import deliver_outbox
from linli.core.timeutil import as_utc
from linli.db import get_scope, set_scope
from linli.devices import deadletters, health, linking, register, store
from linli.devices import media as pictures
from linli.devices.events import PAYLOADS, Envelope
from linli.devices.models import DeadLetter, DeadLetterStatus, Device, DeviceKind
from linli.devices.store import Accepted

log = logging.getLogger(__name__)

__all__ = [
    "MAX_AGE",
    "MAX_FUTURE",
    "UPLOAD_MAX_AGE",
    "UPLOAD_SOURCE",
    "Checked",
    "IngestResult",
    "Origin",
    "Staged",
    "check",
    "check_all",
    "deliver_outbox",
    "ingest",
    "max_age_of",
    "replay",
    "stage",
]

MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
# An offline device's export (mappings/upload.py) may hold records up to UPLOAD_MAX_AGE old. Its events and
# dead letters carry the source "upload:<adapter>", so a replay judges them by the same window.
UPLOAD_SOURCE = "upload:"
UPLOAD_MAX_AGE = timedelta(days=400)


@dataclass
class IngestResult:
    """What one ingest call did."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in the batch, reason)
    event_ids: list[int] = field(default_factory=list)  # ids of the stored events, in batch order
    duplicate_ids: list[int] = field(default_factory=list)  # ids of the events the duplicates repeat
    dead_letter_ids: list[int] = field(default_factory=list)
    # raw body id -> (ids of the events it became, its first dead letter or None)
    raw_links: dict[int, tuple[list[int], int | None]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON answer to the sender."""
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": [{"index": i, "reason": r} for i, r in self.rejected],
        }


@dataclass
class _Failure:
    index: int
    reason: str
    item: Any
    device: Device | None = None


@dataclass(frozen=True)
class Origin:
    """Where one item of a batch came from: the device that sent it and the raw body it arrived in."""

    sender: Device | None = None
    raw_id: int | None = None


def ingest(
    session: Session,
    envelopes: Sequence[Envelope | Checked | dict[str, Any]],
    *,
    source: str,
    received_at: datetime,
    sender: Device | None = None,
    raw_id: int | None = None,
    origins: list[Origin] | None = None,
    link_raws: bool = True,
    max_age: timedelta = MAX_AGE,
    staged: Staged | None = None,
) -> IngestResult:
    """Store a batch of events from source; sender is the authenticated device (None: a trusted adapter).

    origins gives each item its own sender and raw body instead (a batch gathered from many messages).
    link_raws False leaves recording which events each raw body became to the caller (result.raw_links):
    a caller that inserts its raw bodies after the ingest writes them once, complete.
    max_age is how old an event may be: MAX_AGE for live devices, more for an offline device's export.
    staged: the batch judged and linked already, by stage() on these envelopes at received_at.
    """
    if origins is None:
        origins = [Origin(sender, raw_id)] * len(envelopes)
    elif len(origins) != len(envelopes) or sender is not None or raw_id is not None:
        raise ValueError("origins needs one entry per envelope, and replaces sender and raw_id")
    result, _ = _ingest(
        session,
        list(envelopes),
        source=source,
        received_at=received_at,
        origins=origins,
        keep=True,
        max_age=max_age,
        staged=staged,
    )
    if link_raws:
        store.link_raws(session, result.raw_links)
    return result


def _ingest(
    session: Session,
    items: list[Any],
    *,
    source: str,
    received_at: datetime,
    origins: list[Origin],
    keep: bool,
    max_age: timedelta = MAX_AGE,
    staged: Staged | None = None,
) -> tuple[IngestResult, list[_Failure]]:
    received_at = as_utc(received_at)
    if staged is None:
        staged = stage(session, items, received_at=received_at, origins=origins, max_age=max_age)
    elif staged.received_at != received_at or staged.count != len(items):
        raise ValueError("staged is another batch: stage() the same items at the same received_at")
    with _unscoped(session):
        result = IngestResult(duplicates=len(staged.repeats))
        fresh, repeats, failures = staged.fresh, staged.repeats, list(staged.failures)
        pictures.resolve_refs(
            session, staged.accepted, origins=origins, source=source, received_at=received_at
        )
        came_back = health.touch(session, fresh, received_at=received_at, seen=staged.seen)
        session.flush()
        fresh = _append(session, fresh, came_back, repeats, received_at, result)
        result.stored = len(fresh)
        result.event_ids = [e.stored_id for e in fresh if e.stored_id is not None]
        failures.sort(key=lambda f: f.index)
        result.rejected = [(f.index, f.reason) for f in failures]
        if keep:
            for failure in failures:
                letter = deadletters.record(
                    session,
                    reason=failure.reason,
                    item=failure.item,
                    source=source,
                    received_at=received_at,
                    device=failure.device,
                    sender=origins[failure.index].sender,
                    raw_id=origins[failure.index].raw_id,
                )
                result.dead_letter_ids.append(letter.id)
            result.raw_links = _raw_links(origins, fresh, failures, result.dead_letter_ids)
        return result, failures


@dataclass(frozen=True)
class Staged:
    """A batch judged (schema, device, sender, time), deduplicated within itself, linked to the register
    and encoded (its rows and bus messages written but for their ids, store.encode).

    Reads only: the HTTP way in stages a batch before its write transaction, so that on SQLite (one writer
    at a time) one request is judged and linked while another writes. The write then takes it as it was
    judged: a device retired or a credential changed in between counts from the next batch on.
    """

    received_at: datetime
    count: int  # items in the batch
    accepted: list[Accepted]  # in batch order, repeats of a key included
    fresh: list[Accepted]  # the first event of each key, linked
    repeats: list[Accepted]  # later events of a key the batch holds already
    failures: list[_Failure]
    seen: health.Sightings  # when the fresh events saw their devices (health.touch writes it)


def stage(
    session: Session,
    items: Sequence[Any],
    *,
    received_at: datetime,
    origins: list[Origin] | None = None,
    sender: Device | None = None,
    max_age: timedelta = MAX_AGE,
) -> Staged:
    """Judge, deduplicate and link a batch (see Staged); ingest(..., staged=) stores it."""
    received_at = as_utc(received_at)
    items = list(items)
    origins = origins if origins is not None else [Origin(sender)] * len(items)
    with _unscoped(session):
        accepted, failures = _judge(session, items, received_at=received_at, origins=origins, max_age=max_age)
        fresh, repeats = _deduplicate(accepted)
        linking.link(session, fresh)
        touched = linking.touched_tags(session, fresh)
        store.encode(session, fresh, received_at=received_at)
        seen = health.sightings(session, fresh, received_at=received_at, touched=touched)
    return Staged(received_at, len(items), accepted, fresh, repeats, failures, seen)


@contextmanager
def _unscoped(session: Session) -> Iterator[None]:
    """The hub judges and links against the whole register, whoever triggered the ingest; the session's
    scope is restored after."""
    scope = get_scope(session)
    set_scope(session, None)
    try:
        yield
    finally:
        set_scope(session, scope)


def _raw_links(
    origins: list[Origin], fresh: list[Accepted], failures: list[_Failure], letter_ids: list[int]
) -> dict[int, tuple[list[int], int | None]]:
    """Which stored events, and which first dead letter, each raw body of the batch became."""
    events: dict[int, list[int]] = {o.raw_id: [] for o in origins if o.raw_id is not None}
    dead: dict[int, int] = {}
    for event in fresh:
        raw_id = origins[event.index].raw_id
        if raw_id is not None and event.stored_id is not None:
            events[raw_id].append(event.stored_id)
    for failure, letter_id in zip(failures, letter_ids, strict=True):
        raw_id = origins[failure.index].raw_id
        if raw_id is not None:
            dead.setdefault(raw_id, letter_id)
    return {raw_id: (ids, dead.get(raw_id)) for raw_id, ids in events.items()}


@dataclass(frozen=True)
class Checked:
    """An item of a batch checked against the schema alone: no look-up, so a caller may check a batch
    before its write transaction (the HTTP way in does, while another request writes)."""

    item: Any  # as received, kept for its dead letter
    envelope: Envelope | None  # None: the envelope itself is invalid (payload says why)
    payload: dict[str, Any] | str  # the payload as its type's model normalised it, or why it is refused


def check(item: Any, *, nul_free: bool = False) -> Checked:
    """Validate one received item: its envelope, its type's payload, and no NUL in its text.

    nul_free: the caller knows the item holds no NUL (its body's JSON has no \\u0000 anywhere).
    """
    if isinstance(item, Checked):
        return item
    try:
        envelope = item if isinstance(item, Envelope) else Envelope.model_validate(item)
    except ValidationError as exc:
        return Checked(item, None, schema_reason(exc, item))
    return _checked(item, envelope, _typed_payload(envelope, item), nul_free)


# check_all's validators: a batch's envelopes in one call into pydantic, its payloads in one per model.
_ENVELOPES = TypeAdapter(list[Envelope])
_PAYLOAD_LISTS: dict[type[BaseModel], TypeAdapter[list[Any]]] = {
    model: TypeAdapter(list[model])  # type: ignore[valid-type]
    for model in set(PAYLOADS.values())
}


def check_all(items: Sequence[Any], *, nul_free: bool = False) -> list[Checked]:
    """check() of each item of a batch, with the same results, validated together.

    A batch's envelopes go into pydantic in one call and its payloads in one call per payload model, not
    three calls per event from Python (a 500-event body: 1.5 ms instead of 2.4). A batch holding anything
    but plain JSON objects, or an invalid envelope, is checked item by item; a payload model's group with
    an invalid payload too, so each refusal names its own fields.
    """
    items = list(items)
    if any(type(item) is not dict for item in items):
        if all(type(item) is Checked for item in items):  # checked already (the HTTP way in reads first)
            return items
        return [check(item, nul_free=nul_free) for item in items]
    try:
        envelopes: list[Envelope] = _ENVELOPES.validate_python(items)
    except ValidationError:
        return [check(item, nul_free=nul_free) for item in items]
    groups: dict[type[BaseModel], list[int]] = {}
    for index, envelope in enumerate(envelopes):
        groups.setdefault(PAYLOADS[envelope.type], []).append(index)
    payloads: list[dict[str, Any] | str] = [""] * len(items)
    for model, indexes in groups.items():
        adapter = _PAYLOAD_LISTS[model]
        try:
            valid = adapter.validate_python([envelopes[i].payload for i in indexes])
            dumped: list[dict[str, Any] | str] = adapter.dump_python(valid, mode="json", exclude_none=True)
        except ValidationError:
            dumped = [_typed_payload(envelopes[i], items[i]) for i in indexes]
        for index, payload in zip(indexes, dumped, strict=True):
            payloads[index] = payload
    return [
        _checked(item, envelope, payload, nul_free)
        for item, envelope, payload in zip(items, envelopes, payloads, strict=True)
    ]


def _typed_payload(envelope: Envelope, item: Any) -> dict[str, Any] | str:
    """The envelope's payload as its type's model normalises it, or why the payload is refused."""
    try:
        return envelope.typed_payload().model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        return schema_reason(exc, item, prefix="payload.")


def _checked(item: Any, envelope: Envelope, payload: dict[str, Any] | str, nul_free: bool) -> Checked:
    """The item checked, its payload replaced by the refusal if any of its text holds a NUL."""
    if (
        not nul_free
        and _may_hold_nul(item)
        and _has_nul(envelope.id, envelope.device, envelope.source, payload, [m.ref for m in envelope.media])
    ):
        payload = "schema: text may not contain NUL (\\u0000) characters"
    return Checked(item, envelope, payload)


def _judge(
    session: Session,
    items: list[Any],
    *,
    received_at: datetime,
    origins: list[Origin],
    max_age: timedelta = MAX_AGE,
) -> tuple[list[Accepted], list[_Failure]]:
    """Split a batch (items as received, or Checked) into accepted events and failures with reasons."""
    failures: list[_Failure] = []
    parsed: list[tuple[int, Any, Envelope, dict[str, Any] | str]] = []
    for index, checked in enumerate(check_all(items)):
        if checked.envelope is None:
            failures.append(_Failure(index, str(checked.payload), checked.item))
            continue
        parsed.append((index, checked.item, checked.envelope, checked.payload))
    serials = {envelope.device for _, _, envelope, _ in parsed if "\x00" not in envelope.device}
    # The senders are loaded already (the topics' devices of an MQTT batch): look up only the others.
    senders = {id(o.sender): o.sender for o in origins if o.sender is not None}  # a batch has one or a few
    known = {sender.serial: sender for sender in senders.values()}
    devices = register.live_by_serials(session, serials - known.keys())
    devices.update({serial: known[serial] for serial in serials & known.keys()})
    accepted: list[Accepted] = []
    # Whether a sender may send a device's events, once per pair (ORM attributes cost per access).
    verdicts: dict[tuple[int, str], str] = {}
    newest, oldest = received_at + MAX_FUTURE, received_at - max_age  # the times an event may have
    for index, item, envelope, payload in parsed:
        serial = envelope.device
        device = devices.get(serial)
        sender = origins[index].sender
        occurred = as_utc(envelope.occurred_at)
        pair = (id(sender), serial)
        verdict = verdicts.get(pair)
        if verdict is None:
            verdict = verdicts[pair] = _device_refusal(envelope, device, sender)
        if type(payload) is str:
            reason = payload
        elif verdict:
            reason = verdict
        elif occurred > newest or occurred < oldest:
            reason = _time_refusal(occurred, received_at, max_age)
        else:
            reason = ""
        if reason or device is None or isinstance(payload, str):
            failures.append(_Failure(index, reason or "unknown device", item, device))
            continue
        # The envelope as sent: the store takes community and received_at from the device and the batch.
        media = [m.model_dump(mode="json") for m in envelope.media] if envelope.media else []
        accepted.append(Accepted(index, envelope, device, occurred, payload, media=media))
    return accepted, failures


def _may_hold_nul(item: Any) -> bool:
    """False if a received JSON object surely holds no NUL: one scan of its JSON in C (a NUL is written
    as \\u0000; a false alarm, e.g. the text "\\\\u0000", only costs the exact walk of _has_nul)."""
    if not isinstance(item, dict):
        return True
    try:
        return b"\\u0000" in orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return True


def _has_nul(*values: Any) -> bool:
    """True if any text inside values holds a NUL, which PostgreSQL text and JSONB cannot store."""
    for value in values:
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            if _has_nul(*value.keys(), *value.values()):
                return True
        elif isinstance(value, list | tuple) and _has_nul(*value):
            return True
    return False


def schema_reason(exc: ValidationError, item: Any, *, prefix: str = "") -> str:
    """A short account of what is wrong with an envelope (or, with prefix "payload.", its payload)."""
    if not isinstance(item, dict | Envelope):
        return f"schema: an event must be a JSON object, not {type(item).__name__}"
    errors = exc.errors()
    parts = [f"{prefix}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "schema: " + "; ".join(parts) + more


def _device_refusal(envelope: Envelope, device: Device | None, sender: Device | None) -> str:
    """Why this sender may not send this envelope's device's events ('' if it may)."""
    if device is None:
        return f"unknown device: {envelope.device} is not registered"
    if register.is_retired(device):
        return f"retired device: {device.serial} no longer sends to the hub"
    if sender is not None and sender.id != device.id and not _relays_for(sender, device):
        return f"wrong device: {sender.serial} may not send events of {device.serial}"
    return ""


def _time_refusal(occurred: datetime, received_at: datetime, max_age: timedelta = MAX_AGE) -> str:
    """Why an event that occurred then (UTC) is refused when received at received_at ('' if it is not)."""
    if occurred > received_at + MAX_FUTURE:
        return f"future: occurred_at {occurred.isoformat()} is more than 5 minutes after the hub's clock"
    if occurred < received_at - max_age:
        return f"too old: occurred_at {occurred.isoformat()} is more than {max_age.days} days ago"
    return ""


def _relays_for(sender: Device, device: Device) -> bool:
    """A gateway may send for the devices of its own community."""
    return sender.kind == DeviceKind.GATEWAY and sender.community_code == device.community_code


def _deduplicate(accepted: list[Accepted]) -> tuple[list[Accepted], list[Accepted]]:
    """(first occurrences, repeats) of the batch's keys; the repeats count as duplicates.

    Events stored before are found by the store's append (see _append), after linking and health: both
    are idempotent for an event seen before, and one look-up less per batch is worth it.
    """
    fresh: list[Accepted] = []
    repeats: list[Accepted] = []
    seen: set[tuple[int, str]] = set()
    for event in accepted:
        if event.key in seen:
            repeats.append(event)
            continue
        seen.add(event.key)
        fresh.append(event)
    return fresh, repeats


def _append(
    session: Session,
    fresh: list[Accepted],
    made: list[Accepted],
    repeats: list[Accepted],
    received_at: datetime,
    result: IngestResult,
) -> list[Accepted]:
    """Store the batch and count what was stored before; if a concurrent delivery stored some of it
    first (PostgreSQL), store the rest and count those too. Returns the events stored now."""
    try:
        with session.begin_nested():
            taken = store.append(session, fresh + made, received_at=received_at)
    except IntegrityError:
        taken = store.existing_keys(session, {e.key for e in fresh + made})
        store.append(session, [e for e in fresh + made if e.key not in taken], received_at=received_at)
    stored = [e for e in fresh if e.key not in taken]
    before = [e for e in fresh if e.key in taken]
    result.duplicates += len(before)
    result.duplicate_ids += [taken[e.key] for e in before]
    result.duplicate_ids += [taken[e.key] for e in repeats if e.key in taken]
    return stored


def max_age_of(source: str) -> timedelta:
    """How old an event from source may be: an upload's window for an export, MAX_AGE for live devices."""
    return UPLOAD_MAX_AGE if source.startswith(UPLOAD_SOURCE) else MAX_AGE


BULK_REPLAY = 500  # dead letters one bulk replay takes at most (the rest wait for the next)


@dataclass
class BulkReplay:
    """What a bulk replay did: letters stored now, letters refused again, matching letters left over."""

    replayed: int = 0
    refused: int = 0
    remaining: int = 0


def replay_many(
    session: Session,
    principal: Principal,
    *,
    now: datetime,
    device_serial: str | None = None,
    source: str | None = None,
    reason: str | None = None,
    limit: int = BULK_REPLAY,
) -> BulkReplay:
    """Replay the new dead letters in the caller's areas of a device, a way in or a kind of refusal
    (deadletters.REASONS; all, if none is given), oldest first and at most limit of them, each as replay()
    does: after a mapping is fixed or a device registered, its letters go back in with one action. Each
    letter is replayed in a savepoint: one that cannot be replayed at all (a body that is not JSON) stays
    as it was and the others go on.
    """
    principal.require(Perm.DEVICES_WRITE)
    matching = deadletters.Matching(
        status=DeadLetterStatus.NEW.value, device_serial=device_serial, source=source, reason=reason
    )
    letters = deadletters.get_all(
        session, scope=principal.scope, match=matching, oldest_first=True, limit=limit
    )
    done = BulkReplay()
    for letter in letters:
        try:
            with session.begin_nested():
                replayed, _ = replay(session, principal, dead_letter_id=letter.id, now=now)
        except LinliError as exc:
            log.info("dead letter %d not replayed: %s", letter.id, exc.message)
            done.refused += 1
            continue
        if replayed.status == DeadLetterStatus.REPLAYED:
            done.replayed += 1
        else:
            done.refused += 1
    session.flush()
    done.remaining = deadletters.count(session, scope=principal.scope, match=matching)
    return done


def replay(
    session: Session, principal: Principal, *, dead_letter_id: int, now: datetime
) -> tuple[DeadLetter, IngestResult]:
    """Ingest a dead letter again (its device registered, its mapping fixed …); stays new if refused.

    A letter the adapter or mapping could not read (replay_via) is read again first, with the device's
    adapter or mapping of the moment (mappings/replay.py); if it still cannot be read, the new reason
    is kept and nothing is ingested.
    """
    principal.require(Perm.DEVICES_WRITE)
    letter = deadletters.get_or_raise(session, scope=principal.scope, dead_letter_id=dead_letter_id)
    if letter.status != DeadLetterStatus.NEW:
        raise Conflict(f"该异常数据已处理（{letter.status}）", field="status")
    # mappings (through push) import this module: theirs is imported when a letter needs it
    from linli.devices.mappings import replay as reread

    sender = reread.sender_of(session, letter)
    source, raw_id = letter.source, None
    if letter.replay_via is not None:
        try:
            again = reread.read_letter(session, letter, sender=sender, now=now)
        except reread.Unread as exc:
            letter.attempts += 1
            letter.reason = exc.reason[:500]
            return letter, IngestResult()
        items: list[Any] = list(again.items)
        source, raw_id = again.source, again.raw_id
    else:
        try:
            items = [json.loads(letter.body)]
        except ValueError:
            raise Invalid("异常数据内容不是有效的 JSON，无法重放", field="body") from None
        foreign = _outside_upload(session, letter, items)
        if foreign:  # an upload's row may only become an event of the uploading community's devices
            letter.attempts += 1
            letter.reason = f"device: 设备 {foreign} 不属于上传时所选社区"[:500]
            return letter, IngestResult()
    result, failures = _ingest(
        session,
        items,
        source=source,
        received_at=now,
        origins=[Origin(sender, raw_id)] * len(items),
        keep=False,
        max_age=max_age_of(source),
    )
    letter.attempts += 1
    if failures:
        letter.reason = _replay_reason(letter, failures, len(items))[:500]
        return letter, result
    letter.status = DeadLetterStatus.REPLAYED.value
    letter.replayed_at = now
    ids = result.event_ids or result.duplicate_ids
    letter.event_id = ids[0] if ids else None
    if raw_id is not None:
        store.link_raw(session, raw_id, event_ids=ids)
    serial = items[0].device if items and isinstance(items[0], Envelope) else letter.device_serial
    device = register.by_serials(session, {serial or ""}).get(serial or "")
    if device is not None:
        letter.device_id, letter.area_code = device.id, device.area_code
    return letter, result


def _outside_upload(session: Session, letter: DeadLetter, items: list[Any]) -> str:
    """The serial of a device an upload's letter names outside the letter's community ("" if none).

    An upload's refused rows are kept in the uploading community's area (upload.py); a device registered
    since in another community must not receive them.
    """
    if not letter.source.startswith(UPLOAD_SOURCE) or not letter.area_code:
        return ""
    serials = {str(item.get("device")) for item in items if isinstance(item, dict) and item.get("device")}
    for serial, device in register.by_serials(session, serials).items():
        if not letter.area_code.startswith(device.community_code):
            return serial
    return ""


def _replay_reason(letter: DeadLetter, failures: list[_Failure], count: int) -> str:
    """Why a replay stored nothing (or not all): the refusal, naming the record of a longer body."""
    first = failures[0]
    label = (letter.replay_via or {}).get("label")
    if count > 1:
        return f"第{first.index + 1}条记录（共{count}条，{len(failures)}条未入库）: {first.reason}"
    return f"{label}: {first.reason}" if label else first.reason
