"""Accounts: argon2 hashes, lockout after repeated failures, bearer tokens, page sessions and CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from linli.core.audit import AuditEntry
from linli.core.auth import service as accounts
from linli.core.auth.models import User
from linli.core.errors import Invalid, Unauthorized
from linli.core.timeutil import utcnow
from tests.conftest import PASSWORD


def test_passwords_are_argon2_hashes(session) -> None:
    user = session.scalar(select(User).where(User.username == "shequ"))
    assert user.password_hash.startswith("$argon2") and PASSWORD not in user.password_hash


def test_lockout_after_repeated_failures(session) -> None:
    def attempt(password: str, now=None):  # type: ignore[no-untyped-def]
        return accounts.authenticate(
            session,
            username="shequ2",
            password=password,
            max_failures=3,
            lockout=timedelta(minutes=15),
            now=now,
        )

    for _ in range(3):
        with pytest.raises(Unauthorized):
            attempt("wrong-password")
    with pytest.raises(Unauthorized) as err:
        attempt(PASSWORD)  # the right password is refused while locked
    assert "锁定" in err.value.message
    assert attempt(PASSWORD, now=utcnow() + timedelta(minutes=16)).username == "shequ2"
    actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "shequ2")))
    assert actions.count("login.failed") == 3 and "login.locked" in actions and "login" in actions


def test_unknown_user_and_weak_password(session) -> None:
    with pytest.raises(Unauthorized):
        accounts.authenticate(session, username="nobody", password="x", max_failures=3, lockout=timedelta(1))
    with pytest.raises(Invalid) as err:
        accounts.create(session, username="new", password="short", role="grid_worker", area_codes=["6111"])
    assert err.value.field == "password"
    with pytest.raises(Invalid) as err:
        accounts.create(session, username="new", password="long-enough-1", role="mayor", area_codes=["6111"])
    assert err.value.field == "role"


def test_api_needs_a_valid_token(client, login) -> None:
    assert client.get("/api/v1/people").status_code == 401
    assert client.get("/api/v1/people", headers={"Authorization": "Bearer lnl_forged"}).status_code == 401
    me = client.get("/api/v1/me", headers=login("wuye")).json()
    assert me["role"] == "property_staff" and "pii.reveal" not in me["permissions"]
    r = client.post("/api/v1/auth/token", json={"username": "wuye", "password": "nope-nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def _login_page(client, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    html = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token, "next": "/"},
        follow_redirects=False,
    ), token


def test_page_session_and_csrf(client, world) -> None:
    r, _ = _login_page(client, "shequ")
    assert r.status_code == 303
    home = client.get("/")
    assert home.status_code == 200 and "天府和苑" in home.text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text).group(1)
    body = {"name": "张三", "id_number": "11010519491231002X", "community": world.tianfu}
    assert client.post("/api/v1/people", json=body).status_code == 403  # cookie without CSRF token
    ok = client.post("/api/v1/people", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text


def test_login_page_refuses_wrong_password_and_forged_form(client) -> None:
    r, _ = _login_page(client, "shequ", "wrong-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    forged = client.post("/login", data={"username": "shequ", "password": PASSWORD, "csrf": "x"})
    assert forged.status_code == 403


def test_permission_change_ends_old_sessions(client, session) -> None:
    _login_page(client, "wangge")
    assert client.get("/").status_code == 200
    user = accounts.get_by_username(session, username="wangge")
    accounts.set_role(
        session,
        user=user,
        role="grid_worker",
        area_codes=list(user.area_codes),
        actor=accounts.Principal.system().actor,
    )
    session.commit()
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (303, 401)
