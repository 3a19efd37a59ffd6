"""The outbox: messages written in the caller's transaction and published on the bus after it commits.

A service never publishes directly: if its transaction rolled back, subscribers would have reacted to
something that did not happen. It adds outbox rows instead; whoever owns the transaction (a request, a
worker loop) runs deliver_outbox after the commit, and any later run delivers what an earlier one missed.

A hot writer (the event store: hundreds of events per transaction) queues its messages with add_batch as
one row, published message by message in order: one row to write, claim and mark instead of hundreds.
Its owner may take what the transaction queued with `written(session)` before the commit and hand it to
deliver_outbox after: those messages are then published from memory (no read-back of the row). A batch
row is deleted once delivered (its messages are the writer's own rows, kept by the writer); a single
message is marked delivered and purged a day later.

A writer whose messages can be made again from its own rows (the event store) queues a batch by
reference: the row holds the loader's name and the rows' ids, not the messages (a store's batch of 500
events is some 200 KB of JSON, written again inside the write transaction that stores them). Its messages
are still published from memory after the commit; only the catch-up (a crash, a bus that was down) reads
them back, through the loader the writer registered (register_loader).

A writer that commits batch after batch may hold its batch rows (hold(session)) for one deliverer, a
Published: it publishes them from memory right after the commit without a claiming transaction, and
deletes them after, in the writer's next write transaction (an MQTT ingest worker) or in one that does
nothing else (the server's Deliverer, for the HTTP ingest processes). Until then, or for HELD_FOR if the
deliverer dies first, other deliveries leave them alone. On SQLite that makes the delivery's turn on the
one writers' queue a delete, or saves it altogether.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from typing import cast as cast_table

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
    Table,
    Text,
    cast,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from linli.core import jsonio
from linli.core.bus import Bus, encode
from linli.core.timeutil import utcnow
from linli.db import Base, allocate_ids, bulk_insert, writing

logger = logging.getLogger(__name__)

BATCH = 500
# The subject of a row that holds many messages: data = {"messages": [[subject, data], ...]}.
BATCH_SUBJECT = "linli.outbox.batch"
# One delivery at a time per process: SQLite has no SKIP LOCKED, and two request threads delivering the
# same rows would publish them twice. Across processes PostgreSQL's SKIP LOCKED keeps workers apart.
_delivering = threading.RLock()  # re-entrant: an in-process handler may deliver what it caused
_BATCHES = "outbox.batches"  # session.info: the batch rows this session queued, with their messages
_OTHERS = "outbox.others"  # session.info: whether it queued single messages too
_FORGOTTEN = "outbox.forgotten"  # session.info: (Published, its rows) whose deletion this transaction holds
_HOLD = "outbox.hold"  # session.info: this transaction's batch rows are held by their writer (hold())
# How long other deliveries leave a held batch row to its writer; after that, the writer is taken to have
# died between its commit and its publication (its messages may then go out twice: at least once).
HELD_FOR = timedelta(seconds=10)
HELD = -1  # attempts of a held batch row (a delivery that fails counts from there: the row is then anyone's)

# The messages of a batch row queued by reference: (session, ids) -> (subject, message bytes) of each id
# in the order given, leaving out ids whose row is gone. Registered by name: the module that writes them.
Loader = Callable[[Session, list[int]], list[tuple[str, bytes]]]
_LOADERS: dict[str, Loader] = {}


def register_loader(name: str, loader: Loader) -> None:
    """Make the messages of batch rows queued with ref=(name, ids) readable by the catch-up; name is the
    registering module's (the catch-up imports it if no loader of that name is registered yet)."""
    _LOADERS[name] = loader


def _loader(name: str) -> Loader:
    if name not in _LOADERS:
        importlib.import_module(name)  # the writing module registers its loader when imported
    return _LOADERS[name]


class OutboxMessage(Base):
    """One message waiting for (or done with) publication."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    subject: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    attempts: Mapped[int] = mapped_column(default=0)


def add(session: Session, messages: list[tuple[str, dict[str, Any]]], *, now: datetime | None = None) -> None:
    """Queue (subject, data) messages in the caller's transaction."""
    rows = [{"subject": subject, "data": data} for subject, data in messages]
    if rows:
        session.info[_OTHERS] = True
    bulk_insert(
        session,
        OutboxMessage.__table__,  # type: ignore[arg-type]
        rows,
        constants={"created_at": now or utcnow(), "delivered_at": None, "attempts": 0},
    )


