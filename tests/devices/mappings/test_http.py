"""The mappings over HTTP: API (create, versions, preview, bindings, uploads, mapped pushes) and pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli.core.timeutil import to_local
from linli.devices.models import DeadLetter, RawPayload, StoredEvent
from tests.builders import World
from tests.devices.helpers import device
from tests.devices.mappings.test_store import GATE_V1, GATE_V2
from tests.web.helpers import Console


def _counts(session: Session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (StoredEvent, DeadLetter, RawPayload)
    )


def _gate_push(uid: str, plate: str, lane: str = "东门入口2") -> bytes:
    at = int(datetime.now(UTC).timestamp() * 1000) - 60_000
    record = {"recordId": uid, "车牌号": plate, "inout": 1, "passTime": at, "车道": lane}
    return json.dumps({"data": {"records": [record]}}, ensure_ascii=False).encode()


def test_a_pushed_device_reads_with_the_newest_saved_version(
    client: TestClient,
    login,
    session: Session,
    world: World,  # type: ignore[no-untyped-def]
) -> None:
    admin = login("admin")
    gate, secret = device(session, world.tianfu, serial="XXG-TF-HTTP-1", kind="plate_gate")
    session.commit()
    created = client.post("/api/v1/mappings", json={"document": GATE_V1, "community": ""}, headers=admin)
    assert created.status_code == 201, created.text
    bound = client.put(
        f"/api/v1/devices/{gate.id}/adapter", json={"adapter": "mapping:east-gate"}, headers=admin
    )
    assert bound.status_code == 200, bound.text

    url = f"/api/v1/ingest/mapped/{gate.serial}"
    first = client.post(url, params={"key": secret}, content=_gate_push("H1", "陕A10001"))
    assert first.json() == {"stored": 1, "duplicates": 0, "rejected": []}
    saved = client.post(
        f"/api/v1/mappings/{created.json()['id']}/versions", json={"document": GATE_V2}, headers=admin
    )
    assert saved.status_code == 201 and saved.json()["active_version"] == 2
    assert (
        client.post(url, params={"key": secret}, content=_gate_push("H2", "陕A10002")).json()["stored"] == 1
    )
    lanes = session.scalars(
        select(StoredEvent.payload).where(StoredEvent.type == "vehicle.entered").order_by(StoredEvent.id)
    ).all()
    assert [p["lane"] for p in lanes] == ["东门", "东门入口2"]
    assert client.post(url, params={"key": "wrong"}, content=_gate_push("H3", "陕A1")).status_code == 401
    unreadable = client.post(url, params={"key": secret}, content=b"{not json")
    assert unreadable.status_code == 422
    assert session.scalar(select(func.count()).where(DeadLetter.source == "push:mapping:east-gate")) == 1


def test_a_bad_document_is_refused_with_field_and_line_over_the_api(
    client: TestClient,
    login,  # type: ignore[no-untyped-def]
) -> None:
    admin = login("admin")
    broken = GATE_V1.replace("format: epoch_ms", "format: epoch_ms, tz: Mars/Base")
    answer = client.post("/api/v1/mappings", json={"document": broken}, headers=admin)
    assert answer.status_code == 422
    problems = answer.json()["error"]["problems"]
    assert problems[0]["field"] == "occurred_at.tz" and problems[0]["line"] == 7


def test_preview_stores_nothing(
    client: TestClient,
    login,
    session: Session,
    world: World,  # type: ignore[no-untyped-def]
) -> None:
    device(session, world.tianfu, serial="XXG-TF-PREV", kind="plate_gate")
    session.commit()
    before = _counts(session)
    worker = login("shequ")
    sample = _gate_push("P1", "陕A20001").decode()
    answer = client.post(
        "/api/v1/mappings/preview",
        json={"document": GATE_V2, "sample": sample, "content_type": "json", "device": "XXG-TF-PREV"},
        headers=worker,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [e["payload"]["plate"] for e in result["events"]] == ["陕A20001"]
    assert result["problems"] == [] and result["errors"] == [] and result["warnings"] == []
    unknown = client.post(
        "/api/v1/mappings/preview",
        json={"document": GATE_V2, "sample": sample, "content_type": "xml", "device": "NOPE"},
        headers=worker,
    ).json()
    assert "与映射格式 json 不一致" in unknown["errors"][0]["reason"]
    warned = client.post(
        "/api/v1/mappings/preview",
        json={"document": GATE_V2, "sample": sample, "content_type": "json", "device": "NOPE-1"},
        headers=worker,
    ).json()
    assert "未登记" in warned["warnings"][0]
    assert _counts(session) == before


def test_upload_over_the_api_is_idempotent_and_scoped(
    client: TestClient,
    login,
    session: Session,
    world: World,  # type: ignore[no-untyped-def]
) -> None:
    wand, _ = device(session, world.tianfu, serial="XG-TF-API-1", kind="patrol_handset")
    session.commit()
    yesterday = to_local(datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    data = (
        "巡检点,巡更员,巡更时间,巡更棒编号\n"
        f"北门岗亭,赵敏,{yesterday} 22:00:03,XG-TF-API-1\n"
        f"5号楼屋面,赵敏,{yesterday} 25:00:00,XG-TF-API-1\n"
    ).encode("gb18030")
    form = {"device_id": str(wand.id), "mapping": "patrol_csv"}
    files = {"file": ("巡更.csv", data, "text/csv")}
    worker = login("shequ")
    first = client.post("/api/v1/uploads", data=form, files=files, headers=worker).json()
    assert (first["stored"], first["duplicates"]) == (1, 0)
    assert [(r["row"], r["field"]) for r in first["rejected"]] == [(3, "occurred_at")]
    again = client.post("/api/v1/uploads", data=form, files=files, headers=worker).json()
    assert (again["stored"], again["duplicates"]) == (0, 1)
    other = client.post("/api/v1/uploads", data=form, files=files, headers=login("shequ2"))
    assert other.status_code == 404


def test_pages_editor_problems_builtin_and_scoping(
    console: Console,
    client: TestClient,
    login,
    session: Session,
    world: World,  # type: ignore[no-untyped-def]
) -> None:
    created = client.post(
        "/api/v1/mappings", json={"document": GATE_V1, "community": world.tianfu}, headers=login("shequ")
    ).json()
    console.login("shequ")
    listed = console.get("/mappings").text
    assert "east-gate" in listed and "patrol_wand_csv" in listed and "access_record_export" in listed
    page = console.get(f"/mappings/{created['id']}")
    assert page.status_code == 200 and "试一试" in page.text and "版本历史" in page.text
    csrf = console.csrf()
    broken = GATE_V2.replace('"$.车牌号"', '"$.车牌号[*]"')
    refused = client.post(f"/mappings/{created['id']}", data={"document": broken, "csrf": csrf})
    assert refused.status_code == 422 and "第 9 行" in refused.text and "payload.plate.path" in refused.text
    saved = client.post(
        f"/mappings/{created['id']}", data={"document": GATE_V2, "csrf": csrf, "note": "车道"}
    )
    assert saved.status_code == 200 and "已保存" in saved.text
    diff = console.get(f"/mappings/{created['id']}/diff", params={"a": 1, "b": 2}).text
    assert "-  lane: {const: 东门}" in diff
    tried = client.post(
        "/mappings/try",
        data={
            "document": GATE_V2,
            "sample": _gate_push("T1", "陕A30001").decode(),
            "content_type": "json",
            "device": "X",
            "csrf": csrf,
        },
        headers={"HX-Request": "true"},
    )
    assert "将生成 1 个事件" in tried.text and "陕A30001" in tried.text and "<html" not in tried.text
    builtin = console.get("/mappings/builtin/patrol_wand_csv").text
    assert "复制后编辑" in builtin
    # The try-it panel starts with the sample type the document reads, and the language's quick reference.
    assert '<option value="csv" selected>' in builtin and 'data-testid="mapping-help"' in builtin
    assert (
        '<option value="csv" selected>'
        in console.get("/mappings/new", params={"from": "access_record_export"}).text
    )
    assert '<option value="json" selected>' in console.get("/mappings/new").text

    client.post("/logout", data={"csrf": csrf})
    console.login("shequ2")
    assert console.get(f"/mappings/{created['id']}").status_code == 404
    assert "east-gate" not in console.get("/mappings").text


def test_the_sample_type_follows_the_documents_format() -> None:
    from linli.devices.mappings.pages import sample_type_of

    assert sample_type_of("name: a\nformat: xml\ntype: {const: device.heartbeat}") == "xml"
    assert sample_type_of('{"name": "a", "format": "form"}') == "form"
    assert sample_type_of("format: 'csv'") == sample_type_of("format: table") == "csv"
    assert (
        sample_type_of("name: a\n  # format: xml is in a comment, the format line below counts\nformat: csv")
        == "csv"
    )
    assert sample_type_of("format: yaml") == sample_type_of("") == sample_type_of("informat: xml") == "json"
