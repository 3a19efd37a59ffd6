"""The event log as .xlsx: the rows a console search shows, for an investigation or a report (audited)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.tabular import write_xlsx
from linli.core.timeutil import format_local
from linli.devices import queries
from linli.devices.pages_common import EVENT_LABELS, community_names, summary_text
from linli.registry import people

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
