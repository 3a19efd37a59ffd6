"""最多录一次: dedup on the ID number, linking, history, merge, masking and reveal."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from linli.core import audit
from linli.core.audit import AuditEntry
from linli.core.errors import Conflict, Forbidden, Invalid, NotFound
from linli.registry import history, people, search, vehicles
from linli.registry.models import Person, PersonTag, Residence
from tests.builders import person, resident_id
from tests.registry.helpers import house, resident


def test_same_id_number_is_one_person(session, as_user, world) -> None:
    shequ = as_user("shequ")
    home = house(session, shequ, world.tianfu)
    number = resident_id()
    first, outcome1 = people.upsert(session, shequ, person(id_number=number), house=home, relation="owner")
    # The same person typed again with lower-case x / spaces / full width is still the same record.
    again = number[:6] + " " + number[6:].replace("X", "x")
    second, outcome2 = people.upsert(session, shequ, person(id_number=again), house=home, relation="owner")
    assert first.id == second.id
    assert (outcome1, outcome2) == ("created", "unchanged")
    assert session.scalar(select(Person.id).where(Person.id_hash == first.id_hash)) == first.id


def test_id_number_encrypted_at_rest_and_found_by_keyed_hash(session, as_user, world) -> None:
    shequ = as_user("shequ")
    number = resident_id()
    p = resident(session, shequ, house(session, shequ, world.tianfu), person(id_number=number))
    session.flush()
    raw = session.connection().exec_driver_sql(f"SELECT id_number, phone FROM people WHERE id = {p.id}").one()
    assert number not in raw[0] and "13800138000" not in (raw[1] or "")
    assert people.find_by_id_number(session, id_type="resident_id", number=number).id == p.id


def test_birth_date_and_sex_must_match_the_number(session, as_user, world) -> None:
    shequ = as_user("shequ")
    number = resident_id(born=date(1950, 1, 2), male=True)
    with pytest.raises(Invalid) as err:
        people.upsert(session, shequ, person(id_number=number, sex="女"), community_code=world.tianfu)
    assert err.value.field == "sex"
    with pytest.raises(Invalid) as err:
        people.upsert(
            session, shequ, person(id_number=number, birth_date=date(1950, 1, 3)), community_code=world.tianfu
        )
    assert err.value.field == "birth_date"
    p, _ = people.upsert(session, shequ, person(id_number=number), community_code=world.tianfu)
    assert (p.birth_date, p.sex) == (date(1950, 1, 2), "M")


@pytest.mark.parametrize(
    ("field", "value"),
    [("id_number", "610402195603071234"), ("phone", "12345678901"), ("name", "  "), ("tags", "会飞的人")],
)
def test_invalid_input_names_the_field(session, as_user, world, field, value) -> None:
    with pytest.raises(Invalid) as err:
        people.upsert(session, as_user("shequ"), person(**{field: value}), community_code=world.tianfu)
    assert err.value.field == field
    assert err.value.message


def test_adding_someone_registered_elsewhere_links_the_existing_record(session, as_user, world) -> None:
    number = resident_id()
    yuyu_home = house(session, as_user("shequ2"), world.yuyu, building="1", room="101")
    original = resident(session, as_user("shequ2"), yuyu_home, person(id_number=number, name="李桂兰"))
    shequ = as_user("shequ")
    # Without an address in Tianfu the worker may not touch (or learn about) the record.
    with pytest.raises(Conflict):
        people.upsert(session, shequ, person(id_number=number, name="李桂兰"), community_code=world.tianfu)
    # With an address in Tianfu the same record gets a second residence, nothing is copied.
    tianfu_home = house(session, shequ, world.tianfu)
    linked, outcome = people.upsert(
        session, shequ, person(id_number=number, name="李桂兰"), house=tianfu_home, relation="tenant"
    )
    assert linked.id == original.id and outcome == "updated"
    assert session.scalar(select(Person.id).where(Person.id == original.id)) == original.id  # visible now
    homes = {h.community_code for _, h in people.residences(session, person_id=original.id)}
    assert homes == {world.yuyu, world.tianfu}


def test_every_change_is_in_the_history_with_who_and_masked_pii(session, as_user, world) -> None:
    shequ = as_user("shequ")
    p = resident(session, shequ, house(session, shequ, world.tianfu), person(name="王建国"))
    people.edit(session, shequ, person_id=p.id, data={"phone": "13912345678", "tags": ["独居老人"]})
    entries = history.get_all(session, entity="person", entity_id=p.id)
    actions = [e.action for e in entries]
    assert actions[-1] == "create" and "move_in" in actions and actions[0] == "update"
    update = entries[0]
    assert update.actor == "shequ"
    assert update.changes["phone"] == ["138****8000", "139****5678"]
    assert all("13912345678" not in str(e.changes) for e in entries)
    assert people.current_tags(session, person_id=p.id) == ["elderly_alone"]


def test_merge_keeps_links_and_history(session, as_user, world, system) -> None:
    shequ = as_user("shequ")
    home = house(session, shequ, world.tianfu)
    keep = resident(session, shequ, home, person(name="赵秀英", male=False, phone=None))
    # A duplicate typed with a passport by mistake: another record of the same woman.
    drop, _ = people.upsert(
        session,
        shequ,
        {
            "name": "赵秀英",
            "id_type": "passport",
            "id_number": "E12345678",
            "phone": "13700001111",
            "tags": "低保",
        },
        house=home,
    )
    car, _ = vehicles.upsert(session, shequ, {"plate": "陕A·12345"}, community_code=world.tianfu, owner=drop)
    kept = people.merge(session, shequ, keep_id=keep.id, drop_id=drop.id, reason="同一人重复登记")
    assert kept.phone == "13700001111"  # filled from the duplicate
    session.flush()
    session.expire_all()
    assert session.get(Person, drop.id).merged_into_id == keep.id
    assert vehicles.get_or_raise(session, vehicle_id=car.id).owner_person_id == keep.id
    assert {r.person_id for r in session.scalars(select(Residence).where(Residence.house_id == home.id))} == {
        keep.id
    }
    assert people.current_tags(session, person_id=keep.id) == ["low_income"]
    assert session.scalar(select(PersonTag).where(PersonTag.person_id == drop.id)) is None
    assert history.get_all(session, entity="person", entity_id=drop.id)[0].action == "merge"
    assert search.search(session, text="赵秀英") == [kept]  # the merged record no longer shows in lists


def test_reveal_needs_permission_and_is_audited(session, as_user, world) -> None:
    shequ = as_user("shequ")
    number = resident_id()
    p = resident(session, shequ, house(session, shequ, world.tianfu), person(id_number=number))
    with pytest.raises(Invalid):
        people.reveal(session, shequ, person_id=p.id, field="id_number", reason="")
    assert people.reveal(session, shequ, person_id=p.id, field="id_number", reason="办理低保核查") == number
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "pii.reveal"))
    assert (entry.actor, entry.target_id, entry.reason, entry.detail) == (
        "shequ",
        str(p.id),
        "办理低保核查",
        {"field": "id_number"},
    )
    wuye = as_user("wuye")  # property staff see people masked and may not reveal
    with pytest.raises(Forbidden):
        people.reveal(session, wuye, person_id=p.id, field="id_number", reason="查看")


def test_move_out_ends_residence_and_checks_dates(session, as_user, world) -> None:
    shequ = as_user("shequ")
    home = house(session, shequ, world.tianfu)
    p, _ = people.upsert(session, shequ, person(), house=home, relation="tenant", move_in=date(2022, 5, 1))
    ((res, _),) = people.residences(session, person_id=p.id)
    with pytest.raises(Invalid):
        people.end_residence(session, shequ, residence_id=res.id, move_out=date(2022, 4, 1))
    people.end_residence(session, shequ, residence_id=res.id, move_out=date(2024, 6, 30))
    assert people.residences(session, person_id=p.id)[0][0].move_out == date(2024, 6, 30)


def test_unknown_person_is_not_found(session, as_user) -> None:
    with pytest.raises(NotFound):
        people.get_or_raise(session, person_id=999_999)


def test_audit_query_is_scoped(session, as_user, world) -> None:
    admin = as_user("admin")
    audit.record(session, actor=admin.actor, action="export", area_code=world.xingfu)
    audit.record(session, actor=admin.actor, action="export", area_code=world.tianfu)
    street = as_user("jiedao")
    seen = audit.query(session, scope=street.scope, action="export")
    assert [e.area_code for e in seen] == [world.tianfu]


def test_occupants_hide_people_outside_scope(session, as_user, world, system) -> None:
    home = house(session, system, world.tianfu, building="7", room="301")
    local = resident(session, system, home, person(name="本社区居民"))
    # Someone whose home record is elsewhere and who moved out of this house long ago.
    away_home = house(session, system, world.xingfu, building="1", room="101")
    away = resident(session, system, away_home, person(name="外社区居民"))
    people.link_residence(
        session, system, person=away, house=home, relation="tenant", move_in=date(2015, 1, 1)
    )
    (res,) = [r for r, _ in people.residences(session, person_id=away.id) if r.house_id == home.id]
    people.end_residence(session, system, residence_id=res.id, move_out=date(2016, 1, 1))
    as_user("shequ")
    seen = {(r.person_id, p.name if p else None) for r, p in people.occupants(session, house_id=home.id)}
    assert seen == {(local.id, "本社区居民"), (away.id, None)}
