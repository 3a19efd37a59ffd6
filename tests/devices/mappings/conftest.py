"""Fixtures of the mapping tests: the console as a browser uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.devices.mappings.vendor_api import Vendor, serve
from tests.web.helpers import Console


@pytest.fixture
def console(client: TestClient) -> Console:
    """The console as a browser would use it (Accept: text/html)."""
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


@pytest.fixture
def vendor() -> Iterator[tuple[Vendor, str]]:
    """A vendor's query API served by http.server in a thread; yields it and its URL."""
    yield from serve(Vendor())
