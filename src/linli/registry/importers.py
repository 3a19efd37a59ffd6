"""Import and export of the register from the spreadsheets community staff already keep.

Rows are validated one by one; each good row is applied inside its own savepoint, so a bad row is
rejected with its row number, field and reason while every good row is kept. Upserts on the natural
keys (ID number, address code, USCC, plate) make a re-import of the same file change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core import audit, tabular
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, LinliError
from linli.registry import organisations, people, people_import, places, validation, vehicles
from linli.registry.models import Building, House

PEOPLE_SYNONYMS: dict[str, list[str]] = {
    "name": ["姓名", "名字", "居民姓名"],
    "id_type": ["证件类型", "证件种类"],
    "id_number": ["公民身份号码", "身份证号", "身份证号码", "证件号码", "证件号", "身份证"],
    "sex": ["性别"],
    "birth_date": ["出生日期", "出生年月日", "生日"],
    "phone": ["手机", "手机号", "手机号码", "联系电话", "电话", "联系方式"],
    "hukou_place": ["户籍地", "户籍地址", "户籍所在地", "户口所在地"],
    "ethnicity": ["民族"],
    "building": ["楼号", "楼栋", "楼栋号", "栋号", "楼"],
    "unit": ["单元", "单元号"],
    "room": ["房号", "门牌号", "房间号", "室号", "户号"],
    "relation": ["与户主关系", "关系", "人户关系", "居住关系", "居住类型"],
    "move_in": ["入住日期", "迁入日期", "入住时间", "迁入时间"],
    "tags": ["标签", "关爱标签", "人员类别", "特殊人群", "重点人群"],
    "notes": ["备注"],
    "area_m2": ["面积", "建筑面积", "房屋面积"],
    "use": ["房屋用途", "用途"],
    "ownership": ["房屋性质", "产权性质", "房屋类型"],
    "occupancy": ["居住状态", "使用状态", "房屋状态"],
    "plate": ["车牌", "车牌号", "车牌号码"],
    "colour": ["车身颜色", "车辆颜色", "颜色"],
    "parking_space": ["车位", "车位号"],
}
HOUSE_SYNONYMS = {
    k: PEOPLE_SYNONYMS[k]
    for k in ("building", "unit", "room", "area_m2", "use", "ownership", "occupancy", "notes")
}
ORG_SYNONYMS: dict[str, list[str]] = {
    "name": ["单位名称", "名称", "企业名称", "商户名称"],
    "uscc": ["统一社会信用代码", "信用代码", "社会信用代码", "USCC"],
    "org_type": ["单位类型", "类型", "单位性质"],
    "address": ["地址", "经营地址", "单位地址", "注册地址"],
    "legal_rep": ["法定代表人", "法人", "负责人"],
    "contact_name": ["联系人"],
    "contact_phone": ["联系电话", "联系人电话", "电话", "手机"],
    "employees": ["从业人数", "员工人数", "职工人数"],
    "building": PEOPLE_SYNONYMS["building"],
    "unit": PEOPLE_SYNONYMS["unit"],
    "room": PEOPLE_SYNONYMS["room"],
}
VEHICLE_SYNONYMS: dict[str, list[str]] = {
    "plate": PEOPLE_SYNONYMS["plate"],
    "vehicle_type": ["车辆类型", "车型"],
    "colour": PEOPLE_SYNONYMS["colour"],
    "parking_space": PEOPLE_SYNONYMS["parking_space"],
    "owner_id_number": ["车主身份证号", "车主证件号码", "车主身份证", "车主公民身份号码"],
}
ENTITIES = {
    "people": PEOPLE_SYNONYMS,
    "houses": HOUSE_SYNONYMS,
    "organisations": ORG_SYNONYMS,
    "vehicles": VEHICLE_SYNONYMS,
}
REQUIRED = {
    "people": {"name", "id_number"},
    "houses": {"building", "room"},
    "organisations": {"name", "uscc"},
    "vehicles": {"plate"},
}


@dataclass
class Rejected:
    """One rejected row: where, which field, why."""

    row: int
    field: str
    reason: str


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    entity: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    bulk: int = 0  # of the created, how many were written by the bulk path (the rest one by one)

    def summary(self) -> dict[str, Any]:
        """The JSON summary printed by the CLI and returned by the API."""
        return {
            "entity": self.entity,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"row": r.row, "field": r.field, "reason": r.reason} for r in self.rejected],
            "unmapped_columns": self.unmapped_columns,
            "dry_run": self.dry_run,
            "bulk": self.bulk,
        }


def detect_entity(data: bytes, filename: str) -> str:
    """Guess what a sheet holds from its headers: organisations, vehicles, people or houses."""
    best, best_score = "people", -1
    for entity in ("organisations", "vehicles", "people", "houses"):
        try:
            table = tabular.read_table(data, filename, synonyms=ENTITIES[entity], required=REQUIRED[entity])
        except tabular.TableError:
            continue
        score = len(table.mapping)
        if score > best_score:
            best, best_score = entity, score
    return best


def read(data: bytes, filename: str, *, entity: str, max_bytes: int) -> tabular.Table:
    """Read a sheet for entity; a file that cannot be read at all raises Invalid."""
    if entity not in ENTITIES:
        raise Invalid(f"未知的导入类型：{entity}", field="entity")
    try:
        return tabular.read_table(
            data, filename, synonyms=ENTITIES[entity], required=REQUIRED[entity], max_bytes=max_bytes
        )
    except tabular.TableError as exc:
        raise Invalid(str(exc), field="file") from None


class _Places:
    """Buildings and houses met during one import, so repeated rows cost no extra queries."""

    def __init__(self, session: Session, principal: Principal, community_code: str, source: str) -> None:
        self.session, self.principal, self.community, self.source = session, principal, community_code, source
        self.buildings: dict[str, Building] = {}

    def house(self, values: dict[str, str | None]) -> tuple[House, str] | None:
        if not values.get("building") and not values.get("room"):
            return None
        if not values.get("building"):
            raise Invalid("填写了房号但缺少楼栋号", field="building")
        if not values.get("room"):
            raise Invalid("填写了楼栋号但缺少房号", field="room")
        number = places.normalise_building_number(values["building"] or "")
        building = self.buildings.get(number)
        if building is None:
            building, _ = places.upsert_building(
                self.session, self.principal, community_code=self.community, number=number
            )
            self.buildings[number] = building
        facts = {k: values.get(k) for k in ("area_m2", "use", "ownership", "occupancy")}
        return places.upsert_house(
            self.session,
            self.principal,
            building=building,
            unit=values.get("unit"),
            room=values["room"] or "",
            facts=facts,
            source=self.source,
        )


def _row_outcome(primary: str, *linked: str) -> str:
    """A row is 'created' when its main record is new, else 'updated' if anything it touched changed."""
    if primary == "created":
        return "created"
    return "updated" if primary == "updated" or any(o != "unchanged" for o in linked) else "unchanged"


def _people_row(ctx: _Places, values: dict[str, str | None]) -> str:
    facts = people.clean({**values, "birth_date": tabular_date(values.get("birth_date"), "birth_date")})
    located = ctx.house(values)
    house, house_outcome = located if located else (None, "unchanged")
    person, person_outcome = people.upsert(
        ctx.session,
        ctx.principal,
        facts,
        community_code=ctx.community,
        house=house,
        relation=values.get("relation"),
        move_in=tabular_date(values.get("move_in"), "move_in"),
        source=ctx.source,
    )
    vehicle_outcome = "unchanged"
    if values.get("plate"):
        _, vehicle_outcome = vehicles.upsert(
            ctx.session, ctx.principal, values, community_code=ctx.community, owner=person, source=ctx.source
        )
    return _row_outcome(person_outcome, house_outcome, vehicle_outcome)


def _house_row(ctx: _Places, values: dict[str, str | None]) -> str:
    located = ctx.house(values)
    assert located is not None
    return located[1]


def _org_row(ctx: _Places, values: dict[str, str | None]) -> str:
    located = ctx.house(values)
    _, outcome = organisations.upsert(
        ctx.session,
        ctx.principal,
        values,
        community_code=ctx.community,
        house=located[0] if located else None,
        source=ctx.source,
    )
    return _row_outcome(outcome, located[1] if located else "unchanged")


def _vehicle_row(ctx: _Places, values: dict[str, str | None]) -> str:
    owner = None
    if values.get("owner_id_number"):
        owner = people.find_by_id_number(
            ctx.session, id_type="resident_id", number=_resident_id(values["owner_id_number"] or "")
        )
        if owner is None:
            raise Invalid("车主未在人口库中登记，请先导入车主", field="owner_id_number")
    return vehicles.upsert(
        ctx.session, ctx.principal, values, community_code=ctx.community, owner=owner, source=ctx.source
    )[1]


def _resident_id(raw: str) -> str:
    try:
        return validation.parse_resident_id(raw, field="owner_id_number").number
    except validation.InvalidValue as exc:
        raise Invalid(exc.reason, field=exc.field) from None


def tabular_date(text: str | None, field: str) -> date | None:
    """A spreadsheet date (text or Excel serial), Invalid naming field when unreadable."""
    try:
        return tabular.parse_date(text, field=field)
    except ValueError as exc:
        raise Invalid(str(exc), field=field) from None


_ROW_HANDLERS: dict[str, Callable[[_Places, dict[str, str | None]], str]] = {
    "people": _people_row,
    "houses": _house_row,
    "organisations": _org_row,
    "vehicles": _vehicle_row,
}
_WRITE_PERM = {
    "people": Perm.PEOPLE_WRITE,
    "houses": Perm.HOUSES_WRITE,
    "organisations": Perm.ORGS_WRITE,
    "vehicles": Perm.VEHICLES_WRITE,
}


def import_table(
    session: Session,
    principal: Principal,
    table: tabular.Table,
    *,
    entity: str,
    community_code: str,
    filename: str = "",
    dry_run: bool = False,
) -> ImportReport:
    """Apply every row of a sheet, each in its own savepoint; a dry run undoes its rows, keeps the audit."""
    principal.require(Perm.IMPORT)
    principal.require(_WRITE_PERM[entity])
    community = areas.get_community_or_raise(session, code=community_code)
    report = ImportReport(entity=entity, unmapped_columns=list(table.unmapped), dry_run=dry_run)
    ctx = _Places(session, principal, community.code, source=f"import:{filename}"[:64])
    handler = _ROW_HANDLERS[entity]
    whole = session.begin_nested() if dry_run else None

    def one_by_one(row: tabular.SourceRow) -> None:
        savepoint = session.begin_nested()
        try:
            outcome = handler(ctx, row.values)
            savepoint.commit()
        except LinliError as exc:
            savepoint.rollback()
            ctx.buildings.clear()  # a rolled-back row may have created a building
            rejected(row.row, exc)
            return
        count(outcome, 1)

    def rejected(row: int, exc: LinliError) -> None:
        report.rejected.append(Rejected(row=row, field=exc.field or "", reason=exc.message))

    def count(outcome: str, n: int) -> None:
        setattr(report, outcome, getattr(report, outcome) + n)

    if entity == "people":
        batch = people_import.context(session, principal, community.code, ctx.source, tabular_date)
        batch.buildings = ctx.buildings
        for start in range(0, len(table.rows), people_import.CHUNK):
            chunk = table.rows[start : start + people_import.CHUNK]
            people_import.run_chunk(batch, chunk, one_by_one=one_by_one, rejected=rejected, count=count)
        report.rejected.sort(key=lambda r: r.row)
    else:
        for row in table.rows:
            one_by_one(row)
    if whole is not None:
        whole.rollback()
    audit.record(
        session,
        actor=principal.actor,
        action="import.dry_run" if dry_run else "import",
        target_type=entity,
        area_code=community.code,
        detail={
            "file": filename,
            **{k: v for k, v in report.summary().items() if k in ("created", "updated", "unchanged")},
            "rejected": len(report.rejected),
        },
    )
    return report


def error_report(table: tabular.Table, report: ImportReport) -> bytes:
    """The sheet back as .xlsx with an error column, so staff can fix the rows and re-import."""
    errors: dict[int, list[str]] = {}
    for r in report.rejected:
        errors.setdefault(r.row, []).append(f"{r.field}: {r.reason}" if r.field else r.reason)
    return tabular.error_report_xlsx(table, errors)


def template(entity: str) -> bytes:
    """An empty .xlsx template for entity with the canonical Chinese headers (first synonym of each)."""
    if entity not in ENTITIES:
        raise Invalid(f"未知的模板类型：{entity}", field="entity")
    headers = [names[0] for names in ENTITIES[entity].values()]
    return tabular.write_xlsx(headers, [], sheet_title=entity)


def export_rows(headers: Sequence[str], rows: Iterable[Sequence[object]], *, title: str) -> bytes:
    """An .xlsx of rows with formula-looking cells neutralised."""
    return tabular.write_xlsx(list(headers), rows, sheet_title=title)
