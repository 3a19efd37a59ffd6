"""The media store: content-addressed, idempotent, sniffed not trusted, area-scoped, purged when orphaned."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from linli.core import media
from linli.core.errors import Forbidden, Invalid, NotFound, TooLarge
from linli.core.media import MediaObject
from linli.core.timeutil import utcnow
from linli.db import set_scope

SAMPLES = Path(__file__).parents[1] / "devices" / "adapters" / "samples" / "hikvision"
# The plate crop a Hikvision gate sent with its ANPR alert (recorded multipart sample).
PLATE_JPEG = bytes.fromhex(
    json.loads((SAMPLES / "anpr_exit_multipart.parts.json").read_text())["licensePlatePicture.jpg"]
)
SCENE_JPEG = bytes.fromhex(
    json.loads((SAMPLES / "anpr_exit_multipart.parts.json").read_text())["detectionPicture.jpg"]
)
MP4_HEAD = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2" + struct.pack(">I", 8) + b"free"


def png(width: int = 2, height: int = 1) -> bytes:
    """A real, decodable RGB PNG of width x height grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A media folder of this test's own (the process configuration is put back afterwards)."""
    before = (media.root(), media._Config.max_bytes)
    media.configure(root=tmp_path / "media", max_bytes=64 * 1024)
    yield tmp_path / "media"
    media.configure(root=before[0], max_bytes=before[1])


def _rows(session, key: str) -> int:  # type: ignore[no-untyped-def]
    stmt = select(func.count()).select_from(MediaObject).where(MediaObject.key == key)
    return int(session.scalar(stmt.execution_options(skip_scope=True)))


def test_put_is_content_addressed_and_idempotent(session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    key = media.put(
        session, PLATE_JPEG, content_type="image/jpeg", area_code=world.tianfu, filename="C:\\pics\\plate.jpg"
    )
    again = media.put(session, PLATE_JPEG, content_type="image/pjpeg", area_code=world.tianfu)
    assert key == again and media.is_key(key)
    digest = key.removeprefix("sha256:")
    assert media.path(key) == store / digest[:2] / digest[2:4] / digest
    files = [p for p in store.rglob("*") if p.is_file()]
    assert files == [media.path(key)]  # one file, no temp file left behind
    assert _rows(session, key) == 1
    row = media.get(session, key)
    assert row is not None and (row.content_type, row.size, row.filename) == (
        "image/jpeg",
        len(PLATE_JPEG),
        "plate.jpg",
    )
    with media.open(key) as f:
        assert f.read() == PLATE_JPEG
    # The same bytes for another community: one file still, one row per area (each sees its own).
    assert media.put(session, PLATE_JPEG, content_type="image/jpeg", area_code=world.yuyu) == key
    assert _rows(session, key) == 2 and len([p for p in store.rglob("*") if p.is_file()]) == 1


def test_sniffing_rejects_a_non_image_labelled_jpeg(session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    html = b"<html><script>alert(1)</script></html>"
    with pytest.raises(Invalid) as caught:
        media.put(session, html, content_type="image/jpeg", area_code=world.tianfu)
    assert caught.value.field == "file" and "不是支持的图片或视频" in caught.value.message
    assert "image/jpeg" in caught.value.message
    truncated = PLATE_JPEG[:2]  # FF D8 and nothing else: not even a marker
    with pytest.raises(Invalid):
        media.put(session, truncated, content_type="image/jpeg", area_code=world.tianfu)
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))
    assert session.scalar(select(func.count()).select_from(MediaObject)) == 0


