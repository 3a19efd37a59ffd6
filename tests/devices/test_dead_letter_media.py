"""Discarding a dead letter lets go of the pictures stored with its refused event (the purge removes them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from linli.core import media
from linli.core.media import MediaObject
from linli.core.timeutil import LOCAL_TZ, utcnow
from linli.devices.models import DeadLetter, StoredEvent
from tests.devices.test_push_media import URL, sample
from tests.web.helpers import Console


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A media folder of this test's own."""
    before = (media.root(), media._Config.max_bytes)
    media.configure(root=tmp_path / "media", max_bytes=1024 * 1024)
    yield tmp_path / "media"
    media.configure(root=before[0], max_bytes=before[1])


def _days_ago(body: bytes, days: int) -> bytes:
    """The push re-dated to `days` ago (the live window is 30 days)."""
    when = (utcnow() - timedelta(days=days)).astimezone(LOCAL_TZ).isoformat(timespec="seconds")
    return re.sub(
        rb"(<dateTime>)([^<]+)(</dateTime>)", lambda m: m.group(1) + when.encode() + m.group(3), body
    )


def _objects(session) -> dict[str, object]:  # type: ignore[no-untyped-def]
    session.expire_all()
    rows = session.scalars(select(MediaObject).execution_options(skip_scope=True)).all()
    return {row.key: row.claimed_at for row in rows}


def _discard(client, letter_id: int) -> None:  # type: ignore[no-untyped-def]
    client.headers["accept"] = "text/html,application/xhtml+xml"
    console = Console(client)
    console.login("shequ")
    r = client.post(
        f"/dead-letters/{letter_id}/discard", data={"csrf": console.csrf()}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def test_discarding_the_letter_of_a_refused_event_releases_its_pictures_for_the_purge(  # type: ignore[no-untyped-def]
    client, session, gate, world, store
) -> None:
    gate_device, secret = gate
    body, headers, parts = sample("anpr_exit_multipart")
    old = _days_ago(body, 40)
    r = client.post(
        URL.format(serial=gate_device.serial), params={"key": secret}, content=old, headers=headers
    )
    assert r.status_code == 200 and r.json()["stored"] == 0, r.text
    [letter] = session.scalars(select(DeadLetter).where(DeadLetter.device_id == gate_device.id)).all()
    assert letter.reason.startswith("too old")
    keys = {media.key_of(parts["licensePlatePicture.jpg"]), media.key_of(parts["detectionPicture.jpg"])}
    assert {m["ref"] for m in json.loads(letter.body)["media"]} == keys
    assert set(_objects(session)) == keys and all(_objects(session).values())  # claimed when stored
    later = utcnow() + timedelta(days=30)
    assert media.purge_orphans(session, now=later, older_than=timedelta(days=7)) == []

    _discard(client, letter.id)
    session.expire_all()
    assert session.get(DeadLetter, letter.id).status == "discarded"  # type: ignore[union-attr]
    assert _objects(session) == {key: None for key in keys}
    assert media.purge_orphans(session, now=later, older_than=timedelta(days=7)) == sorted(keys)


def test_pictures_a_stored_event_still_shows_stay_claimed(client, session, gate, store) -> None:  # type: ignore[no-untyped-def]
    gate_device, secret = gate
    body, headers, _ = sample("anpr_exit_multipart")
    # The same pictures come once inside the window (stored) and once far too old (refused).
    fresh = client.post(
        URL.format(serial=gate_device.serial), params={"key": secret}, content=body, headers=headers
    )
    assert fresh.json()["stored"] == 1, fresh.text
    old = _days_ago(body, 40)
    refused = client.post(
        URL.format(serial=gate_device.serial), params={"key": secret}, content=old, headers=headers
    )
    assert refused.json()["stored"] == 0, refused.text
    letter = session.scalar(select(DeadLetter).where(DeadLetter.reason.startswith("too old")))
    assert letter is not None
    event = session.scalar(select(StoredEvent).where(StoredEvent.device_id == gate_device.id))
    assert {m["ref"] for m in event.media} == {m["ref"] for m in json.loads(letter.body)["media"]}

    _discard(client, letter.id)
    assert all(claimed is not None for claimed in _objects(session).values())
    later = utcnow() + timedelta(days=30)
    assert media.purge_orphans(session, now=later, older_than=timedelta(days=7)) == []
