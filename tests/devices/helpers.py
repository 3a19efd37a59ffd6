"""Device hub builders: registered devices, envelopes as real devices send them, signed requests, a clock."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.core.bus import InProcessBus, Message
from linli.devices import register, signing
from linli.devices.models import Device

T0 = datetime(2026, 3, 5, 8, 30, tzinfo=UTC)  # a weekday morning, 16:30 in Xianyang
_ids = itertools.count(1)


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def advance(self, **delta: float) -> datetime:
        """Move forward (minutes=…, hours=…) and return the new time."""
        self.now += timedelta(**delta)
        return self.now


def device(
    session: Session,
    community: str,
    *,
    serial: str,
    kind: str = "camera",
    vendor: str = "海康威视",
    model: str = "DS-2CD3T46WDV3-I3",
    location: str = "南门入口",
    **facts: Any,
) -> tuple[Device, str]:
    """A registered device and its secret."""
    data = {"serial": serial, "kind": kind, "community": community, "vendor": vendor, "model": model}
    return register.create(session, Principal.system(), {**data, "location": location, **facts})


def envelope(
    serial: str,
    type: str = "device.heartbeat",
    *,
    at: datetime = T0,
    payload: dict[str, Any] | None = None,
    uid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An envelope as a device sends it (JSON-ready)."""
    return {
        "id": uid or f"evt-{next(_ids):06d}",
        "device": serial,
        "type": type,
        "occurred_at": at.isoformat(),
        "payload": {"status": "ok"} if payload is None and type == "device.heartbeat" else (payload or {}),
        **extra,
    }


def plate_read(
    serial: str, plate: str, *, at: datetime = T0, entered: bool = True, **kw: Any
) -> dict[str, Any]:
    """A plate gate's read."""
    kind = "vehicle.entered" if entered else "vehicle.exited"
    return envelope(
        serial, kind, at=at, payload={"plate": plate, "plate_colour": "blue", "lane": "入口1"}, **kw
    )


def signed(serial: str, secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a signed device request."""
    ts = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
    return {
        signing.DEVICE_HEADER: serial,
        signing.TIMESTAMP_HEADER: str(ts),
        signing.SIGNATURE_HEADER: signing.sign(secret, ts, body),
        "Content-Type": "application/json",
    }


def body_of(events: Any) -> bytes:
    """A request body."""
    return json.dumps(events, ensure_ascii=False).encode("utf-8")


@dataclass
class Recorder:
    """Subscribes to a bus and keeps what arrives."""

    bus: InProcessBus
    pattern: str = "linli.events.>"
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subscription = self.bus.subscribe(self.pattern, self.messages.append)

    def close(self) -> None:
        """Stop recording."""
        self.subscription.unsubscribe()

    @property
    def data(self) -> list[dict[str, Any]]:
        """The messages' JSON bodies."""
        return [m.json() for m in self.messages]


def stream_text(bus: InProcessBus, get: Callable[[], Any], publish: Callable[[], None]) -> str:
    """The text of a Server-Sent Events stream: get() opens it in a thread (and returns its response once
    the stream closes, after its timeout); publish() runs once the stream has subscribed to bus. Checks
    that it answered 200 as text/event-stream and let go of its subscription."""
    listening, answer = bus.subscriber_count, {}

    def read() -> None:
        r = get()
        answer.update(status=r.status_code, type=r.headers["content-type"], text=r.text)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while bus.subscriber_count == listening and time.monotonic() < deadline:
        time.sleep(0.01)
    publish()
    reader.join(15)
    assert not reader.is_alive() and answer["status"] == 200, answer.get("status")
    assert str(answer["type"]).startswith("text/event-stream")
    assert bus.subscriber_count == listening  # the stream let go of its subscription
    return str(answer["text"])
