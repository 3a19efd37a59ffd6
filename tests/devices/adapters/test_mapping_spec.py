"""The mapping document's own validation, its paths, units and times, and the console's preview."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from linli.devices.adapters import AdapterParseError
from linli.devices.adapters.mapping import (
    MappingError,
    builtin_mappings,
    compile_mapping,
    load_document,
    parse_with,
    preview,
)
from linli.devices.adapters.mapping.compile import parse_time
from linli.devices.adapters.mapping.paths import json_segments
from linli.devices.adapters.mapping.units import converter

Sample = Callable[[str], bytes]
CST = timezone(timedelta(hours=8))


def gate_doc(sample: Sample) -> dict[str, Any]:
    """The recorded plate-gate mapping as a plain dict, to edit in a test."""
    return load_document(sample("mapping/gate.yaml"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("format"), "format: Field required"),
        (
            lambda d: d.update(format="yaml"),
            "format: Input should be 'json', 'xml', 'form', 'csv' or 'table'",
        ),
        (lambda d: d.update(name="东门 道闸"), "name: String should match pattern"),
        (lambda d: d["type"]["map"].update({"3": "vehicle.parked"}), "type.map.3: Input should be"),
        (
            lambda d: d.update(type={"path": "$.inout", "const": "vehicle.entered"}),
            "type: 需要且只能有 path 或 const",
        ),
        (
            lambda d: d["payload"].update(lane={"path": "$.车道", "const": "东门"}),
            "payload.lane: 需要且只能有",
        ),
        (lambda d: d["payload"].update(colour={"path": "$.x"}), "payload: vehicle.entered 没有字段 colour"),
        (lambda d: d["payload"].pop("plate"), "payload: vehicle.entered 缺少必填字段 plate"),
        (
            lambda d: d["payload"]["confidence"].update(unit={"from": "°F", "to": "kPa"}),
            "payload.confidence.unit: 不支持",
        ),
        (lambda d: d["occurred_at"].update(tz="Asia/Beijing"), "occurred_at.tz: 未知时区 'Asia/Beijing'"),
        (lambda d: d.update(encoding="big-5x"), "encoding: 未知编码 'big-5x'"),
        (
            lambda d: d["payload"]["plate"].update(path="$.a..b"),
            "payload.plate.path: 路径 '$.a..b' 在第3个字符处无法解析",
        ),
        (lambda d: d["payload"]["plate"].update(path="$.list[*].plate"), "payload.plate.path: 字段路径"),
        (lambda d: d.update(id={"hash": ["device", "plate_no"]}), "id.hash: 未知字段 plate_no"),
        (lambda d: d.update(format="csv"), "format csv 每行/每次推送即一条记录，不能设置 records"),
        (
            lambda d: d.update(payload_by_type={"alarm.raised": {}}),
            "payload_by_type.alarm.raised: type 不会产生",
        ),
        (
            lambda d: d["payload"]["plate"].update(colour="blue"),
            "payload.plate.colour: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_mapping_document_is_refused_naming_the_key(
    sample: Sample, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    doc = gate_doc(sample)
    edit(doc)
    with pytest.raises(MappingError) as caught:
        compile_mapping(doc)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("name: [unclosed", "不是有效的 YAML/JSON"), ("- just\n- a list\n", "必须是一个对象")],
)
def test_a_document_that_is_not_an_object_is_refused(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        load_document(text)


def test_the_briefs_example_document_compiles_from_yaml() -> None:
    mapping = compile_mapping(
        load_document(
            """
name: xx-gate-v2
format: json
records: "$.data.records[*]"
type: {path: "$.inout", map: {"1": vehicle.entered, "2": vehicle.exited}}
id: {path: "$.recordId"}
device: {path: "$.sn"}
occurred_at: {path: "$.passTime", format: "%Y-%m-%d %H:%M:%S", tz: "Asia/Shanghai"}
payload:
  plate: {path: "$.plateNo"}
  plate_colour: {path: "$.plateColor", map: {"0": blue, "1": yellow, "2": green}, default: unknown}
  confidence: {path: "$.conf", scale: 0.01}
  lane: {const: "东门入口"}
