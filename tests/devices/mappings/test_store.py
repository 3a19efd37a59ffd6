"""Mapping documents in the database: checked on save (field and line), versioned, scoped, resolved live."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli.core.audit import AuditEntry
from linli.core.errors import Conflict, Forbidden, NotFound
from linli.devices import service as hub
from linli.devices.mappings import bindings, service
from linli.devices.mappings.service import MappingInvalid
from linli.devices.models import StoredEvent
from tests.builders import World
from tests.conftest import Users
from tests.devices.helpers import T0, device

GATE_V1 = """\
# 某品牌道闸 JSON 推送
name: east-gate
format: json
records: "$.data.records[*]"
type: {path: "$.inout", map: {1: vehicle.entered, 2: vehicle.exited}}
id: {path: "$.recordId"}
occurred_at: {path: "$.passTime", format: epoch_ms}
payload:
  plate: {path: "$.车牌号"}
  lane: {const: 东门}
"""
GATE_V2 = GATE_V1.replace("lane: {const: 东门}", 'lane: {path: "$.车道", default: 东门}')


def _push(records: list[dict[str, object]]) -> bytes:
    return json.dumps({"sn": "ignored", "data": {"records": records}}, ensure_ascii=False).encode()


def _record(uid: str, plate: str, lane: str = "东门入口2") -> dict[str, object]:
    return {
        "recordId": uid,
        "车牌号": plate,
        "inout": 1,
        "passTime": int(T0.timestamp() * 1000),
        "车道": lane,
    }


def test_a_saved_fix_takes_effect_on_the_next_batch_without_a_restart(
    session: Session, world: World, as_user: Users
) -> None:
    admin = as_user("admin")
    gate, _ = device(session, world.tianfu, serial="XXG-TF-E01", kind="plate_gate")
    mapping, _ = service.create(session, admin, community_code="", document=GATE_V1)
    bindings.bind(session, admin, device_id=gate.id, adapter="mapping:east-gate")

    def ingest(uid: str, plate: str) -> StoredEvent:
        reader = bindings.reader_for(session, adapter="mapping:east-gate", community_code=world.tianfu)
        envelopes = reader.parse(_push([_record(uid, plate)]), {}, device=gate.serial, received_at=T0)
        result = hub.ingest(session, envelopes, source=reader.source, received_at=T0)
        assert result.stored == 1, result.summary()
        return session.scalars(select(StoredEvent).where(StoredEvent.id == result.event_ids[0])).one()

    assert ingest("R1", "陕A11111").payload["lane"] == "东门"
    service.save(session, admin, mapping_id=mapping.id, document=GATE_V2, note="车道取推送里的值")
    second = ingest("R2", "陕A22222")
    assert second.payload["lane"] == "东门入口2" and second.source == "mapping:east-gate"
    # going back to version 1 takes effect the same way
    service.activate(session, admin, mapping_id=mapping.id, version=1)
    assert ingest("R3", "陕A33333").payload["lane"] == "东门"
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "device_mapping"))
    assert list(actions) == ["mapping.create", "mapping.save", "mapping.activate"]


@pytest.mark.parametrize(
    ("broken", "field", "line"),
    [
        (GATE_V1.replace("format: epoch_ms", "format: epoch_ms, tz: Mars/Base"), "occurred_at.tz", 7),
        (GATE_V1.replace('"$.车牌号"', '"$.车牌号[*]"'), "payload.plate.path", 9),
        (GATE_V1.replace("plate: {path", "plat: {path"), "payload", 8),
        (
            GATE_V1.replace("lane: {const: 东门}", "lane: {const: 东门, colour: red}"),
            "payload.lane.colour",
            10,
        ),
        (GATE_V1.replace("records:", "records: [unclosed\n"), "", 5),
    ],
)
def test_a_bad_document_is_refused_naming_field_and_line(
    session: Session, as_user: Users, broken: str, field: str, line: int
) -> None:
    admin = as_user("admin")
    with pytest.raises(MappingInvalid) as caught:
        service.create(session, admin, community_code="", document=broken)
    problem = caught.value.problems[0]
    assert (problem.field, problem.line) == (field, line), caught.value.problems
    assert f"第 {line} 行" in caught.value.message
    assert session.scalar(select(func.count()).select_from(StoredEvent)) == 0


def test_versions_diff_and_unchanged_saves(session: Session, as_user: Users) -> None:
    admin = as_user("admin")
    mapping, first = service.create(session, admin, community_code="", document=GATE_V1)
    second = service.save(session, admin, mapping_id=mapping.id, document=GATE_V2)
    assert [v.version for v in service.versions(session, mapping=mapping)] == [2, 1]
    changes = service.diff(first, second)
    assert ("del", "-  lane: {const: 东门}") in changes
    assert ("add", '+  lane: {path: "$.车道", default: 东门}') in changes
    with pytest.raises(Conflict):
        service.save(session, admin, mapping_id=mapping.id, document=GATE_V2)
    with pytest.raises(MappingInvalid, match="文档名称 west-gate"):
        service.save(
            session, admin, mapping_id=mapping.id, document=GATE_V2.replace("east-gate", "west-gate")
        )


def test_community_scoping_of_mappings(session: Session, world: World, as_user: Users) -> None:
    tianfu = as_user("shequ")
    with pytest.raises(Forbidden):
        service.create(session, tianfu, community_code="", document=GATE_V1)
    with pytest.raises(NotFound):
        service.create(session, tianfu, community_code=world.yuyu, document=GATE_V1)
    mine, _ = service.create(session, tianfu, community_code=world.tianfu, document=GATE_V1)
    assert [m.name for m in service.get_all(session, tianfu) if not m.builtin] == ["east-gate"]

    yuyu = as_user("shequ2")
    assert [m.name for m in service.get_all(session, yuyu) if not m.builtin] == []
    with pytest.raises(NotFound):
        service.get_or_raise(session, yuyu, mapping_id=mine.id)
    with pytest.raises(NotFound):
        service.save(session, yuyu, mapping_id=mine.id, document=GATE_V2)
    # Yuyu's own mapping of the same name is a different one; a device resolves its community's first
    service.create(session, yuyu, community_code=world.yuyu, document=GATE_V2)
    admin = as_user("admin")
    service.create(session, admin, community_code="", document=GATE_V1.replace("东门}", "全区}"))
    assert len([m for m in service.get_all(session, admin) if m.name == "east-gate"]) == 3
    lanes = {
        code: service.resolve(session, name="east-gate", community_code=code).payload["lane"].spec
        for code in (world.tianfu, world.yuyu, world.xingfu)
    }
    assert lanes[world.tianfu].const == "东门" and lanes[world.yuyu].path == "$.车道"
    assert lanes[world.xingfu].const == "全区"


def test_a_community_worker_cannot_bind_another_communitys_device(
    session: Session, world: World, as_user: Users
) -> None:
    cam, _ = device(session, world.yuyu, serial="DH-YY-BIND-01")
    tianfu = as_user("shequ")
    with pytest.raises(NotFound):
        bindings.bind(session, tianfu, device_id=cam.id, adapter="patrol_csv")
    with pytest.raises(NotFound, match="no-such"):
        bindings.bind(session, as_user("admin"), device_id=cam.id, adapter="mapping:no-such")


def test_builtins_are_listed_read_only_and_overridden_by_a_stored_copy(
    session: Session, as_user: Users
) -> None:
    admin = as_user("admin")
    builtin = {m.name: m for m in service.get_all(session, admin) if m.builtin}
    assert "patrol_wand_csv" in builtin and not builtin["patrol_wand_csv"].overridden
    text = service.builtin_text("patrol_wand_csv")
    service.create(session, admin, community_code="", document=text.replace('default: ""', "default: 未登记"))
    listed = {(m.name, m.builtin): m for m in service.get_all(session, admin)}
    assert listed[("patrol_wand_csv", True)].overridden
    resolved = service.resolve(session, name="patrol_wand_csv", community_code="611102001001")
    assert resolved.payload["guard"].spec.default == "未登记"
