"""Accounts console pages: the audit log (who did what, when, from where), filtered and paged."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.errors import Invalid
from linli.core.timeutil import LOCAL_TZ
from linli.web.deps import DB, PagePrincipal
from linli.web.render import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# Audited actions and their labels (Chinese message ids); the filter offers these.
ACTIONS = {
    "login": "登录",
    "login.failed": "登录失败",
    "login.locked": "账户锁定",
    "pii.reveal": "查看明文",
    "export": "导出",
    "import": "导入",
    "import.dry_run": "试导入",
    "merge": "合并记录",
    "user.create": "创建用户",
    "user.permissions": "权限变更",
}


def local_day_start(day: date | None) -> datetime | None:
    """The first instant of a local (Asia/Shanghai) calendar day."""
    return datetime.combine(day, time.min, tzinfo=LOCAL_TZ) if day else None


def parse_day(text: str, *, field: str) -> date | None:
    """A date typed as YYYY-MM-DD ('' is no date); Invalid naming the field otherwise."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"日期格式不正确：{text}", field=field) from None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: DB,
    principal: PagePrincipal,
    action: Annotated[str, Query(max_length=32)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The audit log in the caller's areas, newest first, by action, actor and local date range."""
    principal.require(Perm.AUDIT_READ)
    first, last = parse_day(since, field="since"), parse_day(until, field="until")
    rows = audit.query(
        session,
        scope=principal.scope,
        action=action or None,
        actor=actor.strip() or None,
        since=local_day_start(first),
        until=local_day_start(last + timedelta(days=1)) if last else None,
        limit=PAGE_SIZE + 1,
        before_id=before_id,
    )
    return render(
        request,
        "accounts/audit.html",
        entries=rows[:PAGE_SIZE],
        has_more=len(rows) > PAGE_SIZE,
        actions=ACTIONS,
        action=action,
        actor=actor,
        since=first,
        until=last,
        before_id=before_id,
    )
