"""Fixtures of the mapping tests: the console as a browser uses it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.web.helpers import Console


@pytest.fixture
def console(client: TestClient) -> Console:
    """The console as a browser would use it (Accept: text/html)."""
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)
