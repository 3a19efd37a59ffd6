"""实有人口: one record per real person (dedup on ID number), where they live, tags, merge, reveal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import CursorResult, Update, delete, select, update
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core import audit, pii
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Invalid, NotFound
from linli.core.text import name_pinyin_keys
from linli.core.timeutil import local_today
from linli.registry import history, validation
from linli.registry.models import House, Person, PersonTag, Residence, Vehicle
from linli.registry.vocab import CARE_TAGS, ID_TYPE, RELATION, SEX, to_code

_PLAIN_FIELDS = ("name", "birth_date", "sex", "hukou_place", "ethnicity", "notes")
REVEALABLE = ("id_number", "phone")


@dataclass
class CleanPerson:
    """A person's facts after validation and normalisation (what the register stores)."""

    name: str
    id_type: str
    id_number: str
    birth_date: date | None = None
    sex: str | None = None
    phone: str | None = None
    hukou_place: str | None = None
    ethnicity: str | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)


def _invalid(exc: validation.InvalidValue) -> Invalid:
    return Invalid(exc.reason, field=exc.field)


def clean_name(raw: str | None) -> str:
    """A person's name: required, 1-30 characters after trimming; inner spaces kept for foreign names."""
    name = " ".join(validation.fold_width(raw or "").split())
    if not name:
        raise Invalid("姓名不能为空", field="name")
    if len(name) > 30:
        raise Invalid("姓名过长（最多 30 个字符）", field="name")
    return name


def clean(data: dict[str, Any]) -> CleanPerson:
    """Validate loose person input (API form or spreadsheet row); Invalid names the first bad field."""
    name = clean_name(data.get("name"))
    id_type = to_code(ID_TYPE, data.get("id_type"), field="id_type") or "resident_id"
    raw_id = data.get("id_number")
    if not raw_id or not str(raw_id).strip():
        raise Invalid("证件号码不能为空", field="id_number")
    birth = data.get("birth_date")
    sex = to_code(SEX, data.get("sex"), field="sex")
    rid: validation.ResidentId | None = None
    try:
        if id_type == "resident_id":  # parsed once: the number, its birth date and sex
            rid = validation.parse_resident_id(str(raw_id))
            number = rid.number
        else:
            number = validation.validate_id(id_type, str(raw_id))
            rid = validation.parse_resident_id(number) if id_type == "hmt_residence" else None
        if rid is not None:
            validation.check_resident_id_matches(rid, birth_date=birth, sex=sex)
            birth, sex = rid.birth_date, rid.sex
        phone = validation.normalise_mobile(str(data["phone"])) if data.get("phone") else None
    except validation.InvalidValue as exc:
        raise _invalid(exc) from None
    tags = [t for t in (to_code(CARE_TAGS, t, field="tags") for t in _split_tags(data.get("tags"))) if t]
    return CleanPerson(
        name=name,
        id_type=id_type,
        id_number=number,
        birth_date=birth,
        sex=sex,
        phone=phone,
        hukou_place=_text(data.get("hukou_place"), 128),
        ethnicity=_text(data.get("ethnicity"), 16),
        notes=_text(data.get("notes"), 500),
        tags=sorted(set(tags)),
    )


def _split_tags(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple | set):
        return [str(t).strip() for t in raw if str(t).strip()]
    return [
        t.strip()
        for t in str(raw).replace("，", ",").replace("、", ",").replace(";", ",").split(",")
        if t.strip()
    ]


def _text(raw: Any, limit: int) -> str | None:
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    return text[:limit] if text else None


def id_hash(id_type: str, number: str) -> str:
    """The keyed look-up hash of an ID number (passports and permits are their own namespace)."""
    kind = "resident_id" if id_type in ("resident_id", "hmt_residence") else id_type
    return pii.lookup_hash(kind, number)


def find_by_id_number(session: Session, *, id_type: str, number: str) -> Person | None:
    """The (unmerged) person with that ID number, across the whole district: dedup ignores scope."""
    stmt = select(Person).where(Person.id_hash == id_hash(id_type, number))
    return session.scalar(stmt.execution_options(skip_scope=True))


def get_or_raise(session: Session, *, person_id: int) -> Person:
    """A person in the caller's scope, else NotFound (never a hint that they exist elsewhere)."""
    person = session.scalar(select(Person).where(Person.id == person_id))
    if person is None:
        raise NotFound("人员不存在或不在权限范围内", field="person")
    return person


