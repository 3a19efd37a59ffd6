"""实有单位: organisations, one record per USCC."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core import pii
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Invalid, NotFound
from linli.core.text import pinyin_keys
from linli.registry import history, validation
from linli.registry.models import House, Organisation
from linli.registry.vocab import ORG_TYPE, to_code

_FIELDS = ("name", "org_type", "address", "legal_rep", "contact_name", "employees", "house_id")


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate loose organisation input; Invalid names the first bad field."""
    name = " ".join(validation.fold_width(str(data.get("name") or "")).split())
    if not name:
        raise Invalid("单位名称不能为空", field="name")
    try:
        uscc = validation.validate_uscc(str(data.get("uscc") or ""))
        phone = (
            validation.normalise_mobile(str(data["contact_phone"]), field="contact_phone")
            if data.get("contact_phone")
            else None
        )
    except validation.InvalidValue as exc:
        raise Invalid(exc.reason, field=exc.field) from None
    employees = data.get("employees")
    if employees not in (None, ""):
        try:
            employees = int(float(str(employees)))
        except ValueError:
            raise Invalid(f"从业人数不是整数：{employees}", field="employees") from None
        if employees < 0:
            raise Invalid("从业人数不能为负数", field="employees")
    else:
        employees = None
    return {
        "name": name[:128],
        "uscc": uscc,
        "org_type": to_code(ORG_TYPE, data.get("org_type"), field="org_type"),
        "address": _text(data.get("address"), 200),
        "legal_rep": _text(data.get("legal_rep"), 64),
        "contact_name": _text(data.get("contact_name"), 64),
        "contact_phone": phone,
        "employees": employees,
    }


def _text(raw: Any, limit: int) -> str | None:
    text = " ".join(str(raw).split()) if raw is not None else ""
    return text[:limit] or None


def get_or_raise(session: Session, *, org_id: int) -> Organisation:
    """An organisation in scope, else NotFound."""
    org = session.scalar(select(Organisation).where(Organisation.id == org_id))
    if org is None:
        raise NotFound("单位不存在或不在权限范围内", field="organisation")
    return org


def upsert(
    session: Session,
    principal: Principal,
    data: dict[str, Any],
    *,
    community_code: str,
    house: House | None = None,
    source: str = "",
) -> tuple[Organisation, str]:
    """Create the organisation or update the one with the same USCC; returns (org, outcome).

    With a house, the organisation is linked to that standard address (and its address text is the
    house's unless another was given).
    """
    principal.require(Perm.ORGS_WRITE)
    facts = clean(data)
    community = areas.get_community_or_raise(session, code=community_code)
    if house is not None:
        if house.community_code != community.code:
            raise Invalid(f"房屋属于社区 {house.community_code}，不属于 {community.code}", field="house")
        facts["house_id"] = house.id
        facts["address"] = facts["address"] or house.full_address
    org = session.scalar(
        select(Organisation).where(Organisation.uscc == facts["uscc"]).execution_options(skip_scope=True)
    )
    if org is None:
        _, initials = pinyin_keys(facts["name"])
        org = Organisation(
            area_code=house.area_code if house else community.code,
            house_id=facts.get("house_id"),
            name=facts["name"],
            name_initials=initials,
            uscc=facts["uscc"],
            org_type=facts["org_type"] or "enterprise",
            address=facts["address"] or "",
            legal_rep=facts["legal_rep"] or "",
            contact_name=facts["contact_name"] or "",
            contact_phone=facts["contact_phone"],
            phone_tail=(facts["contact_phone"] or "")[-4:],
            employees=facts["employees"],
        )
        session.add(org)
        session.flush()
        history.log(
            session,
            principal.actor,
            org,
            "organisation",
            "create",
            history.diff({}, {"name": org.name, "uscc": org.uscc}),
            source=source,
        )
        return org, "created"
    if not principal.scope.allows(org.area_code):
        raise Conflict("该统一社会信用代码的单位已在其他辖区登记", field="uscc")
    new = {k: facts[k] for k in _FIELDS if facts.get(k) is not None}
    changes = history.apply(org, new)
    if "name" in changes:
        org.name_initials = pinyin_keys(org.name)[1]
    if facts["contact_phone"] and facts["contact_phone"] != org.contact_phone:
        changes["contact_phone"] = [pii.mask_phone(org.contact_phone), pii.mask_phone(facts["contact_phone"])]
        org.contact_phone = facts["contact_phone"]
        org.phone_tail = facts["contact_phone"][-4:]
    if changes:
        history.log(session, principal.actor, org, "organisation", "update", changes, source=source)
    return org, "updated" if changes else "unchanged"


def get_all(
    session: Session, *, community_code: str | None = None, limit: int = 100, offset: int = 0
) -> list[Organisation]:
    """Organisations in scope, by name."""
    stmt = select(Organisation).order_by(Organisation.name).limit(limit).offset(offset)
    if community_code:
        stmt = stmt.where(Organisation.area_code == community_code)
    return list(session.scalars(stmt))


def at_house(session: Session, *, house_id: int) -> list[Organisation]:
    """Organisations registered at a house's address (in scope), by name."""
    stmt = select(Organisation).where(Organisation.house_id == house_id).order_by(Organisation.name)
    return list(session.scalars(stmt))
