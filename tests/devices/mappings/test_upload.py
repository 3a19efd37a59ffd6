"""Batch uploads of old devices' exports: rows stored once, bad rows reported by row and field, scoped."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli.core.errors import NotFound
from linli.devices import service
from linli.devices.mappings import bindings, upload
from linli.devices.models import DeadLetter, StoredEvent
from tests.builders import World
from tests.conftest import Users
from tests.devices.helpers import T0, device

# A patrol wand's export as the management software writes it (GB18030), the day before T0.
PATROL = """序号,巡检点,巡更员,巡更时间,巡更棒编号,巡检线路
1,北门岗亭,赵敏,2026-03-04 22:00:03,XG-TF-0107,夜间A线
2,5号楼屋面,赵敏,2026-03-04 22:12:40,XG-TF-0107,夜间A线
3,地下车库B区,赵敏,2026/03/04 22:31,XG-TF-0107,夜间A线
4,7号楼消防通道,赵敏,昨天晚上,XG-TF-0107,夜间A线
5,,赵敏,2026-03-04 22:58:10,XG-TF-0107,夜间A线
""".encode("gb18030")


def _events(session: Session) -> int:
    stmt = select(func.count()).where(StoredEvent.source.startswith("mapping:"))
    return session.scalar(stmt) or 0


def _attendance_xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["门禁记录导出（2026年3月）"])  # the title row such software writes above the header
    sheet.append(["时间", "卡号", "工号", "姓名", "门名称", "进出", "验证方式", "事件"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_patrol_export_is_stored_once_and_bad_rows_are_reported_by_row_and_field(
    session: Session, world: World, as_user: Users
) -> None:
    wand, _ = device(session, world.tianfu, serial="XG-TF-0107", kind="patrol_handset", vendor="兰德华")
    worker = as_user("shequ")
    bindings.bind(session, worker, device_id=wand.id, adapter="patrol_csv")
    report = upload.upload(session, worker, data=PATROL, filename="巡更记录.csv", now=T0, device_id=wand.id)
    assert (report.rows, report.stored, report.duplicates) == (5, 3, 0)
    assert [(r.row, r.field) for r in report.rejected] == [(5, "occurred_at"), (6, "payload.checkpoint")]
    assert "昨天晚上" in report.rejected[0].reason
    letters = session.scalars(select(DeadLetter).where(DeadLetter.id.in_(report.dead_letter_ids))).all()
    assert sorted(letter.reason[:4] for letter in letters) == ["第5行:", "第6行:"]
    assert all(
        letter.area_code == world.tianfu and letter.source == "upload:patrol_csv" for letter in letters
    )
    stmt = (
        select(StoredEvent).where(StoredEvent.type == "patrol.checked_in").order_by(StoredEvent.occurred_at)
    )
    stored = session.scalars(stmt).all()
    assert [e.payload["checkpoint"] for e in stored] == ["北门岗亭", "5号楼屋面", "地下车库B区"]
    assert {e.type for e in stored} == {"patrol.checked_in"} and stored[0].payload["route"] == "夜间A线"

    again = upload.upload(session, worker, data=PATROL, filename="巡更记录.csv", now=T0, device_id=wand.id)
    assert (again.stored, again.duplicates, len(again.rejected)) == (0, 3, 2)
    assert _events(session) == 3


def test_an_access_controller_xlsx_by_mapping_and_community(
    session: Session, world: World, as_user: Users
) -> None:
    door, _ = device(session, world.tianfu, serial="ZK-TF-MJ-01", kind="card_reader", vendor="中控")
    other, _ = device(session, world.yuyu, serial="ZK-YY-MJ-09", kind="card_reader", vendor="中控")
    rows = [
        ["2026-03-05 07:58:12", "0012345678", "A017", "王建国", "1号楼单元门", "进", "刷卡", "合法卡"],
        ["2026-03-05 08:01:40", "", "A022", "李秀兰", "1号楼单元门", "出", "人脸", "验证通过"],
        ["2026-03-05 08:03:05", "0099999999", "", "", "1号楼单元门", "进", "刷卡", "无效卡"],
        ["2026-03-05 08:04:00", "0012345678", "A017", "王建国", "1号楼单元门", "进", "刷卡", "门被撬开"],
    ]
    sheet = [[*row[:1], *row[1:]] for row in rows]
    data = _attendance_xlsx(sheet)
    # by device: the device wins over whatever the sheet says
    worker = as_user("shequ")
    report = upload.upload(
        session,
        worker,
        data=data,
        filename="门禁.xlsx",
        now=T0,
        device_id=door.id,
        adapter="mapping:access_record_export",
    )
    assert (report.rows, report.stored) == (4, 3)
    assert [(r.row, r.field) for r in report.rejected] == [(6, "type")]  # sheet row 6: unknown event code
    stmt = select(StoredEvent).where(StoredEvent.type.startswith("access.")).order_by(StoredEvent.occurred_at)
    events = session.scalars(stmt).all()
    assert [(e.type, e.payload["credential"], e.payload["direction"]) for e in events] == [
        ("access.granted", "card", "in"),
        ("access.granted", "face", "out"),
        ("access.denied", "card", "in"),
    ]
    assert events[2].payload["reason"] == "无效卡" and events[0].payload["card_no"] == "0012345678"

    # by mapping and community: each row names its device; a device of another community is refused
    with_serials = io.BytesIO()
    book = Workbook()
    book.active.append(["设备序列号", "时间", "工号", "验证方式", "事件"])
    book.active.append(["ZK-TF-MJ-01", "2026-03-05 09:00:00", "A030", "指纹", "正常"])
    book.active.append(["ZK-YY-MJ-09", "2026-03-05 09:01:00", "B001", "指纹", "正常"])
    book.active.append(["NOT-REGISTERED", "2026-03-05 09:02:00", "B002", "指纹", "正常"])
    book.save(with_serials)
    report = upload.upload(
        session,
        worker,
        data=with_serials.getvalue(),
        filename="考勤.xlsx",
        now=T0,
        adapter="mapping:access_record_export",
        community=world.tianfu,
    )
    assert report.stored == 1
    assert [(r.row, r.field) for r in report.rejected] == [(3, "device"), (4, "device")]
    assert "不属于所选社区" in report.rejected[0].reason and "NOT-REGISTERED" in report.rejected[1].reason
    assert session.scalar(select(func.count()).where(StoredEvent.device_id == other.id)) == 0


def test_uploads_are_scoped_to_the_workers_community(session: Session, world: World, as_user: Users) -> None:
    wand, _ = device(session, world.tianfu, serial="XG-TF-0107", kind="patrol_handset")
    yuyu = as_user("shequ2")
    with pytest.raises(NotFound):
        upload.upload(
            session, yuyu, data=PATROL, filename="x.csv", now=T0, device_id=wand.id, adapter="patrol_csv"
        )
    with pytest.raises(NotFound):
        upload.upload(
            session, yuyu, data=PATROL, filename="x.csv", now=T0, adapter="patrol_csv", community=world.tianfu
        )
    assert _events(session) == 0


def test_an_unreadable_file_is_reported_and_kept_as_a_dead_letter(
    session: Session, world: World, as_user: Users
) -> None:
    wand, _ = device(session, world.tianfu, serial="XG-TF-0107", kind="patrol_handset")
    worker = as_user("shequ")
    report = upload.upload(
        session,
        worker,
        data=b"\x89PNG\r\n\x1a\n....",
        filename="photo.xlsx",
        now=T0,
        device_id=wand.id,
        adapter="mapping:access_record_export",
    )
    assert report.stored == 0 and "PNG" in report.file_error
    letter = session.get(DeadLetter, report.dead_letter_ids[0])
    assert letter is not None and letter.area_code == world.tianfu


def test_a_wand_read_out_months_later_is_stored_but_a_live_event_that_old_is_not(
    session: Session, world: World, as_user: Users
) -> None:
    """Old devices are read out rarely: an export's records may be months old, live events may not."""
    wand, _ = device(session, world.tianfu, serial="XG-TF-0107", kind="patrol_handset", vendor="兰德华")
    worker = as_user("shequ")
    bindings.bind(session, worker, device_id=wand.id, adapter="patrol_csv")
    months_later = T0 + timedelta(days=120)
    report = upload.upload(
        session, worker, data=PATROL, filename="巡更记录.csv", now=months_later, device_id=wand.id
    )
    assert (report.stored, len(report.rejected)) == (3, 2)

    live = {
        "id": "live-old-1",
        "device": "XG-TF-0107",
        "type": "patrol.checked_in",
        "occurred_at": "2026-03-04T14:00:03Z",
        "payload": {"checkpoint": "北门岗亭"},
    }
    result = service.ingest(session, [live], source="http", received_at=months_later)
    assert result.stored == 0
    assert "too old" in result.rejected[0][1] and "30 days" in result.rejected[0][1]

    year_later = T0 + timedelta(days=500)
    again = upload.upload(
        session, worker, data=PATROL, filename="巡更记录.csv", now=year_later, device_id=wand.id
    )
    assert again.stored == 0 and {r.field for r in again.rejected} >= {"occurred_at"}
    assert any("400 days" in r.reason for r in again.rejected)


