"""docs/examples/send_events.py, the example device client, signs and posts a batch the hub accepts."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from linli.devices import signing
from tests.devices.helpers import plate_read

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
    with pytest.raises(httpx.HTTPStatusError) as refused:
        example.send("", serial, "wrong", batch, client=client)
    assert refused.value.response.status_code == 401
