"""Device hub console pages: devices, a device's health and events, the event log, dead letters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.timeutil import LOCAL_TZ
from linli.devices import service
from linli.devices.models import StoredEvent
from tests.builders import World
from tests.devices.helpers import device, envelope, plate_read
from tests.web.helpers import Console, Register


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _hub(session: Session, world: World) -> dict[str, int]:
    """A plate gate in Tianfu with a plate read and a heartbeat, a camera in Yuyu, two dead letters."""
    gate, _ = device(
        session,
        world.tianfu,
        serial="DS-TCG227-TF-S01",
        kind="plate_gate",
        name="南门道闸",
        location="南门车行道",
    )
    cam, _ = device(session, world.yuyu, serial="DH-IPC-YY-07", vendor="大华", location="7号楼电梯厅")
    now = _now()
    reads = [
        envelope(gate.serial, at=now - timedelta(minutes=2)),
        plate_read(gate.serial, "陕A12345", at=now - timedelta(minutes=1)),
        envelope(cam.serial, at=now),
        # malformed (a plate read without a plate) and from an unknown device: both become dead letters
        envelope(gate.serial, "vehicle.entered", at=now, payload={}),
        envelope("NB-SMK-TF-0902", "alarm.raised", at=now, payload={"alarm": "smoke", "level": "critical"}),
    ]
    service.ingest(session, reads, source="http", received_at=now)
    session.commit()
    return {"gate": gate.id, "camera": cam.id}


def test_a_community_worker_sees_their_devices_events_and_dead_letters(
    console: Console, session: Session, world: World, register: Register
) -> None:
    ids = _hub(session, world)
    console.login("shequ")
    listed = console.get("/devices")
    assert listed.status_code == 200
    table = listed.text.split('data-testid="devices"')[1].split("</table>")[0]
    assert "南门道闸" in table and "DS-TCG227-TF-S01" in table and "车牌识别道闸" in table
    assert "海康威视" in table and "南门车行道" in table and "在线" in table
    assert "DH-IPC-YY-07" not in table
    # The mapping editor (old devices' formats) is one click from the device list.
    assert 'href="/mappings" data-testid="mappings-link"' in listed.text
    assert console.get("/mappings").status_code == 200
    assert "DS-TCG227" not in console.get("/devices", params={"kind": "camera"}).text.split("<tbody>")[1]
    assert (
        "DS-TCG227" not in console.get("/devices", params={"community": world.yuyu}).text.split("<tbody>")[1]
    )

    page = console.get(f"/devices/{ids['gate']}")
    assert page.status_code == 200
    assert "运行状况" in page.text and 'data-testid="uptime-7d">100.0%' in page.text
    events = page.text.split('data-testid="events"')[1].split("</table>")[0]
    assert "车辆入场" in events and "心跳" not in events  # its heartbeat is its health, not an event listed
    assert f'href="/vehicles/{register.vehicle}"' in events and "陕A12345" in events
    assert console.get(f"/devices/{ids['camera']}").status_code == 404

    log = console.get("/events")
    assert log.status_code == 200
    rows = log.text.split('data-testid="events"')[1].split("</table>")[0]
    assert "DS-TCG227-TF-S01" in rows and "DH-IPC-YY-07" not in rows
    only_hb = console.get("/events", params={"type": "device.heartbeat"}).text
    assert "车辆入场 " not in only_hb.split('data-testid="events"')[1]
    assert "暂无事件" in console.get("/events", params={"community": world.yuyu}).text
    assert "暂无事件" in console.get("/events", params={"before": 1}).text

    letters = console.get("/dead-letters")
    assert letters.status_code == 200
    table = letters.text.split('data-testid="dead-letters"')[1].split("</table>")[0]
    assert "DS-TCG227-TF-S01" in table and "待处理" in table and "重放" in table
    assert "NB-SMK-TF-0902" not in table  # an unknown device's letter has no area: district only


def test_read_only_and_forbidden(console: Console, session: Session, world: World) -> None:
    _hub(session, world)
    console.login("jumin")
    assert console.get("/devices").status_code == 403
    assert console.get("/dead-letters").status_code == 403
    assert console.get("/events").status_code == 403


def test_replay_after_registering_the_device_stores_the_event(
    console: Console, session: Session, world: World
) -> None:
    _hub(session, world)
    console.login("admin")
    page = console.get("/dead-letters").text
    letter_id = int(
        re.findall(r'data-testid="letter-(\d+)">(?:(?!</tr>).)*?>NB-SMK-TF-0902</a>', page, re.S)[0]
    )
    csrf = console.csrf()
    refused = console.client.post(f"/dead-letters/{letter_id}/replay", data={"csrf": csrf})
    assert refused.status_code == 200 and "重放未成功" in refused.text
    assert console.client.post(f"/dead-letters/{letter_id}/replay", data={}).status_code == 403

    device(session, world.tianfu, serial="NB-SMK-TF-0902", kind="smoke_sensor", location="9号楼1单元")
    session.commit()
    replayed = console.client.post(f"/dead-letters/{letter_id}/replay", data={"csrf": csrf})
    assert replayed.status_code == 200 and str(replayed.url).endswith("/dead-letters?outcome=replayed")
    row = replayed.text.split(f'data-testid="letter-{letter_id}"')[1].split("</tr>")[0]
    assert "已重放" in row and "NB-SMK-TF-0902" in row
    alarms = console.get("/events", params={"type": "alarm.raised"}).text.split('data-testid="events"')[1]
    assert "NB-SMK-TF-0902" in alarms and "报警" in alarms

    (other,) = {int(i) for i in re.findall(r'data-testid="letter-(\d+)"', replayed.text)} - {letter_id}
    discarded = console.client.post(f"/dead-letters/{other}/discard", data={"csrf": csrf})
    assert "已丢弃" in discarded.text.split(f'data-testid="letter-{other}"')[1].split("</tr>")[0]


def test_the_english_switch(console: Console, session: Session, world: World) -> None:
    ids = _hub(session, world)
    console.login("shequ")
    page = console.get("/lang/en", params={"next": f"/devices/{ids['gate']}"}).text
    assert 'lang="en"' in page
    for text in ("Devices", "Plate recognition gate", "Health", "Uptime, last 7 days", "Vehicle entered"):
        assert text in page, text
    assert "南门道闸" in page  # data stays as entered
    letters = console.get("/dead-letters").text
    assert "Dead letters" in letters and "Replay" in letters and "Discard" in letters


def _rows(page: str) -> str:
    return page.split('data-testid="events"')[1].split("</table>")[0]


def test_the_event_log_by_device_and_local_time_range(
    console: Console, session: Session, world: World
) -> None:
    ids = _hub(session, world)
    console.login("admin")
    # The device page's "all events" leads to the log of that device alone.
    page = console.get(f"/devices/{ids['gate']}").text
    assert f'href="/events?device={ids["gate"]}" data-testid="all-events"' in page
    by_gate = console.get("/events", params={"device": ids["gate"]}).text
    assert "南门道闸" in by_gate.split('data-testid="device-filter"')[1].split("</span>")[0]
    assert "DS-TCG227-TF-S01" in _rows(by_gate) and "DH-IPC-YY-07" not in _rows(by_gate)
    assert "暂无事件" in console.get("/events", params={"device": 10**6}).text

    # The range is typed in Asia/Shanghai: the gate's heartbeat 2 minutes ago is before it, its plate read
    # 1 minute ago inside it (since inclusive, until exclusive).
    local = (_now() - timedelta(seconds=90)).astimezone(LOCAL_TZ)
    since = local.strftime("%Y-%m-%dT%H:%M:%S")
    ranged = console.get("/events", params={"device": ids["gate"], "since": since}).text
    assert "车辆入场" in _rows(ranged) and "心跳" not in _rows(ranged)
    assert f'value="{since}" aria-label="开始时间"' in ranged  # the form keeps what was typed
    until = (local - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    earlier = console.get("/events", params={"device": ids["gate"], "until": until}).text
    assert "暂无事件" in _rows(earlier)  # its heartbeat alone: not shown unless asked for
    beats = console.get("/events", params={"device": ids["gate"], "until": until, "type": "all"}).text
    assert "心跳" in _rows(beats) and "车辆入场" not in _rows(beats)
    assert '<option value="all" selected>' in beats

    # Bad input: refused with the field named, never an empty page that looks like "no events".
    bad = console.get("/events", params={"since": "yesterday"})
    assert bad.status_code == 422 and "yesterday" in bad.text
    backwards = console.get("/events", params={"since": since, "until": until})
    assert backwards.status_code == 422 and "结束时间须晚于开始时间" in backwards.text


def test_the_event_logs_pager_keeps_every_filter(console: Console, session: Session, world: World) -> None:
    gate, _ = device(session, world.tianfu, serial="DS-TCG227-TF-P01", kind="plate_gate", name="北门道闸")
    now = _now()
    beats = [envelope(gate.serial, at=now - timedelta(seconds=i), uid=f"p-{i}") for i in range(60)]
    service.ingest(session, beats, source="http", received_at=now)
    session.commit()
    console.login("admin")
    since = (now - timedelta(hours=1)).astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")
    params = {"type": "device.heartbeat", "device": str(gate.id), "since": since}
    first = console.get("/events", params=params).text
    older = re.search(r'href="/events\?([^"]+)" data-testid="older"', first)
    assert older is not None
    # A live reload replaces the rows with their pager: "older" then starts after the last row shown.
    assert older.group(0) in console.get("/events", params={**params, "part": "rows"}).text
    link = dict(parse_qsl(older.group(1).replace("&amp;", "&")))
    assert {k: link[k] for k in params} == params and "before" in link
    second = console.get("/events", params=link).text
    assert _rows(second).count("心跳") == 60 - 50  # the page size is 50
    # Clearing the device keeps the other filters.
    clear = re.search(r'data-testid="device-filter">.*?<a href="/events\?([^"]*)" title', second, re.S)
    assert clear is not None
    assert dict(parse_qsl(clear.group(1).replace("&amp;", "&"))) == {
        "type": "device.heartbeat",
        "since": since,
    }


def test_a_patrol_tag_says_not_monitored_instead_of_offline(
    console: Console, session: Session, world: World
) -> None:
    tag, _ = device(
        session, world.tianfu, serial="XG-TF-NM-01", kind="patrol_tag", vendor="兰德华", model="L"
    )
    device(session, world.tianfu, serial="DS-2CD-TF-NM-02")
    session.commit()
    console.login("shequ")
    listed = console.get("/devices").text
    row = listed.split("XG-TF-NM-01")[1].split("</tr>")[0]
    assert ">不监测<" in row and "离线" not in row
    assert ">离线<" in listed.split("DS-2CD-TF-NM-02")[1].split("</tr>")[0]  # silent, and it should not be
    page = console.get(f"/devices/{tag.id}").text
    assert ">不监测<" in page.split('data-testid="online"')[1][:120]
    assert "<dt>最近巡检</dt>" in page and page.split('data-testid="last-seen">')[1].startswith("—")
    # A guard's handset touches the tag (its check-in names the tag's serial): when it was last patrolled.
    handset, _ = device(session, world.tianfu, serial="XG-TF-PH-01", kind="patrol_handset", vendor="兰德华")
    at = _now() - timedelta(minutes=7)
    checkin = envelope(handset.serial, "patrol.checked_in", at=at, payload={"checkpoint": tag.serial})
    service.ingest(session, [checkin], source="http", received_at=_now())
    session.commit()
    page = console.get(f"/devices/{tag.id}").text
    shown = at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")
    assert page.split('data-testid="last-seen">')[1].startswith(shown)
    assert ">不监测<" in page.split('data-testid="online"')[1][:120]  # still not monitored
    assert 'data-testid="command-form"' not in page and 'data-testid="no-commands"' in page  # never connects
    assert 'data-testid="pull-source"' not in page  # nor answers queries
    assert 'data-testid="pull-source"' in console.get(f"/devices/{handset.id}").text
    console.get("/lang/en", params={"next": "/devices"})
    assert ">Not monitored<" in console.get("/devices").text
    assert "<dt>Last patrolled</dt>" in console.get(f"/devices/{tag.id}").text


def test_the_device_list_by_state_and_link_with_the_counts_in_use(
    console: Console, session: Session, world: World
) -> None:
    now = _now()
    beating, _ = device(session, world.tianfu, serial="DS-2CD-TF-LK-01")
    silent, _ = device(session, world.tianfu, serial="DS-2CD-TF-LK-02")
    fixing, _ = device(session, world.tianfu, serial="DS-2CD-TF-LK-03", state="maintenance")
    device(session, world.tianfu, serial="XG-TF-LK-04", kind="patrol_tag", vendor="兰德华", model="L")
    device(session, world.yuyu, serial="DS-2CD-YY-LK-05")  # another community: not in 天府和苑's counts
    service.ingest(session, [envelope(beating.serial, at=now)], source="http", received_at=now)
    session.commit()
    console.login("admin")

    def serials(**params: str) -> set[str]:
        page = console.get("/devices", params={"community": world.tianfu, **params}).text
        return set(re.findall(r"DS-2CD-TF-LK-\d+|XG-TF-LK-\d+", page.split('data-testid="devices"')[1]))

    assert serials(link="online") == {"DS-2CD-TF-LK-01"}
    assert serials(link="offline") == {"DS-2CD-TF-LK-02", "DS-2CD-TF-LK-03"}  # never the tag
    assert serials(link="offline", state="active") == {"DS-2CD-TF-LK-02"}
    assert serials(state="maintenance") == {"DS-2CD-TF-LK-03"}
    page = console.get("/devices", params={"community": world.tianfu, "kind": "camera"}).text
    summary = page.split('data-testid="link-summary"')[1].split("</p>")[0]
    # In use (active) cameras of 天府和苑 in this test: one online, one offline (the one in maintenance
    # and the other community's are not counted).
    online = re.search(r"在线 <b>(\d+)</b>", summary)
    offline = re.search(r"离线 <b>(\d+)</b>", summary)
    assert online is not None and offline is not None
    before = console.get(
        "/devices", params={"community": world.tianfu, "kind": "camera", "link": "offline", "state": "active"}
    ).text
    listed_offline = set(re.findall(r"<a href=\"/devices/(\d+)\">", before.split('data-testid="devices"')[1]))
    assert int(offline.group(1)) == len(listed_offline) and str(silent.id) in listed_offline
    assert str(fixing.id) not in listed_offline
    up = console.get("/devices", params={"community": world.tianfu, "kind": "camera", "link": "online"}).text
    listed_online = set(re.findall(r"<a href=\"/devices/(\d+)\">", up.split('data-testid="devices"')[1]))
    assert int(online.group(1)) == len(listed_online) and str(beating.id) in listed_online
    assert f"community={world.tianfu}" in summary and "kind=camera" in summary and "state=active" in summary
    assert console.get("/devices", params={"link": "sometimes"}).status_code == 422
    # Per kind, the devices in use: online of those monitored, the offline ones one click away.
    listed = console.get("/devices", params={"community": world.tianfu}).text
    chips = listed.split('data-testid="by-kind"')[1].split("</p>")[0]
    camera = re.search(
        r'<a class="pill warn" href="([^"]+)" data-kind="camera"[^>]*>摄像机 1/2 · 离线 1</a>', chips
    )
    assert camera is not None and "kind=camera" in camera.group(1) and "link=offline" in camera.group(1)
    assert re.search(r'data-kind="patrol_tag"[^>]*>巡更点 1</a>', chips)  # not monitored: a count only
    offline = console.get(camera.group(1).replace("&amp;", "&")).text
    assert set(re.findall(r"DS-2CD-TF-LK-\d+", offline.split('data-testid="devices"')[1])) == {
        "DS-2CD-TF-LK-02"
    }


def test_every_payload_field_and_choice_of_the_schema_has_a_label() -> None:
    from typing import Literal, get_args, get_origin

    from linli.devices.events import PAYLOADS
    from linli.devices.pages_common import PAYLOAD_FIELD_LABELS, PAYLOAD_VALUE_LABELS

    for model in set(PAYLOADS.values()):
        for name, info in model.model_fields.items():
            assert name in PAYLOAD_FIELD_LABELS, (model.__name__, name)
            if get_origin(info.annotation) is Literal:
                assert set(PAYLOAD_VALUE_LABELS[name]) == set(get_args(info.annotation)), (
                    model.__name__,
                    name,
                )


def test_an_events_page_names_its_payloads_fields_and_choices(
    console: Console, session: Session, world: World
) -> None:
    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-PL-01", kind="face_terminal")
    now = _now()
    access = envelope(
        door.serial,
        "access.denied",
        at=now,
        payload={"credential": "face", "door": "3号楼1单元门", "direction": "in", "reason": "未登记"},
    )
    stored = service.ingest(session, [access], source="http", received_at=now).event_ids[0]
    session.commit()
    console.login("shequ")
    payload = console.get(f"/events/{stored}").text.split('data-testid="payload"')[1].split("</dl>")[0]
    assert "凭证 <small><code>credential</code></small>" in payload
    assert '人脸 <small class="muted"><code>face</code></small>' in payload
    assert "方向" in payload and ">进 <small" in payload and "3号楼1单元门" in payload and "未登记" in payload
    console.get("/lang/en", params={"next": "/"})
    english = console.get(f"/events/{stored}").text.split('data-testid="payload"')[1].split("</dl>")[0]
    assert "Credential <small>" in english and "Face <small" in english and "Direction" in english


def test_replay_all_of_a_devices_dead_letters_from_the_list(
    console: Console, session: Session, world: World
) -> None:
    _hub(session, world)  # two letters: the unknown smoke sensor's, the gate's plate read without a plate
    now = _now()
    more = [envelope("NB-SMK-TF-0902", "alarm.raised", at=now, payload={"alarm": "smoke"}) for _ in range(2)]
    service.ingest(session, more, source="http", received_at=now)
    session.commit()
    console.login("admin")
    filtered = console.get("/dead-letters", params={"device": "NB-SMK-TF-0902", "status": "new"}).text
    rows = filtered.split('data-testid="dead-letters"')[1].split("</table>")[0]
    assert rows.count('data-testid="letter-') == 3 and "DS-TCG227-TF-S01" not in rows
    form = filtered.split('data-testid="bulk-replay"')[1].split("</form>")[0]
    assert "待处理 3 条" in form and 'name="device" value="NB-SMK-TF-0902"' in form
    # An unknown device's letter leads to registering it, its serial filled in.
    assert 'href="/devices/new?serial=NB-SMK-TF-0902" data-testid="register-unknown"' in rows
    new_form = console.get("/devices/new", params={"serial": "NB-SMK-TF-0902"}).text
    assert 'name="serial" value="NB-SMK-TF-0902"' in new_form

    device(session, world.tianfu, serial="NB-SMK-TF-0902", kind="smoke_sensor", location="9号楼1单元")
    session.commit()
    csrf = console.csrf()
    assert console.client.post("/dead-letters/replay", data={"device": "NB-SMK-TF-0902"}).status_code == 403
    done = console.client.post("/dead-letters/replay", data={"csrf": csrf, "device": "NB-SMK-TF-0902"})
    assert done.status_code == 200 and "outcome=bulk" in str(done.url)
    said = done.text.split('data-testid="bulk-outcome"')[1].split("</p>")[0]
    assert "已重放并入库 3 条" in said and "仍未成功" not in said and "仍有" not in said
    assert "暂无异常数据" in done.text  # the list stays on that device's new letters: none left
    assert 'data-testid="bulk-replay"' not in done.text
    alarms = console.get("/events", params={"type": "alarm.raised"}).text.split('data-testid="events"')[1]
    assert alarms.count("NB-SMK-TF-0902") == 3
    # The gate's letter is still new, and replaying everything refuses it again and says so.
    again = console.client.post("/dead-letters/replay", data={"csrf": csrf})
    said = again.text.split('data-testid="bulk-outcome"')[1].split("</p>")[0]
    assert "已重放并入库 0 条，1 条仍未成功" in said and "仍有 1 条待处理" in said


def test_the_event_log_exports_what_its_filters_select(
    console: Console, session: Session, world: World, register: Register
) -> None:
    import io

    import openpyxl

    from linli.core.audit import AuditEntry

    ids = _hub(session, world)
    console.login("shequ")
    page = console.get("/events", params={"device": ids["gate"], "type": "vehicle.entered"}).text
    link = re.search(r'<a class="button" href="(/events\.xlsx[^"]*)" data-testid="export"', page)
    assert link is not None
    got = console.get(link.group(1).replace("&amp;", "&"))
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(got.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    assert header[:5] == ["发生时间", "接收时间", "事件类型", "类型代码", "设备序列号"]
    assert [r[header.index("车牌")] for r in rows[1:]] == ["陕A12345"]  # the gate's plate read alone
    row = dict(zip(header, rows[1], strict=True))
    assert row["事件类型"] == "车辆入场" and row["所属社区"] == "天府和苑" and "陕A12345" in row["内容"]
    occurred = datetime.fromisoformat(str(row["发生时间"])).replace(tzinfo=LOCAL_TZ)
    assert abs((occurred - _now()).total_seconds()) < 120  # local time, not UTC
    audited = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "export", AuditEntry.target_type == "events")
    ).all()
    assert audited and audited[-1].detail["rows"] == 1 and audited[-1].detail["type"] == "vehicle.entered"
    console.login("admin")
    log = console.get("/audit", params={"action": "export"}).text
    assert "设备事件" in log  # the audit log names what was exported

    # A grid worker reads events but may not export them; the page offers no export then.
    console.login("wangge")
    assert 'data-testid="export"' not in console.get("/events").text
    assert console.get("/events.xlsx").status_code == 403
    assert console.get("/events.xlsx", params={"since": "soon"}).status_code == 403  # permission first
    console.login("admin")
    assert console.get("/events.xlsx", params={"since": "soon"}).status_code == 422


def test_a_devices_page_names_its_building_and_marks_it_on_the_community_map(
    console: Console, session: Session, world: World, register: Register
) -> None:
    import json

    from linli.registry.models import Building

    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-MAP-01", building_id=register.building)
    loose, _ = device(session, world.tianfu, serial="DS-2CD-TF-MAP-02")  # no building, no point
    session.commit()
    building = session.get(Building, register.building)
    assert building is not None
    console.login("shequ")
    page = console.get(f"/devices/{door.id}").text
    assert f'data-testid="building">{building.name}</a>' in page
    data = json.loads(page.split('<script type="application/json" id="map-data">')[1].split("</script>")[0])
    assert data["device"] == {"point": None, "building": register.building}
    urls = {f["properties"].get("url") for f in data["features"]}
    assert f"/buildings/{register.building}" in urls  # the building to mark is on the map
    assert 'data-testid="device-map"' in page and "leaflet.js" in page
    plain = console.get(f"/devices/{loose.id}").text
    assert 'data-testid="device-map"' not in plain and "leaflet.js" not in plain  # nothing to show


def test_the_event_log_shows_the_last_days_hourly_counts_when_the_rollups_can_say(
    console: Console, session: Session, world: World
) -> None:
    gate, _ = device(session, world.tianfu, serial="DS-TCG227-TF-HR-01", kind="plate_gate")
    now = _now()
    batch = [
        envelope(gate.serial, at=now - timedelta(hours=3), uid="hr-1"),
        envelope(gate.serial, at=now - timedelta(hours=3, minutes=1), uid="hr-2"),
        plate_read(gate.serial, "陕A12345", at=now, uid="hr-3"),
        envelope(gate.serial, at=now - timedelta(hours=30), uid="hr-old"),  # more than a day ago
    ]
    service.ingest(session, batch, source="http", received_at=now)
    far, _ = device(session, world.yuyu, serial="DS-2CD-YY-HR-02")  # another community, out of shequ's areas
    service.ingest(session, [envelope(far.serial, at=now, uid="hr-far")], source="http", received_at=now)
    session.commit()
    console.login("shequ")

    def counts(**params: object) -> list[int] | None:
        page = console.get("/events", params={"community": world.tianfu, **params}).text
        if 'data-testid="hourly"' not in page:
            return None
        chart = page.split('data-testid="hourly"')[1].split("</section>")[0]
        return [int(n) for n in re.findall(r'data-count="(\d+)"', chart)]

    every = counts(type="all")
    assert every is not None and len(every) == 24
    assert every[-1] >= 1 and sum(every) >= 3  # this hour's plate read, the heartbeats of 3 hours ago
    # By default the log and its chart leave the heartbeats out.
    default = counts()
    assert default is not None and sum(default) == sum(every) - 2
    beats = counts(type="device.heartbeat")
    assert beats is not None and sum(beats) == 2  # the one 30 hours ago is not in the last day
    plates = counts(type="vehicle.entered")
    assert plates is not None and sum(plates) == 1 and plates[-1] == 1
    page = console.get("/events", params={"community": world.tianfu, "type": "all"}).text
    assert f"共 {sum(every):,} 条" in page
    # The axis: the first and last hour with their day, every sixth local hour between (Asia/Shanghai).
    axis = page.split('data-testid="hourly-axis"')[1].split("</div>")[0]
    assert axis.count("<span>") == 24 and axis.count('class="day"') == 2
    ticks = re.findall(r"<span>(\d\d):00</span>", axis)
    assert 2 <= len(ticks) <= 4 and all(int(hour) % 6 == 0 for hour in ticks)
    # Without a community filter the counts are still the caller's areas only: not 昱宇西苑's heartbeat.
    anywhere = console.get("/events", params={"type": "device.heartbeat"}).text.split('data-testid="hourly"')[
        1
    ]
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', anywhere.split("</section>")[0])) == 2
    assert counts(device=gate.id) is None  # the rollups cannot filter by device: no chart then
    assert counts(before=10**9) is None  # nor on older pages


def test_event_lists_say_what_each_event_says(console: Console, session: Session, world: World) -> None:
    """The event log, a device's page and the export show each event's gist: a reading's value, an access's
    credential and door, an alarm's kind and level; in English after the switch."""
    import io

    import openpyxl

    meter, _ = device(session, world.tianfu, serial="LXSY-TF-1-W", kind="water_meter", location="1号楼总水表")
    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-SUM-01", kind="face_terminal")
    now = _now()
    reads = [
        envelope(
            meter.serial,
            "meter.reading",
            at=now - timedelta(minutes=2),
            payload={"quantity": "water", "value": 1234.5, "unit": "m3"},
        ),
        envelope(
            door.serial,
            "access.denied",
            at=now - timedelta(minutes=1),
            payload={"credential": "card", "door": "3号楼1单元门", "direction": "in", "reason": "卡已挂失"},
        ),
        envelope(door.serial, "alarm.raised", at=now, payload={"alarm": "door_forced", "level": "critical"}),
    ]
    assert service.ingest(session, reads, source="http", received_at=now).stored == 3
    session.commit()
    console.login("shequ")

    def summaries(page: str) -> list[str]:
        # Each device's first event also made a device.online, which says nothing more than its type.
        found = [
            re.sub(r"\s+", " ", s).strip() for s in re.findall(r'data-testid="summary">(.*?)</td>', page)
        ]
        return [s for s in found if s]

    log = console.get("/events", params={"community": world.tianfu}).text
    assert summaries(log)[:3] == [
        "门被强行打开 · 紧急",
        "门禁卡 · 3号楼1单元门 · 进 · 卡已挂失",
        "用水量 · 1234.5 m3",
    ]
    assert "<th>内容</th>" in log
    # Each row names its device as staff do (its name, else its location) above the serial.
    assert '>1号楼总水表</a><br><small class="muted"><code>LXSY-TF-1-W</code></small>' in log
    assert summaries(console.get(f"/devices/{meter.id}").text) == ["用水量 · 1234.5 m3"]
    sheet = openpyxl.load_workbook(
        io.BytesIO(console.get("/events.xlsx", params={"device": door.id}).content)
    )
    rows = [[c.value for c in row] for row in sheet.active.iter_rows()]
    assert [
        r[rows[0].index("摘要")] for r in rows[1:] if r[rows[0].index("类型代码")] != "device.online"
    ] == ["门被强行打开 · 紧急", "门禁卡 · 3号楼1单元门 · 进 · 卡已挂失"]
    console.get("/lang/en", params={"next": "/"})
    english = console.get("/events", params={"community": world.tianfu}).text
    assert summaries(english)[:3] == [
        "Door forced open · Critical",
        "Card · 3号楼1单元门 · In · 卡已挂失",
        "Water use · 1234.5 m3",
    ]
    assert "<th>Details</th>" in english


