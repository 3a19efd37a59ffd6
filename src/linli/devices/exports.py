"""Exports as .xlsx, audited: the device register (the import's columns) and the event log's rows."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.tabular import write_xlsx
from linli.core.timeutil import format_local
from linli.devices import queries, register
from linli.devices.health import UNMONITORED
from linli.devices.importers import DEVICE_SYNONYMS
from linli.devices.pages_common import EVENT_LABELS, community_names, summary_text
from linli.devices.vocab import KIND_LABELS, STATE_LABELS
from linli.registry import people, places

EVENT_EXPORT_LIMIT = 50_000  # rows of one export, newest first
EVENT_HEADERS = [
    "发生时间",
    "接收时间",
    "事件类型",
    "类型代码",
    "设备序列号",
    "所属社区",
    "车牌",
    "人员",
    "摘要",
    "内容",
    "设备事件编号",
    "事件编号",
]


DEVICE_EXPORT_LIMIT = 50_000  # devices of one export, by serial
# The register as the import reads it (importers.DEVICE_SYNONYMS' first names, in its order), then what
# only the hub knows, which an import of the sheet leaves alone.
DEVICE_HEADERS = [*(names[0] for names in DEVICE_SYNONYMS.values()), "在线", "最后在线"]


def devices_xlsx(
    session: Session, principal: Principal, *, query: dict[str, Any], given: dict[str, Any]
) -> tuple[bytes, int]:
    """The device register in the caller's areas matching query (register.get_all's filters) as .xlsx
    bytes and the row count: the import's columns with the same words (so an edited export imports
    back), then online and last seen (Asia/Shanghai). Audited with its filters as typed."""
    principal.require(Perm.EXPORT)
    principal.require(Perm.DEVICES_READ)
    found = register.get_all(session, **query, limit=DEVICE_EXPORT_LIMIT)
    names = community_names(session)
    building_ids = {d.building_id for d in found if d.building_id is not None}
    numbers = places.building_numbers(session, building_ids=building_ids) if building_ids else {}
    by_column = {
        "name": lambda d: d.name,
        "kind": lambda d: KIND_LABELS.get(d.kind, d.kind),
        "vendor": lambda d: d.vendor,
        "model": lambda d: d.model,
        "protocol": lambda d: d.protocol,
        "serial": lambda d: d.serial,
        "location": lambda d: d.location,
        "building": lambda d: numbers.get(d.building_id, "") if d.building_id else "",
        "floor": lambda d: d.floor,
        "installed_on": lambda d: d.installed_on.isoformat() if d.installed_on else "",
        "lon": lambda d: d.lon,
        "lat": lambda d: d.lat,
        "grid": lambda d: d.area_code if d.area_code != d.community_code else "",
        "state": lambda d: STATE_LABELS.get(d.state, d.state),
        "community": lambda d: names.get(d.community_code, d.community_code),
    }
    assert list(by_column) == list(DEVICE_SYNONYMS), "every import column is exported, in its order"
    rows = [
        [
            *(by_column[key](d) for key in DEVICE_SYNONYMS),
            "不监测" if d.kind in UNMONITORED else ("在线" if d.online else "离线"),
            format_local(d.last_seen_at, with_seconds=True),
        ]
        for d in found
    ]
    audit.record_export(
        session,
        principal,
        target_type="devices",
        area_code=query.get("area"),
        detail={**{k: str(v) for k, v in given.items()}, "rows": len(rows)},
    )
    return write_xlsx(DEVICE_HEADERS, rows, sheet_title="设备"), len(rows)


def events_xlsx(
    session: Session, principal: Principal, *, query: dict[str, Any], given: dict[str, Any]
) -> tuple[bytes, int]:
    """The events in the caller's areas matching query (queries.get_events' filters), newest first, as
    .xlsx bytes and the row count. Times in Asia/Shanghai; a person by name for a caller who may read
    people (else left out); the export and its filters (given, as typed) go to the audit log."""
    principal.require(Perm.EXPORT)
    principal.require(Perm.EVENTS_READ)
    found = queries.get_events(session, **query, limit=EVENT_EXPORT_LIMIT)
    names = community_names(session)
    wanted = {e.person_id for e in found if e.person_id is not None}
    persons = people.names_of(session, person_ids=wanted) if principal.can(Perm.PEOPLE_READ) else {}
    rows = [
        [
            format_local(e.occurred_at, with_seconds=True),
            format_local(e.received_at, with_seconds=True),
            EVENT_LABELS.get(e.type, e.type),
            e.type,
            e.device_serial,
            names.get(e.community_code, e.community_code),
            e.plate or "",
            persons.get(e.person_id, "") if e.person_id is not None else "",
            summary_text(e.type, e.payload),
            orjson.dumps(e.payload).decode() if e.payload else "",
            e.event_uid,
            e.id,
        ]
        for e in found
    ]
    audit.record_export(
        session,
        principal,
        target_type="events",
        area_code=query.get("area"),
        detail={**{k: str(v) for k, v in given.items()}, "rows": len(rows)},
    )
    return write_xlsx(EVENT_HEADERS, rows, sheet_title="events"), len(rows)
