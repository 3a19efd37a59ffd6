"""Pictures of devices that speak our schema: multipart events, POST /api/v1/ingest/media, and ref checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from linli.core import media
from linli.core.auth.service import Principal
from linli.core.errors import Invalid
from linli.core.media import MediaObject
from linli.core.timeutil import utcnow
from linli.devices import service
from linli.devices.models import DeadLetter, StoredEvent
from tests.devices.helpers import body_of, device, envelope, plate_read, signed
from tests.devices.test_push_media import sample

EVENTS = "/api/v1/ingest/events"
MEDIA = "/api/v1/ingest/media"
BOUNDARY = "linli-test-boundary-7Q2"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A media folder of this test's own."""
    before = (media.root(), media._Config.max_bytes)
    media.configure(root=tmp_path / "media", max_bytes=1024 * 1024)
    yield tmp_path / "media"
    media.configure(root=before[0], max_bytes=before[1])


@pytest.fixture
def jpegs() -> dict[str, bytes]:
    """Two real JPEGs recorded from a plate gate (the plate crop and the scene)."""
    _body, _headers, parts = sample("anpr_exit_multipart")
    return {"plate": parts["licensePlatePicture.jpg"], "scene": parts["detectionPicture.jpg"]}


@pytest.fixture
def registered(session, gate):  # type: ignore[no-untyped-def]
    """The Tianfu gate, committed so that requests see it."""
    session.commit()
    return gate


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _multipart(parts: list[tuple[str, str, bytes]]) -> bytes:
    """A multipart/form-data body of (name, content type, bytes) parts."""
    out = b""
    for name, content_type, data in parts:
        out += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


def _post_multipart(client, serial: str, secret: str, body: bytes):  # type: ignore[no-untyped-def]
    headers = signed(serial, secret, body)
    headers["Content-Type"] = f"multipart/form-data; boundary={BOUNDARY}"
    return client.post(EVENTS, content=body, headers=headers)


def _upload(client, serial: str, secret: str, data: bytes, content_type: str = "image/jpeg"):  # type: ignore[no-untyped-def]
    headers = signed(serial, secret, data)
    headers["Content-Type"] = content_type
    return client.post(MEDIA, content=data, headers=headers, params={"filename": "cap.jpg"})


