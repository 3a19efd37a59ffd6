"""The editor's "try it": a pasted sample read with a document, nothing stored, ingest's refusals foretold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from linli.core.timeutil import as_utc
from linli.devices import register
from linli.devices.adapters.mapping import preview as run_preview
from linli.devices.mappings import documents
from linli.devices.service import MAX_AGE, MAX_FUTURE

CONTENT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "json": ("application/json", ("json",)),
    "xml": ("application/xml", ("xml",)),
    "form": ("application/x-www-form-urlencoded", ("form",)),
    "csv": ("text/csv", ("csv", "table")),
}


def try_document(
    session: Session,
    *,
    document: str,
    sample: str,
    content_type: str,
    device: str | None,
    now: datetime,
) -> dict[str, Any]:
    """{"problems", "events", "errors", "warnings"}: what the document would make of the sample."""
    compiled, problems = documents.check(document)
    out: dict[str, Any] = {
        "problems": [{"field": p.field, "line": p.line, "message": str(p)} for p in problems],
        "events": [],
        "errors": [],
        "warnings": [],
    }
    if compiled is None:
        return out
    media, formats = CONTENT_TYPES.get(content_type, ("", ()))
    if compiled.doc.format not in formats:
        out["errors"].append(
            {"record": None, "reason": f"样例类型 {content_type} 与映射格式 {compiled.doc.format} 不一致"}
        )
        return out
    if not sample.strip():
        out["errors"].append({"record": None, "reason": "请粘贴样例内容"})
        return out
    result = run_preview(
        document, sample, headers={"Content-Type": media}, device=device or None, received_at=now
    )
    out["events"], out["errors"] = result["events"], result["errors"]
    out["warnings"] = _ingest_warnings(session, out["events"], now)
    return out


def _ingest_warnings(session: Session, events: list[dict[str, Any]], now: datetime) -> list[str]:
    """What ingest would still refuse: unregistered devices, times outside the accepted window."""
    known = register.by_serials(session, {e["device"] for e in events})
    warnings: list[str] = []
    for number, event in enumerate(events, 1):
        if event["device"] not in known:
            warnings.append(f"第{number}个事件: 设备 {event['device']} 未登记，入库时会被拒绝")
        occurred = as_utc(datetime.fromisoformat(event["occurred_at"]))
        if occurred > now + MAX_FUTURE or occurred < now - MAX_AGE:
            warnings.append(f"第{number}个事件: 发生时间超出可接收范围（30 天内），入库时会被拒绝")
    return warnings
