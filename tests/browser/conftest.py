"""Browser-test harness: a real uvicorn server on a fresh SQLite file; Debian's Chromium via Playwright."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from linli.app import create_app
from linli.settings import Settings
from tests.builders import World, build_world
from tests.conftest import PASSWORD
from tests.web.helpers import Register, build_register

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class LiveSite:
    """The running server: its address, database engine and the register it holds."""

    url: str
    engine: Engine
    world: World
    register: Register


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """The app served by uvicorn in a thread, migrated and seeded with a small world."""
    db = tmp_path_factory.mktemp("browser") / "linli.db"
    # The same secret as the rest of the suite: create_app installs the process-wide PII keys.
    app = create_app(Settings(database_url=f"sqlite:///{db}", auto_migrate=True, secret_key="test-secret"))
    engine: Engine = app.state.engine
    with Session(engine) as session:
        world = build_world(session, password=PASSWORD)
        session.commit()
        register = build_register(session, world)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-browser-tests", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield LiveSite(f"http://127.0.0.1:{server.config.port}", engine, world, register)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless (skipped, with the reason, when it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: apt-get install chromium (CI=true turns this skip into a failure)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site: LiveSite):  # type: ignore[no-untyped-def]
    """A fresh browser tab (own cookies), Chinese locale, a desktop-sized window."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 860}, base_url=site.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the login form."""
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert page.get_by_test_id("whoami").inner_text().startswith(username)


def screenshot(page, name: str, *, must_show: list[str]) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page PNG and check it shows real data: the texts are visible and the image is not blank."""
    for text in must_show:
        assert page.get_by_text(text, exact=False).first.is_visible(), text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 15_000, f"{path} looks blank ({path.stat().st_size} bytes)"
    return path
