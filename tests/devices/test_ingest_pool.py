"""LINLI_INGEST_PROCESSES: HTTP ingest stored by separate processes, published on the server's own bus.

These tests run a real pool of spawned processes on their own SQLite file (the processes cannot see the
rolled-back transaction of the other tests), so what a process stores is really committed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from linli.app import create_app
from linli.areas import service as areas
from linli.core import outbox, pii
from linli.core.errors import Relayed, Unauthorized
from linli.db import make_engine, make_session_factory, unit_of_work
from linli.devices.ingest_pool import IngestPool
from linli.devices.models import DeadLetter, Device, StoredEvent
from linli.migrate import upgrade
from linli.settings import Settings
from tests.devices.helpers import Recorder, body_of, device, envelope, plate_read, signed

URL = "/api/v1/ingest/events"
COMMUNITY = "611102001001"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Engine, tuple[str, str]]]:
    """A migrated database of its own with one community and its gateway, committed."""
    tmp: Path = tmp_path_factory.mktemp("pool")
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'pool.db'}",
        secret_key="pool-test-secret",
        auto_migrate=False,
        media_dir=tmp / "media",
        ingest_processes=1,
    )
    pii.configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with Session(engine) as session:
        for code, name in (("6111", "西咸新区"), ("611102", "沣东新城"), ("611102001", "斗门街道")):
            areas.create(session, code=code, name=name)
        areas.create(session, code=COMMUNITY, name="天府和苑", resettlement=True)
        gateway, secret = device(session, COMMUNITY, serial="GW-TF-01", kind="gateway", location="监控中心")
        device(session, COMMUNITY, serial="DS-TF-S01", kind="plate_gate", location="南门车行道")
        session.commit()
        serial = gateway.serial
    yield settings, engine, (serial, secret)
    engine.dispose()


@pytest.fixture(scope="module")
def client(hub) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app with one ingest process, started and stopped with it."""
    settings, _engine, _gateway = hub
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    assert app.state.ingest_pool is None and app.state.deliverer is None  # stopped with the app


def _stored(engine: Engine, prefix: str) -> int:
    with engine.connect() as conn:
        stmt = select(func.count()).select_from(StoredEvent).where(StoredEvent.event_uid.like(f"{prefix}%"))
        return int(conn.execute(stmt).scalar_one())


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_batch_is_stored_by_the_process_and_published_on_the_servers_bus(client, hub) -> None:
    _settings, engine, (serial, secret) = hub
    assert client.app.state.ingest_pool is not None
    recorder = Recorder(client.app.state.bus)
    try:
        batch = [
            envelope(serial, at=_now(), uid="pool-1"),
            plate_read("DS-TF-S01", "陕A12345", at=_now(), uid="pool-2"),
            {"id": "pool-3", "device": serial, "type": "no.such", "occurred_at": _now().isoformat()},
        ]
        body = body_of(batch)
        r = client.post(URL, content=body, headers=signed(serial, secret, body))
        assert r.status_code == 200, r.text
        answer = r.json()
        assert (answer["stored"], answer["duplicates"]) == (2, 0)
        assert [x["index"] for x in answer["rejected"]] == [2]
        assert answer["rejected"][0]["reason"].startswith("schema: type")
        assert _stored(engine, "pool-") == 2
        # published by the server, from what the process wrote to the outbox, after the answer
        assert client.app.state.deliverer.wait(10)
        sent = [m for m in recorder.data if m["source"] != "linli.health"]
        assert sorted(m["event_uid"] for m in sent) == ["pool-1", "pool-2"]
        # both devices were never seen before: each came online once, said by the process's write
        online = [m for m in recorder.data if m["type"] == "device.online"]
        assert sorted(m["device"] for m in online) == ["DS-TF-S01", serial]
        plate = next(m for m in sent if m["event_uid"] == "pool-2")
        assert plate["type"] == "vehicle.entered" and plate["device"] == "DS-TF-S01"

        again = client.post(URL, content=body, headers=signed(serial, secret, body))
        assert again.status_code == 200
        assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)
        assert client.app.state.deliverer.wait(10)
        assert _stored(engine, "pool-") == 2 and len(recorder.messages) == 4
        # The process held its outbox rows for the server, which deleted them once it had published them.
        with Session(engine) as check:
            assert outbox.pending(check) == 0
    finally:
        recorder.close()


def test_errors_raised_in_the_process_are_answered_as_raised_there(client, hub) -> None:
    _settings, engine, (serial, secret) = hub
    body = body_of([envelope(serial, at=_now(), uid="pool-bad-sig")])
    forged = client.post(URL, content=body, headers=signed(serial, "not-the-secret", body))
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "unauthorized"
    assert forged.json()["error"]["reason"] == "bad_signature"

    broken = b'[{"id": "pool-m1", "device": "' + serial.encode() + b'" "type": "device.heartbeat"}]'
    r = client.post(URL, content=broken, headers=signed(serial, secret, broken))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "malformed_json" and error["line"] == 1
    with Session(engine) as session:
        letter = session.get(DeadLetter, error["dead_letter_id"])
        assert letter is not None and letter.body == broken.decode()
    assert _stored(engine, "pool-bad-sig") == 0


def test_a_process_that_dies_is_replaced(client, hub) -> None:
    _settings, engine, (serial, secret) = hub
    pool: IngestPool = client.app.state.ingest_pool
    pids = list(pool._executor._processes)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    body = body_of([envelope(serial, at=_now(), uid="pool-after-kill")])
    lost = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert lost.status_code == 500  # the device sends it again
    retried = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert retried.status_code == 200, retried.text
    assert retried.json()["stored"] == 1
    assert _stored(engine, "pool-after-kill") == 1
    assert list(pool._executor._processes) != pids


def test_a_device_retired_is_refused_by_the_process(client, hub) -> None:
    _settings, engine, (serial, secret) = hub
    # A writer of the app's own kind (the writers' queue, db.writing): the pool's processes and the app's
    # checkpointer write to this file too, and a plain session, outside the queue, could time out on them.
    with unit_of_work(make_session_factory(engine)) as session:
        gate = session.scalars(select(Device).where(Device.serial == "DS-TF-S01")).one()
        gate.state = "retired"
    body = body_of([envelope("DS-TF-S01", at=_now(), uid="pool-retired")])
    r = client.post(URL, content=body, headers=signed(serial, secret, body))
    assert r.status_code == 200
    assert r.json()["rejected"][0]["reason"].startswith("retired device")


def test_the_pool_needs_a_database_other_processes_can_open() -> None:
    with pytest.raises(ValueError, match="LINLI_INGEST_PROCESSES"):
        IngestPool(Settings(database_url="sqlite://", ingest_processes=1))
    with pytest.raises(ValueError, match="LINLI_INGEST_PROCESSES"):
        IngestPool(Settings(database_url="sqlite:///data/x.db", ingest_processes=0))


def test_a_relayed_error_survives_pickling_with_its_answer() -> None:
    import pickle

    from linli.devices.signing import DeviceUnauthorized

    original = DeviceUnauthorized("signature mismatch", reason="bad_signature")
    relayed = pickle.loads(pickle.dumps(Relayed.of(original)))
    assert isinstance(relayed, Relayed) and not isinstance(relayed, Unauthorized)
    assert relayed.status_code == 401
    assert relayed.to_dict() == original.to_dict()
    assert relayed.message == "signature mismatch"
