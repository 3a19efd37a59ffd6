"""The media store: pictures and clips of every domain, content-addressed files, rows scoped by area.

`put` keeps bytes once under their SHA-256 (`sha256:<hex>`), in a folder sharded by the hash prefix,
written atomically (temp file + rename); a `media_objects` row per (key, area) says who may see it.
The content type is sniffed from the magic bytes: the declared header only has to agree with them.

Retention: a record that refers to media calls `claim` in the same transaction. Objects nobody
claimed (their event was never stored, the upload was abandoned) are deleted by `purge_orphans` once
older than the retention; files left without any row (a rolled-back transaction) by `sweep_strays`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import BigInteger, Index, String, UniqueConstraint, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from linli.core.errors import Forbidden, Invalid, NotFound, TooLarge
from linli.core.timeutil import utcnow
from linli.db import AreaScoped, Base, get_scope

KEY_PREFIX = "sha256:"
KEY_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ALLOWED = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "video/webm"})
GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})
ALIASES = {"image/pjpeg": "image/jpeg", "image/jpg": "image/jpeg", "image/x-png": "image/png"}
DEFAULT_ROOT = Path("data") / "media"
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
CHUNK = 500


class MediaObject(AreaScoped, Base):
    """One stored picture or clip as one area sees it (the file itself is shared by every area)."""

    __tablename__ = "media_objects"
    __table_args__ = (
        UniqueConstraint("key", "area_code", name="uq_media_objects_key_area"),
        Index("ix_media_objects_claimed_created", "claimed_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(71), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)


class _Config:
    root: Path = DEFAULT_ROOT
    max_bytes: int = DEFAULT_MAX_BYTES


def configure(*, root: Path | str, max_bytes: int) -> None:
    """Set this process's media folder and the size limit of one object (create_app calls it)."""
    _Config.root = Path(root)
    _Config.max_bytes = max_bytes


def root() -> Path:
    """The media folder of this process."""
    return _Config.root


def sniff(data: bytes) -> str | None:
    """The allowed content type the bytes really are (by their magic numbers), else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] not in (b"qt  ", b"heic", b"heix", b"mif1", b"avif"):
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3" and b"\x42\x82\x84webm" in data[:64]:  # EBML, DocType "webm"
        return "video/webm"
    return None


def check(data: bytes, content_type: str, *, field: str = "file") -> str:
    """The content type to store the bytes as; Invalid (naming field) if they are not allowed media."""
    declared = content_type.split(";")[0].strip().lower()
    declared = ALIASES.get(declared, declared)
    if not data:
        raise Invalid("文件为空", field=field)
    if declared not in ALLOWED and declared not in GENERIC:
        raise Invalid(f"不支持的文件类型 {declared}（支持：{'、'.join(sorted(ALLOWED))}）", field=field)
    actual = sniff(data)
    if actual is None:
        shown = declared or "未声明"
        raise Invalid(
            f"文件内容不是支持的图片或视频（声明为 {shown}，文件头 {data[:8].hex(' ')}）", field=field
        )
    if declared not in GENERIC and declared.split("/")[0] != actual.split("/")[0]:
        raise Invalid(f"文件内容是 {actual}，与声明的 {declared} 不符", field=field)
    return actual


def key_of(data: bytes) -> str:
    """The content address of bytes: sha256:<hex>."""
    return KEY_PREFIX + hashlib.sha256(data).hexdigest()


def is_key(value: str) -> bool:
    """True if value is a well-formed media key."""
    return bool(KEY_RE.match(value))


def path(key: str) -> Path:
    """Where the file of key lives (whether or not it exists); ValueError for a malformed key."""
    if not is_key(key):
        raise ValueError(f"not a media key: {key[:80]!r}")
    digest = key[len(KEY_PREFIX) :]
    return _Config.root / digest[:2] / digest[2:4] / digest


def open(key: str) -> BinaryIO:  # the store's verb, used as media.open(key)
    """The stored bytes of key for reading (server-side readers; no scope check); NotFound if missing."""
    try:
        return path(key).open("rb")
    except (FileNotFoundError, ValueError):
        raise NotFound(f"媒体文件不存在：{key[:80]}", field="key") from None


def put(
    session: Session, data: bytes, *, content_type: str, area_code: str, filename: str | None = None
) -> str:
    """Store bytes for an area (idempotent: the same bytes are kept once); returns their key.

    Invalid if the bytes are not an allowed picture or clip, TooLarge past the size limit, Forbidden if
    the session's scope does not include area_code.
    """
    if len(data) > _Config.max_bytes:
        raise TooLarge(f"文件过大：{len(data)} 字节，上限 {_Config.max_bytes} 字节", field="file")
    stored_type = check(data, content_type)
    scope = get_scope(session)
    if scope is not None and not scope.allows(area_code):
        raise Forbidden(f"无权在区域 {area_code} 保存文件", field="area_code")
    key = key_of(data)
    _write(path(key), data)
    values = {
        "key": key,
        "area_code": area_code,
        "content_type": stored_type,
        "size": len(data),
        "filename": _clean_filename(filename),
        "created_at": utcnow(),
        "claimed_at": None,
    }
    insert = pg_insert if session.connection().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(MediaObject).values(values).on_conflict_do_nothing(index_elements=["key", "area_code"])
    session.execute(stmt)
    return key


def _clean_filename(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch.isprintable()).strip()[:200]


def _write(target: Path, data: bytes) -> None:
    """Write the file atomically; an existing one is only touched (it is the same bytes)."""
    if target.exists():
        os.utime(target)  # fresh again: sweep_strays and purge_orphans spare recent files
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def get(session: Session, key: str) -> MediaObject | None:
    """The object of key as the session's scope sees it (None if malformed, unknown or out of scope)."""
    if not is_key(key):
        return None
    stmt = select(MediaObject).where(MediaObject.key == key).order_by(MediaObject.id).limit(1)
    return session.scalar(stmt)