"""
        )
    )
    record = {"recordId": "r1", "inout": "2", "passTime": "2024-05-06 08:15:30", "plateNo": "苏E2K7M8"}
    raw = json.dumps({"sn": "G1", "data": {"records": [record | {"plateColor": "0", "conf": 93}]}})
    [envelope] = parse_with(mapping, raw.encode(), {})
    assert (envelope.id, envelope.device, envelope.type.value) == ("r1", "G1", "vehicle.exited")
    assert envelope.occurred_at == datetime(2024, 5, 6, 8, 15, 30, tzinfo=CST)
    assert envelope.payload == {
        "plate": "苏E2K7M8",
        "plate_colour": "blue",
        "confidence": 0.93,
        "lane": "东门入口",
    }


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("$.data.records[*]", [("key", "data"), ("key", "records"), ("star", None)]),
        ("$.a[0].b", [("key", "a"), ("index", 0), ("key", "b")]),
        ("$['key.with.dots'][-1]", [("key", "key.with.dots"), ("index", -1)]),
        ("$.车牌号", [("key", "车牌号")]),
        ("plateNo", [("key", "plateNo")]),
    ],
)
def test_the_jsonpath_subset(path: str, segments: list[tuple[str, object]]) -> None:
    assert json_segments(path, where="x") == segments


@pytest.mark.parametrize(
    ("source", "target", "value", "expected"),
    [
        ("°F", "°C", 98.6, 37.0),
        ("℉", "℃", 32.0, 0.0),
        ("K", "°C", 273.15, 0.0),
        ("Pa", "kPa", 101325.0, 101.325),
        ("MPa", "kPa", 0.35, 350.0),
        ("psi", "kPa", 1.0, 6.894757293168),
        ("Wh", "kWh", 1500.0, 1.5),
        ("L", "m3", 250.0, 0.25),
    ],
)
def test_named_unit_conversions(source: str, target: str, value: float, expected: float) -> None:
    assert converter(source, target, where="x")(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "formats", "expected"),
    [
        (1714954530123, ["epoch_ms"], datetime(2024, 5, 6, 8, 15, 30, 123000, tzinfo=CST)),
        ("1714954530", ["epoch_s"], datetime(2024, 5, 6, 8, 15, 30, tzinfo=CST)),
        (
            "2024/05/06 08:15",
            ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"],
            datetime(2024, 5, 6, 8, 15, tzinfo=CST),
        ),
        ("2024-05-06T08:15:30+09:00", ["iso"], datetime(2024, 5, 6, 7, 15, 30, tzinfo=CST)),
    ],
)
def test_time_formats(value: object, formats: list[str], expected: datetime) -> None:
    parsed = parse_time(value, formats, "Asia/Shanghai")
    assert parsed == expected
    assert parsed.microsecond == expected.astimezone(UTC).microsecond


def test_a_time_in_no_listed_format_names_the_formats() -> None:
    with pytest.raises(AdapterParseError, match=r"时间 '06\.05\.2024' 不符合格式 iso, epoch_s"):
        parse_time("06.05.2024", ["iso", "epoch_s"], "Asia/Shanghai")


def test_preview_returns_events_as_dicts_and_record_errors(sample: Sample) -> None:
    result = preview(sample("mapping/gate.yaml").decode(), sample("mapping/gate_push.json").decode())
    assert [event["id"] for event in result["events"]] == ["IN20240506081530001", "OUT20240506081702002"]
    assert result["events"][0]["occurred_at"] == "2024-05-06T08:15:30+08:00"
    assert result["events"][0]["payload"]["plate"] == "苏E2K7M8"
    assert result["errors"] == [
        {"record": 2, "reason": "第3条记录: payload.plate: 缺少必填值（路径 $.车牌号）"},
        {"record": 3, "reason": "第4条记录: type: 值 '3' 不在映射表 map 中"},
    ]


def test_preview_of_pasted_text_for_a_gbk_device(sample: Sample) -> None:
    pasted = "imei=868120301234567&event=1&loc=3号楼2单元501厨房&ts=1714957330"
    result = preview(load_document(sample("mapping/smoke.yaml")), pasted)
    assert result["errors"] == []
    assert [event["payload"]["detail"] for event in result["events"]] == ["3号楼2单元501厨房"]
    escaped = sample("mapping/smoke_alarm.form").decode("ascii")
    assert preview(load_document(sample("mapping/smoke.yaml")), escaped)["events"] == result["events"]


@pytest.mark.parametrize(
    ("doc", "pasted", "reason"),
    [
        ("name: x\nformat: json\n", "{}", "type: Field required"),
        (None, '{"data": ', "JSON 格式错误"),
    ],
)
def test_preview_reports_document_and_payload_errors_without_raising(
    sample: Sample, doc: str | None, pasted: str, reason: str
) -> None:
    result = preview(doc or sample("mapping/gate.yaml").decode(), pasted)
    assert result["events"] == []
    [error] = result["errors"]
    assert error["record"] is None
    assert reason in error["reason"]


def test_builtin_mappings_are_shipped_compiled() -> None:
    builtin = builtin_mappings()
    assert sorted(builtin) == ["access_record_export", "patrol_wand_csv"]
    assert builtin["patrol_wand_csv"].doc.format == "csv"
    assert builtin["access_record_export"].doc.format == "table"
    builtin.clear()
    assert "patrol_wand_csv" in builtin_mappings()  # callers get a copy