def add_batch(
    session: Session,
    messages: Sequence[tuple[str, dict[str, Any] | str | bytes]],
    *,
    now: datetime | None = None,
    ref: tuple[str, list[int]] | None = None,
) -> None:
    """Queue many (subject, data) messages as one row in the caller's transaction (published in order).

    data may be given encoded already, as JSON text or UTF-8 JSON bytes (it must be valid JSON): it is then
    published as it is, never parsed here. Every message goes into the row as JSON itself, not escaped
    into a string, and out on the bus as bytes.

    ref=(loader name, ids): the row holds the ids instead, one per message in the same order, and the
    catch-up makes the messages again with the loader registered under that name (register_loader).
    """
    if len(messages) <= 1:
        add(session, [(s, d if isinstance(d, dict) else jsonio.loads(d)) for s, d in messages], now=now)
        return
    (row_id,) = allocate_ids(session, _table(), 1)
    sendable = [(s, _as_bytes(d)) for s, d in messages]
    data: dict[str, Any]
    if ref is not None:
        name, ids = ref
        if len(ids) != len(messages):
            raise ValueError(f"ref has {len(ids)} ids for {len(messages)} messages")
        data = {"ref": name, "ids": ids}
    else:  # every message held in the row as JSON itself (a Fragment, never escaped into a string)
        data = {"messages": [[s, orjson.Fragment(d)] for s, d in sendable]}
    rows = [{"id": row_id, "subject": BATCH_SUBJECT, "data": data}]
    held = hold_of(session)
    created = utcnow() if held else now or utcnow()  # a held row's time with its writer counts from now
    bulk_insert(
        session,
        OutboxMessage.__table__,  # type: ignore[arg-type]
        rows,
        constants={"created_at": created, "delivered_at": None, "attempts": HELD if held else 0},
    )
    session.info.setdefault(_BATCHES, []).append((row_id, sendable))


def hold(session: Session) -> None:
    """The batch rows this session's transactions queue are held by their writer: it publishes them with a
    Published, and other deliveries leave them alone for HELD_FOR (see the module's docstring)."""
    session.info[_HOLD] = True


def hold_of(session: Session) -> bool:
    """Whether hold() was called on this session."""
    return bool(session.info.get(_HOLD))


class Published:
    """The batch rows one deliverer published from memory after their commits (the Written of sessions that
    hold() their rows), deleted in the writer's next write transaction (forget) or in one of their own
    (flush). Until then the rows stay: a crash before the deletion leaves them to the catch-up after
    HELD_FOR, which publishes them again (at least once). One per deliverer, used by one thread at a time."""

    def __init__(self) -> None:
        self._ids: list[tuple[int, float]] = []  # (row id, time.monotonic() of its publication)
        self._guard = threading.Lock()

    @property
    def waiting(self) -> int:
        """How many published rows wait for their deletion."""
        with self._guard:
            return len(self._ids)

    def publish(self, session_factory: sessionmaker[Session], bus: Bus, written: Written) -> int:
        """Publish what a committed transaction queued, in order; how many messages went out.

        Batch rows are published from memory, with no transaction, and wait here for their deletion.
        From a row the bus refuses on (and with single messages, read back from the table) the rest goes
        the way of deliver_outbox, after this writer's published rows are deleted: it reads the table.
        """
        if not written.held:  # rows that are anyone's to deliver: claimed first, as deliver_outbox does
            return deliver_outbox(session_factory, bus, written=written)
        publish_many = getattr(bus, "publish_many", None)
        sent = 0
        with _delivering:
            for index, (row_id, messages) in enumerate(written.batches):
                done = _publish(bus, publish_many, messages)
                sent += done
                if done < len(messages):  # the row keeps what is left (_keep_unsent), and is no longer held
                    self.flush(session_factory)
                    rest = Written([(row_id, messages[done:]), *written.batches[index + 1 :]], written.others)
                    return sent + deliver_outbox(session_factory, bus, written=rest)
                with self._guard:
                    self._ids.append((row_id, time.monotonic()))
            if written.others:
                self.flush(session_factory)
                sent += deliver_outbox(session_factory, bus)
        return sent

    def forget(self, session: Session) -> int:
        """Delete the published rows in the caller's write transaction; how many. If that transaction
        rolls back, they wait again."""
        with self._guard:
            taken, self._ids = self._ids, []
        # A row published more than half of HELD_FOR ago may have been taken by the catch-up already, and
        # on SQLite (ids are max(id) + 1) its id given to a new row since: it is left alone (if it is still
        # there, the catch-up publishes it again).
        recent = time.monotonic() - HELD_FOR.total_seconds() / 2
        ids = [row_id for row_id, at in taken if at >= recent]
        if len(ids) < len(taken):
            logger.warning("outbox: %d published batch rows left to the catch-up", len(taken) - len(ids))
        if ids:
            session.execute(delete(_table()).where(_table().c.id.in_(ids)))
            session.info.setdefault(_FORGOTTEN, []).append((self, taken))
        return len(ids)

    def _restore(self, taken: list[tuple[int, float]]) -> None:
        with self._guard:
            self._ids[:0] = taken

    def flush(self, session_factory: sessionmaker[Session]) -> int:
        """Delete the published rows in a write transaction of their own; how many."""
        if not self.waiting:
            return 0
        with session_factory() as session:
            writing(session)
            count = self.forget(session)
            session.commit()
        return count


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    """What a rolled-back transaction queued was never written: nothing of it may be delivered. The
    published rows it was to delete (Published.forget) wait for the next deletion."""
    session.info.pop(_BATCHES, None)
    session.info.pop(_OTHERS, None)
    for published, taken in session.info.pop(_FORGOTTEN, []):
        published._restore(taken)


