"""Test harness: one migrated database per session, a rolled-back transaction per test, fixed users per role.

LINLI_TEST_DATABASE_URL picks the database (PostgreSQL in CI's second pass); the default is a SQLite
file in a temporary folder, the embedded setup.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from linli.app import create_app
from linli.core import pii
from linli.core.auth import service as accounts
from linli.core.auth.service import Principal
from linli.db import make_engine, set_scope
from linli.migrate import upgrade
from linli.models import metadata
from linli.settings import Settings
from tests.builders import World, build_world

PASSWORD = "correct-horse-9"


def _database_url(tmp: Path) -> str:
    return os.environ.get("LINLI_TEST_DATABASE_URL") or f"sqlite:///{tmp / 'linli-test.db'}"


def _reset(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the test deployment (fixed keys, fast lockout numbers)."""
    tmp = tmp_path_factory.mktemp("db")
    return Settings(
        database_url=_database_url(tmp),
        secret_key="test-secret",
        auto_migrate=False,
        login_max_failures=3,
        login_lockout_minutes=15,
        media_dir=tmp / "media",
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The session's database, migrated from empty with Alembic, holding the fixed world."""
    pii.configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    eng = make_engine(settings.database_url)
    _reset(eng)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def world(engine: Engine) -> World:
    """Areas and one user per role, committed once for the whole session."""
    with Session(engine) as session:
        built = build_world(session, password=PASSWORD)
        session.commit()
    return built


@pytest.fixture
def connection(engine: Engine, world: World) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        trans = conn.begin()
        yield conn
        trans.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions on the test's connection: their commits become savepoints, all rolled back at the end."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """An unscoped session (system use); tests bind a scope with as_user()."""
    with session_factory() as s:
        yield s


@pytest.fixture
def system() -> Principal:
    """The all-powerful system principal."""
    return Principal.system()


@dataclass
class Users:
    """Principals for each fixed test user."""

    world: World
    session: Session

    def __call__(self, username: str) -> Principal:
        """The principal of a fixed user, with their scope bound to the test session."""
        user = accounts.get_by_username(self.session, username=username)
        assert user is not None, username
        principal = accounts.principal_for(user, root_codes=(self.world.district,))
        set_scope(self.session, principal.scope)
        return principal


@pytest.fixture
def as_user(world: World, session: Session) -> Users:
    """as_user('shequ') → that user's principal, with the session scoped to their areas."""
    return Users(world=world, session=session)


@pytest.fixture(scope="session")
def app_shared(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    """One app for the session; each test points it at its own rolled-back connection."""
    return create_app(settings)


@pytest.fixture
def client(app_shared, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An HTTP client against the app, on the test's transaction."""
    app_shared.state.session_factory = session_factory
    app_shared.state.root_codes = None
    with TestClient(app_shared) as c:
        yield c


@pytest.fixture
def login(client: TestClient):  # type: ignore[no-untyped-def]
    """login('shequ') → headers with a bearer token for that user."""

    def _login(username: str, password: str = PASSWORD) -> dict[str, str]:
        r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return _login


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under CI=true an integration test may not skip: its skip becomes a failure."""
    if os.environ.get("CI", "").lower() != "true":
        return
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("browser"):
            item.user_properties.append(("must_run", True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and ("must_run", True) in item.user_properties:
        report.outcome = "failed"
        report.longrepr = f"CI=true: integration/browser test may not skip ({report.longrepr})"


__all__ = ["metadata"]
