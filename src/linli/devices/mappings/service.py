"""Mapping documents in the database: list, save a new version (checked, audited), activate, resolve.

A mapping belongs to one community (its staff edit it) or to the whole district ("", edited by users
whose scope is the whole district); a community's mapping of a name wins over the district's, which wins
over the one shipped in `adapters/mapping/builtin/`. Versions are never changed: saving adds one and makes
it active. Ingest resolves a name on every batch with one small query, and the compiled mapping is cached
by document text, so a saved fix takes effect at once in every process without a restart.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Forbidden, Invalid, NotFound
from linli.core.timeutil import utcnow
from linli.db import Scope
from linli.devices.adapters.mapping import CompiledMapping, builtin_mappings
from linli.devices.mappings import documents
from linli.devices.mappings.documents import Problem
from linli.devices.mappings.models import DISTRICT_WIDE, MappingVersion, StoredMapping

MAX_DOCUMENT = 64 * 1024
BUILTIN_FOLDER = "linli.devices.adapters.mapping"


class MappingInvalid(Invalid):
    """A document that does not compile; problems names each field and line."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        text = "；".join(str(p) for p in problems)
        super().__init__(f"映射文档有误：{text}", field=first.field or "document")
        self.problems = problems

    def to_dict(self) -> dict[str, object]:
        """The JSON body, with every problem's field and line."""
        body = super().to_dict()
        body["problems"] = [{"field": p.field, "line": p.line, "message": p.message} for p in self.problems]
        return body


@dataclass(frozen=True)
class Listed:
    """One row of the mapping list: a stored mapping with its active version, or a built-in one."""

    name: str
    community_code: str | None  # None: built-in, "" district-wide
    mapping: StoredMapping | None
    version: MappingVersion | None
    format: str
    overridden: bool = False

    @property
    def builtin(self) -> bool:
        """True for a mapping shipped with Linli (read-only; copy to change it)."""
        return self.mapping is None


def _visible(stmt: Any, scope: Scope) -> Any:
    if scope.unrestricted:
        return stmt
    return stmt.where(
        or_(StoredMapping.community_code == DISTRICT_WIDE, scope.clause(StoredMapping.community_code))
    )


def get_all(session: Session, principal: Principal) -> list[Listed]:
    """Mappings the caller may use: stored ones in their scope and the district's, then the built-ins."""
    principal.require(Perm.DEVICES_READ)
    stmt = (
        select(StoredMapping, MappingVersion)
        .join(
            MappingVersion,
            (MappingVersion.mapping_id == StoredMapping.id)
            & (MappingVersion.version == StoredMapping.active_version),
        )
        .order_by(StoredMapping.name, StoredMapping.community_code)
    )
    rows = session.execute(_visible(stmt, principal.scope)).all()
    stored_names = {m.name for m, _ in rows}
    listed = [Listed(m.name, m.community_code, m, v, _format_of(v.document)) for m, v in rows]
    for name, compiled in sorted(builtin_mappings().items()):
        listed.append(Listed(name, None, None, None, compiled.doc.format, overridden=name in stored_names))
    return listed


def _format_of(text: str) -> str:
    compiled, _ = documents.check(text)
    return compiled.doc.format if compiled else "?"


def get_or_raise(session: Session, principal: Principal, *, mapping_id: int) -> StoredMapping:
    """A stored mapping the caller may see, else NotFound."""
    principal.require(Perm.DEVICES_READ)
    stmt = _visible(select(StoredMapping).where(StoredMapping.id == mapping_id), principal.scope)
    mapping = session.scalar(stmt)
    if mapping is None:
        raise NotFound("映射不存在或不在权限范围内", field="mapping")
    return mapping


def versions(session: Session, *, mapping: StoredMapping) -> list[MappingVersion]:
    """Every version of a mapping, newest first."""
    stmt = select(MappingVersion).where(MappingVersion.mapping_id == mapping.id)
    return list(session.scalars(stmt.order_by(MappingVersion.version.desc())))


def version_of(session: Session, *, mapping: StoredMapping, version: int | None = None) -> MappingVersion:
    """One version of a mapping (default: the active one), else NotFound."""
    wanted = mapping.active_version if version is None else version
    stmt = select(MappingVersion).where(
        MappingVersion.mapping_id == mapping.id, MappingVersion.version == wanted
    )
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"映射 {mapping.name} 没有第 {wanted} 版", field="version")
    return found


def builtin_text(name: str) -> str:
    """The document text of a built-in mapping, as shipped (NotFound if there is none by that name)."""
    from importlib import resources

    folder = resources.files(BUILTIN_FOLDER) / "builtin"
    for entry in folder.iterdir():
        if entry.name.rsplit(".", 1)[0] == name or _declares(entry.read_text("utf-8"), name):
            return entry.read_text("utf-8")
    raise NotFound(f"没有内置映射 {name}", field="name")


def _declares(text: str, name: str) -> bool:
    compiled, _ = documents.check(text)
    return compiled is not None and compiled.name == name


def check_scope(session: Session, principal: Principal, community_code: str) -> None:
    """Whether the caller may write mappings of that scope ("" = the whole district)."""
    principal.require(Perm.DEVICES_WRITE)
    if community_code == DISTRICT_WIDE:
        if not principal.scope.unrestricted:
            raise Forbidden("只有区级用户可以保存全区通用的映射", field="community")
        return
    areas.get_community_or_raise(session, code=community_code)
    if not principal.scope.allows(community_code):
        raise NotFound(f"区域不存在或不在权限范围内：{community_code}", field="community")


