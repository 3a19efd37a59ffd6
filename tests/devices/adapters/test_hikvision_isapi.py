"""Hikvision ISAPI alarm-server pushes, from recorded payloads, to exact envelopes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from linli.devices.adapters import AdapterParseError
from linli.devices.adapters.hikvision_isapi.adapter import extract_media, parse
from linli.devices.adapters.hikvision_isapi.translate import split_plate_colour
from linli.devices.events import Envelope, EventType, MediaRef

Sample = Callable[[str], bytes]
Headers = Callable[[str], dict[str, str]]
CST = timezone(timedelta(hours=8))
RECEIVED = datetime(2024, 5, 6, 0, 15, 31, tzinfo=UTC)


def hik(name: str, sample: Sample, headers_for: Headers, **kwargs: object) -> list[Envelope]:
    """Parse one recorded Hikvision payload with the headers it arrived with."""
    path = f"hikvision/{name}"
    return parse(sample(path), headers_for(path), **kwargs)  # type: ignore[arg-type]


def test_anpr_xml_entry_becomes_vehicle_entered(sample: Sample, headers_for: Headers) -> None:
    [envelope] = hik("anpr_entry.xml", sample, headers_for, received_at=RECEIVED)
    assert envelope == Envelope(
        id="hik:bc349d8221fa7ac88ae6c15cc720898a31da0432",
        device="bc:ba:c2:3e:7d:10",
        type=EventType.VEHICLE_ENTERED,
        occurred_at=datetime(2024, 5, 6, 8, 15, 30, tzinfo=CST),
        received_at=RECEIVED,
        source="hikvision_isapi",
        payload={
            "plate": "苏E2K7M8",
            "plate_colour": "blue",
            "vehicle_colour": "white",
            "lane": "1",
            "confidence": 0.96,
        },
    )
    assert envelope.occurred_at.utcoffset() == timedelta(hours=8)


def test_anpr_multipart_exit_references_its_pictures(
    sample: Sample, headers_for: Headers, parts_of: Callable[[str], dict[str, bytes]]
) -> None:
    [envelope] = hik("anpr_exit_multipart.bin", sample, headers_for)
    assert envelope.type is EventType.VEHICLE_EXITED
    assert envelope.device == "DS-TCG2A5-20231104AACHL41827763"  # the alert's deviceID beats its MAC
    assert envelope.occurred_at == datetime(2024, 5, 6, 18, 47, 9, 512000, tzinfo=CST)
    assert envelope.payload == {
        "plate": "苏EF12345",
        "plate_colour": "green",
        "vehicle_colour": "black",
        "lane": "2",
        "confidence": 0.88,
    }
    assert envelope.media == [
        MediaRef(kind="image", ref="upload:licensePlatePicture.jpg", label="plate"),
        MediaRef(kind="image", ref="upload:detectionPicture.jpg", label="scene"),
    ]
    media = extract_media(
        sample("hikvision/anpr_exit_multipart.bin"), headers_for("hikvision/anpr_exit_multipart.bin")
    )
    assert media == parts_of("hikvision/anpr_exit_multipart.bin")
    assert all(blob.startswith(b"\xff\xd8") and blob.endswith(b"\xff\xd9") for blob in media.values())


def test_the_authenticated_sender_beats_the_alerts_own_identity(sample: Sample, headers_for: Headers) -> None:
    [envelope] = hik("anpr_exit_multipart.bin", sample, headers_for, device="GATE-EAST-OUT")
    assert envelope.device == "GATE-EAST-OUT"


def test_a_redelivered_alert_keeps_its_id_and_another_time_does_not(
    sample: Sample, headers_for: Headers
) -> None:
    raw, headers = sample("hikvision/anpr_entry.xml"), headers_for("hikvision/anpr_entry.xml")
    first = parse(raw, headers, received_at=RECEIVED)[0]
    again = parse(raw, headers, received_at=RECEIVED + timedelta(minutes=5))[0]
    same_instant = parse(raw.replace(b"2024-05-06T08:15:30+08:00", b"2024-05-06T00:15:30Z"), headers)[0]
    later = parse(raw.replace(b"08:15:30+08:00", b"08:15:31+08:00"), headers)[0]
    assert first.id == again.id == same_instant.id
    assert later.id != first.id


def test_the_lane_header_overrides_the_camera_relative_direction(
    sample: Sample, headers_for: Headers
) -> None:
    headers = {**headers_for("hikvision/anpr_entry.xml"), "X-Linli-Lane": "out"}
    [envelope] = parse(sample("hikvision/anpr_entry.xml"), headers)
    assert envelope.type is EventType.VEHICLE_EXITED


def test_an_unknown_direction_is_dead_lettered_with_the_fix(sample: Sample, headers_for: Headers) -> None:
    with pytest.raises(AdapterParseError, match=r"行驶方向未知 \(unknown\).*X-Linli-Lane"):
        hik("anpr_direction_unknown.xml", sample, headers_for)


def test_an_unreadable_plate_still_records_the_vehicle(sample: Sample, headers_for: Headers) -> None:
    headers = {**headers_for("hikvision/anpr_direction_unknown.xml"), "X-Linli-Lane": "in"}
    [envelope] = parse(sample("hikvision/anpr_direction_unknown.xml"), headers)
    assert envelope.type is EventType.VEHICLE_ENTERED
    assert envelope.payload == {"plate": "", "plate_colour": "unknown", "lane": "2", "confidence": 0.0}


@pytest.mark.parametrize(
    ("raw", "colour", "plate"),
    [
        ("蓝皖A7XG66", "blue", "皖A7XG66"),
        ("黄绿苏AD12345", "yellow_green", "苏AD12345"),
        ("黑黑A12345", "black", "黑A12345"),  # a black plate from Heilongjiang
        ("黑A12345", None, "黑A12345"),  # 黑 is the province here, not a colour
        ("KH35192", None, "KH35192"),
    ],
)
def test_colour_prefixes_are_split_only_before_a_province(raw: str, colour: str | None, plate: str) -> None:
    assert split_plate_colour(raw) == (colour, plate)


def test_face_pass_json_becomes_access_granted(sample: Sample, headers_for: Headers) -> None:
    [envelope] = hik("acs_face_pass.json", sample, headers_for)
    assert envelope == Envelope(
        id="hik:4f3897eb824a818ff744180c6a87ad67d39d8705",
        device="FX4417302",
        type=EventType.ACCESS_GRANTED,
        occurred_at=datetime(2024, 5, 6, 7, 58, 3, tzinfo=CST),
        source="hikvision_isapi",
        payload={"credential": "face", "door": "1", "direction": "unknown", "person_ref": "30201"},
    )


def test_card_pass_xml_becomes_access_granted(sample: Sample, headers_for: Headers) -> None:
    [envelope] = hik("acs_card_pass.xml", sample, headers_for)
    assert (envelope.type, envelope.device) == (EventType.ACCESS_GRANTED, "24:0f:9b:5a:1c:e3")
    assert envelope.payload == {
        "credential": "card",
        "door": "1",
        "direction": "unknown",
        "card_no": "3125467890",
        "person_ref": "50412",
    }


def test_invalid_card_multipart_becomes_access_denied_with_the_snapshot(
    sample: Sample, headers_for: Headers, parts_of: Callable[[str], dict[str, bytes]]
) -> None:
    name = "hikvision/acs_card_denied_multipart.bin"
    [envelope] = parse(sample(name), headers_for(name), device="ACS-3-1")
    assert envelope.type is EventType.ACCESS_DENIED
    assert envelope.device == "ACS-3-1"
    assert envelope.occurred_at == datetime(2024, 5, 6, 22, 31, 18, tzinfo=CST)
    assert envelope.payload == {
        "credential": "card",
        "door": "1",
        "direction": "unknown",
        "card_no": "1953862611",
        "reason": "invalid_card",
    }
    assert envelope.media == [MediaRef(kind="image", ref="upload:Picture", label="face")]
    assert extract_media(sample(name), headers_for(name)) == parts_of(name)


@pytest.mark.parametrize(
    ("sub_event", "expected"),
    [(76, (EventType.ACCESS_DENIED, "face", "face_not_matched")), (22, None), (1024, None)],
)
def test_access_codes_decide_granted_denied_or_ignored(
    sample: Sample, headers_for: Headers, sub_event: int, expected: tuple[EventType, str, str] | None
) -> None:
    raw = sample("hikvision/acs_face_pass.json").replace(
        b'"subEventType":\t75', f'"subEventType": {sub_event}'.encode()
    )
    envelopes = parse(raw, headers_for("hikvision/acs_face_pass.json"))
    if expected is None:
        assert envelopes == []  # door locked/unlocked and the like are not access decisions
    else:
        [envelope] = envelopes
        assert (envelope.type, envelope.payload["credential"], envelope.payload["reason"]) == expected


@pytest.mark.parametrize(
    ("name", "payload", "device"),
    [
        ("vmd_human.xml", {"kind": "motion", "region": "", "target": "human"}, "a4:14:37:8e:02:5c"),
        ("fielddetection.xml", {"kind": "intrusion", "region": "3", "target": "human"}, "a4:14:37:8e:02:5d"),
        (
            "linedetection.json",
            {"kind": "line_crossing", "region": "1", "target": "vehicle"},
            "a4:14:37:8e:02:5e",
        ),
    ],
)
def test_smart_events_become_motion_detected(
    sample: Sample, headers_for: Headers, name: str, payload: dict[str, str], device: str
) -> None:
    [envelope] = hik(name, sample, headers_for)
    assert (envelope.type, envelope.device, envelope.payload) == (EventType.MOTION_DETECTED, device, payload)


def test_heartbeat_becomes_device_heartbeat(sample: Sample, headers_for: Headers) -> None:
    [envelope] = hik("heartbeat.xml", sample, headers_for)
    assert envelope.type is EventType.DEVICE_HEARTBEAT
    assert envelope.payload == {"status": "ok"}
    assert envelope.occurred_at == datetime(2024, 5, 6, 8, 20, tzinfo=CST)


def test_an_idle_videoloss_is_a_heartbeat_and_a_naive_time_is_shanghai(
    sample: Sample, headers_for: Headers
) -> None:
    [envelope] = hik("videoloss_idle_naive_time.xml", sample, headers_for)
    assert envelope.type is EventType.DEVICE_HEARTBEAT
    assert envelope.occurred_at == datetime(2024, 5, 6, 0, 20, 5, tzinfo=UTC)
    assert envelope.occurred_at.utcoffset() == timedelta(hours=8)


def test_an_active_videoloss_raises_an_alarm(sample: Sample, headers_for: Headers) -> None:
    raw = sample("hikvision/videoloss_idle_naive_time.xml").replace(b">inactive<", b">active<")
    [envelope] = parse(raw, headers_for("hikvision/videoloss_idle_naive_time.xml"))
    assert envelope.type is EventType.ALARM_RAISED
    assert envelope.payload == {"alarm": "other", "level": "warning", "detail": "videoloss channel 1"}


@pytest.mark.parametrize("name", ["vmd_inactive.xml", "unknown_event.xml", "subscribe_response.xml"])
def test_valid_alerts_we_do_not_record_are_ignored_not_errors(
    sample: Sample, headers_for: Headers, name: str
) -> None:
    assert hik(name, sample, headers_for) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated.xml", "XML 不完整或格式错误"),
        ("acs_missing_fields.json", "缺少必填字段 AccessControllerEvent.subEventType"),
        ("anpr_broken_boundary.bin", "分隔符 --MIME_boundary 后跟着其他字符"),
    ],
)
def test_malformed_payloads_raise_with_a_clear_reason(
    sample: Sample, headers_for: Headers, name: str, reason: str
) -> None:
    with pytest.raises(AdapterParseError) as caught:
        hik(name, sample, headers_for)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        ([(b"<dateTime>2024-05-06T08:15:30+08:00</dateTime>", b"")], "缺少必填字段 dateTime"),
        ([(b"2024-05-06T08:15:30+08:00", b"06/05/2024 08:15")], "时间格式无法识别"),
        ([(b"<eventType>ANPR</eventType>", b"")], "缺少必填字段 eventType"),
        ([(f"<licensePlate>{'蓝苏E2K7M8'}</licensePlate>".encode(), b"")], "ANPR.licensePlate"),
        ([(b"<macAddress>bc:ba:c2:3e:7d:10</macAddress>", b"")], "无法确定设备"),
        (
            [
                (b"EventNotificationAlert ", b"EventNotification "),
                (b"</EventNotificationAlert>", b"</EventNotification>"),
            ],
            "不是 EventNotificationAlert",
        ),
    ],
)
def test_missing_or_bad_required_fields_are_named(
    sample: Sample, headers_for: Headers, edits: list[tuple[bytes, bytes]], reason: str
) -> None:
    raw = sample("hikvision/anpr_entry.xml")
    for old, new in edits:
        assert old in raw
        raw = raw.replace(old, new)
    with pytest.raises(AdapterParseError, match=reason):
        parse(raw, headers_for("hikvision/anpr_entry.xml"))


def test_a_multipart_without_an_event_part_is_an_error(sample: Sample, headers_for: Headers) -> None:
    name = "hikvision/anpr_exit_multipart.bin"
    raw = (
        sample(name)
        .replace(b'application/xml; charset="UTF-8"', b"image/jpeg")
        .replace(b"anpr.xml", b"a.jpg")
    )
    with pytest.raises(AdapterParseError, match="没有 XML/JSON 事件部分"):
        parse(raw, headers_for(name))


def test_every_envelope_carries_a_valid_typed_payload(sample: Sample, headers_for: Headers) -> None:
    names = ["anpr_entry.xml", "anpr_exit_multipart.bin", "acs_face_pass.json", "acs_card_pass.xml"]
    names += ["acs_card_denied_multipart.bin", "vmd_human.xml", "fielddetection.xml", "linedetection.json"]
    envelopes = [envelope for name in names for envelope in hik(name, sample, headers_for)]
    assert len(envelopes) == len(names)
    assert len({envelope.id for envelope in envelopes}) == len(names)
    assert [type(envelope.typed_payload()).__name__ for envelope in envelopes] == [
        "VehiclePayload",
        "VehiclePayload",
        "AccessPayload",
        "AccessPayload",
        "AccessPayload",
        "MotionPayload",
        "MotionPayload",
        "MotionPayload",
    ]


def test_extract_media_of_a_plain_push_is_empty(sample: Sample, headers_for: Headers) -> None:
    assert extract_media(sample("hikvision/anpr_entry.xml"), headers_for("hikvision/anpr_entry.xml")) == {}
