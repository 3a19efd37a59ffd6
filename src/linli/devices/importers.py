"""Bulk import of the device register from the sheets vendors and property companies hand over.

Each row is applied in its own savepoint: a bad row is rejected with its row number, field and reason,
every good row is kept. Devices are matched on their serial, so importing the same sheet again changes
nothing. A new device's secret is returned once, in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.areas.models import Area
from linli.core import audit, tabular
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, LinliError
from linli.devices import register
from linli.devices.models import Device
from linli.registry import places

DEVICE_SYNONYMS: dict[str, list[str]] = {
    "name": ["设备名称", "名称", "设备名"],
    "kind": ["设备类型", "类型", "设备种类", "设备类别"],
    "vendor": ["厂商", "厂家", "品牌", "生产厂家", "生产厂商"],
    "model": ["型号", "设备型号", "规格型号"],
    "protocol": ["接入协议", "协议", "通信协议"],
    "serial": ["序列号", "设备序列号", "设备编号", "SN", "SN码", "设备编码"],
    "location": ["安装位置", "位置", "安装地点", "点位", "点位名称"],
    "building": ["楼栋", "楼号", "楼栋号", "所在楼栋"],
    "floor": ["楼层", "所在楼层"],
    "installed_on": ["安装日期", "安装时间"],
    "lon": ["经度"],
    "lat": ["纬度"],
    "grid": ["网格", "网格编码", "所属网格"],
    "state": ["状态", "设备状态"],
    # Optional; if filled, the row's community must be the one the sheet is imported into (an export of
    # several communities, imported into one, would otherwise move their devices).
    "community": ["所属社区", "社区"],
}
REQUIRED = {"serial", "kind"}


@dataclass
class Rejected:
    """One rejected row: where, which field, why."""

    row: int
    field: str
    reason: str


@dataclass
class DeviceImportReport:
    """What a device import did (or, in a dry run, would do); secrets of the new devices, shown once."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    secrets: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON answer of the API."""
        return {
            "entity": "devices",
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"row": r.row, "field": r.field, "reason": r.reason} for r in self.rejected],
            "unmapped_columns": self.unmapped_columns,
            "dry_run": self.dry_run,
            "secrets": [{"serial": s, "secret": v} for s, v in self.secrets.items()],
        }


def read(data: bytes, filename: str, *, max_bytes: int) -> tabular.Table:
    """Read a device sheet; a file that cannot be read at all raises Invalid."""
    try:
        return tabular.read_table(
            data, filename, synonyms=DEVICE_SYNONYMS, required=REQUIRED, max_bytes=max_bytes
        )
    except tabular.TableError as exc:
        raise Invalid(str(exc), field="file") from None


def _facts(session: Session, values: dict[str, str | None], community: Area) -> dict[str, Any]:
    # Blank cells leave what the register knows; only filled ones set a fact.
    named = (values.get("community") or "").strip()
    if named and named not in (community.name, community.code):
        raise Invalid(f"此行属于“{named}”，与导入时所选社区“{community.name}”不符", field="community")
    skip = ("building", "installed_on", "serial", "community")
    facts: dict[str, Any] = {k: v for k, v in values.items() if k not in skip and v is not None}
    facts["community"] = community.code
    try:
        installed = tabular.parse_date(values.get("installed_on"), field="安装日期")
    except ValueError as exc:
        raise Invalid(str(exc), field="installed_on") from None
    if installed is not None:
        facts["installed_on"] = installed
    if values.get("building"):
        number = places.normalise_building_number(values["building"] or "")
        building = places.find_building(session, community_code=community.code, number=number)
        if building is None:
            raise Invalid(f"楼栋“{values['building']}”未在本社区登记，请先登记楼栋或留空", field="building")
        facts["building_id"] = building.id
    return facts


def _row(
    session: Session,
    principal: Principal,
    values: dict[str, str | None],
    community: Area,
    report: DeviceImportReport,
) -> str:
    serial = register.normalise_serial(values.get("serial"))
    facts = _facts(session, values, community)
    existing = register.find_by_serial(session, serial=serial)
    if existing is None:
        device, secret = register.create(session, principal, {**facts, "serial": serial}, source="import")
        report.secrets[device.serial] = secret
        return "created"
    before = _snapshot(existing)
    register.update(session, principal, device_id=existing.id, data=facts)
    return "updated" if _snapshot(existing) != before else "unchanged"


def _snapshot(device: Device) -> tuple[Any, ...]:
    return tuple(
        getattr(device, k)
        for k in (
            "name",
            "kind",
            "vendor",
            "model",
            "protocol",
            "area_code",
            "building_id",
            "floor",
            "lat",
            "lon",
            "location",
            "installed_on",
            "state",
        )
    )


def import_table(
    session: Session,
    principal: Principal,
    table: tabular.Table,
    *,
    community_code: str,
    filename: str = "",
    dry_run: bool = False,
) -> DeviceImportReport:
    """Apply every row of a device sheet in its own savepoint; a dry run undoes its rows."""
    principal.require(Perm.DEVICES_WRITE)
    community = areas.get_community_or_raise(session, code=community_code)
    report = DeviceImportReport(unmapped_columns=list(table.unmapped), dry_run=dry_run)
    whole = session.begin_nested() if dry_run else None
    for row in table.rows:
        savepoint = session.begin_nested()
        try:
            outcome = _row(session, principal, row.values, community, report)
            savepoint.commit()
        except LinliError as exc:
            savepoint.rollback()
            report.rejected.append(Rejected(row=row.row, field=exc.field or "", reason=exc.message))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    if whole is not None:
        whole.rollback()
        report.secrets.clear()
    audit.record(
        session,
        actor=principal.actor,
        action="import.dry_run" if dry_run else "import",
        target_type="devices",
        area_code=community.code,
        detail={
            "file": filename,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": len(report.rejected),
        },
    )
    return report


def template() -> bytes:
    """An empty .xlsx template with the canonical Chinese headers."""
    return tabular.write_xlsx([names[0] for names in DEVICE_SYNONYMS.values()], [], sheet_title="设备")