def test_an_uploads_dead_letter_is_replayed_with_the_uploads_window(
    session: Session, world: World, as_user: Users
) -> None:
    """A 100-day-old record refused for another reason (its wand not yet registered) is stored on replay."""
    worker = as_user("shequ")
    hundred_days_later = T0 + timedelta(days=100)
    export = PATROL.decode("gb18030").replace("XG-TF-0107", "XG-TF-0199").encode("gb18030")
    report = upload.upload(
        session,
        worker,
        data=export,
        filename="巡更记录.csv",
        now=hundred_days_later,
        adapter="mapping:patrol_wand_csv",
        community=world.tianfu,
    )
    assert report.stored == 0
    letters = [session.get(DeadLetter, i) for i in report.dead_letter_ids]
    unknown = [x for x in letters if x is not None and "XG-TF-0199" in x.reason]
    assert len(unknown) == 3 and all(x.source == "upload:mapping:patrol_wand_csv" for x in unknown)

    # fixed: the wand is registered; replayed the same day, the records are 100 days old
    device(session, world.tianfu, serial="XG-TF-0199", kind="patrol_handset", vendor="兰德华")
    system = as_user("admin")
    outcomes = [service.replay(session, system, dead_letter_id=x.id, now=hundred_days_later) for x in unknown]
    assert [(x.status, r.stored) for x, r in outcomes] == [("replayed", 1)] * 3
    stored = session.scalars(select(StoredEvent).where(StoredEvent.device_serial == "XG-TF-0199")).all()
    assert len(stored) == 3

    # a live event's dead letter keeps the live window: the same age is still too old
    live = {
        "id": "live-old-2",
        "device": "XG-TF-0199",
        "type": "patrol.checked_in",
        "occurred_at": "2026-03-04T14:00:03Z",
        "payload": {"checkpoint": "北门岗亭"},
    }
    refused = service.ingest(session, [live], source="http", received_at=hundred_days_later)
    [letter_id] = refused.dead_letter_ids
    again, result = service.replay(session, system, dead_letter_id=letter_id, now=hundred_days_later)
    assert again.status == "new" and result.stored == 0 and "30 days" in again.reason


