"""docs/examples/send_events.py, the example device client, signs and posts a batch the hub accepts."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from starlette import testclient

from linli.devices import signing
from tests.devices.helpers import plate_read

# The example uses the client it is given: here starlette's TestClient, on httpx2 (httpx when it is missing).
HTTPStatusError = testclient.httpx.HTTPStatusError
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "send_events.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("send_events", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_client_end_to_end(client, session, gate) -> None:
    session.commit()
    example = _example()
    serial, secret = gate[0].serial, gate[1]
    assert example.signature(secret, 1700000000, b"[]") == signing.sign(secret, 1700000000, b"[]")
    now = datetime.now(UTC)
    batch = [example.heartbeat(serial), plate_read(serial, "陕A12345", at=now)]
    assert example.send("", serial, secret, batch, client=client) == {
        "stored": 2,
        "duplicates": 0,
        "rejected": [],
    }
    assert example.send("", serial, secret, batch, client=client)["duplicates"] == 2
    with pytest.raises(HTTPStatusError) as refused:
        example.send("", serial, "wrong", batch, client=client)
    assert refused.value.response.status_code == 401


def test_example_client_uploads_a_picture_and_refers_to_it(
    client, session, gate, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from linli.core import media
    from linli.devices.models import StoredEvent
    from tests.devices.test_push_media import sample

    session.commit()
    before = (media.root(), media._Config.max_bytes)
    media.configure(root=tmp_path / "media", max_bytes=1024 * 1024)
    try:
        example = _example()
        serial, secret = gate[0].serial, gate[1]
        jpeg = sample("anpr_exit_multipart")[2]["licensePlatePicture.jpg"]
        stored = example.upload_media("", serial, secret, jpeg, filename="plate.jpg", client=client)
        assert stored == {"ref": media.key_of(jpeg), "content_type": "image/jpeg", "size": len(jpeg)}
        event = plate_read(serial, "陕A8K3L5", at=datetime.now(UTC))
        event["media"] = [{"kind": "image", "ref": stored["ref"], "label": "plate"}]
        assert example.send("", serial, secret, [event], client=client)["stored"] == 1
        row = session.scalar(select(StoredEvent).where(StoredEvent.event_uid == event["id"]))
        assert [m["ref"] for m in row.media] == [stored["ref"]]
        with pytest.raises(HTTPStatusError) as refused:
            example.upload_media("", serial, secret, b"GIF? no", content_type="image/gif", client=client)
        assert refused.value.response.status_code == 422
    finally:
        media.configure(root=before[0], max_bytes=before[1])