def compile_or_raise(text: str) -> CompiledMapping:
    """The compiled document, else MappingInvalid naming each problem's field and line."""
    if len(text.encode("utf-8")) > MAX_DOCUMENT:
        raise MappingInvalid([Problem("", f"映射文档超过 {MAX_DOCUMENT // 1024} KB")])
    compiled, problems = documents.check(text)
    if compiled is None:
        raise MappingInvalid(problems)
    return compiled


def create(
    session: Session, principal: Principal, *, community_code: str, document: str, note: str = ""
) -> tuple[StoredMapping, MappingVersion]:
    """A new mapping (its name from the document) in a community or district-wide, as version 1."""
    check_scope(session, principal, community_code)
    compiled = compile_or_raise(document)
    taken = select(StoredMapping.id).where(
        StoredMapping.name == compiled.name, StoredMapping.community_code == community_code
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"映射 {compiled.name} 已存在，请打开它保存新版本", field="name")
    now = utcnow()
    mapping = StoredMapping(
        name=compiled.name, community_code=community_code, active_version=1, created_at=now, updated_at=now
    )
    session.add(mapping)
    session.flush()
    return mapping, _add_version(session, principal, mapping, document, note, now, action="mapping.create")


def save(
    session: Session, principal: Principal, *, mapping_id: int, document: str, note: str = ""
) -> MappingVersion:
    """Save a new version of a mapping and make it active (checked first; audited)."""
    mapping = get_or_raise(session, principal, mapping_id=mapping_id)
    check_scope(session, principal, mapping.community_code)
    compiled = compile_or_raise(document)
    if compiled.name != mapping.name:
        raise MappingInvalid(
            [Problem("name", f"文档名称 {compiled.name} 与映射名称 {mapping.name} 不一致", _line(document))]
        )
    current = version_of(session, mapping=mapping)
    if current.document == document:
        raise Conflict("文档没有改动，未保存新版本", field="document")
    latest = max(v.version for v in versions(session, mapping=mapping))
    mapping.active_version = latest + 1
    mapping.updated_at = utcnow()
    now = mapping.updated_at
    return _add_version(session, principal, mapping, document, note, now, action="mapping.save")


def _line(text: str) -> int | None:
    return documents.line_of(documents._compose(text), ["name"])


def _add_version(
    session: Session,
    principal: Principal,
    mapping: StoredMapping,
    document: str,
    note: str,
    now: datetime,
    *,
    action: str,
) -> MappingVersion:
    version = MappingVersion(
        mapping_id=mapping.id,
        version=mapping.active_version,
        document=document,
        note=note.strip()[:200],
        created_by=principal.username[:64],
        created_at=now,
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action=action,
        target_type="device_mapping",
        target_id=mapping.id,
        area_code=mapping.community_code or None,
        detail={"name": mapping.name, "version": version.version, "note": version.note},
    )
    return version


def activate(session: Session, principal: Principal, *, mapping_id: int, version: int) -> StoredMapping:
    """Make an earlier (or later) version the active one again (audited)."""
    mapping = get_or_raise(session, principal, mapping_id=mapping_id)
    check_scope(session, principal, mapping.community_code)
    chosen = version_of(session, mapping=mapping, version=version)
    compile_or_raise(chosen.document)
    old = mapping.active_version
    mapping.active_version = chosen.version
    mapping.updated_at = utcnow()
    audit.record(
        session,
        actor=principal.actor,
        action="mapping.activate",
        target_type="device_mapping",
        target_id=mapping.id,
        area_code=mapping.community_code or None,
        detail={"name": mapping.name, "from": old, "to": chosen.version},
    )
    return mapping


def diff(old: MappingVersion, new: MappingVersion) -> list[tuple[str, str]]:
    """A unified diff of two versions as (kind, line): kind is "add", "del", "hunk" or "same"."""
    lines = difflib.unified_diff(
        old.document.splitlines(),
        new.document.splitlines(),
        fromfile=f"v{old.version}",
        tofile=f"v{new.version}",
        lineterm="",
    )
    out: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        out.append((kind, line))
    return out


def resolve(session: Session, *, name: str, community_code: str) -> CompiledMapping:
    """The mapping a device of that community reads with: its community's, the district's, or built-in."""
    stmt = (
        select(StoredMapping.community_code, MappingVersion.document)
        .join(
            MappingVersion,
            (MappingVersion.mapping_id == StoredMapping.id)
            & (MappingVersion.version == StoredMapping.active_version),
        )
        .where(
            StoredMapping.name == name,
            StoredMapping.community_code.in_([community_code, DISTRICT_WIDE]),
        )
    )
    rows = sorted(session.execute(stmt).all(), key=lambda row: row.community_code == DISTRICT_WIDE)
    if rows:
        return _compiled(rows[0].document)
    builtin = builtin_mappings().get(name)
    if builtin is None:
        raise NotFound(f"没有名为 {name} 的映射", field="mapping")
    return builtin


@functools.lru_cache(maxsize=256)
def _compiled(document: str) -> CompiledMapping:
    # Keyed by the text: versions never change, so a new version is a new key and old ones age out.
    return compile_or_raise(document)