def test_an_uploads_unknown_device_rows_stay_with_the_uploading_community(
    session: Session, world: World, as_user: Users
) -> None:
    """Rows refused for an unknown wand are the uploader's to see and replay, only into their community."""
    worker = as_user("shequ")
    export = PATROL.decode("gb18030").replace("XG-TF-0107", "XG-TF-0300").encode("gb18030")
    report = upload.upload(
        session,
        worker,
        data=export,
        filename="巡更记录.csv",
        now=T0,
        adapter="mapping:patrol_wand_csv",
        community=world.tianfu,
    )
    unknown = [session.get(DeadLetter, i) for i in report.dead_letter_ids]
    unknown = [x for x in unknown if x is not None and "XG-TF-0300" in x.reason]
    assert len(unknown) == 3 and {x.area_code for x in unknown} == {world.tianfu}
    # the serial is then registered in another community: the rows must not become its events
    admin = as_user("admin")
    device(session, world.yuyu, serial="XG-TF-0300", kind="patrol_handset", vendor="兰德华")
    letter, result = service.replay(session, admin, dead_letter_id=unknown[0].id, now=T0)
    assert (letter.status, result.stored) == ("new", 0)
    assert "XG-TF-0300" in letter.reason and "不属于上传时所选社区" in letter.reason
    assert session.scalar(select(func.count()).where(StoredEvent.device_serial == "XG-TF-0300")) == 0
    # the uploading community's worker sees and may replay its letters (here still refused, same reason)
    mine, _ = service.replay(session, worker, dead_letter_id=unknown[1].id, now=T0)
    assert mine.status == "new" and "不属于上传时所选社区" in mine.reason
