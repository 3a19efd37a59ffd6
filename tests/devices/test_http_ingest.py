"""POST /api/v1/ingest/events: signatures, clock skew, body limits, malformed JSON, shapes, the bus."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from linli.devices import signing, store
from linli.devices.models import DeadLetter, RawPayload, StoredEvent
from tests.devices.helpers import Recorder, body_of, device, envelope, plate_read, signed

URL = "/api/v1/ingest/events"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def app_recorder(client):  # type: ignore[no-untyped-def]
    """What the app publishes on its own (in-process) bus."""
    rec = Recorder(client.app.state.bus)
    yield rec
    rec.close()


@pytest.fixture
def registered(session, gate):  # type: ignore[no-untyped-def]
    """The gate, committed so that requests see it."""
    session.commit()
    return gate


def test_a_signed_batch_is_stored_and_published_after_commit(
    client, session, registered, app_recorder
) -> None:
    serial, secret = registered[0].serial, registered[1]
    now = _now()
    events = [plate_read(serial, "陕A12345", at=now), plate_read(serial, "陕D67890", at=now, entered=False)]
    body = body_of(events)
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 2, "duplicates": 0, "rejected": []}
    assert [m.subject.rsplit(".", 2)[-2:] for m in app_recorder.messages] == [
        ["vehicle", "entered"],
        ["vehicle", "exited"],
        ["device", "online"],
    ]
    stored = session.scalars(select(StoredEvent).where(StoredEvent.source == "linli")).all()
    assert {e.payload["plate"] for e in stored} == {"陕A12345", "陕D67890"}
    raw = session.scalar(select(RawPayload).order_by(RawPayload.id.desc()))
    assert raw is not None and raw.content == body and raw.device_serial == serial
    assert sorted(raw.event_ids) == sorted(e.id for e in stored)

    again = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert again.json() == {"stored": 0, "duplicates": 2, "rejected": []}


def test_a_large_body_is_kept_compressed_and_read_back_as_it_came(client, session, registered) -> None:
    # A gateway's batch is kept zlib-compressed (about eight times smaller); a small body as it came.
    serial, secret = registered[0].serial, registered[1]
    now = _now()
    big = body_of(
        [plate_read(serial, "陕A12345", at=now - timedelta(seconds=i), uid=f"z-{i}") for i in range(60)]
    )
    small = body_of([plate_read(serial, "陕D67890", at=now, uid="z-small")])
    assert len(big) >= store.RAW_COMPRESS_AT > len(small)
    for body in (big, small):
        r = client.post(URL, content=body, headers=signed(serial, secret, body))
        assert r.status_code == 200 and r.json()["stored"] == (60 if body is big else 1), r.text
    kept_big, kept_small = session.scalars(select(RawPayload).order_by(RawPayload.id.desc()).limit(2)).all()[
        ::-1
    ]
    assert kept_big.body_encoding == "zlib" and len(kept_big.body) * 4 < len(big) and kept_big.content == big
    assert kept_small.body_encoding == "" and kept_small.body == kept_small.content == small
    assert len(kept_big.event_ids) == 60


@pytest.mark.parametrize("shape", ["single", "wrapped"])
def test_one_envelope_or_an_events_object(client, registered, shape) -> None:
    serial, secret = registered[0].serial, registered[1]
    one = envelope(serial, at=_now())
    body = body_of(one if shape == "single" else {"events": [one]})
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.json()["stored"] == 1


def test_rejected_events_are_listed_with_a_200(client, session, registered) -> None:
    serial, secret = registered[0].serial, registered[1]
    body = body_of([envelope(serial, at=_now()), envelope(serial, at=_now() + timedelta(hours=1))])
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.status_code == 200
    assert r.json()["stored"] == 1
    assert r.json()["rejected"][0]["index"] == 1 and r.json()["rejected"][0]["reason"].startswith("future: ")
    # The raw body is kept once, linked to the event it became and to the dead letter of the refused one.
    raw = session.scalar(select(RawPayload).order_by(RawPayload.id.desc()))
    assert raw is not None and raw.content == body and raw.content_type == "application/json"
    letter = session.scalar(select(DeadLetter).where(DeadLetter.raw_id == raw.id))
    assert letter is not None and letter.reason.startswith("future: ") and raw.dead_letter_id == letter.id
    sent = session.scalars(select(StoredEvent.id).where(StoredEvent.source == "linli")).all()
    assert raw.event_ids == list(sent) and len(sent) == 1  # the hub's own device.online is not in the body


def test_wrong_signature_is_401_and_stores_nothing(client, session, registered) -> None:
    serial, secret = registered[0].serial, registered[1]
    body = body_of([envelope(serial, at=_now())])
    headers = signed(serial, "not-the-secret", body)
    before = signing.FAILURES["bad_signature"]
    r = client.post(URL, content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["reason"] == "bad_signature"
    assert "signature mismatch" in r.json()["error"]["message"]
    assert signing.FAILURES["bad_signature"] == before + 1
    tampered = client.post(URL, content=body.replace(b"ok", b"OK"), headers=signed(serial, secret, body))
    assert tampered.status_code == 401
    assert session.scalar(select(RawPayload.id)) is None
    assert session.scalar(select(DeadLetter.id)) is None


def test_stale_or_missing_headers_and_unknown_devices_are_401(client, registered) -> None:
    serial, secret = registered[0].serial, registered[1]
    body = body_of([envelope(serial, at=_now())])
    stale = client.post(
        URL, content=body, headers=signed(serial, secret, body, timestamp=int(time.time()) - 301)
    )
    assert stale.status_code == 401 and stale.json()["error"]["reason"] == "stale_timestamp"
    assert "behind" in stale.json()["error"]["message"]
    ahead = client.post(
        URL, content=body, headers=signed(serial, secret, body, timestamp=int(time.time()) + 400)
    )
    assert ahead.json()["error"]["reason"] == "stale_timestamp"
    unsigned = client.post(URL, content=body, headers={"X-Linli-Device": serial})
    assert unsigned.status_code == 401 and unsigned.json()["error"]["reason"] == "missing_headers"
    stranger = client.post(URL, content=body, headers=signed("NOBODY-01", secret, body))
    assert stranger.status_code == 401 and stranger.json()["error"]["reason"] == "unknown_device"


def test_retired_device_is_403(client, session, registered) -> None:
    registered[0].state = "retired"
    session.commit()
    body = body_of([envelope(registered[0].serial, at=_now())])
    r = client.post(URL, content=body, headers=signed(registered[0].serial, registered[1], body))
    assert r.status_code == 403


def test_the_body_is_read_judged_and_linked_before_the_write_transaction(
    client, registered, monkeypatch
) -> None:
    """Only the store holds the write lock (SQLite has one writer): parsing and checking a batch, looking
    up its devices and linking it to the register come before it, so one request is read while another
    writes."""
    from linli.devices import linking, receive, register, service

    steps: list[str] = []
    real_writing, real_read = receive.writing, receive.read_json
    real_by_serials, real_link = register.by_serials, linking.link
    real_live = register.live_by_serials

    def writing(session):  # type: ignore[no-untyped-def]
        steps.append("write transaction")
        return real_writing(session)

    def read_json(body: bytes) -> receive.Read:
        steps.append("parse and check")
        return real_read(body)

    def by_serials(session, serials, **kw):  # type: ignore[no-untyped-def]
        steps.append("devices")
        return real_by_serials(session, serials, **kw)

    def live_by_serials(session, serials):  # type: ignore[no-untyped-def]
        steps.append("devices")
        return real_live(session, serials)

    def link(session, events):  # type: ignore[no-untyped-def]
        steps.append("link")
        return real_link(session, events)

    monkeypatch.setattr(receive, "writing", writing)
    monkeypatch.setattr(receive, "read_json", read_json)
    monkeypatch.setattr(register, "by_serials", by_serials)
    monkeypatch.setattr(register, "live_by_serials", live_by_serials)
    monkeypatch.setattr(service.linking, "link", link)
    serial, secret = registered[0].serial, registered[1]
    body = body_of([envelope(serial, at=_now()), {"id": "x", "device": serial, "type": "no.such"}])
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1 and r.json()["rejected"][0]["reason"].startswith("schema: type")
    # authentication looks the sender up, the batch its devices (none new: the sender is known)
    assert steps == ["devices", "parse and check", "devices", "link", "write transaction"]


def test_a_batchs_devices_are_looked_up_without_decrypting_their_secrets(session, world, monkeypatch) -> None:
    """Each secret is stored encrypted: only the sender's is decrypted (to check the signature), not those
    of the hundred devices a gateway's batch names."""
    from linli.core import pii
    from linli.devices import register, signing
    from linli.devices.receive import prepare

    others = [device(session, world.tianfu, serial=f"DS-SEC-{i}", kind="door_sensor")[0] for i in range(3)]
    gateway, secret = device(session, world.tianfu, serial="GW-SEC", kind="gateway")
    gateway_serial = gateway.serial
    session.commit()
    session.expunge_all()
    real, decrypted = pii.decrypt, []

    def counted(token: str) -> str:
        decrypted.append(token)
        return real(token)

    monkeypatch.setattr(pii, "decrypt", counted)
    found = register.by_serials(session, {d.serial for d in others})
    assert sorted(found) == sorted(d.serial for d in others) and decrypted == []
    batch = [envelope(d.serial, at=_now()) for d in others]
    session.expunge_all()
    body = body_of(batch)
    headers = signed(gateway_serial, secret, body)
    signed_request = signing.Signed.of(headers, body, skew_seconds=300)
    prepared = prepare(session, signed_request, now=_now())
    assert prepared.staged is not None and len(prepared.staged.fresh) == 3
    assert len(decrypted) == 1  # the sender's, for its signature
    first = register.by_serials(session, {others[0].serial})[others[0].serial]
    assert first.secret  # read when asked for
    assert len(decrypted) == 2