def get_or_raise(session: Session, key: str) -> MediaObject:
    """The object of key in the session's scope, else NotFound (also when its file has gone)."""
    found = get(session, key)
    if found is None or not path(key).exists():
        raise NotFound("文件不存在或不在权限范围内", field="key")
    return found


def claim(session: Session, keys: Iterable[str], *, area_code: str, now: datetime | None = None) -> None:
    """Mark an area's objects as referred to by a record (call in the record's transaction)."""
    wanted = sorted({k for k in keys if is_key(k)})
    for start in range(0, len(wanted), CHUNK):
        stmt = (
            update(MediaObject)
            .where(
                MediaObject.key.in_(wanted[start : start + CHUNK]),
                MediaObject.area_code == area_code,
                MediaObject.claimed_at.is_(None),
            )
            .values(claimed_at=now or utcnow())
            .execution_options(skip_scope=True, synchronize_session=False)
        )
        session.execute(stmt)


def release(session: Session, keys: Iterable[str], *, area_code: str) -> None:
    """Undo claim: no record of the area refers to these objects any more; purge_orphans then removes them
    once older than the retention (the caller has checked that nothing else of the area refers to them)."""
    wanted = sorted({k for k in keys if is_key(k)})
    for start in range(0, len(wanted), CHUNK):
        stmt = (
            update(MediaObject)
            .where(MediaObject.key.in_(wanted[start : start + CHUNK]), MediaObject.area_code == area_code)
            .values(claimed_at=None)
            .execution_options(skip_scope=True, synchronize_session=False)
        )
        session.execute(stmt)


def purge_orphans(session: Session, *, now: datetime, older_than: timedelta) -> list[str]:
    """Delete unclaimed objects created before now - older_than; returns the keys no row keeps any more.

    Delete those keys' files with remove_files after the transaction has committed.
    """
    cutoff = now - older_than
    orphan = (MediaObject.claimed_at.is_(None), MediaObject.created_at < cutoff)
    keys = set(session.scalars(select(MediaObject.key).where(*orphan).execution_options(skip_scope=True)))
    if not keys:
        return []
    session.execute(delete(MediaObject).where(*orphan).execution_options(skip_scope=True))
    return sorted(keys - _kept(session, keys))


def _kept(session: Session, keys: set[str]) -> set[str]:
    kept: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), CHUNK):
        stmt = select(MediaObject.key).where(MediaObject.key.in_(ordered[start : start + CHUNK]))
        kept.update(session.scalars(stmt.execution_options(skip_scope=True)))
    return kept


def remove_files(keys: Iterable[str], *, older_than: datetime) -> int:
    """Delete the files of keys last written before older_than (a newer one was just put again)."""
    removed = 0
    for key in keys:
        target = path(key)
        with contextlib.suppress(FileNotFoundError):
            if target.stat().st_mtime < older_than.timestamp():
                target.unlink()
                removed += 1
    return removed


def sweep_strays(session: Session, *, now: datetime, older_than: timedelta) -> int:
    """Delete files (and temp files) older than the cutoff that no row refers to; returns how many."""
    cutoff = (now - older_than).timestamp()
    if not _Config.root.is_dir():
        return 0
    candidates: dict[str, Path] = {}
    removed = 0
    for file in _Config.root.glob("*/*/*"):
        try:
            if file.stat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        if file.name.startswith(".tmp-"):
            file.unlink(missing_ok=True)
            removed += 1
        elif is_key(KEY_PREFIX + file.name):
            candidates[KEY_PREFIX + file.name] = file
    kept = _kept(session, set(candidates))
    for key, file in candidates.items():
        if key not in kept:
            file.unlink(missing_ok=True)
            removed += 1
    return removed