def test_the_sniffed_type_is_stored_not_the_declared_one(session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    key = media.put(session, png(), content_type="image/jpeg", area_code=world.tianfu)  # a mislabelled PNG
    assert media.get(session, key).content_type == "image/png"  # type: ignore[union-attr]
    clip = media.put(session, MP4_HEAD, content_type="application/octet-stream", area_code=world.tianfu)
    assert media.get(session, clip).content_type == "video/mp4"  # type: ignore[union-attr]
    with pytest.raises(Invalid, match="与声明的 image/jpeg 不符"):  # a clip posing as a picture
        media.put(session, MP4_HEAD + b"x", content_type="image/jpeg", area_code=world.tianfu)
    with pytest.raises(Invalid, match="不支持的文件类型 application/pdf"):
        media.put(session, PLATE_JPEG, content_type="application/pdf", area_code=world.tianfu)
    with pytest.raises(Invalid, match="文件为空"):
        media.put(session, b"", content_type="image/jpeg", area_code=world.tianfu)


def test_size_limit_per_object(session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    big = PLATE_JPEG + b"\x00" * (64 * 1024)
    with pytest.raises(TooLarge):
        media.put(session, big, content_type="image/jpeg", area_code=world.tianfu)


def test_scope_hides_another_communitys_media(session, world, as_user, store: Path) -> None:  # type: ignore[no-untyped-def]
    key = media.put(session, SCENE_JPEG, content_type="image/jpeg", area_code=world.tianfu_grid)
    as_user("shequ2")  # 昱宇西苑's worker
    assert media.get(session, key) is None
    with pytest.raises(NotFound):
        media.get_or_raise(session, key)
    with pytest.raises(Forbidden):  # nor may they store into another community
        media.put(session, PLATE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    as_user("shequ")  # 天府和苑's worker sees the grid's picture
    assert media.get_or_raise(session, key).area_code == world.tianfu_grid
    set_scope(session, None)


def test_http_serves_in_scope_only_with_cache_headers(client, session, world, login, store: Path) -> None:  # type: ignore[no-untyped-def]
    key = media.put(session, PLATE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    session.commit()
    own = client.get(f"/api/v1/media/{key}", headers=login("shequ"))
    assert own.status_code == 200 and own.content == PLATE_JPEG
    assert own.headers["content-type"] == "image/jpeg"
    assert own.headers["etag"] == f'"{key.removeprefix("sha256:")}"'
    assert "immutable" in own.headers["cache-control"] and "private" in own.headers["cache-control"]
    assert own.headers["x-content-type-options"] == "nosniff"
    cached = client.get(
        f"/api/v1/media/{key}", headers={**login("shequ"), "If-None-Match": own.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    other = client.get(f"/api/v1/media/{key}", headers=login("shequ2"))
    assert other.status_code == 404
    assert client.get(f"/api/v1/media/{key}", headers=login("jumin")).status_code == 403  # a resident
    assert client.get(f"/api/v1/media/{key}").status_code == 401
    assert client.get("/api/v1/media/sha256:nothex", headers=login("admin")).status_code == 404


def test_page_route_uses_the_session(client, session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.web.helpers import Console

    key = media.put(session, png(), content_type="image/png", area_code=world.xingfu)
    session.commit()
    console = Console(client)
    client.headers["accept"] = "image/avif,image/webp,*/*"
    console.login("shequ3")
    assert client.get(f"/media/{key}").status_code == 200
    client.post("/logout", data={"csrf": console.csrf()})
    console.login("shequ")
    assert client.get(f"/media/{key}").status_code == 404


def _age(session, key: str, days: int) -> None:  # type: ignore[no-untyped-def]
    """Pretend the object (rows and file) was stored days ago."""
    then = utcnow() - timedelta(days=days)
    for row in session.scalars(select(MediaObject).where(MediaObject.key == key)):
        row.created_at = then
    os.utime(media.path(key), (then.timestamp(), then.timestamp()))
    session.flush()


def test_purge_deletes_old_unclaimed_objects_only(session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    orphan = media.put(session, PLATE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    kept = media.put(session, SCENE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    recent = media.put(session, png(3, 2), content_type="image/png", area_code=world.tianfu)
    shared = media.put(session, png(4, 4), content_type="image/png", area_code=world.tianfu)
    media.put(session, png(4, 4), content_type="image/png", area_code=world.yuyu)
    media.claim(session, [kept], area_code=world.tianfu)
    media.claim(session, [shared], area_code=world.yuyu)  # yuyu's event refers to it, tianfu's none
    for key in (orphan, kept, shared):
        _age(session, key, days=8)
    gone = media.purge_orphans(session, now=now, older_than=timedelta(days=7))
    assert gone == [orphan]  # shared lost tianfu's row, but yuyu's keeps the file
    assert _rows(session, orphan) == 0 and _rows(session, shared) == 1
    assert _rows(session, kept) == 1 and _rows(session, recent) == 1
    assert media.remove_files(gone, older_than=now - timedelta(days=7)) == 1
    assert not media.path(orphan).exists()
    assert all(media.path(k).exists() for k in (kept, recent, shared))


def test_sweep_removes_files_no_row_refers_to(session, world, store: Path) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    stray = media.put(session, PLATE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    fresh_stray = media.put(session, png(), content_type="image/png", area_code=world.tianfu)
    kept = media.put(session, SCENE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    _age(session, stray, days=8)
    _age(session, kept, days=8)
    session.execute(
        MediaObject.__table__.delete().where(MediaObject.key.in_([stray, fresh_stray]))  # a rolled-back put
    )
    leftover = media.path(kept).parent / ".tmp-crashed"
    leftover.write_bytes(b"half")
    old = (now - timedelta(days=8)).timestamp()
    os.utime(leftover, (old, old))
    assert media.sweep_strays(session, now=now, older_than=timedelta(days=7)) == 2
    assert not media.path(stray).exists() and not leftover.exists()
    assert media.path(fresh_stray).exists() and media.path(kept).exists()


def test_the_daily_job_purges_orphans_and_strays(session, session_factory, world, settings, store) -> None:  # type: ignore[no-untyped-def]
    from linli.core.bus import InProcessBus
    from linli.jobs import Jobs, build_scheduler

    orphan = media.put(session, PLATE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    claimed = media.put(session, SCENE_JPEG, content_type="image/jpeg", area_code=world.tianfu)
    media.claim(session, [claimed], area_code=world.tianfu)
    _age(session, orphan, days=settings.raw_retention_days + 1)
    _age(session, claimed, days=settings.raw_retention_days + 1)
    session.commit()
    jobs = Jobs(session_factory=session_factory, bus=InProcessBus(), settings=settings)
    assert jobs.purge_media() == 1
    assert not media.path(orphan).exists() and media.path(claimed).exists()
    assert _rows(session, orphan) == 0 and _rows(session, claimed) == 1
    assert "purge_media" in {job.id for job in build_scheduler(jobs).get_jobs()}
