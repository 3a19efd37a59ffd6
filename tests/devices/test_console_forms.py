"""Device console forms: register, edit, state, secret rotation, sheet import, commands; scoped, validated."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from linli.core.audit import AuditEntry
from linli.core.auth.service import Principal
from linli.core.errors import Unauthorized
from linli.core.timeutil import utcnow
from linli.devices import push, signing
from linli.devices.models import Device
from linli.registry import places
from tests.devices.helpers import body_of, device, signed
from tests.web.helpers import Console, csrf_of


@pytest.fixture
def console(client) -> Console:  # type: ignore[no-untyped-def]
    """The console as a browser uses it."""
    client.headers["accept"] = "text/html,application/xhtml+xml"
    return Console(client)


def _form(**overrides: str) -> dict[str, str]:
    """A filled registration form for a plate gate at Tianfu's south gate."""
    values = {
        "serial": "DS-TCG2A5-TF-S02",
        "name": "南门车行道出口",
        "kind": "plate_gate",
        "vendor": "海康威视",
        "model": "DS-TCG2A5-B",
        "protocol": "http",
        "community": "611102001001",
        "building_id": "",
        "floor": "",
        "location": "南门车行道",
        "lat": "34.300812",
        "lon": "108.701935",
        "installed_on": "2024-05-20",
        "state": "active",
    }
    return {**values, **overrides}


def _post(console: Console, url: str, data: dict[str, str], **headers: str):  # type: ignore[no-untyped-def]
    return console.client.post(url, data={**data, "csrf": console.csrf()}, headers=headers)


def _audits(session, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_registering_a_device_shows_its_secret_once(console, session, world) -> None:  # type: ignore[no-untyped-def]
    building, _ = places.upsert_building(
        session, Principal.system(), community_code=world.tianfu, number="3", floors=18
    )
    session.commit()
    console.login("shequ")
    form = console.get("/devices/new")
    assert form.status_code == 200
    assert "天府和苑" in form.text and "昱宇西苑" not in form.text  # only the worker's own community
    r = _post(console, "/devices/new", _form(building_id=str(building.id), floor="1"))
    assert r.status_code == 200, r.text
    secret = re.search(r'data-testid="secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert len(secret) >= 40 and r.headers["cache-control"] == "no-store"
    saved = session.scalar(select(Device).where(Device.serial == "DS-TCG2A5-TF-S02"))
    assert saved is not None and saved.secret == secret
    assert (saved.kind, saved.building_id, saved.floor, saved.installed_on) == (
        "plate_gate",
        building.id,
        1,
        date(2024, 5, 20),
    )
    assert (saved.lat, saved.lon, saved.area_code) == (34.300812, 108.701935, world.tianfu)
    assert _audits(session, "device.create")[-1].detail["source"] == "console"
    page = console.get(f"/devices/{saved.id}")
    assert secret not in page.text  # never shown again


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"serial": ""}, "serial", "序列号不能为空"),
        ({"serial": "SN 12 34"}, "serial", "只能包含"),
        ({"floor": "三楼"}, "floor", "不是数字"),
        ({"lat": "134.5"}, "lat", "超出范围"),
        ({"installed_on": "2024-13-01"}, "installed_on", "年-月-日"),
        ({"kind": "飞行器"}, "kind", "未知的设备类型"),
        ({"community": "611102001002"}, "community", "不在权限范围内"),  # 昱宇西苑: not the worker's
        ({"building_id": "abc"}, "building_id", "楼栋"),
    ],
)
def test_the_form_names_the_field_it_refuses(console, session, overrides, field, words) -> None:  # type: ignore[no-untyped-def]
    console.login("shequ")
    r = _post(console, "/devices/new", _form(**overrides))
    assert r.status_code in (404, 409, 422), r.text
    message = re.search(rf'data-testid="error-{field}">([^<]+)<', r.text)
    assert message and words in message.group(1), r.text[-3000:]
    assert 'value="南门车行道出口"' in r.text  # what was typed is kept
    assert session.scalar(select(Device).where(Device.serial == _form(**overrides)["serial"])) is None


