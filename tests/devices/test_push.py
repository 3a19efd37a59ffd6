"""Vendor pushes: a Hikvision alarm-server post goes through its adapter into the store."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from linli.core.auth.service import Principal
from linli.core.timeutil import LOCAL_TZ, utcnow
from linli.devices.models import DeadLetter, StoredEvent
from linli.registry import vehicles

SAMPLES = Path(__file__).parent / "adapters" / "samples" / "hikvision"


def _anpr_now(plate: str) -> bytes:
    """The recorded ANPR push, re-dated to a minute ago and carrying plate."""
    xml = (SAMPLES / "anpr_entry.xml").read_text("utf-8")
    stamp = (utcnow() - timedelta(minutes=1)).astimezone(LOCAL_TZ).isoformat(timespec="seconds")
    xml = re.sub(r"<dateTime>[^<]+</dateTime>", f"<dateTime>{stamp}</dateTime>", xml)
    return re.sub(
        r"<licensePlate>[^<]+</licensePlate>", f"<licensePlate>蓝{plate}</licensePlate>", xml
    ).encode()


def test_hikvision_anpr_push_is_stored_and_linked(client, session, gate, world) -> None:
    device, secret = gate
    car, _ = vehicles.upsert(session, Principal.system(), {"plate": "陕A12345"}, community_code=world.tianfu)
    session.commit()
    url = f"/api/v1/ingest/push/hikvision_isapi/{device.serial}"
    headers = {"content-type": "application/xml"}
    body = _anpr_now("陕A12345")
    r = client.post(url, params={"key": secret}, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    again = client.post(url, params={"key": secret}, content=body, headers=headers)  # the camera retries
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 1)
    event = session.scalar(select(StoredEvent).where(StoredEvent.device_id == device.id))
    assert (
        event.type == "vehicle.entered" and event.vehicle_id == car.id and event.source == "hikvision_isapi"
    )


def test_push_needs_the_device_key(client, gate) -> None:
    device, secret = gate
    url = f"/api/v1/ingest/push/hikvision_isapi/{device.serial}"
    assert client.post(url, params={"key": secret + "x"}, content=_anpr_now("陕A12345")).status_code == 401
    assert client.post(url, content=_anpr_now("陕A12345")).status_code == 401
    assert (
        client.post(
            f"/api/v1/ingest/push/no_such_vendor/{device.serial}", params={"key": secret}, content=b"<x/>"
        ).status_code
        == 404
    )


def test_unreadable_push_becomes_a_dead_letter(client, session, gate) -> None:
    device, secret = gate
    broken = (SAMPLES / "truncated.xml").read_bytes()
    r = client.post(
        f"/api/v1/ingest/push/hikvision_isapi/{device.serial}", params={"key": secret}, content=broken
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"
    letter = session.scalar(select(DeadLetter).where(DeadLetter.device_id == device.id))
    assert (
        letter is not None
        and letter.reason.startswith("adapter:")
        and letter.source == "push:hikvision_isapi"
    )