def test_a_sensors_page_charts_its_readings_and_a_meters_says_what_it_counted(
    console: Console, session: Session, world: World
) -> None:
    sensor, _ = device(
        session, world.tianfu, serial="NB-SMK-TF-CH1", kind="smoke_sensor", location="5号楼1单元"
    )
    meter, _ = device(session, world.tianfu, serial="LXSY-TF-CH2", kind="water_meter", location="5号楼总水表")
    camera, _ = device(session, world.tianfu, serial="DS-2CD-TF-CH3", kind="camera")
    now = _now()
    items = []
    for i in range(12):  # the last two hours, every ten minutes
        at = now - timedelta(minutes=115 - 10 * i)
        items += [
            envelope(
                sensor.serial,
                "sensor.reading",
                at=at,
                payload={"quantity": "temperature", "value": 18 + i, "unit": "°C"},
            ),
            envelope(
                meter.serial,
                "meter.reading",
                at=at,
                payload={"quantity": "water", "value": 500 + 0.25 * i, "unit": "m3"},
            ),
            envelope(sensor.serial, at=at),  # heartbeats: the device's health, not its event list
        ]
    # Three days ago: only the week's chart holds it.
    old = now - timedelta(days=3)
    items.append(
        envelope(
            sensor.serial,
            "sensor.reading",
            at=old,
            payload={"quantity": "temperature", "value": 9, "unit": "°C"},
        )
    )
    assert service.ingest(session, items, source="http", received_at=now).stored == len(items)
    session.commit()
    console.login("shequ")

    page = console.get(f"/devices/{sensor.id}").text
    card = page.split('data-testid="readings"')[1].split("</section>")[0]
    assert card.count('data-testid="series"') == 1 and 'data-quantity="temperature"' in card
    assert "温度" in card and "<b>29</b> °C" in card and "最低 18 · 最高 29 · 12 次读数" in card
    assert 'data-testid="usage"' not in card  # a sensor counts nothing
    points = re.search(r'<polyline points="([^"]+)"', card)
    assert points is not None and len(points.group(1).split()) == 12
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert ys == sorted(ys, reverse=True)  # rising values draw upwards
    listed = page.split('data-testid="events"')[1].split("</table>")[0]
    assert "sensor.reading" in listed and "device.heartbeat" not in listed and "近 30 天，心跳不列出" in page
    # An event older than a month (an old export's, uploaded) is in the log, not on the device's page.
    old_alarm = envelope(
        sensor.serial, "alarm.raised", at=now - timedelta(days=40), payload={"alarm": "smoke"}
    )
    service.ingest(session, [old_alarm], source="upload", received_at=now, max_age=timedelta(days=400))
    session.commit()
    listed = console.get(f"/devices/{sensor.id}").text.split('data-testid="events"')[1].split("</table>")[0]
    assert "alarm.raised" not in listed
    log = console.get("/events", params={"device": sensor.id, "type": "alarm.raised"}).text
    assert log.split('data-testid="events"')[1].split("</table>")[0].count("<code>alarm.raised</code>") == 1
    week = console.get(f"/devices/{sensor.id}", params={"period": "7d"}).text.split('data-testid="readings"')[
        1
    ]
    assert "最低 9 · 最高 29 · 13 次读数" in week.split("</section>")[0]
    assert console.get(f"/devices/{sensor.id}", params={"period": "1y"}).status_code == 422

    # A reading's own page leads to its device's chart.
    reading = session.scalar(
        select(StoredEvent.id)
        .where(StoredEvent.device_id == meter.id, StoredEvent.type == "meter.reading")
        .limit(1)
    )
    assert (
        f'href="/devices/{meter.id}#readings" data-testid="readings-link"'
        in console.get(f"/events/{reading}").text
    )
    counted = (
        console.get(f"/devices/{meter.id}").text.split('data-testid="readings"')[1].split("</section>")[0]
    )
    assert "用水量" in counted and re.search(r'data-testid="usage">期间用量 <b>2\.75</b> m3', counted)
    # A camera measures nothing: no readings card; a smoke sensor without readings yet says there are none.
    assert 'data-testid="readings"' not in console.get(f"/devices/{camera.id}").text
    quiet, _ = device(session, world.tianfu, serial="NB-SMK-TF-CH4", kind="smoke_sensor")
    session.commit()
    assert "这段时间没有读数" in console.get(f"/devices/{quiet.id}").text
    console.get("/lang/en", params={"next": "/"})
    english = (
        console.get(f"/devices/{meter.id}").text.split('data-testid="readings"')[1].split("</section>")[0]
    )
    assert "Readings" in english and "Water use" in english and "Used in this period" in english