def _stored(session, serial: str) -> list[StoredEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(
        session.scalars(select(StoredEvent).where(StoredEvent.payload["plate"].as_string() == serial))
    )


def test_a_multipart_batch_keeps_its_pictures_and_the_events_refer_to_them(  # type: ignore[no-untyped-def]
    client, session, registered, store, jpegs, login, world
) -> None:
    gate, secret = registered
    read = plate_read(gate.serial, "陕A5M2K8", at=_now())
    read["media"] = [
        {"kind": "image", "ref": "upload:plate", "content_type": "image/jpeg", "label": "plate"},
        {"kind": "image", "ref": "upload:scene", "content_type": "image/jpeg", "label": "scene"},
    ]
    body = _multipart(
        [
            ("events", "application/json", body_of([read])),
            ("plate", "image/jpeg", jpegs["plate"]),
            ("scene", "image/jpeg", jpegs["scene"]),
        ]
    )
    r = _post_multipart(client, gate.serial, secret, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 1, "duplicates": 0, "rejected": []}
    [event] = session.scalars(select(StoredEvent).where(StoredEvent.event_uid == read["id"])).all()
    refs = {m["label"]: m["ref"] for m in event.media}
    assert refs == {"plate": media.key_of(jpegs["plate"]), "scene": media.key_of(jpegs["scene"])}
    rows = session.scalars(select(MediaObject).execution_options(skip_scope=True)).all()
    assert {(o.key, o.area_code) for o in rows} == {(k, world.tianfu) for k in refs.values()}
    assert all(o.claimed_at is not None for o in rows)
    shown = client.get(f"/api/v1/media/{refs['plate']}", headers=login("shequ"))
    assert shown.status_code == 200 and shown.content == jpegs["plate"]
    assert client.get(f"/api/v1/media/{refs['plate']}", headers=login("shequ2")).status_code == 404
    again = _post_multipart(client, gate.serial, secret, body)  # the device retries
    assert again.json() == {"stored": 0, "duplicates": 1, "rejected": []}


def test_in_a_multipart_batch_a_bad_picture_or_event_costs_only_itself(  # type: ignore[no-untyped-def]
    client, session, registered, store, jpegs
) -> None:
    gate, secret = registered
    good = plate_read(gate.serial, "陕A7F3Q1", at=_now())
    good["media"] = [{"kind": "image", "ref": "upload:plate", "content_type": "image/jpeg", "label": "plate"}]
    broken = plate_read(gate.serial, "陕A9X0Z2", at=_now())
    broken["payload"]["plate_colour"] = "purple"  # not a plate colour
    error_page = b"<html>502 Bad Gateway</html>"
    body = _multipart(
        [("events", "application/json", body_of([good, broken])), ("plate", "image/jpeg", error_page)]
    )
    r = _post_multipart(client, gate.serial, secret, body)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    assert [x["index"] for x in r.json()["rejected"]] == [1]
    assert "plate_colour" in r.json()["rejected"][0]["reason"]
    [event] = session.scalars(select(StoredEvent).where(StoredEvent.event_uid == good["id"])).all()
    assert event.media == []
    letters = session.scalars(select(DeadLetter).where(DeadLetter.device_id == gate.id)).all()
    reasons = sorted(letter.reason for letter in letters)
    assert len(reasons) == 2
    assert any("plate：" in why and "不是支持的图片或视频" in why and "事件已保留" in why for why in reasons)
    assert any("plate_colour" in why for why in reasons)
    assert not list(store.rglob("*" + media.key_of(error_page)[7:]))


@pytest.mark.parametrize(
    ("parts", "why"),
    [
        ([("scene", "image/jpeg", b"\xff\xd8\xff\xe0 not much")], "没有名为 events 的 JSON 部分"),
        ([("events", "application/json", b'[{"id": "x",')], "events 部分不是合法 JSON"),
    ],
)
def test_a_multipart_body_without_readable_events_is_a_dead_letter(  # type: ignore[no-untyped-def]
    client, session, registered, store, parts, why
) -> None:
    gate, secret = registered
    r = _post_multipart(client, gate.serial, secret, _multipart(parts))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "body" and why in r.json()["error"]["message"]
    letter = session.scalar(select(DeadLetter).where(DeadLetter.device_id == gate.id))
    assert letter is not None and why in letter.reason and letter.source == "http"
    # The device's own body: no adapter or mapping reads it again, so a replay says it cannot (no 500).
    assert letter.replay_via is None
    with pytest.raises(Invalid, match="JSON"):
        service.replay(session, Principal.system(), dead_letter_id=letter.id, now=utcnow())


def test_a_picture_uploaded_first_is_referred_to_by_key_from_a_later_event(  # type: ignore[no-untyped-def]
    client, session, registered, store, jpegs, world
) -> None:
    gate, secret = registered
    up = _upload(client, gate.serial, secret, jpegs["plate"])
    assert up.status_code == 201, up.text
    assert up.json() == {
        "ref": media.key_of(jpegs["plate"]),
        "content_type": "image/jpeg",
        "size": len(jpegs["plate"]),
    }
    row = session.scalar(select(MediaObject).execution_options(skip_scope=True))
    assert (row.area_code, row.claimed_at, row.filename) == (
        world.tianfu,
        None,
        "cap.jpg",
    )  # not yet referred to
    read = plate_read(gate.serial, "陕A2B4C6", at=_now())
    read["media"] = [
        {"kind": "image", "ref": up.json()["ref"], "content_type": "image/jpeg", "label": "plate"}
    ]
    body = body_of([read])
    r = client.post(EVENTS, content=body, headers=signed(gate.serial, secret, body))
    assert r.json() == {"stored": 1, "duplicates": 0, "rejected": []}, r.text
    event = session.scalar(select(StoredEvent).where(StoredEvent.event_uid == read["id"]))
    assert [m["ref"] for m in event.media] == [up.json()["ref"]]
    session.refresh(row)
    assert row.claimed_at is not None  # the purge job keeps it now


def test_media_uploads_are_signed_and_checked(client, session, registered, store, jpegs) -> None:  # type: ignore[no-untyped-def]
    gate, secret = registered
    unsigned = client.post(MEDIA, content=jpegs["plate"], headers={"Content-Type": "image/jpeg"})
    assert unsigned.status_code == 401 and unsigned.json()["error"]["reason"] == "missing_headers"
    forged = _upload(client, gate.serial, "not-the-secret", jpegs["plate"])
    assert forged.status_code == 401 and forged.json()["error"]["reason"] == "bad_signature"
    html = _upload(client, gate.serial, secret, b"<html>error</html>")
    assert html.status_code == 422 and html.json()["error"]["field"] == "file"
    assert "不是支持的图片或视频" in html.json()["error"]["message"]
    mismatch = _upload(client, gate.serial, secret, jpegs["plate"], content_type="video/mp4")
    assert mismatch.status_code == 422 and "image/jpeg" in mismatch.json()["error"]["message"]
    pdf = _upload(client, gate.serial, secret, b"%PDF-1.7 ...", content_type="application/pdf")
    assert pdf.status_code == 422 and "不支持的文件类型" in pdf.json()["error"]["message"]
    too_big = _upload(client, gate.serial, secret, b"\xff\xd8\xff" + b"\0" * (1024 * 1024))
    assert too_big.status_code == 413
    assert session.scalars(select(MediaObject).execution_options(skip_scope=True)).all() == []


def test_refs_the_device_may_not_use_are_dropped_and_the_event_kept(  # type: ignore[no-untyped-def]
    client, session, registered, world, store, jpegs
) -> None:
    gate, secret = registered
    neighbour, neighbour_secret = device(session, world.yuyu, serial="YY-GATE-01", kind="plate_gate")
    session.commit()
    theirs = _upload(client, neighbour.serial, neighbour_secret, jpegs["scene"]).json()["ref"]
    read = plate_read(gate.serial, "陕A1D2E3", at=_now())
    read["media"] = [
        {"kind": "image", "ref": theirs, "label": "scene"},  # another community's picture
        {"kind": "image", "ref": media.key_of(b"never uploaded"), "label": "plate"},
        {"kind": "image", "ref": "upload:plate", "label": "face"},  # upload: outside a multipart body
        {"kind": "image", "ref": "ftp://10.0.0.9/cap.jpg", "label": "face"},
        {"kind": "image", "ref": "https://nvr.example.cn/snap/881.jpg", "label": "scene"},
    ]
    body = body_of([read])
    r = client.post(EVENTS, content=body, headers=signed(gate.serial, secret, body))
    assert r.json() == {"stored": 1, "duplicates": 0, "rejected": []}, r.text
    event = session.scalar(select(StoredEvent).where(StoredEvent.event_uid == read["id"]))
    assert [m["ref"] for m in event.media] == ["https://nvr.example.cn/snap/881.jpg"]  # kept as a link
    letter = session.scalar(select(DeadLetter).where(DeadLetter.device_id == gate.id))
    assert letter is not None and letter.reason.startswith("媒体引用无效已去掉，事件已保留")
    for ref in (theirs[:80], "upload:plate", "ftp://10.0.0.9/cap.jpg"):
        assert ref in letter.reason
    assert json.loads(letter.body)["media"] == event.media
    their_row = session.scalar(
        select(MediaObject).where(MediaObject.key == theirs).execution_options(skip_scope=True)
    )
    assert their_row.area_code == world.yuyu and their_row.claimed_at is None  # not claimed by Tianfu


def test_a_gateway_may_refer_to_pictures_it_uploaded_for_its_devices(session, world, store, jpegs) -> None:  # type: ignore[no-untyped-def]
    gw, _ = device(session, world.tianfu, serial="TF-GW-01", kind="gateway", location="监控室")
    door, _ = device(
        session,
        world.tianfu,
        grid=world.tianfu_grid,
        serial="TF-DOOR-3-1",
        kind="face_terminal",
        location="3号楼1单元",
    )
    assert door.area_code == world.tianfu_grid != gw.area_code
    key = media.put(session, jpegs["scene"], content_type="image/jpeg", area_code=world.tianfu)
    item = envelope(
        door.serial,
        "access.granted",
        at=_now(),
        payload={"credential": "face", "door": "3号楼1单元"},
        media=[{"kind": "image", "ref": key, "label": "face"}],
    )
    result = service.ingest(session, [item], source="mqtt", received_at=_now(), sender=gw)
    assert (result.stored, result.rejected) == (1, []), result.summary()
    event = session.get(StoredEvent, result.event_ids[0])
    assert [m["ref"] for m in event.media] == [key]
    row = session.scalar(select(MediaObject).where(MediaObject.key == key).execution_options(skip_scope=True))
    assert row.claimed_at is not None