@event.listens_for(Session, "after_commit")
def _forgotten_for_good(session: Session) -> None:
    session.info.pop(_FORGOTTEN, None)


@dataclass
class Written:
    """What one transaction queued: its batch rows with their messages in hand, and whether it queued
    single messages as well (those are read back from the table)."""

    batches: list[tuple[int, list[tuple[str, Any]]]] = field(default_factory=list)
    others: bool = False
    held: bool = False  # its batch rows are held by their writer (hold()): a Published publishes them


def written(session: Session) -> Written:
    """Take what the session's transaction queued so far, to pass to deliver_outbox once it committed.
    Call it inside the transaction, right before the commit; what it returns is void if the commit fails."""
    return Written(
        session.info.pop(_BATCHES, []), bool(session.info.pop(_OTHERS, False)), held=hold_of(session)
    )


def _table() -> Table:
    return cast_table(Table, OutboxMessage.__table__)


def _messages(session: Session, subject: str, data: Any) -> list[tuple[str, Any]]:
    """The messages a row holds: itself, or the list of a batch row, each as the bytes to send (a message
    given encoded went into the row as JSON text or, from bytes, as JSON itself; both go out as bytes), or
    those of the ids of a batch row queued by reference, made again by its loader."""
    if subject == BATCH_SUBJECT and isinstance(data, dict):
        if isinstance(data.get("messages"), list):
            return [(str(s), _as_bytes(d)) for s, d in data["messages"]]
        if isinstance(data.get("ref"), str) and isinstance(data.get("ids"), list):
            return _loader(data["ref"])(session, [int(i) for i in data["ids"]])
    return [(subject, data)]


def _count(subject: str, data: Any) -> int:
    """How many messages a row holds (without reading a by-reference row's records)."""
    if subject == BATCH_SUBJECT and isinstance(data, dict):
        for key in ("messages", "ids"):
            if isinstance(data.get(key), list):
                return len(data[key])
    return 1


def _as_bytes(data: Any) -> bytes:
    """A message as the bytes to send: JSON text encoded, bytes as they are, a dict (or a batch row's message
    read back as JSON) encoded as the bus would encode it."""
    if isinstance(data, str):
        return data.encode("utf-8")
    return encode(data)


def deliver_outbox(
    session_factory: sessionmaker[Session],
    bus: Bus,
    *,
    limit: int = 100_000,
    older_than: timedelta | None = None,
    written: Written | None = None,
) -> int:
    """Publish undelivered messages in order, each batch in its own transaction; returns how many.

    With `written` (see written()), the batch rows a transaction just committed are published from memory
    and marked delivered; the table is then read only if that transaction queued single messages too, or
    the bus refused something (the catch-up job delivers what other writers left).

    older_than leaves younger messages to the transaction that wrote them (the catch-up job uses it).
    Stops at the first message the bus refuses (it stays queued, its attempts counted) so order is kept.
    Rows are claimed with SKIP LOCKED on PostgreSQL, so several workers may run this at once. Delivery is
    at least once: a crash between publishing and marking publishes again, so subscribers must be idempotent.
    """
    with _delivering:
        if written is None:
            return _deliver(session_factory, bus, limit, older_than)
        sent, complete = _deliver_written(session_factory, bus, written.batches)
        if complete and not written.others:
            return sent
        return sent + _deliver(session_factory, bus, limit, older_than)