def test_find_a_device_by_serial_name_model_or_location(
    console: Console, session: Session, world: World, client, login
) -> None:  # type: ignore[no-untyped-def]
    device(session, world.tianfu, serial="DS-K1T671M-TF-12-1", kind="face_terminal", location="12号楼1单元")
    device(session, world.tianfu, serial="DS-K1T671M-TF-2-1", kind="face_terminal", location="2号楼1单元")
    device(
        session,
        world.tianfu,
        serial="YG-TF-12-SMK",
        kind="smoke_sensor",
        name="12号楼配电间烟感",
        model="JTY-GD",
    )
    device(session, world.tianfu, serial="DS_CAM-TF", kind="camera", location="北门 100%覆盖")
    device(session, world.yuyu, serial="DS-K1T671M-YY-12-1", kind="face_terminal", location="12号楼1单元门")
    session.commit()
    console.login("shequ")

    def found(q: str, **params: str) -> list[str]:
        page = console.get("/devices", params={"q": q, **params}).text
        table = page.split('data-testid="devices"')[1].split("</table>")[0]
        rows = re.findall(r'<a href="/devices/\d+">([^<]+)</a>(?:<br><small><code>([^<]+)</code>)?', table)
        return [serial or shown for shown, serial in rows]  # a named device shows its serial under its name

    assert found("12号楼") == ["DS-K1T671M-TF-12-1", "YG-TF-12-SMK"]  # location, name; not Yuyu's
    assert found("ds-k1t 12号楼") == ["DS-K1T671M-TF-12-1"]  # every word, any case
    assert found("jty-gd") == ["YG-TF-12-SMK"]  # model
    assert found("12号楼 烟感") == found("烟 12号楼") == ["YG-TF-12-SMK"]  # a word naming the kind
    assert found("门禁") == ["DS-K1T671M-TF-12-1", "DS-K1T671M-TF-2-1"]  # 人脸识别门禁
    assert found("%") == ["DS_CAM-TF"] and found("_") == ["DS_CAM-TF"]  # characters, not LIKE's wildcards
    assert found("12号楼", kind="smoke_sensor") == ["YG-TF-12-SMK"]
    nothing = console.get("/devices", params={"q": "不存在的设备"}).text
    assert "没有与“不存在的设备”相符的设备" in nothing and 'value="不存在的设备"' in nothing
    assert console.get("/devices", params={"q": "x" * 101}).status_code == 422

    listed = client.get("/api/v1/devices", headers=login("shequ"), params={"q": "12号楼 DS"}).json()
    assert [d["serial"] for d in listed] == ["DS-K1T671M-TF-12-1"]


