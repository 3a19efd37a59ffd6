"""Page-test fixtures: the console signed in like a browser, and the register it shows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import World
from tests.web.helpers import Console, Register, build_register


@pytest.fixture
def console(client: TestClient) -> Console:
    """The console as a browser would use it (Accept: text/html)."""
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


@pytest.fixture
def register(session: Session, world: World) -> Register:
    """The page tests' register, rolled back after the test."""
    return build_register(session, world)
