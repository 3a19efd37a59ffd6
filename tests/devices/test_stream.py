"""GET /api/v1/events/stream: Server-Sent Events of newly stored events, scoped to the caller's areas."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from linli.core.bus import InProcessBus
from linli.devices import service
from tests.devices.helpers import Recorder, envelope, plate_read, stream_text


def test_stream_sends_the_callers_events_as_they_arrive(
    client, login, session, session_factory, gate, camera
) -> None:
    now = datetime.now(UTC)
    service.ingest(session, [envelope(camera[0].serial, at=now)], source="http", received_at=now)
    service.ingest(session, [plate_read(gate[0].serial, "陕A12345", at=now)], source="http", received_at=now)
    session.commit()
    # What the outbox delivers, captured first, so that the stream's request thread and this one never
    # use the test's single database connection at the same time.
    capture = InProcessBus()
    recorded = Recorder(capture)
    service.deliver_outbox(session_factory, capture)
    assert len(recorded.messages) == 4

    headers = login("shequ")
    app_bus = client.app.state.bus

    def publish() -> None:
        for message in recorded.messages:
            app_bus.publish(message.subject, message.body)

    text = stream_text(
        app_bus,
        lambda: client.get("/api/v1/events/stream", headers=headers, params={"limit": 2, "timeout": 10}),
        publish,
    )
    frames = [f for f in text.split("\n\n") if f.startswith("id:")]
    parsed = [dict(line.split(": ", 1) for line in frame.splitlines()) for frame in frames]
    assert [p["event"] for p in parsed] == ["vehicle.entered", "device.online"]  # Yuyu's camera is not shown
    assert json.loads(parsed[0]["data"])["payload"]["plate"] == "陕A12345"


def test_stream_needs_events_read(client, login) -> None:
    assert client.get("/api/v1/events/stream", headers=login("jumin")).status_code == 403