def upsert(
    session: Session,
    principal: Principal,
    data: dict[str, Any] | CleanPerson,
    *,
    community_code: str | None = None,
    house: House | None = None,
    relation: str | None = None,
    move_in: date | None = None,
    source: str = "",
) -> tuple[Person, str]:
    """最多录一次: create the person, or link and update the existing record; returns (person, outcome)."""
    principal.require(Perm.PEOPLE_WRITE)
    facts = data if isinstance(data, CleanPerson) else clean(data)
    person = find_by_id_number(session, id_type=facts.id_type, number=facts.id_number)
    if person is None:
        home = house.area_code if house else _home_area(session, community_code)
        person = _create(session, principal, facts, home=home, source=source)
        outcome = "created"
    else:
        if house is None and not _visible(session, person):
            raise Conflict(
                "该证件号码的人员已在其他社区登记；请填写其在本辖区的住址以关联该记录", field="id_number"
            )
        outcome = _update(session, principal, person, facts, source=source)
    if house is not None:
        rel = to_code(RELATION, relation, field="relation") or "family"
        if link_residence(
            session, principal, person=person, house=house, relation=rel, move_in=move_in, source=source
        ):
            outcome = "updated" if outcome == "unchanged" else outcome
    return person, outcome


def _home_area(session: Session, community_code: str | None) -> str:
    if not community_code:
        raise Invalid("请指定所属社区或住址", field="community")
    return areas.get_or_raise(session, code=community_code, field="community").code


def _visible(session: Session, person: Person) -> bool:
    """True if the session's scope sees person (home area or a current residence in scope)."""
    return session.scalar(select(Person.id).where(Person.id == person.id)) is not None


def columns(facts: CleanPerson, *, home: str, hashed_id: str | None = None) -> dict[str, Any]:
    """The stored columns of a new person: search keys, keyed hashes and tails derived from the facts."""
    full, initials = name_pinyin_keys(facts.name)
    return {
        "area_code": home,
        "name": facts.name,
        "name_pinyin": full,
        "name_initials": initials,
        "id_type": facts.id_type,
        "id_number": facts.id_number,
        "id_hash": hashed_id or id_hash(facts.id_type, facts.id_number),
        "id_tail": facts.id_number[-4:],
        "birth_date": facts.birth_date,
        "sex": facts.sex,
        "phone": facts.phone,
        "phone_hash": pii.lookup_hash("phone", facts.phone) if facts.phone else None,
        "phone_tail": facts.phone[-4:] if facts.phone else "",
        "hukou_place": facts.hukou_place or "",
        "ethnicity": facts.ethnicity or "",
        "notes": facts.notes or "",
    }


def creation_changes(facts: CleanPerson) -> dict[str, list[Any]]:
    """The history entry of a new person (personal data masked; only the facts that were given)."""
    entry: dict[str, list[Any]] = {
        "name": [None, facts.name],
        "id_number": [None, pii.mask_id_number(facts.id_number)],
    }
    if facts.phone:
        entry["phone"] = [None, pii.mask_phone(facts.phone)]
    if facts.tags:
        entry["tags"] = [None, list(facts.tags)]
    return entry


def _create(session: Session, principal: Principal, facts: CleanPerson, *, home: str, source: str) -> Person:
    person = Person(**columns(facts, home=home))
    session.add(person)
    session.flush()
    for tag in facts.tags:
        session.add(PersonTag(person_id=person.id, tag=tag, area_code=home))
    history.record(
        session,
        actor=principal.actor,
        entity="person",
        entity_id=person.id,
        area_code=home,
        action="create",
        changes=creation_changes(facts),
        source=source,
    )
    return person


def names_of(session: Session, *, person_ids: set[int]) -> dict[int, str]:
    """The names of the people with these ids that the session's scope sees."""
    if not person_ids:
        return {}
    stmt = select(Person.id, Person.name).where(Person.id.in_(sorted(person_ids)))
    return {person_id: name for person_id, name in session.execute(stmt)}


def find_many_by_hash(session: Session, *, hashes: list[str]) -> dict[str, Person]:
    """Registered (unmerged) people by ID-number hash, across the district: dedup ignores scope."""
    found: dict[str, Person] = {}
    for start in range(0, len(hashes), 500):
        stmt = select(Person).where(Person.id_hash.in_(hashes[start : start + 500]))
        for person in session.scalars(stmt.execution_options(skip_scope=True)):
            found[person.id_hash or ""] = person
    return found