def test_a_device_retired_after_its_request_was_read_is_refused(session, registered) -> None:
    from linli.core.errors import Forbidden
    from linli.devices.receive import prepare, receive

    serial, secret = registered[0].serial, registered[1]
    body = body_of([envelope(serial, at=_now())])
    request = signing.Signed.of(signed(serial, secret, body), body, skew_seconds=300)
    now = datetime.now(UTC)
    prepared = prepare(session, request, now=now)
    assert prepared.device_id == registered[0].id and len(prepared.read.events) == 1
    registered[0].state = "retired"
    session.flush()
    with pytest.raises(Forbidden):
        receive(session, request, content_type="application/json", now=now, prepared=prepared)
    assert session.scalar(select(StoredEvent.id).where(StoredEvent.device_id == registered[0].id)) is None


def test_oversized_body_is_413(client, registered) -> None:
    serial, secret = registered[0].serial, registered[1]
    limit = client.app.state.settings.ingest_max_bytes
    one = envelope(serial, at=_now())
    body = body_of([one] * (limit // len(body_of(one)) + 10))
    assert len(body) > limit
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"

    def chunks():  # type: ignore[no-untyped-def]
        yield body[: limit // 2]
        yield body[limit // 2 :]

    streamed = client.post(URL, content=chunks(), headers=signed(serial, secret, body))  # no Content-Length
    assert streamed.status_code == 413


def test_malformed_json_is_400_with_the_position_and_a_dead_letter(client, session, registered) -> None:
    serial, secret = registered[0].serial, registered[1]
    body = b'[{"id": "1", "device": "' + serial.encode() + b'" "type": "device.heartbeat"}]'
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "malformed_json"
    assert (error["line"], error["column"]) == (1, body.index(b'"type"') + 1)
    assert "Expecting ',' delimiter" in error["message"]
    letter = session.get(DeadLetter, error["dead_letter_id"])
    assert letter is not None and letter.body == body.decode() and letter.area_code == registered[0].area_code
    raw = session.get(RawPayload, letter.raw_id)
    assert raw is not None and raw.dead_letter_id == letter.id

    binary = b"\xff\xfe\x00garbage"
    r = client.post(URL, content=binary, headers=signed(serial, secret, binary))
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


def test_schemas_are_published_without_authentication(client) -> None:
    envelope_schema = client.get("/schemas/events/v1/envelope.json")
    assert envelope_schema.status_code == 200
    assert {"id", "device", "type", "occurred_at", "payload"} <= set(envelope_schema.json()["required"])
    plate = client.get("/schemas/events/v1/vehicle.entered.json").json()
    assert plate["required"] == ["plate"]
    names = client.get("/schemas/events/v1/index.json").json()["schemas"]
    assert "/schemas/events/v1/throw.detected.json" in names
    assert client.get("/schemas/events/v1/nothing.json").status_code == 404
