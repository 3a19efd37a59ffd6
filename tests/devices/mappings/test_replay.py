"""Dead letters the mapping could not read: fix the mapping (a new version), replay, the events are stored."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from linli.core.errors import NotFound
from linli.core.timeutil import to_local
from linli.devices import deadletters, service, store
from linli.devices.mappings import bindings, pull, upload
from linli.devices.mappings import service as mappings
from linli.devices.mappings.bindings import receive_mapped
from linli.devices.models import DeadLetter, RawPayload, StoredEvent
from tests.builders import World
from tests.conftest import Users
from tests.devices.helpers import T0, device
from tests.devices.mappings.vendor_api import STAMP, Vendor
from tests.web.helpers import Console

# The access controller's management software (中控 ZKAccess style) writes its times as 2026/03/05 07:58,
# which this community's first copy of the mapping does not expect.
DOOR_V1 = """\
# 1号楼门禁控制器 导出记录
name: door-export
format: table
type:
  path: 事件
  map: {合法卡: access.granted, 验证通过: access.granted, 无效卡: access.denied}
device: {path: 设备序列号}
occurred_at: {path: 时间, format: "%Y-%m-%d %H:%M:%S", tz: Asia/Shanghai}
id: {hash: [device, occurred_at, card_no, credential]}
payload:
  credential: {path: 验证方式, map: {刷卡: card, 人脸: face}, default: card}
  card_no: {path: 卡号, required: false}
  door: {path: 门名称, default: ""}
  direction: {path: 进出, map: {进: in, 出: out}, default: unknown}