def _update(
    session: Session, principal: Principal, person: Person, facts: CleanPerson, *, source: str
) -> str:
    new = {k: getattr(facts, k) for k in _PLAIN_FIELDS if getattr(facts, k) is not None}
    changes = history.apply(person, new)
    if "name" in changes:
        person.name_pinyin, person.name_initials = name_pinyin_keys(person.name)
    if facts.phone and facts.phone != person.phone:
        changes["phone"] = [pii.mask_phone(person.phone), pii.mask_phone(facts.phone)]
        person.phone = facts.phone
        person.phone_hash = pii.lookup_hash("phone", facts.phone)
        person.phone_tail = facts.phone[-4:]
    added = set_tags(session, person=person, tags=facts.tags, replace=False)
    if added:
        changes["tags"] = [None, sorted(added)]
    if changes:
        history.log(session, principal.actor, person, "person", "update", changes, source=source)
    return "updated" if changes else "unchanged"


def edit(session: Session, principal: Principal, *, person_id: int, data: dict[str, Any]) -> Person:
    """Change a person's facts from a form; the ID number itself is fixed once registered."""
    principal.require(Perm.PEOPLE_WRITE)
    person = get_or_raise(session, person_id=person_id)
    merged = {"name": person.name, "id_type": person.id_type, "id_number": person.id_number, **data}
    merged["id_number"], merged["id_type"] = person.id_number, person.id_type
    facts = clean(merged)
    tags_before = current_tags(session, person_id=person.id)
    _update(session, principal, person, facts, source="form")
    if "tags" in data:
        removed = set(tags_before) - set(facts.tags)
        if removed:
            session.execute(
                delete(PersonTag).where(PersonTag.person_id == person.id, PersonTag.tag.in_(removed))
            )
            history.log(
                session,
                principal.actor,
                person,
                "person",
                "update",
                {"tags": [sorted(removed), None]},
                source="form",
            )
    return person


def current_tags(session: Session, *, person_id: int) -> list[str]:
    """A person's care tags."""
    stmt = select(PersonTag.tag).where(PersonTag.person_id == person_id).order_by(PersonTag.tag)
    return list(session.scalars(stmt.execution_options(skip_scope=True)))


def set_tags(session: Session, *, person: Person, tags: list[str], replace: bool) -> set[str]:
    """Add tags (and with replace, drop the others); returns the tags added."""
    have = set(current_tags(session, person_id=person.id))
    added = set(tags) - have
    for tag in sorted(added):
        session.add(PersonTag(person_id=person.id, tag=tag, area_code=person.area_code))
    if replace and have - set(tags):
        session.execute(
            delete(PersonTag).where(PersonTag.person_id == person.id, PersonTag.tag.in_(have - set(tags)))
        )
    return added


def link_residence(
    session: Session,
    principal: Principal,
    *,
    person: Person,
    house: House,
    relation: str,
    move_in: date | None = None,
    source: str = "",
) -> bool:
    """Record that person lives in house (no-op if already current); returns True if anything changed."""
    current = session.scalar(
        select(Residence)
        .where(Residence.person_id == person.id, Residence.house_id == house.id, Residence.move_out.is_(None))
        .execution_options(skip_scope=True)
    )
    if current is not None:
        if current.relation == relation:
            return False
        history.record(
            session,
            actor=principal.actor,
            entity="person",
            entity_id=person.id,
            area_code=house.area_code,
            action="relation",
            changes={"relation": [current.relation, relation], "house": [house.id, house.id]},
            source=source,
        )
        current.relation = relation
        return True
    if not _has_current_home(session, person):
        person.area_code = house.area_code  # the home area follows where someone lives now
    session.add(
        Residence(
            person_id=person.id,
            house_id=house.id,
            relation=relation,
            area_code=house.area_code,
            move_in=move_in or local_today(),
        )
    )
    history.record(
        session,
        actor=principal.actor,
        entity="person",
        entity_id=person.id,
        area_code=house.area_code,
        action="move_in",
        changes={"house": [None, house.full_address], "relation": [None, relation]},
        source=source,
    )
    session.flush()
    return True


def _has_current_home(session: Session, person: Person) -> bool:
    stmt = select(Residence.id).where(Residence.person_id == person.id, Residence.move_out.is_(None)).limit(1)
    return session.scalar(stmt.execution_options(skip_scope=True)) is not None


def end_residence(session: Session, principal: Principal, *, residence_id: int, move_out: date) -> Residence:
    """Record that someone moved out of a house on move_out."""
    principal.require(Perm.PEOPLE_WRITE)
    residence = session.scalar(select(Residence).where(Residence.id == residence_id))
    if residence is None:
        raise NotFound("居住记录不存在", field="residence")
    if residence.move_in and move_out < residence.move_in:
        raise Invalid("迁出日期早于迁入日期", field="move_out")
    residence.move_out = move_out
    history.record(
        session,
        actor=principal.actor,
        entity="person",
        entity_id=residence.person_id,
        area_code=residence.area_code,
        action="move_out",
        changes={"house": [residence.house_id, None]},
    )
    return residence


