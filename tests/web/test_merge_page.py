"""Merging duplicates from the person page: candidates shown, the merge keeps links, needs the permission."""

from __future__ import annotations

from linli.core.auth.service import Principal
from linli.registry import people
from tests.builders import person
from tests.registry.helpers import house, resident
from tests.web.helpers import Console


def test_duplicate_is_suggested_and_merged(console: Console, session, world) -> None:
    system = Principal.system()
    home = house(session, system, world.tianfu, building="12", room="602")
    keep = resident(session, system, home, person(name="刘淑珍", male=False))
    dup, _ = people.upsert(
        session,
        system,
        {
            "name": "刘淑珍",
            "id_type": "护照",
            "id_number": "E87654321",
            "birth_date": keep.birth_date,
            "tags": "独居老人",
        },
        community_code=world.tianfu,
    )
    session.commit()
    console.login("shequ")
    page = console.get(f"/people/{keep.id}")
    assert 'data-testid="merge"' in page.text and f"#{dup.id}" in page.text  # suggested
    merged = console.client.post(
        f"/people/{keep.id}/merge",
        data={"drop_id": dup.id, "reason": "护照与身份证重复登记", "csrf": console.csrf()},
    )
    assert merged.status_code == 200 and "独居老人" in merged.text  # the duplicate's tag moved over
    assert f"#{dup.id}" not in console.get(f"/people/{keep.id}").text  # no longer suggested
    assert "此记录已合并到" in console.get(f"/people/{dup.id}").text


def test_property_staff_cannot_merge(console: Console, session, world) -> None:
    system = Principal.system()
    a = resident(session, system, house(session, system, world.tianfu), person(name="甲"))
    b, _ = people.upsert(session, system, person(name="甲"), community_code=world.tianfu)
    session.commit()
    console.login("wuye")
    assert 'data-testid="merge"' not in console.get(f"/people/{a.id}").text
    r = console.client.post(
        f"/people/{a.id}/merge", data={"drop_id": b.id, "reason": "试试", "csrf": console.csrf()}
    )
    assert r.status_code == 403
