"""The audit page: who may read it, filters, paging; a reveal from the profile lands in it."""

from __future__ import annotations

from tests.web.helpers import Console, Register


def test_audit_is_forbidden_to_a_community_worker(console: Console) -> None:
    console.login("shequ")
    page = console.get("/audit")
    assert page.status_code == 403
    assert 'data-testid="error"' in page.text and "audit.read" in page.text


def test_audit_lists_logins_for_the_admin(console: Console) -> None:
    console.login("shequ")
    console.client.cookies.clear()
    console.login("admin")
    page = console.get("/audit")
    assert page.status_code == 200
    assert 'data-action="login"' in page.text and "shequ" in page.text
    only_admin = console.get("/audit", params={"action": "login", "actor": "adm"})
    assert "admin" in only_admin.text and ">shequ<" not in only_admin.text
    assert (
        console.get("/audit", params={"since": "2000-01-01", "until": "2000-01-02"}).text.count(
            "<tr data-action"
        )
        == 0
    )
    assert console.get("/audit", params={"since": "not-a-date"}).status_code == 422


def test_audit_pages_by_before_id(console: Console) -> None:
    for _ in range(3):
        console.login("shequ")
        console.client.cookies.clear()
    console.login("admin")
    first = console.get("/audit", params={"action": "login"})
    rows = first.text.count('data-action="login"')
    assert rows >= 4
    from linli.accounts import pages

    older = console.get("/audit", params={"action": "login", "before_id": 10**9})
    assert older.text.count('data-action="login"') == min(rows, pages.PAGE_SIZE)


def test_reveal_needs_a_reason_and_is_audited(console: Console, register: Register) -> None:
    console.login("shequ")
    token = console.csrf()
    url = f"/people/{register.person}/reveal"
    without_token = console.client.post(url, data={"field": "id_number", "reason": "核对身份"})
    assert without_token.status_code == 403
    no_reason = console.client.post(
        url, data={"field": "id_number", "reason": " "}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert no_reason.status_code == 422
    shown = console.client.post(
        url,
        data={"field": "id_number", "reason": "核对身份"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert shown.status_code == 200
    assert "*" not in shown.text and 'data-testid="revealed-id_number"' in shown.text
    console.client.cookies.clear()
    console.login("admin")
    audit = console.get("/audit", params={"action": "pii.reveal"}).text
    assert "核对身份" in audit and f'href="/people/{register.person}"' in audit and "shequ" in audit
