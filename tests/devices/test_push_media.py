"""Vendor pictures: a Hikvision multipart push keeps its pictures in the media store; events refer to keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from linli.core import media
from linli.core.auth.service import Principal
from linli.core.media import MediaObject
from linli.core.timeutil import LOCAL_TZ, utcnow
from linli.devices import service
from linli.devices.models import DeadLetter, StoredEvent
from tests.devices.helpers import device
from tests.web.helpers import Console

SAMPLES = Path(__file__).parent / "adapters" / "samples" / "hikvision"
URL = "/api/v1/ingest/push/hikvision_isapi/{serial}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A media folder of this test's own."""
    before = (media.root(), media._Config.max_bytes)
    media.configure(root=tmp_path / "media", max_bytes=1024 * 1024)
    yield tmp_path / "media"
    media.configure(root=before[0], max_bytes=before[1])


def sample(name: str) -> tuple[bytes, dict[str, str], dict[str, bytes]]:
    """A recorded multipart push re-dated to a minute ago: body, headers, pictures by part name."""
    body = (SAMPLES / f"{name}.bin").read_bytes()
    headers = json.loads((SAMPLES / f"{name}.headers.json").read_text())
    parts_file = SAMPLES / f"{name}.parts.json"
    parts = (
        {k: bytes.fromhex(v) for k, v in json.loads(parts_file.read_text()).items()}
        if parts_file.exists()
        else {}
    )
    now = (utcnow() - timedelta(minutes=1)).astimezone(LOCAL_TZ)

    def redate(match: re.Match[bytes]) -> bytes:
        old = match.group(2).decode()
        stamp = now.isoformat(timespec="milliseconds" if "." in old else "seconds")
        return match.group(1) + stamp.encode() + match.group(3)

    body = re.sub(rb'(<dateTime>|"dateTime": ")([^<"]+)(</dateTime>|")', redate, body)
    return body, {"content-type": headers["Content-Type"]}, parts


def _push(client, serial: str, key: str, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(URL.format(serial=serial), params={"key": key}, content=body, headers=headers)


def test_anpr_pictures_are_stored_and_the_event_refers_to_their_keys(  # type: ignore[no-untyped-def]
    client, session, gate, world, login, store
) -> None:
    gate_device, secret = gate
    body, headers, parts = sample("anpr_exit_multipart")
    r = _push(client, gate_device.serial, secret, body, headers)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    event = session.scalar(select(StoredEvent).where(StoredEvent.device_id == gate_device.id))
    assert event.type == "vehicle.exited"
    by_label = {m["label"]: m for m in event.media}
    assert set(by_label) == {"plate", "scene"}
    plate_key = by_label["plate"]["ref"]
    assert plate_key == media.key_of(parts["licensePlatePicture.jpg"])
    assert by_label["scene"]["ref"] == media.key_of(parts["detectionPicture.jpg"])
    assert all(m["content_type"] == "image/jpeg" and m["kind"] == "image" for m in event.media)
    rows = session.scalars(select(MediaObject).execution_options(skip_scope=True)).all()
    assert {(r.key, r.area_code) for r in rows} == {(m["ref"], world.tianfu) for m in event.media}
    assert all(r.claimed_at is not None for r in rows)  # the event refers to them: never purged as orphans
    shown = client.get(f"/api/v1/media/{plate_key}", headers=login("shequ"))
    assert shown.status_code == 200 and shown.content == parts["licensePlatePicture.jpg"]
    assert client.get(f"/api/v1/media/{plate_key}", headers=login("shequ2")).status_code == 404
    again = _push(client, gate_device.serial, secret, body, headers)  # the camera retries
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 1)
    assert len(session.scalars(select(MediaObject).execution_options(skip_scope=True)).all()) == 2