"""
DOOR_STILL_WRONG = DOOR_V1.replace('format: "%Y-%m-%d %H:%M:%S"', 'format: "%Y.%m.%d %H:%M"')
DOOR_FIXED = DOOR_V1.replace('format: "%Y-%m-%d %H:%M:%S"', 'format: ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"]')


def _export(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["门禁记录导出（2026年3月）"])
    sheet.append(["时间", "卡号", "工号", "姓名", "门名称", "进出", "验证方式", "事件"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _stored(session: Session, serial: str) -> list[StoredEvent]:
    stmt = select(StoredEvent).where(StoredEvent.device_serial == serial).order_by(StoredEvent.occurred_at)
    return list(session.scalars(stmt))


def test_an_export_row_refused_by_the_time_format_is_stored_once_the_mapping_is_fixed(
    session: Session, world: World, as_user: Users
) -> None:
    door, _ = device(session, world.tianfu, serial="ZK-TF-MJ-07", kind="card_reader", vendor="中控")
    worker = as_user("shequ")
    mapping, _ = mappings.create(session, worker, community_code=world.tianfu, document=DOOR_V1)
    bindings.bind(session, worker, device_id=door.id, adapter="mapping:door-export")
    data = _export(
        [
            ["2026-03-05 07:58:12", "0012345678", "A017", "王建国", "1号楼单元门", "进", "刷卡", "合法卡"],
            ["2026/03/05 08:01", "", "A022", "李秀兰", "1号楼单元门", "出", "人脸", "验证通过"],
        ]
    )
    report = upload.upload(session, worker, data=data, filename="门禁导出.xlsx", now=T0, device_id=door.id)
    assert (report.rows, report.stored) == (2, 1)
    assert [(r.row, r.field) for r in report.rejected] == [(4, "occurred_at")]
    [letter_id] = report.dead_letter_ids
    letter = session.get(DeadLetter, letter_id)
    assert letter is not None and letter.reason.startswith("第4行: occurred_at:")
    # the whole row with its headers is kept, the columns the mapping does not read too
    assert json.loads(letter.body) == {
        "时间": "2026/03/05 08:01",
        "工号": "A022",
        "姓名": "李秀兰",
        "门名称": "1号楼单元门",
        "进出": "出",
        "验证方式": "人脸",
        "事件": "验证通过",
    }
    assert letter.replay_via is not None and letter.replay_via["kind"] == deadletters.RECORD

    # replayed before the fix: refused again, kept, the reason still names the row
    same, result = service.replay(session, worker, dead_letter_id=letter_id, now=T0 + timedelta(minutes=5))
    assert (same.status, same.attempts, result.stored) == ("new", 1, 0)
    assert same.reason.startswith("第4行: occurred_at: 时间 '2026/03/05 08:01' 不符合格式 %Y-%m-%d %H:%M:%S")

    # a "fix" that is still wrong: refused again with the new version's reason
    mappings.save(session, worker, mapping_id=mapping.id, document=DOOR_STILL_WRONG)
    still, _ = service.replay(session, worker, dead_letter_id=letter_id, now=T0 + timedelta(minutes=9))
    assert (still.status, still.attempts) == ("new", 2)
    assert "不符合格式 %Y.%m.%d %H:%M" in still.reason
    assert len(_stored(session, door.serial)) == 1

    # fixed (version 3 active): replayed, stored at the controller's local time
    mappings.save(session, worker, mapping_id=mapping.id, document=DOOR_FIXED)
    assert mapping.active_version == 3
    done, result = service.replay(session, worker, dead_letter_id=letter_id, now=T0 + timedelta(minutes=12))
    assert (done.status, done.attempts, result.stored) == ("replayed", 3, 1)
    events = _stored(session, door.serial)
    assert [to_local(e.occurred_at).strftime("%Y-%m-%d %H:%M") for e in events] == [
        "2026-03-05 07:58",
        "2026-03-05 08:01",
    ]
    assert events[1].occurred_at.replace(tzinfo=UTC) == datetime(2026, 3, 5, 0, 1, tzinfo=UTC)
    assert (events[1].payload["credential"], events[1].payload["direction"]) == ("face", "out")
    assert done.event_id == events[1].id
    assert [e.source for e in events] == ["mapping:door-export"] * 2  # as the upload stores them
    with pytest.raises(Exception, match="已处理"):
        service.replay(session, worker, dead_letter_id=letter_id, now=T0 + timedelta(minutes=13))


def test_a_community_upload_row_is_replayed_with_its_upload_window_and_community(
    session: Session, world: World, as_user: Users
) -> None:
    """Rows naming their device, read out 100 days later: the replay keeps the 400-day window and the
    community check (a row naming another community's device stays refused)."""
    mine, _ = device(session, world.tianfu, serial="ZK-TF-MJ-08", kind="card_reader", vendor="中控")
    device(session, world.yuyu, serial="ZK-YY-MJ-03", kind="card_reader", vendor="中控")
    worker = as_user("shequ")
    mapping, _ = mappings.create(session, worker, community_code=world.tianfu, document=DOOR_V1)
    book = Workbook()
    book.active.append(["设备序列号", "时间", "卡号", "验证方式", "事件", "进出"])
    book.active.append(["ZK-TF-MJ-08", "2026/03/05 09:00", "0012345678", "刷卡", "合法卡", "进"])
    book.active.append(["ZK-YY-MJ-03", "2026/03/05 09:01", "0012345679", "刷卡", "合法卡", "进"])
    data = io.BytesIO()
    book.save(data)
    later = T0 + timedelta(days=100)
    report = upload.upload(
        session,
        worker,
        data=data.getvalue(),
        filename="考勤.xlsx",
        now=later,
        adapter="mapping:door-export",
        community=world.tianfu,
    )
    assert report.stored == 0 and [r.field for r in report.rejected] == ["occurred_at", "occurred_at"]
    mappings.save(session, worker, mapping_id=mapping.id, document=DOOR_FIXED)
    outcomes = [
        service.replay(session, worker, dead_letter_id=i, now=later)[0] for i in report.dead_letter_ids
    ]
    assert [x.status for x in outcomes] == ["replayed", "new"]
    assert outcomes[1].reason == "第3行: device: 设备 ZK-YY-MJ-03 不属于所选社区"
    [event] = _stored(session, mine.serial)
    assert to_local(event.occurred_at).strftime("%m-%d %H:%M") == "03-05 09:00"
    assert _stored(session, "ZK-YY-MJ-03") == []


GATE_WRONG_PATH = """\
# 某品牌道闸 JSON 推送（passtime 写错了大小写）
name: west-gate
format: json
records: "$.data.records[*]"
type: {path: "$.inout", map: {1: vehicle.entered, 2: vehicle.exited}}
id: {path: "$.recordId"}
occurred_at: {path: "$.passtime", format: epoch_ms}
payload:
  plate: {path: "$.车牌号"}
  lane: {path: "$.车道", default: 西门}
"""
GATE_FIXED = GATE_WRONG_PATH.replace('"$.passtime"', '"$.passTime"')


def test_a_mapped_push_with_a_wrong_field_path_is_replayed_through_the_fixed_mapping(
    client: TestClient,
    login,  # type: ignore[no-untyped-def]
    session: Session,
    world: World,
) -> None:
    worker = login("shequ")
    gate, secret = device(session, world.tianfu, serial="XXG-TF-W02", kind="plate_gate", vendor="捷顺")
    session.commit()
    created = client.post(
        "/api/v1/mappings", json={"document": GATE_WRONG_PATH, "community": world.tianfu}, headers=worker
    )
    assert created.status_code == 201, created.text
    bound = client.put(
        f"/api/v1/devices/{gate.id}/adapter", json={"adapter": "mapping:west-gate"}, headers=worker
    )
    assert bound.status_code == 200, bound.text

    passed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    records = [
        {"recordId": "W-1001", "车牌号": "陕D12345", "inout": 1, "passTime": int(passed.timestamp() * 1000)},
        {
            "recordId": "W-1002",
            "车牌号": "陕A8K2M1",
            "inout": 2,
            "passTime": int(passed.timestamp() * 1000) + 9000,
        },
    ]
    body = json.dumps({"sn": gate.serial, "data": {"records": records}}, ensure_ascii=False).encode()
    url = f"/api/v1/ingest/mapped/{gate.serial}"
    pushed = client.post(
        url, params={"key": secret}, content=body, headers={"content-type": "application/json"}
    )
    assert pushed.status_code == 422, pushed.text
    letters = client.get("/api/v1/dead-letters", params={"status": "new"}, headers=worker).json()
    [letter] = [x for x in letters if x["source"] == "push:mapping:west-gate"]
    assert "occurred_at: 缺少时间（路径 $.passtime）" in letter["reason"]
    assert letter["replay_via"]["kind"] == "body" and letter["replay_via"]["bound"] is True
    assert letter["replay_via"]["content_type"] == "application/json"

    # another community's worker cannot see it, nor replay it
    other = login("shequ2")
    assert client.post(f"/api/v1/dead-letters/{letter['id']}/replay", headers=other).status_code == 404

    # the mapping fixed: version 2 active; the replay reads the kept body with it
    saved = client.post(
        f"/api/v1/mappings/{created.json()['id']}/versions", json={"document": GATE_FIXED}, headers=worker
    )
    assert saved.status_code == 201 and saved.json()["active_version"] == 2
    replayed = client.post(f"/api/v1/dead-letters/{letter['id']}/replay", headers=worker)
    assert replayed.status_code == 200, replayed.text
    answer = replayed.json()
    assert answer["dead_letter"]["status"] == "replayed"
    assert answer["result"] == {"stored": 2, "duplicates": 0, "rejected": []}
    events = [e for e in _stored(session, gate.serial) if e.type.startswith("vehicle.")]  # not device.online
    assert [(e.type, e.payload["plate"], e.payload["lane"]) for e in events] == [
        ("vehicle.entered", "陕D12345", "西门"),
        ("vehicle.exited", "陕A8K2M1", "西门"),
    ]
    assert events[0].occurred_at.replace(tzinfo=UTC) == passed
    kept = session.get(DeadLetter, letter["id"])
    raw = session.get(RawPayload, kept.raw_id) if kept is not None and kept.raw_id else None
    assert raw is not None and set(raw.event_ids) >= {e.id for e in events}


def test_a_kept_utf8_body_replays_after_its_raw_payload_is_purged(
    session: Session, world: World, as_user: Users
) -> None:
    """Raw bodies age out (raw_retention_days); a UTF-8 body's text in the letter stands in for it."""
    gate, secret = device(session, world.tianfu, serial="XXG-TF-W03", kind="plate_gate", vendor="捷顺")
    worker = as_user("shequ")
    mapping, _ = mappings.create(session, worker, community_code=world.tianfu, document=GATE_WRONG_PATH)
    at = int((T0 - timedelta(minutes=2)).timestamp() * 1000)
    body = json.dumps(
        {"data": {"records": [{"recordId": "W-7", "车牌号": "陕U0P771", "inout": 1, "passTime": at}]}},
        ensure_ascii=False,
    ).encode()
    received = receive_mapped(
        session,
        serial=gate.serial,
        key=secret,
        mapping_name="west-gate",
        body=body,
        headers={"content-type": "application/json"},
        now=T0,
    )
    assert received.error is not None
    letter = session.scalars(select(DeadLetter).where(DeadLetter.device_serial == gate.serial)).one()
    assert letter.replay_via is not None and letter.replay_via["exact"] is True
    assert letter.replay_via["bound"] is False  # the push named its mapping
    assert store.purge_raw(session, now=T0 + timedelta(days=8), days=7) >= 1
    mappings.save(session, worker, mapping_id=mapping.id, document=GATE_FIXED)
    done, result = service.replay(session, worker, dead_letter_id=letter.id, now=T0 + timedelta(days=8))
    assert (done.status, result.stored) == ("replayed", 1)
    [event] = [e for e in _stored(session, gate.serial) if e.type == "vehicle.entered"]
    assert event.payload["plate"] == "陕U0P771"


def test_another_communitys_worker_cannot_replay_an_upload_row(
    session: Session, world: World, as_user: Users
) -> None:
    door, _ = device(session, world.tianfu, serial="ZK-TF-MJ-09", kind="card_reader", vendor="中控")
    worker = as_user("shequ")
    mappings.create(session, worker, community_code=world.tianfu, document=DOOR_V1)
    data = _export([["2026/03/05 08:11", "", "A031", "张伟", "2号楼单元门", "进", "刷卡", "合法卡"]])
    report = upload.upload(
        session,
        worker,
        data=data,
        filename="门禁.xlsx",
        now=T0,
        device_id=door.id,
        adapter="mapping:door-export",
    )
    [letter_id] = report.dead_letter_ids
    with pytest.raises(NotFound):
        service.replay(session, as_user("shequ2"), dead_letter_id=letter_id, now=T0)
    letter = session.get(DeadLetter, letter_id)
    assert letter is not None and (letter.status, letter.attempts) == ("new", 0)


PULL_WRONG_PATH = """\
name: door-api
format: json
records: "$.data.list[*]"
type: {path: "$.result", map: {1: access.granted, 0: access.denied}}
id: {path: "$.id"}
occurred_at: {path: "$.time", format: "%Y-%m-%d %H:%M:%S"}
payload:
  credential: {const: card}
  card_no: {path: "$.card_no"}
  door: {path: "$.door"}
"""


def test_a_polled_record_and_an_unreadable_answer_are_replayed_through_the_current_mapping(
    session: Session,
    session_factory: sessionmaker[Session],
    world: World,
    as_user: Users,
    vendor: tuple[Vendor, str],
) -> None:
    api, url = vendor
    api.add(2001, T0 - timedelta(minutes=20))
    api.add(2002, T0 - timedelta(minutes=10), result=0)
    reader, _ = device(session, world.tianfu, serial="MJ-TF-5-02", kind="card_reader", vendor="某门禁")
    worker = as_user("shequ")
    mapping, _ = mappings.create(session, worker, community_code=world.tianfu, document=PULL_WRONG_PATH)
    config = {
        "url": url,
        "params": {"startTime": "{cursor}", "pageNo": "{page}", "pageSize": "{size}"},
        "adapter": "mapping:door-api",
        "cursor": {"kind": "since", "format": STAMP, "start": "2026-03-05T00:00:00+00:00"},
        "paging": {"size": 10},
    }
    pull.save(session, worker, device_id=reader.id, config=config, headers={}, now=T0)
    session.commit()
    assert pull.poll_due(session_factory, now=T0) == 1
    letters = list(
        session.scalars(
            select(DeadLetter).where(DeadLetter.device_serial == reader.serial).order_by(DeadLetter.id)
        )
    )
    assert [x.reason[:6] for x in letters] == ["第1条记录:", "第2条记录:"]
    assert json.loads(letters[1].body)["cardNo"] == "0000002002"  # the record as the controller sent it

    api.mode = "garbage"  # the controller's login expired: an HTML page instead of JSON
    assert pull.poll_due(session_factory, now=T0 + timedelta(minutes=5)) == 1
    [page] = session.scalars(
        select(DeadLetter).where(DeadLetter.source == "pull:mapping:door-api", DeadLetter.id > letters[1].id)
    ).all()
    assert page.replay_via is not None and page.replay_via["kind"] == deadletters.BODY

    mappings.save(
        session, worker, mapping_id=mapping.id, document=PULL_WRONG_PATH.replace("$.card_no", "$.cardNo")
    )
    now = T0 + timedelta(minutes=30)
    done, result = service.replay(session, worker, dead_letter_id=letters[1].id, now=now)
    assert (done.status, result.stored) == ("replayed", 1)
    [event] = [e for e in _stored(session, reader.serial) if e.type.startswith("access.")]
    assert (event.type, event.payload["card_no"]) == ("access.denied", "0000002002")
    assert to_local(event.occurred_at) == to_local(T0 - timedelta(minutes=10))

    still, result = service.replay(session, worker, dead_letter_id=page.id, now=now)
    assert (still.status, still.attempts, result.stored) == ("new", 1, 0)
    assert still.reason.startswith("adapter: JSON 格式错误")


def test_the_console_lists_a_refused_row_and_replays_it_once_the_mapping_is_fixed(
    console: Console, session: Session, world: World, as_user: Users
) -> None:
    door, _ = device(session, world.tianfu, serial="ZK-TF-MJ-10", kind="card_reader", vendor="中控")
    worker = as_user("shequ")
    mapping, _ = mappings.create(session, worker, community_code=world.tianfu, document=DOOR_V1)
    bindings.bind(session, worker, device_id=door.id, adapter="mapping:door-export")
    data = _export(
        [["2026/03/05 08:20", "0012345690", "A040", "陈静", "3号楼单元门", "进", "刷卡", "合法卡"]]
    )
    now = datetime.now(UTC)
    [letter_id] = upload.upload(
        session, worker, data=data, filename="门禁.xlsx", now=now, device_id=door.id
    ).dead_letter_ids
    session.commit()

    console.login("shequ")
    row = console.get("/dead-letters").text.split(f'data-testid="letter-{letter_id}"')[1].split("</tr>")[0]
    assert "原始记录" in row and "重放时按设备当前绑定的适配器或映射重新读取" in row
    assert "第3行: occurred_at" in row and f"/dead-letters/{letter_id}/replay" in row
    csrf = console.csrf()
    refused = console.client.post(f"/dead-letters/{letter_id}/replay", data={"csrf": csrf})
    assert refused.status_code == 200 and "重放未成功" in refused.text

    mappings.save(session, as_user("shequ"), mapping_id=mapping.id, document=DOOR_FIXED)
    session.commit()
    replayed = console.client.post(f"/dead-letters/{letter_id}/replay", data={"csrf": csrf})
    assert str(replayed.url).endswith("/dead-letters?outcome=replayed")
    row = replayed.text.split(f'data-testid="letter-{letter_id}"')[1].split("</tr>")[0]
    assert "已重放" in row and "已尝试 2 次" in row
    [event] = _stored(session, door.serial)
    assert to_local(event.occurred_at).strftime("%Y-%m-%d %H:%M") == "2026-03-05 08:20"

    console.get("/lang/en", params={"next": "/dead-letters"})
    english = (
        console.get("/dead-letters").text.split(f'data-testid="letter-{letter_id}"')[1].split("</tr>")[0]
    )
    assert "Raw record" in english