def test_dead_letters_say_why_in_words_for_staff_and_show_what_was_sent(
    console: Console, session: Session, world: World
) -> None:
    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-DL-01", kind="face_terminal")
    device(session, world.tianfu, serial="DS-TCG-TF-DL-02", kind="plate_gate", state="retired")
    now = _now()
    bad = [
        envelope(door.serial, "access.granted", at=now, payload={"credential": "iris", "door": "东门"}),
        envelope(door.serial, "access.granted", at=now + timedelta(days=2), payload={"credential": "face"}),
        envelope(door.serial, "access.granted", at=now - timedelta(days=45), payload={"credential": "face"}),
        plate_read("DS-TCG-TF-DL-02", "陕A12345", at=now),
    ]
    assert service.ingest(session, bad, source="http", received_at=now).stored == 0
    session.commit()
    console.login("shequ")
    page = console.get("/dead-letters").text
    kinds = re.findall(r'data-testid="reason-kind">([^<]+)<', page)
    assert sorted(kinds) == sorted(
        [
            "不符合事件规范",
            "发生时间超前，晚于平台时钟 5 分钟以上",
            "发生时间过早，超出可接收的期限",
            "设备已停用",
        ]
    )
    assert "payload.credential" in page  # the reason itself stays, under its kind
    bodies = re.findall(r'data-testid="sent-body">(.*?)</pre>', page, re.S)
    assert any("&#34;credential&#34;: &#34;iris&#34;" in b and "\n  " in b for b in bodies)  # indented JSON
    console.get("/lang/en", params={"next": "/"})
    english = console.get("/dead-letters").text
    assert "Does not match the event schema" in english and "Device retired" in english