def test_a_taken_serial_is_refused_on_the_serial(console, session, world) -> None:  # type: ignore[no-untyped-def]
    device(session, world.xingfu, serial="DS-TCG2A5-TF-S02")  # registered in another street already
    session.commit()
    console.login("shequ")
    r = _post(console, "/devices/new", _form())
    assert r.status_code == 409
    assert "序列号已登记" in re.search(r'data-testid="error-serial">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]


def test_editing_and_changing_state_are_audited(console, session, gate) -> None:  # type: ignore[no-untyped-def]
    gate_device, _ = gate
    console.login("shequ")
    form = console.get(f"/devices/{gate_device.id}/edit")
    assert form.status_code == 200 and 'value="南门车行道"' in form.text and "readonly" in form.text
    edited = _form(serial="ignored", location="南门车行道（入口）", floor="", lat="", lon="", installed_on="")
    r = _post(console, f"/devices/{gate_device.id}/edit", edited)
    assert r.status_code == 200 and "设备信息已保存" in r.text
    session.refresh(gate_device)
    assert (gate_device.serial, gate_device.location) == ("DS-TCG227-TF-S01", "南门车行道（入口）")
    changes = _audits(session, "device.update")[-1].detail["changes"]
    assert changes["location"] == ["南门车行道", "南门车行道（入口）"]
    r = _post(console, f"/devices/{gate_device.id}/state", {"state": "maintenance"})
    assert r.status_code == 200 and "设备状态已更新" in r.text and "维修中" in r.text
    assert _audits(session, "device.update")[-1].detail["changes"]["state"] == ["active", "maintenance"]
    bad = _post(console, f"/devices/{gate_device.id}/edit", {**edited, "floor": "201"})
    assert bad.status_code == 422 and 'data-testid="error-floor"' in bad.text


def test_rotating_the_secret_invalidates_the_old_one(console, session, gate) -> None:  # type: ignore[no-untyped-def]
    gate_device, old = gate
    console.login("shequ")
    r = _post(console, f"/devices/{gate_device.id}/secret", {})
    assert r.status_code == 200 and "旧密钥已立即失效" in r.text
    new = re.search(r'data-testid="secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert new != old
    session.expire_all()  # the page's transaction changed the row under this session
    now = utcnow()

    def hmac_auth(secret: str) -> Device:
        headers = signed(gate_device.serial, secret, b"[]")
        return signing.authenticate(
            session,
            serial=gate_device.serial,
            timestamp=headers[signing.TIMESTAMP_HEADER],
            signature=headers[signing.SIGNATURE_HEADER],
            body=b"[]",
            now=now,
            skew_seconds=300,
        )

    assert hmac_auth(new).id == gate_device.id
    with pytest.raises(Unauthorized):
        hmac_auth(old)
    assert push.authenticate_key(session, serial=gate_device.serial, key=new).id == gate_device.id
    with pytest.raises(Unauthorized):
        push.authenticate_key(session, serial=gate_device.serial, key=old)
    assert _audits(session, "device.secret_rotate")[-1].actor == "shequ"


def test_another_communitys_device_is_not_found(console, camera) -> None:  # type: ignore[no-untyped-def]
    cam, _ = camera  # 昱宇西苑's
    console.login("shequ")
    assert console.get(f"/devices/{cam.id}/edit").status_code == 404
    assert _post(console, f"/devices/{cam.id}/state", {"state": "retired"}).status_code == 404
    assert _post(console, f"/devices/{cam.id}/secret", {}).status_code == 404
    assert console.get(f"/devices/{cam.id}/commands").status_code == 404
    r = _post(console, f"/devices/{cam.id}/commands", {"command": "reboot"}, **{"HX-Request": "true"})
    assert r.status_code == 404


def test_roles_without_device_rights_get_no_forms(console, gate) -> None:  # type: ignore[no-untyped-def]
    console.login("wangge")  # a grid worker reads events but manages no device
    assert console.get("/devices/new").status_code == 403
    assert console.get("/devices/import").status_code == 403
    assert console.get(f"/devices/{gate[0].id}/edit").status_code == 403
    assert _post(console, f"/devices/{gate[0].id}/secret", {}).status_code == 403


def _sheet(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["设备名称", "设备类型", "厂商", "型号", "序列号", "安装位置", "楼层", "安装日期"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_importing_a_sheet_reports_rows_and_shows_new_secrets(console, session, world) -> None:  # type: ignore[no-untyped-def]
    data = _sheet(
        [
            [
                "1号楼单元门",
                "人脸识别门禁",
                "海康威视",
                "DS-K1T671M",
                "FX4417401",
                "1号楼1单元",
                1,
                "2023-09-01",
            ],
            ["南门烟感", "烟感", "海曼", "HM-608PH", "HM608-0093", "南门岗亭", None, None],
            ["无人机", "飞行器", "大疆", "M30", "DJI-M30-01", "屋顶", None, None],
        ]
    )
    console.login("shequ")
    page = console.get("/devices/import")
    # A worker of one community has it chosen already; the district's staff choose among all.
    assert f'<option value="{world.tianfu}" selected>' in page.text
    console.login("admin")
    chooser = console.get("/devices/import").text.split('id="i-community"')[1].split("</select>")[0]
    assert "selected" not in chooser and world.yuyu in chooser
    console.login("shequ")
    page = console.get("/devices/import")
    files = {"file": ("天府和苑设备.xlsx", data, "application/octet-stream")}
    fields = {"csrf": csrf_of(page.text), "community": world.tianfu, "entity": "devices"}
    dry = console.client.post("/devices/import", data={**fields, "dry_run": "1"}, files=files)
    assert dry.status_code == 200 and "试导入结果" in dry.text
    assert session.scalar(select(Device).where(Device.serial == "FX4417401")) is None
    r = console.client.post("/devices/import", data=fields, files=files)
    assert r.status_code == 200, r.text
    assert re.search(r'data-testid="created">2<', r.text) and re.search(r'data-testid="rejected">1<', r.text)
    rejected = re.search(r'data-testid="rejected-rows">(.*?)</table>', r.text, re.S).group(1)  # type: ignore[union-attr]
    assert ">4<" in rejected and "kind" in rejected and "未知的设备类型" in rejected
    secrets = re.findall(r'<code class="secret">([^<]+)<', r.text)
    stored = {
        d.serial: d.secret for d in session.scalars(select(Device).where(Device.area_code == world.tianfu))
    }
    assert sorted(secrets) == sorted([stored["FX4417401"], stored["HM608-0093"]])


def test_a_command_is_sent_and_its_delivery_followed(console, client, session, world) -> None:  # type: ignore[no-untyped-def]
    door, secret = device(
        session, world.tianfu, serial="DS-K1T671M-TF-0301", kind="face_terminal", location="3号楼单元门"
    )
    session.commit()
    console.login("shequ")
    page = console.get(f"/devices/{door.id}")
    assert 'data-testid="command-form"' in page.text and "开门" in page.text and "抬杆" not in page.text
    htmx = {"HX-Request": "true"}
    r = _post(
        console, f"/devices/{door.id}/commands", {"command": "open_door", "door": "3号楼单元门"}, **htmx
    )
    assert (
        r.status_code == 200 and "待设备取走" in r.text and "every 2s [!window.linliCommandsLive]" in r.text
    )
    refused = _post(
        console, f"/devices/{door.id}/commands", {"command": "push_credential", "kind": "face"}, **htmx
    )
    assert 'data-testid="command-error"' in refused.text and "args.person_id" in refused.text

    [wire] = client.get("/api/v1/ingest/commands", headers=signed(door.serial, secret, b"")).json()[
        "commands"
    ]
    assert console.get(f"/devices/{door.id}/commands").text.count("已发送") == 1
    body = body_of({"status": "ok", "detail": "已开门"})
    acked = client.post(
        f"/api/v1/ingest/commands/{wire['id']}/ack", content=body, headers=signed(door.serial, secret, body)
    )
    assert acked.status_code == 200, acked.text
    panel = console.get(f"/devices/{door.id}/commands", headers=htmx).text
    assert "已确认" in panel and "已开门" in panel and "every 2s" not in panel  # nothing open: polling stops
    [entry] = _audits(session, "device.command_ack")
    assert entry.actor == f"device:{door.serial}" and entry.detail["status"] == "acknowledged"
    assert entry.detail["command_id"] == wire["id"] and entry.area_code == world.tianfu


def test_a_credentials_person_is_typed_as_staff_know_them(console, session, world) -> None:  # type: ignore[no-untyped-def]
    """A name, an ID number or an address in the command form finds the person; none is refused there."""
    from tests.builders import person
    from tests.registry.helpers import house, resident

    door, _ = device(session, world.tianfu, serial="DS-K1T671M-TF-0302", kind="face_terminal")
    home = house(session, Principal.system(), world.tianfu, building="3", room="1201")
    wang = resident(session, Principal.system(), home, person(name="王建国"))
    session.commit()
    console.login("shequ")
    page = console.get(f"/devices/{door.id}")
    htmx = {"HX-Request": "true"}
    assert 'data-testid="command-person"' in page.text
    pushed = _post(
        console,
        f"/devices/{door.id}/commands",
        {"command": "push_credential", "kind": "face", "person": "3-1201"},
        **htmx,
    )
    assert (
        'data-testid="command-error"' not in pushed.text
        and f"<code>person_id</code>={wang.id}" in pushed.text
    )
    prefix = {"command": "push_credential", "kind": "face", "person": "王建"}
    assert (
        'data-testid="command-error"'
        not in _post(console, f"/devices/{door.id}/commands", prefix, **htmx).text
    )
    unknown = {"command": "revoke_credential", "kind": "face", "person": "钱多多"}
    nobody = _post(console, f"/devices/{door.id}/commands", unknown, **htmx)
    assert "没有找到“钱多多”" in nobody.text and "<code>person</code>" in nobody.text


def test_the_register_exports_in_the_imports_columns_and_an_edited_export_imports_back(
    console, session, world
) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    building, _ = places.upsert_building(session, Principal.system(), community_code=world.tianfu, number="9")
    device(
        session,
        world.tianfu,
        serial="DS-K1T671M-TF-EX1",
        kind="face_terminal",
        name="9号楼1单元门",
        location="9号楼1单元",
        building_id=building.id,
        floor=1,
        installed_on=date(2024, 5, 20),
        grid=world.tianfu_grid,
    )
    device(
        session,
        world.tianfu,
        serial="YG-TF-EX2",
        kind="smoke_sensor",
        location="9号楼配电间",
        state="maintenance",
    )
    device(session, world.yuyu, serial="DS-2CD-YY-EX3", kind="camera", location="北门")
    session.commit()
    console.login("shequ")
    listed = console.get("/devices", params={"q": "EX"}).text
    link = re.search(r'<a class="button" href="(/devices\.xlsx[^"]*)" data-testid="export"', listed)
    assert link is not None and "q=EX" in link.group(1)
    got = console.get(link.group(1).replace("&amp;", "&"))
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(got.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    assert header[:6] == ["设备名称", "设备类型", "厂商", "型号", "接入协议", "序列号"]
    assert header[-3:] == ["所属社区", "在线", "最后在线"]
    by_serial = {r[header.index("序列号")]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert set(by_serial) == {"DS-K1T671M-TF-EX1", "YG-TF-EX2"}  # not Yuyu's camera
    door = by_serial["DS-K1T671M-TF-EX1"]
    assert door["设备类型"] == "人脸识别门禁" and door["楼栋"] == "9" and door["楼层"] == 1
    assert (
        door["安装日期"] == "2024-05-20"
        and door["网格"] == world.tianfu_grid
        and door["所属社区"] == "天府和苑"
    )
    assert door["在线"] == "离线" and by_serial["YG-TF-EX2"]["状态"] == "维修中"
    console.login("admin")
    audit = console.get("/audit", params={"action": "export"}).text
    assert "设备台账" in audit

    # The same sheet, one location changed and one row of another community added, imports back into
    # 天府和苑: the change is made, the rest unchanged, the foreign row refused naming its column.
    console.login("shequ")
    door["安装位置"] = "9号楼1单元东侧"
    foreign = {**by_serial["YG-TF-EX2"], "序列号": "YG-YY-EX4", "所属社区": "昱宇西苑"}
    book = Workbook()
    out = book.active
    out.append(header)
    for values in (door, by_serial["YG-TF-EX2"], foreign):
        out.append([values[h] for h in header])
    buffer = io.BytesIO()
    book.save(buffer)
    page = console.get("/devices/import")
    files = {"file": ("设备台账.xlsx", buffer.getvalue(), "application/octet-stream")}
    fields = {"csrf": csrf_of(page.text), "community": world.tianfu, "entity": "devices"}
    done = console.client.post("/devices/import", data=fields, files=files)
    assert done.status_code == 200
    session.expire_all()
    moved = session.scalar(select(Device).where(Device.serial == "DS-K1T671M-TF-EX1"))
    assert moved is not None and moved.location == "9号楼1单元东侧" and moved.building_id == building.id
    assert session.scalar(select(Device).where(Device.serial == "YG-YY-EX4")) is None
    for outcome, count in (("created", 0), ("updated", 1), ("unchanged", 1)):
        assert f'data-testid="{outcome}">{count}<' in done.text, outcome
    assert "与导入时所选社区“天府和苑”不符" in done.text
    # A grid worker may read devices but not export them.
    console.login("wangge")
    assert 'data-testid="export"' not in console.get("/devices").text
    assert console.get("/devices.xlsx").status_code == 403


def test_cli_exports_the_device_register(tmp_path, settings, engine, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from openpyxl import load_workbook
    from sqlalchemy import delete
    from sqlalchemy.orm import Session as PlainSession
    from typer.testing import CliRunner

    from linli.cli import app
    from linli.devices import register
    from linli.settings import get_settings

    with PlainSession(engine) as plain:  # the CLI reads what is committed: a device of its own, removed after
        facts = {
            "serial": "YG-XF-CLI-01",
            "kind": "smoke_sensor",
            "community": world.xingfu,
            "vendor": "海曼",
        }
        register.create(plain, Principal.system(), {**facts, "location": "3号楼配电间"})
        plain.commit()
    out = tmp_path / "设备台账.xlsx"
    monkeypatch.setenv("LINLI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LINLI_SECRET_KEY", settings.secret_key)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["export", "list", "devices", str(out), "--community", world.xingfu])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {"file": str(out), "rows": 1}
        rows = [[c.value for c in row] for row in load_workbook(out).active.iter_rows()]
        row = dict(zip(rows[0], rows[1], strict=True))
        assert row["序列号"] == "YG-XF-CLI-01" and row["设备类型"] == "烟感" and row["所属社区"] == "幸福里"
        bad = CliRunner().invoke(app, ["export", "list", "gadgets", str(out)])
        assert bad.exit_code != 0 and "devices" in bad.output
    finally:
        with engine.begin() as conn:
            conn.execute(delete(Device).where(Device.serial == "YG-XF-CLI-01"))
            conn.execute(
                delete(AuditEntry).where(  # the create's and the export's
                    AuditEntry.target_type.in_(["device", "devices"]),
                    AuditEntry.area_code.startswith(world.xingfu),
                )
            )
        get_settings.cache_clear()