def residences(session: Session, *, person_id: int) -> list[tuple[Residence, House]]:
    """Every house a person has lived in, current first."""
    stmt = (
        select(Residence, House)
        .join(House, House.id == Residence.house_id)
        .where(Residence.person_id == person_id)
        .order_by(Residence.move_out.is_not(None), Residence.move_in.desc())
    )
    return [(r, h) for r, h in session.execute(stmt.execution_options(skip_scope=True))]


def likely_duplicates(session: Session, *, person: Person, limit: int = 10) -> list[Person]:
    """Other unmerged records in scope with the same name and birth date (a passport typed for an ID card,
    a mistyped number ...): candidates for a merge, never merged automatically."""
    if person.birth_date is None:
        return []
    stmt = (
        select(Person)
        .where(
            Person.name == person.name,
            Person.birth_date == person.birth_date,
            Person.id != person.id,
            Person.merged_into_id.is_(None),
        )
        .order_by(Person.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def occupants(
    session: Session, *, house_id: int, current_only: bool = False
) -> list[tuple[Residence, Person | None]]:
    """Who lives (and lived) in a house, in one query; None for a person outside the caller's scope."""
    stmt = (
        select(Residence, Person)
        .outerjoin(Person, Person.id == Residence.person_id)  # the scope lands in the ON clause
        .where(Residence.house_id == house_id)
        .order_by(Residence.move_out.is_not(None), Residence.move_in)
    )
    if current_only:
        stmt = stmt.where(Residence.move_out.is_(None))
    return [(residence, person) for residence, person in session.execute(stmt)]


def merge(session: Session, principal: Principal, *, keep_id: int, drop_id: int, reason: str) -> Person:
    """Two records that are one person: move every link to keep, mark drop as merged, keep all history."""
    principal.require(Perm.RECORDS_MERGE)
    if keep_id == drop_id:
        raise Invalid("不能与自身合并", field="drop_id")
    keep = get_or_raise(session, person_id=keep_id)
    drop = get_or_raise(session, person_id=drop_id)
    if drop.merged_into_id or keep.merged_into_id:
        raise Conflict("该记录已被合并", field="drop_id")
    moved_res = _relink(
        session, update(Residence).where(Residence.person_id == drop.id).values(person_id=keep.id)
    )
    moved_veh = _relink(
        session, update(Vehicle).where(Vehicle.owner_person_id == drop.id).values(owner_person_id=keep.id)
    )
    set_tags(session, person=keep, tags=current_tags(session, person_id=drop.id), replace=False)
    session.execute(delete(PersonTag).where(PersonTag.person_id == drop.id))
    filled = {}
    for key in ("phone", "birth_date", "sex", "hukou_place", "ethnicity"):
        if not getattr(keep, key) and getattr(drop, key):
            filled[key] = key
            setattr(keep, key, getattr(drop, key))
    if "phone" in filled:
        keep.phone_hash, keep.phone_tail = drop.phone_hash, drop.phone_tail
    drop.merged_into_id = keep.id
    drop.id_hash = None
    detail = {
        "kept": [None, keep.id],
        "dropped": [drop.id, None],
        "residences": [None, moved_res],
        "vehicles": [None, moved_veh],
        "filled": [None, sorted(filled)],
    }
    for person in (keep, drop):
        history.log(session, principal.actor, person, "person", "merge", detail, source=reason[:64])
    audit.record(
        session,
        actor=principal.actor,
        action="merge",
        target_type="person",
        target_id=keep.id,
        area_code=keep.area_code,
        reason=reason,
        detail={"dropped": drop.id},
    )
    return keep


def _relink(session: Session, stmt: Update) -> int:
    """Run a bulk re-link across the district (links follow the person, whoever's area they are in)."""
    result = session.execute(stmt.execution_options(skip_scope=True, synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount


def reveal(session: Session, principal: Principal, *, person_id: int, field: str, reason: str) -> str:
    """The plaintext of a masked field; needs pii.reveal and a reason, and is audited."""
    principal.require(Perm.PII_REVEAL)
    if field not in REVEALABLE:
        raise Invalid(f"该字段不可查看明文：{field}", field="field")
    if len(reason.strip()) < 2:
        raise Invalid("请填写查看原因", field="reason")
    person = get_or_raise(session, person_id=person_id)
    audit.record(
        session,
        actor=principal.actor,
        action="pii.reveal",
        target_type="person",
        target_id=person.id,
        area_code=person.area_code,
        reason=reason.strip(),
        detail={"field": field},
    )
    value: str | None = getattr(person, field)
    return value or ""
