"""Export filtered lists of the register to .xlsx (masked personal data, neutralised cells, audited)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from linli.core import audit, pii
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.registry import organisations, places, search, vehicles
from linli.registry.importers import export_rows
from linli.registry.vocab import HOUSE_USE, OCCUPANCY, ORG_TYPE, OWNERSHIP, SEX, VEHICLE_TYPE, label

EXPORT_LIMIT = 200_000
PEOPLE_HEADERS = [
    "姓名",
    "性别",
    "出生日期",
    "公民身份号码",
    "手机",
    "户籍地",
    "民族",
    "所属区域代码",
    "备注",
]


def people_xlsx(
    session: Session,
    principal: Principal,
    *,
    text: str = "",
    community_code: str | None = None,
    tags: list[str] | None = None,
) -> tuple[bytes, int]:
    """People matching a search as .xlsx bytes and the row count; the export is audited."""
    principal.require(Perm.EXPORT)
    principal.require(Perm.PEOPLE_READ)
    found = search.search(session, text=text, tags=tags, community_code=community_code, limit=EXPORT_LIMIT)
    rows = [
        [
            p.name,
            label(SEX, p.sex),
            p.birth_date,
            pii.mask_id_number(p.id_number),
            pii.mask_phone(p.phone),
            p.hukou_place,
            p.ethnicity,
            p.area_code,
            p.notes,
        ]
        for p in found
    ]
    _audit(session, principal, "people", community_code, {"q": text, "tags": tags or [], "rows": len(rows)})
    return export_rows(PEOPLE_HEADERS, rows, title="people"), len(rows)


def _audit(
    session: Session, principal: Principal, entity: str, community_code: str | None, detail: dict[str, object]
) -> None:
    audit.record_export(
        session,
        principal,
        target_type=entity,
        area_code=community_code,
        detail={"community": community_code, **detail},
    )


HOUSE_HEADERS = ["地址编码", "地址", "单元", "楼层", "房号", "面积(㎡)", "用途", "房屋性质", "居住状态"]
ORG_HEADERS = [
    "单位名称",
    "统一社会信用代码",
    "单位类型",
    "地址",
    "法定代表人",
    "联系人",
    "联系电话",
    "从业人数",
]
VEHICLE_HEADERS = ["车牌号码", "号牌种类", "车辆类型", "车身颜色", "车位", "车主编号", "所属区域代码"]


def houses_xlsx(
    session: Session, principal: Principal, *, community_code: str | None = None
) -> tuple[bytes, int]:
    """Houses in scope (one community if given) as .xlsx; audited."""
    principal.require(Perm.EXPORT)
    principal.require(Perm.HOUSES_READ)
    rows = [
        [
            h.address_code,
            h.full_address,
            h.unit,
            h.floor,
            h.room,
            h.area_m2,
            label(HOUSE_USE, h.use),
            label(OWNERSHIP, h.ownership),
            label(OCCUPANCY, h.occupancy),
        ]
        for h in places.list_houses(session, community_code=community_code, limit=EXPORT_LIMIT)
    ]
    _audit(session, principal, "houses", community_code, {"rows": len(rows)})
    return export_rows(HOUSE_HEADERS, rows, title="houses"), len(rows)


def organisations_xlsx(
    session: Session, principal: Principal, *, community_code: str | None = None
) -> tuple[bytes, int]:
    """Organisations in scope as .xlsx (contact phones masked); audited."""
    principal.require(Perm.EXPORT)
    principal.require(Perm.ORGS_READ)
    rows = [
        [
            o.name,
            o.uscc,
            label(ORG_TYPE, o.org_type),
            o.address,
            o.legal_rep,
            o.contact_name,
            pii.mask_phone(o.contact_phone),
            o.employees,
        ]
        for o in organisations.get_all(session, community_code=community_code, limit=EXPORT_LIMIT)
    ]
    _audit(session, principal, "organisations", community_code, {"rows": len(rows)})
    return export_rows(ORG_HEADERS, rows, title="organisations"), len(rows)


def vehicles_xlsx(
    session: Session,
    principal: Principal,
    *,
    community_code: str | None = None,
    plate_prefix: str | None = None,
) -> tuple[bytes, int]:
    """Vehicles in scope as .xlsx (owners as record numbers, not copies); audited."""
    principal.require(Perm.EXPORT)
    principal.require(Perm.VEHICLES_READ)
    found = vehicles.get_all(
        session, community_code=community_code, plate_prefix=plate_prefix, limit=EXPORT_LIMIT
    )
    rows = [
        [
            v.plate,
            v.plate_kind,
            label(VEHICLE_TYPE, v.vehicle_type),
            v.colour,
            v.parking_space,
            v.owner_person_id,
            v.area_code,
        ]
        for v in found
    ]
    _audit(session, principal, "vehicles", community_code, {"plate": plate_prefix, "rows": len(rows)})
    return export_rows(VEHICLE_HEADERS, rows, title="vehicles"), len(rows)