def test_a_picture_that_is_not_an_image_is_dropped_and_the_event_kept(  # type: ignore[no-untyped-def]
    client, session, gate, store
) -> None:
    gate_device, secret = gate
    body, headers, parts = sample("anpr_exit_multipart")
    fake = b"<html><body>404 Not Found</body></html>".ljust(len(parts["licensePlatePicture.jpg"]), b" ")
    body = body.replace(parts["licensePlatePicture.jpg"], fake)  # firmware sent an error page as the crop
    r = _push(client, gate_device.serial, secret, body, headers)
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    event = session.scalar(select(StoredEvent).where(StoredEvent.device_id == gate_device.id))
    assert [m["label"] for m in event.media] == ["scene"]
    letter = session.scalar(select(DeadLetter).where(DeadLetter.device_id == gate_device.id))
    assert letter is not None and letter.status == "new" and letter.source == "push:hikvision_isapi"
    assert "licensePlatePicture.jpg" in letter.reason and "事件已保留" in letter.reason
    assert "不是支持的图片或视频" in letter.reason
    assert json.loads(letter.body)["media"][0]["ref"] == event.media[0]["ref"]
    assert not any(media.key_of(fake) in str(p) for p in store.rglob("*"))
    # Replaying the note only finds the event already stored: it points the note at it.
    replayed, result = service.replay(session, Principal.system(), dead_letter_id=letter.id, now=utcnow())
    assert (replayed.status, replayed.event_id, result.stored, result.duplicates) == (
        "replayed",
        event.id,
        0,
        1,
    )


def test_a_broken_multipart_is_a_dead_letter_and_stores_no_picture(client, session, gate, store) -> None:  # type: ignore[no-untyped-def]
    gate_device, secret = gate
    body, headers, _ = sample("anpr_broken_boundary")
    r = _push(client, gate_device.serial, secret, body, headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"
    letter = session.scalar(select(DeadLetter).where(DeadLetter.device_id == gate_device.id))
    assert letter is not None and "boundary" in letter.reason
    assert session.scalar(select(StoredEvent).where(StoredEvent.device_id == gate_device.id)) is None
    assert session.scalars(select(MediaObject).execution_options(skip_scope=True)).all() == []


def test_event_pages_show_the_thumbnails(client, session, world, store) -> None:  # type: ignore[no-untyped-def]
    terminal, secret = device(
        session,
        world.tianfu,
        serial="FX4417302",
        kind="face_terminal",
        model="DS-K1T671M",
        location="3号楼单元门",
    )
    gate_device, gate_secret = device(
        session, world.tianfu, serial="DS-TCG2A5-TF-N01", kind="plate_gate", model="DS-TCG2A5"
    )
    session.commit()
    body, headers, parts = sample("acs_card_denied_multipart")
    assert _push(client, terminal.serial, secret, body, headers).json()["stored"] == 1
    body, headers, anpr = sample("anpr_exit_multipart")
    assert _push(client, gate_device.serial, gate_secret, body, headers).json()["stored"] == 1
    face_key = media.key_of(parts["Picture"])
    plate_key = media.key_of(anpr["licensePlatePicture.jpg"])
    console = Console(client)
    client.headers["accept"] = "text/html"
    console.login("shequ")
    listing = console.get("/events").text
    assert f'src="/media/{face_key}"' in listing
    cells = re.findall(r'<td data-testid="plate">(.*?)</td>', listing, re.S)
    plate_cell = next(c for c in cells if "EF12345" in c)  # the plate picture stands next to the plate
    assert f'src="/media/{plate_key}"' in plate_cell.split("EF12345")[0]
    event = session.scalar(select(StoredEvent).where(StoredEvent.device_id == terminal.id))
    page = console.get(f"/events/{event.id}")
    assert page.status_code == 200 and f'src="/media/{face_key}"' in page.text and "1953862611" in page.text
    assert client.get(f"/media/{face_key}").content == parts["Picture"]
    client.post("/logout", data={"csrf": console.csrf()})
    console.login("shequ2")
    assert console.get(f"/events/{event.id}").status_code == 404
