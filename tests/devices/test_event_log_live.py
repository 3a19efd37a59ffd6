"""The event log's first page follows the store: a stream says when an event its filters may show is
stored in the caller's areas, and the page fetches its rows (part=rows) again."""

from __future__ import annotations

from linli.core.bus import InProcessBus
from linli.core.timeutil import utcnow
from linli.devices import service
from tests.devices.helpers import Recorder, device, envelope, plate_read, stream_text
from tests.web.helpers import Console


def _console(client) -> Console:  # type: ignore[no-untyped-def]
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


def _stream(console: Console, bus: InProcessBus, params: dict[str, str], publish) -> str:  # type: ignore[no-untyped-def]
    """The stream's text while publish() runs once it is subscribed (it closes after its timeout)."""
    return stream_text(bus, lambda: console.get("/events/stream", params={**params, "timeout": "3"}), publish)


def test_the_stream_announces_what_the_filters_may_show_in_the_callers_areas(
    client, session, session_factory, world
) -> None:  # type: ignore[no-untyped-def]
    gate, _ = device(session, world.tianfu, serial="DS-TCG-LIVE-01", kind="plate_gate")
    cam, _ = device(session, world.tianfu, serial="DS-2CD-LIVE-02")
    far, _ = device(session, world.yuyu, serial="DS-2CD-LIVE-03")
    now = utcnow()
    batch = [
        plate_read(gate.serial, "陕A12345", at=now),
        envelope(cam.serial, at=now),
        envelope(far.serial, at=now),
        envelope(gate.serial, at=now),
    ]
    stored = service.ingest(session, batch, source="http", received_at=now).event_ids
    session.commit()
    capture = InProcessBus()
    recorded = Recorder(capture)
    service.deliver_outbox(session_factory, capture)
    assert len(recorded.messages) == 7  # the four events and the three devices' device.online

    console = _console(client)
    console.login("shequ")  # 天府和苑 only
    bus = client.app.state.bus

    def publish() -> None:
        for message in recorded.messages:
            bus.publish(message.subject, message.body)

    def announced(text: str) -> list[str]:
        return [f.splitlines()[0] for f in text.split("\n\n") if f.startswith("id:")]

    everything = announced(_stream(console, bus, {"type": "all"}, publish))
    assert f"id: {stored[0]}" in everything and f"id: {stored[1]}" in everything
    assert f"id: {stored[2]}" not in everything  # 昱宇西苑's camera: outside the caller's areas
    # By default the log leaves heartbeats out: one stored reloads nothing.
    default = announced(_stream(console, bus, {}, publish))
    assert f"id: {stored[0]}" in default and f"id: {stored[1]}" not in default
    by_gate = announced(_stream(console, bus, {"device": str(gate.id), "type": "vehicle.entered"}, publish))
    assert by_gate == [f"id: {stored[0]}"]
    # The page's rows alone, for the fetch the announcement triggers.
    rows = console.get("/events", params={"device": gate.id, "part": "rows"})
    assert rows.status_code == 200 and rows.text.lstrip().startswith('<div id="event-rows">')
    assert "<html" not in rows.text and "陕A12345" in rows.text
    assert console.get("/events", params={"part": "all"}).status_code == 422


def test_only_the_first_page_listens(client, session, world) -> None:  # type: ignore[no-untyped-def]
    console = _console(client)
    console.login("shequ")
    first = console.get("/events").text
    assert 'new EventSource("/events/stream"' in first and 'data-testid="live"' in first
    older = console.get("/events", params={"before": 10**9}).text
    assert "EventSource" not in older and 'data-testid="live"' not in older
    console.login("jumin")
    assert console.get("/events/stream", params={"timeout": "1"}).status_code == 403
