"""Events and people: lists show whom an event links to, and a person's page lists their latest events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linli.core.auth.service import Principal
from linli.devices import linking, service
from tests.builders import person
from tests.devices.helpers import device, envelope, plate_read
from tests.registry.helpers import house, resident
from tests.web.helpers import Console


@pytest.fixture
def console(client) -> Console:  # type: ignore[no-untyped-def]
    """The console as a browser uses it."""
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


@pytest.fixture
def walked(session, world):  # type: ignore[no-untyped-def]
    """张秀兰 of Tianfu opened 3号楼1单元 with her card twice; an unknown card was refused once."""
    principal = Principal.system()
    home = house(session, principal, world.tianfu, building="3", unit="1", room="502")
    zhang = resident(session, principal, home, person(name="张秀兰"))
    door, _ = device(
        session, world.tianfu, serial="DS-K1T-TF-3-1", kind="face_terminal", location="3号楼1单元"
    )
    linking.add_credential(
        session, community=world.tianfu, kind="card", value="0012345678", person_id=zhang.id
    )
    now = datetime.now(UTC).replace(microsecond=0)
    card = {"credential": "card", "door": "3号楼1单元", "direction": "in"}
    items = [
        envelope(
            door.serial,
            "access.granted",
            at=now - timedelta(hours=9),
            payload={**card, "card_no": "0012345678"},
        ),
        envelope(
            door.serial,
            "access.granted",
            at=now - timedelta(hours=1),
            payload={**card, "card_no": "0012345678"},
        ),
        envelope(
            door.serial,
            "access.denied",
            at=now - timedelta(minutes=5),
            payload={**card, "card_no": "9999999999", "reason": "invalid_card"},
        ),
    ]
    result = service.ingest(session, items, source="http", received_at=now)
    assert result.stored == 3
    session.commit()
    return zhang, door


def test_event_lists_name_the_person_for_those_who_may_read_people(console, walked) -> None:  # type: ignore[no-untyped-def]
    zhang, door = walked
    console.login("shequ")
    listing = console.get("/events").text
    assert listing.count(f'href="/people/{zhang.id}" data-testid="person-link">张秀兰</a>') == 2
    assert "人员 #" not in listing
    assert "张秀兰" in console.get(f"/devices/{door.id}").text


def test_a_persons_page_loads_their_events_and_the_list_filters_by_person(console, walked) -> None:  # type: ignore[no-untyped-def]
    zhang, _door = walked
    console.login("shequ")
    page = console.get(f"/people/{zhang.id}").text
    assert f'hx-get="/people/{zhang.id}/events"' in page
    part = console.get(f"/people/{zhang.id}/events", headers={"HX-Request": "true"})
    assert part.status_code == 200
    assert part.text.count('data-testid="person-link"') == 2 and "门禁拒绝" not in part.text  # not hers
    filtered = console.get("/events", params={"person": zhang.id}).text
    assert 'data-testid="person-filter"' in filtered and filtered.count("门禁通行") >= 2
    assert "门禁拒绝</a>" not in filtered


def test_another_community_gets_404_and_no_names(console, walked) -> None:  # type: ignore[no-untyped-def]
    zhang, _door = walked
    console.login("shequ2")
    assert console.get(f"/people/{zhang.id}/events").status_code == 404
    assert "张秀兰" not in console.get("/events", params={"person": zhang.id}).text


def test_without_people_read_the_link_shows_no_name(console, walked, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from linli.core.auth import roles

    zhang, _door = walked
    trimmed = roles.ROLE_PERMS[roles.Role.PROPERTY_STAFF] - {roles.Perm.PEOPLE_READ}
    monkeypatch.setitem(roles.ROLE_PERMS, roles.Role.PROPERTY_STAFF, trimmed)
    console.login("wuye")
    listing = console.get("/events").text
    assert f"人员 #{zhang.id}" in listing and "张秀兰" not in listing
    assert console.get(f"/people/{zhang.id}/events").status_code == 403


def test_a_vehicles_page_loads_its_plate_reads(console, session, world, gate) -> None:  # type: ignore[no-untyped-def]
    from linli.registry import vehicles

    car, _ = vehicles.upsert(session, Principal.system(), {"plate": "陕A·5M2K8"}, community_code=world.tianfu)
    now = datetime.now(UTC).replace(microsecond=0)
    reads = [
        plate_read(gate[0].serial, "陕A5M2K8", at=now - timedelta(hours=3)),
        plate_read(gate[0].serial, "陕A5M2K8", at=now - timedelta(hours=1), entered=False),
        plate_read(gate[0].serial, "陕D00001", at=now - timedelta(minutes=30)),  # a visitor
    ]
    assert service.ingest(session, reads, source="http", received_at=now).stored == 3
    session.commit()
    console.login("shequ")
    assert f'hx-get="/vehicles/{car.id}/events"' in console.get(f"/vehicles/{car.id}").text
    part = console.get(f"/vehicles/{car.id}/events", headers={"HX-Request": "true"}).text
    assert "车辆入场" in part and "车辆出场" in part and "陕D00001" not in part
    filtered = console.get("/events", params={"vehicle": car.id}).text
    assert (
        'data-testid="vehicle-filter"' in filtered and "陕A5M2K8" in filtered and "陕D00001" not in filtered
    )
    console.login("shequ2")
    assert console.get(f"/vehicles/{car.id}/events").status_code == 404
    assert "陕A5M2K8" not in console.get("/events", params={"vehicle": car.id}).text
