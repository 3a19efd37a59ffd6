"""Plate reads are found by plate, registered or not: the store keeps each read's normalised plate."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from linli.core.auth.service import Principal
from linli.db import make_engine
from linli.devices import service
from linli.devices.models import StoredEvent
from linli.migrate import upgrade
from linli.registry import vehicles
from tests.devices.helpers import plate_read


def _reads(session, gate, world):  # type: ignore[no-untyped-def]
    car, _ = vehicles.upsert(session, Principal.system(), {"plate": "陕A·5M2K8"}, community_code=world.tianfu)
    now = datetime.now(UTC).replace(microsecond=0)
    reads = [
        plate_read(gate[0].serial, "陕A5M2K8", at=now - timedelta(hours=2)),
        plate_read(gate[0].serial, "陕D·00001", at=now - timedelta(hours=1)),  # a visitor
        plate_read(gate[0].serial, "陕d 00001", at=now - timedelta(minutes=20), entered=False),
        plate_read(gate[0].serial, "无牌车", at=now - timedelta(minutes=5)),  # what the camera says for none
    ]
    assert service.ingest(session, reads, source="http", received_at=now).stored == 4
    session.commit()
    return car


def test_each_read_keeps_its_normalised_plate(session, gate, world) -> None:  # type: ignore[no-untyped-def]
    car = _reads(session, gate, world)
    rows = session.scalars(
        select(StoredEvent).where(StoredEvent.type.like("vehicle.%")).order_by(StoredEvent.id)
    )
    assert [(e.plate, e.vehicle_id) for e in rows] == [
        ("陕A5M2K8", car.id),
        ("陕D00001", None),
        ("陕D00001", None),
        ("无牌车", None),  # not a plate: kept as read, found as read
    ]


def test_the_api_and_the_list_find_a_visitors_plate_in_scope(client, login, session, gate, world) -> None:  # type: ignore[no-untyped-def]
    _reads(session, gate, world)
    for typed in ("陕D00001", "陕d·00001", " 陕D 00001 "):
        found = client.get("/api/v1/events", params={"plate": typed}, headers=login("shequ")).json()
        assert [e["type"] for e in found["items"]] == ["vehicle.exited", "vehicle.entered"], typed
        assert {e["plate"] for e in found["items"]} == {"陕D00001"}
    assert (
        client.get("/api/v1/events", params={"plate": "陕D00001"}, headers=login("shequ2")).json()["items"]
        == []
    )


def test_stored_reads_get_their_plate_when_migrated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0008")
    payloads = [("vehicle.entered", {"plate": "陕A·12345"}), ("device.heartbeat", {"status": "ok"})]
    engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as raw:  # rows as an older hub stored them (no device rows)
        for i, (kind, payload) in enumerate(payloads, start=1):
            raw.execute(
                "INSERT INTO device_events (id, event_uid, device_id, device_serial, community_code,"
                " area_code, type, occurred_at, received_at, source, payload, media, content_hash)"
                " VALUES (?, ?, 1, 'G', '611102001001', '611102001001', ?, '2026-11-01 08:00:00',"
                " '2026-11-01 08:00:01', 'linli', ?, '[]', 'h')",
                (i, f"e{i}", kind, json.dumps(payload, ensure_ascii=False)),
            )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, plate FROM device_events ORDER BY id")).all() == [
            (1, "陕A12345"),
            (2, None),
        ]
        indexes = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'ix_device_events_plate_time'")
        )
        assert "WHERE plate IS NOT NULL" in indexes.scalar_one()
    engine.dispose()