def test_every_refusal_the_hub_writes_has_a_kind_or_says_itself() -> None:
    from linli.devices.pages_common import reason_kind, shown_body
    from linli.devices.receive import MalformedJson

    assert (
        reason_kind(
            MalformedJson(
                ValueError("unexpected character: line 1 column 2 (char 1)"), dead_letter_id=1
            ).message
        )
        == "JSON 格式有误"
    )
    assert reason_kind("unknown device: DS-X (topic linli/1/DS-X/events) is not registered") == "设备未登记"
    assert reason_kind("wrong device: GW-1 may not send events of DS-2") == "无权代其他设备发送"
    assert reason_kind("oversized: a message of 300000 bytes exceeds the limit of 262144 bytes") == "消息过大"
    assert reason_kind("adapter: EventNotificationAlert without eventType") == "适配器无法读取"
    assert reason_kind("device: 设备 XG-1 不属于所选社区") == "设备信息有误"
    assert reason_kind("第3行: occurred_at: 无法识别的时间 2026/13/01") == "映射无法读取"
    assert reason_kind("第2条记录: payload.plate: 缺少必填值") == "映射无法读取"
    assert reason_kind("图片无效已丢弃，事件已保留。不是图片") is None  # Chinese already, says itself
    assert shown_body("not json {") == "not json {"
    assert shown_body('{"a": [1, 2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    long = shown_body("x" * 10_000)
    assert len(long) == 4002 and long.endswith("\n…")


def test_offline_devices_longest_silent_first_with_how_long(
    console: Console, session: Session, world: World
) -> None:
    from linli.devices import health

    now = _now()
    seen = {"DS-2CD-TF-OFF-A": timedelta(hours=3, minutes=20), "DS-2CD-TF-OFF-B": timedelta(days=2, hours=5)}
    for serial, ago in seen.items():
        device(session, world.tianfu, serial=serial)
        service.ingest(session, [envelope(serial, at=now - ago)], source="http", received_at=now - ago)
    device(session, world.tianfu, serial="DS-2CD-TF-OFF-C")  # never seen
    session.commit()
    health.check_offline(session, now)
    session.commit()
    console.login("shequ")
    page = console.get("/devices", params={"link": "offline", "q": "OFF"}).text
    table = page.split('data-testid="devices"')[1].split("</table>")[0]
    assert re.findall(r"DS-2CD-TF-OFF-\w", table) == ["DS-2CD-TF-OFF-C", "DS-2CD-TF-OFF-B", "DS-2CD-TF-OFF-A"]
    silent = re.findall(r'data-testid="silent">([^<]+)<', table)
    assert silent == ["已离线 2 天 5 小时", "已离线 3 小时 20 分"]  # the never-seen one says nothing
    console.get("/lang/en", params={"next": "/"})
    english = console.get("/devices", params={"link": "offline", "q": "OFF"}).text
    assert "offline 2 d 5 h" in english and "offline 3 h 20 min" in english
    assert "Devices in use: <a" in english and "在用设备：<a" in page  # a label's colon in each language


def test_dead_letters_by_kind_of_refusal_and_replaying_only_those(
    console: Console, session: Session, world: World, client, login
) -> None:  # type: ignore[no-untyped-def]
    """All letters of unregistered devices, listed together, go back in at once after the devices are
    registered; the letters refused for another reason stay as they were."""
    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-RK-01", kind="face_terminal")
    now = _now()
    bad = [
        envelope("NB-SMK-TF-RK-02", "alarm.raised", at=now, payload={"alarm": "smoke"}),
        envelope("NB-SMK-TF-RK-03", "alarm.raised", at=now, payload={"alarm": "smoke"}),
        envelope(door.serial, "access.granted", at=now, payload={"credential": "iris"}),  # schema
    ]
    service.ingest(session, bad, source="http", received_at=now)
    session.commit()
    console.login("admin")  # letters of unknown devices have no community yet: the district's staff see them

    def reasons(**params: str) -> list[str]:
        page = console.get("/dead-letters", params={"status": "new", **params}).text
        return re.findall(r'data-testid="reason-kind">([^<]+)<', page)

    assert sorted(reasons()) == ["不符合事件规范", "设备未登记", "设备未登记"]
    assert reasons(reason="unknown_device") == ["设备未登记", "设备未登记"]
    assert reasons(reason="schema") == ["不符合事件规范"]
    assert reasons(reason="too_old") == []
    assert console.get("/dead-letters", params={"reason": "whatever"}).status_code == 422
    page = console.get("/dead-letters", params={"status": "new", "reason": "unknown_device"}).text
    assert 'name="reason" value="unknown_device"' in page  # the bulk replay keeps the filter

    for serial in ("NB-SMK-TF-RK-02", "NB-SMK-TF-RK-03"):
        device(session, world.tianfu, serial=serial, kind="smoke_sensor")
    session.commit()
    done = console.client.post(
        "/dead-letters/replay", data={"csrf": console.csrf(), "reason": "unknown_device"}
    )
    said = done.text.split('data-testid="bulk-outcome"')[1].split("</p>")[0]
    assert "已重放并入库 2 条" in said and "仍未成功" not in said
    assert reasons() == ["不符合事件规范"]  # not replayed: it would only be refused again
    api = client.get(
        "/api/v1/dead-letters", headers=login("admin"), params={"reason": "schema", "status": "new"}
    )
    assert [letter["device_serial"] for letter in api.json()] == [door.serial]
    assert (
        client.get("/api/v1/dead-letters", headers=login("admin"), params={"reason": "x"}).status_code == 422
    )


def test_a_doors_page_shows_what_it_did_hour_by_hour(
    console: Console, session: Session, world: World
) -> None:
    """A door's passes per hour over the last day (not its heartbeats, nor the hub's online and offline);
    a sensor has its readings instead."""
    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-ACT-01", kind="face_terminal")
    sensor, _ = device(session, world.tianfu, serial="NB-SMK-TF-ACT-02", kind="smoke_sensor")
    now = _now()
    current = now.replace(minute=0, second=0)
    passes = {1: 3, 5: 1}  # hours before the current one: passes, ten minutes into that hour

    def granted(at: datetime) -> dict:  # type: ignore[type-arg]
        return envelope(door.serial, "access.granted", at=at, payload={"credential": "face"})

    items = [
        granted(current - timedelta(hours=ago) + timedelta(minutes=10 + k))
        for ago, n in passes.items()
        for k in range(n)
    ]
    items += [envelope(door.serial, at=now - timedelta(minutes=m)) for m in range(0, 120, 3)]  # heartbeats
    items.append(granted(now - timedelta(hours=30)))  # yesterday's: out of the window
    service.ingest(session, items, source="http", received_at=now)
    session.commit()
    console.login("shequ")
    page = console.get(f"/devices/{door.id}").text
    card = page.split('data-testid="activity"')[1].split("</section>")[0]
    hours = re.findall(r'data-hour="([^"]+)" data-count="(\d+)"', card)
    assert len(hours) == 24 and sum(int(n) for _, n in hours) == 4 and "共 4 条" in card
    counted = {at: int(n) for at, n in hours if n != "0"}
    expected = {
        (current - timedelta(hours=ago)).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"): n
        for ago, n in passes.items()
    }
    assert counted == expected  # in the hour they happened, local time, the current hour last
    assert hours[-1][0] == current.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    assert "近 24 小时活动（不含心跳）" in card
    assert 'data-testid="activity"' not in console.get(f"/devices/{sensor.id}").text


def test_a_devices_events_alone_for_its_pages_live_reload(
    console: Console, session: Session, world: World
) -> None:
    door, _ = device(session, world.tianfu, serial="DS-K1T-TF-LV-01", kind="face_terminal")
    now = _now()
    service.ingest(
        session,
        [envelope(door.serial, "access.granted", at=now, payload={"credential": "face", "door": "东门"})],
        source="http",
        received_at=now,
    )
    session.commit()
    console.login("shequ")
    page = console.get(f"/devices/{door.id}").text
    assert f'new EventSource("/events/stream?device={door.id}")' in page
    part = console.get(f"/devices/{door.id}/events")
    assert part.status_code == 200 and part.text.lstrip().startswith('<div id="device-events">')
    assert "<html" not in part.text and "人脸 · 东门" in part.text
    console.login("shequ2")
    assert console.get(f"/devices/{door.id}/events").status_code == 404  # another community's device
    console.login("jumin")
    assert console.get(f"/devices/{door.id}/events").status_code == 403