class Deliverer:
    """Delivers what transactions committed (their Written) on a thread of its own, in the order handed in.

    For a hot writer whose answers need not wait for the bus (the HTTP ingest of LINLI_INGEST_PROCESSES:
    the events are committed, the outbox keeps them until published). What is handed in while the thread
    delivers waits and then goes out together, in one claim-and-delete transaction: on SQLite each delivery
    is a write transaction, a turn on the one writers' queue that the ingest's own writes wait behind.
    Held rows (hold(): the ingest processes hold theirs for the server) are published first, with no
    transaction, and deleted after in one that does nothing else (Published), so the writers' turn of a
    delivery is as short as a delete.
    With `gather` (seconds), the thread waits that long after a hand-over for more to go with it (or until
    `max_waiting` are taken): fewer, larger deliveries, at up to `gather` more latency to the bus.
    At most `max_waiting` hand-overs wait; submit then blocks, so a bus that cannot keep up slows the
    writers instead of filling memory. A delivery that fails is logged and left to the outbox catch-up
    (the rows stay queued). close() delivers what waits, then stops the thread.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], bus: Bus, *, max_waiting: int = 64, gather: float = 0.0
    ) -> None:
        self._factory = session_factory
        self._bus = bus
        self._gather = gather
        self._waiting: queue.Queue[Written | None] = queue.Queue(maxsize=max_waiting)
        self._done = threading.Condition()
        self._submitted = 0
        self._delivered = 0
        self._published = Published()
        self._thread = threading.Thread(target=self._run, name="linli-outbox-deliverer", daemon=True)
        self._thread.start()

    def submit(self, written: Written | None, *, block: bool = True) -> bool:
        """Hand over what a committed transaction queued (see written()); blocks while the queue is full,
        or with block=False returns False then (an event loop hands it over from a thread instead)."""
        if written is None or (not written.batches and not written.others):
            return True
        with self._done:
            self._submitted += 1
        try:
            self._waiting.put(written, block=block)
        except queue.Full:
            with self._done:
                self._submitted -= 1
            return False
        return True

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed in so far was delivered (or failed); False on timeout."""
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._delivered >= target, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what waits, then stop the thread."""
        self._waiting.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            taken = [self._waiting.get()]
            until = time.monotonic() + self._gather
            while (
                taken[-1] is not None and len(taken) < self._waiting.maxsize
            ):  # what waits goes out together
                left = until - time.monotonic()
                try:
                    taken.append(self._waiting.get(timeout=left) if left > 0 else self._waiting.get_nowait())
                except queue.Empty:
                    break
            stopping = None in taken
            written = [w for w in taken if w is not None]
            merged = Written(
                [batch for w in written for batch in w.batches],
                any(w.others for w in written),
                held=all(w.held for w in written),
            )
            try:
                if written:
                    self._published.publish(self._factory, self._bus, merged)
                    self._published.flush(self._factory)
            except Exception:  # the database refused: the rows stay queued for the outbox catch-up
                logger.exception("outbox: delivering %d committed transactions failed", len(written))
            with self._done:
                self._delivered += len(written)
                self._done.notify_all()


def _deliver_written(
    session_factory: sessionmaker[Session], bus: Bus, batches: list[tuple[int, list[tuple[str, Any]]]]
) -> tuple[int, bool]:
    """Publish committed batch rows from memory, in order, and mark them delivered in one transaction;
    how many messages went out and whether all did (the first refusal stops, as in _deliver). Rows are
    claimed first as _deliver claims them (by id, no data read): one delivered already, or being
    delivered by another worker, is left out."""
    if not batches:
        return 0, True
    table = _table()
    publish_many = getattr(bus, "publish_many", None)
    with session_factory() as session:
        writing(session)
        claim = (
            select(table.c.id)
            .where(table.c.id.in_([row_id for row_id, _ in batches]), table.c.delivered_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        claimed = set(session.scalars(claim))
        rows = [(row_id, BATCH_SUBJECT, messages) for row_id, messages in batches if row_id in claimed]
        delivered, failed = _publish_rows(session, bus, publish_many, rows)
        session.commit()
    return delivered, not failed


def _deliver(
    session_factory: sessionmaker[Session], bus: Bus, limit: int, older_than: timedelta | None
) -> int:
    delivered = 0
    table = _table()
    publish_many = getattr(bus, "publish_many", None)
    while delivered < limit:
        with session_factory() as session:
            writing(session)
            # Core rows and the data as text, parsed once by jsonio: ORM objects and the JSON type's own
            # decoding cost more than the publication itself.
            stmt = (
                select(table.c.id, table.c.subject, cast(table.c.data, Text))
                .where(table.c.delivered_at.is_(None))
                .order_by(table.c.id)
                .limit(min(BATCH, limit - delivered))
                .with_for_update(skip_locked=True)
            )
            if older_than is not None:
                stmt = stmt.where(table.c.created_at < utcnow() - older_than)
            # A held row is its writer's to publish and delete, unless it is old enough for the writer to
            # have died before it could.
            stmt = stmt.where((table.c.attempts != HELD) | (table.c.created_at < utcnow() - HELD_FOR))
            rows = session.execute(stmt).all()
            if not rows:
                return delivered
            parsed = [
                (row_id, subject, _messages(session, subject, jsonio.loads(text)))
                for row_id, subject, text in rows
            ]
            sent, failed = _publish_rows(session, bus, publish_many, parsed)
            delivered += sent
            session.commit()
            if failed:
                return delivered
    return delivered


def _publish_rows(
    session: Session, bus: Bus, publish_many: Any, rows: list[tuple[int, str, list[tuple[str, Any]]]]
) -> tuple[int, bool]:
    """Publish claimed rows' messages in order and, in the caller's transaction, delete the batch rows done
    and mark the single ones delivered; how many went out and whether the bus refused one (that row keeps
    the rest, and nothing after it goes)."""
    table = _table()
    delivered, failed = 0, False
    done: list[int] = []  # single messages: marked delivered
    done_batches: list[int] = []  # batch rows: deleted
    for row_id, subject, messages in rows:
        sent = _publish(bus, publish_many, messages)
        delivered += sent
        if sent < len(messages):
            _keep_unsent(session, row_id, subject, messages[sent:])
            failed = True
            break
        (done_batches if subject == BATCH_SUBJECT else done).append(row_id)
    if done:
        session.execute(
            update(table).where(table.c.id.in_(done)).values(delivered_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
    if done_batches:
        # A batch row holds a store's whole batch (the event store's rows, hundreds of kilobytes of JSON):
        # marking it would rewrite all of it, and keeping it would keep a second copy of the events.
        session.execute(delete(table).where(table.c.id.in_(done_batches)))
    return delivered, failed


def _publish(bus: Bus, publish_many: Any, messages: list[tuple[str, Any]]) -> int:
    """Publish messages in order; how many the bus took before it refused one (logged)."""
    if publish_many is not None and len(messages) > 1:
        try:
            return int(publish_many(messages))
        except Exception:  # publish_many raises only if the bus took none
            logger.exception("outbox: publishing %d messages failed", len(messages))
            return 0
    for sent, (subject, data) in enumerate(messages):
        try:
            bus.publish(subject, data)
        except Exception:  # the bus is down: keep the message for the next run
            logger.exception("outbox: publishing %s failed", subject)
            return sent
    return len(messages)


def _keep_unsent(session: Session, row_id: int, subject: str, unsent: list[tuple[str, Any]]) -> None:
    """Count a failed attempt; a batch row keeps only what is still to publish (no repeats next time): the
    messages, or for a row queued by reference the ids of the messages (the last ones, in order)."""
    table = _table()
    values: dict[str, Any] = {"attempts": table.c.attempts + 1}
    if subject == BATCH_SUBJECT:
        text = session.scalar(select(cast(table.c.data, Text)).where(table.c.id == row_id))
        held = jsonio.loads(text) if text else {}
        if isinstance(held, dict) and isinstance(held.get("ids"), list) and "ref" in held:
            ids = held["ids"]
            values["data"] = {"ref": held["ref"], "ids": ids[max(len(ids) - len(unsent), 0) :]}
        else:
            kept = [[s, d.decode("utf-8") if isinstance(d, bytes) else d] for s, d in unsent]
            values["data"] = {"messages": kept}
    session.execute(update(table).where(table.c.id == row_id).values(**values))


def pending(session: Session) -> int:
    """How many messages wait for delivery (a batch row counts its messages)."""
    waiting = OutboxMessage.delivered_at.is_(None)
    single = select(func.count()).select_from(OutboxMessage).where(waiting)
    single = single.where(OutboxMessage.subject != BATCH_SUBJECT)
    batches = select(OutboxMessage.data).where(waiting, OutboxMessage.subject == BATCH_SUBJECT)
    in_batches = sum(_count(BATCH_SUBJECT, data) for data in session.scalars(batches))
    return int(session.scalar(single) or 0) + in_batches


def purge_delivered(session: Session, *, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Delete messages delivered before now - keep; returns how many."""
    stmt = delete(OutboxMessage).where(OutboxMessage.delivered_at < now - keep)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
