"""The declarative mapping on four unrelated vendors' recorded payloads: JSON, XML, form and CSV."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from linli.devices import adapters
from linli.devices.adapters import AdapterParseError
from linli.devices.adapters.mapping import (
    CompiledMapping,
    compile_mapping,
    load_document,
    parse_records,
    parse_with,
)
from linli.devices.events import Envelope, EventType

Sample = Callable[[str], bytes]
Headers = Callable[[str], dict[str, str]]
CST = timezone(timedelta(hours=8))
RECEIVED = datetime(2024, 5, 6, 1, 2, 11, tzinfo=UTC)


@pytest.fixture
def mapping_of(sample: Sample) -> Callable[[str], CompiledMapping]:
    """A recorded mapping document, loaded and compiled."""
    return lambda name: compile_mapping(load_document(sample(f"mapping/{name}")))


def test_plate_gate_json_records_become_vehicle_events(
    sample: Sample, headers_for: Headers, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    gate = mapping_of("gate.yaml")
    envelopes, errors = parse_records(
        gate, sample("mapping/gate_push.json"), headers_for("mapping/gate_push.json"), received_at=RECEIVED
    )
    assert envelopes == [
        Envelope(
            id="IN20240506081530001",
            device="XXG-2B-0451",
            type=EventType.VEHICLE_ENTERED,
            occurred_at=datetime(2024, 5, 6, 8, 15, 30, tzinfo=CST),
            received_at=RECEIVED,
            source="mapping:xx-gate-v2",
            payload={
                "plate": "苏E2K7M8",
                "plate_colour": "blue",
                "vehicle_colour": "white",
                "lane": "东门入口",
                "confidence": 0.96,
            },
        ),
        Envelope(
            id="OUT20240506081702002",
            device="XXG-2B-0451",
            type=EventType.VEHICLE_EXITED,
            occurred_at=datetime(2024, 5, 6, 8, 17, 2, 500000, tzinfo=CST),
            received_at=RECEIVED,
            source="mapping:xx-gate-v2",
            payload={"plate": "苏EF12345", "plate_colour": "green", "lane": "东门出口", "confidence": 0.88},
        ),
    ]
    assert [envelope.occurred_at.utcoffset() for envelope in envelopes] == [timedelta(hours=8)] * 2
    assert errors == [
        (2, "第3条记录: payload.plate: 缺少必填值（路径 $.车牌号）"),
        (3, "第4条记录: type: 值 '3' 不在映射表 map 中"),
    ]


def test_strict_parsing_stops_at_the_first_bad_record(
    sample: Sample, headers_for: Headers, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    with pytest.raises(AdapterParseError, match=r"第3条记录: payload\.plate") as caught:
        parse_with(
            mapping_of("gate.yaml"), sample("mapping/gate_push.json"), headers_for("mapping/gate_push.json")
        )
    assert caught.value.record == 2


def test_a_missing_records_list_is_a_payload_error(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    raw = sample("mapping/gate_push.json").replace(b'"records"', b'"rows"')
    with pytest.raises(AdapterParseError, match=r"找不到记录列表 records: \$\.data\.records\[\*\]"):
        parse_records(mapping_of("gate.yaml"), raw, {})


def test_alarm_panel_xml_fahrenheit_becomes_celsius_readings_and_door_alarms(
    sample: Sample, headers_for: Headers, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    panel = mapping_of("panel.yaml")
    envelopes = parse_with(panel, sample("mapping/panel_report.xml"), headers_for("mapping/panel_report.xml"))
    common = {"device": "AP7730-0012", "source": "mapping:panel-ap7730"}
    assert envelopes == [
        Envelope(
            id="5512",
            type=EventType.SENSOR_READING,
            occurred_at=datetime(2024, 5, 6, 8, 15, 30, tzinfo=CST),
            payload={"quantity": "temperature", "value": 25.0, "unit": "°C"},
            **common,
        ),
        Envelope(
            id="5513",
            type=EventType.ALARM_RAISED,
            occurred_at=datetime(2024, 5, 6, 8, 16, 2, tzinfo=CST),
            payload={"alarm": "door_forced", "level": "critical", "detail": "2号楼单元门"},
            **common,
        ),
        Envelope(
            id="5514",
            type=EventType.SENSOR_READING,
            occurred_at=datetime(2024, 5, 6, 0, 17, 45, tzinfo=UTC),
            payload={"quantity": "temperature", "value": 37.0, "unit": "°C"},
            **common,
        ),
    ]
    # a naive time is taken in the mapping's zone; an explicit offset (here Z) is kept as sent
    assert [envelope.occurred_at.utcoffset() for envelope in envelopes] == [
        timedelta(hours=8),
        timedelta(hours=8),
        timedelta(0),
    ]


def test_form_encoded_smoke_detector_with_gbk_values(
    sample: Sample, headers_for: Headers, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    smoke = mapping_of("smoke.yaml")
    [raised] = parse_with(smoke, sample("mapping/smoke_alarm.form"), headers_for("mapping/smoke_alarm.form"))
    assert raised == Envelope(
        id="smoke-ys10:919b3bd52f520ccd48627899c82390977c225811",
        device="868120301234567",
        type=EventType.ALARM_RAISED,
        occurred_at=datetime(2024, 5, 6, 9, 2, 10, tzinfo=CST),
        source="mapping:smoke-ys10",
        payload={"alarm": "smoke", "level": "critical", "detail": "3号楼2单元501厨房"},
    )
    assert raised.occurred_at.utcoffset() == timedelta(hours=8)


def test_raw_gbk_form_bytes_and_plus_spaces_are_decoded(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    [cleared] = parse_with(mapping_of("smoke.yaml"), sample("mapping/smoke_cleared_raw_gbk.form"), {})
    assert cleared.type is EventType.ALARM_CLEARED
    assert cleared.payload == {"alarm": "smoke", "level": "info", "detail": "3号楼2单元501 厨房"}
    assert cleared.occurred_at == datetime(2024, 5, 6, 9, 40, tzinfo=CST)


def test_ignored_codes_produce_nothing(sample: Sample, mapping_of: Callable[[str], CompiledMapping]) -> None:
    assert parse_records(mapping_of("smoke.yaml"), sample("mapping/smoke_heartbeat.form"), {}) == ([], [])


def test_the_charset_header_is_used_when_the_mapping_names_no_encoding(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    smoke = mapping_of("smoke.yaml")
    no_encoding = compile_mapping(smoke.doc.model_copy(update={"encoding": None}))
    raw = sample("mapping/smoke_alarm.form")
    with pytest.raises(AdapterParseError, match="无法按 utf-8 解码"):
        parse_with(no_encoding, raw, {})
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=GBK"}
    assert parse_with(no_encoding, raw, headers)[0].payload["detail"] == "3号楼2单元501厨房"


def test_hash_ids_are_stable_across_redelivery(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    smoke, raw = mapping_of("smoke.yaml"), sample("mapping/smoke_alarm.form")
    first = parse_with(smoke, raw, {}, received_at=RECEIVED)[0]
    again = parse_with(smoke, raw, {}, received_at=RECEIVED + timedelta(seconds=30))[0]
    later = parse_with(smoke, raw.replace(b"ts=1714957330", b"ts=1714957390"), {})[0]
    assert first.id == again.id != later.id


def test_the_device_argument_wins_over_the_payloads_serial(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    envelopes = parse_with(
        mapping_of("panel.yaml"), sample("mapping/panel_report.xml"), {}, device="PANEL-B2"
    )
    assert {envelope.device for envelope in envelopes} == {"PANEL-B2"}


def test_the_mapping_adapter_is_discovered_and_checks_the_named_mapping(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    adapter, panel = adapters.get("mapping"), mapping_of("panel.yaml")
    raw = sample("mapping/panel_report.xml")
    envelopes = adapter.parse(raw, {"X-Linli-Mapping": "panel-ap7730"}, mapping=panel, received_at=RECEIVED)
    assert [(envelope.id, envelope.received_at) for envelope in envelopes] == [
        ("5512", RECEIVED),
        ("5513", RECEIVED),
        ("5514", RECEIVED),
    ]
    with pytest.raises(AdapterParseError, match="推送指定映射 'xx-gate-v2'，但提供的映射是 'panel-ap7730'"):
        adapter.parse(raw, {"x-linli-mapping": "xx-gate-v2"}, mapping=panel)


def test_unmapped_codes_fall_back_to_the_default(
    sample: Sample, mapping_of: Callable[[str], CompiledMapping]
) -> None:
    push = json.loads(sample("mapping/gate_push.json"))
    push["data"]["records"] = [push["data"]["records"][3] | {"inout": 1}]
    [envelope] = parse_with(mapping_of("gate.yaml"), json.dumps(push).encode(), {})
    assert envelope.payload == {
        "plate": "苏E88D21",
        "plate_colour": "unknown",
        "lane": "东门入口",
        "confidence": 0.91,
    }
