"""Export filtered lists of the register to .xlsx (masked personal data, neutralised cells, audited)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from linli.core import audit, pii
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.registry import search
from linli.registry.importers import export_rows
from linli.registry.vocab import SEX, label

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
    audit.record(
        session,
        actor=principal.actor,
        action="export",
        target_type="people",
        area_code=community_code or (principal.area_codes[0] if principal.area_codes else None),
        detail={"q": text, "community": community_code, "tags": tags or [], "rows": len(rows)},
    )
    return export_rows(PEOPLE_HEADERS, rows, title="people"), len(rows)
