"""An event's one-line summary in lists: what it says, in a few words, for each type of the schema."""

from __future__ import annotations

from typing import Any

import pytest

from linli.core.i18n import translate
from linli.devices.events import EventType
from linli.devices.pages_common import summary_parts, summary_text


def _shown(event_type: str, payload: dict[str, Any] | None, lang: str = "zh") -> str:
    """The parts as a page in lang shows them."""
    return " · ".join(
        part if isinstance(part, str) else translate(part[0], lang, **part[1])
        for part in summary_parts(event_type, payload)
    )


@pytest.mark.parametrize(
    ("event_type", "payload", "zh", "en"),
    [
        (
            "access.granted",
            {"credential": "face", "door": "3号楼1单元门", "direction": "in", "similarity": 0.93},
            "人脸 · 3号楼1单元门 · 进",
            "Face · 3号楼1单元门 · In",
        ),
        (
            "access.denied",
            {
                "credential": "card",
                "door": "南门",
                "direction": "unknown",
                "card_no": "3F2A91",
                "reason": "卡已挂失",
            },
            "门禁卡 · 南门 · 卡已挂失",
            None,
        ),
        (
            "vehicle.entered",
            {"plate": "陕A12345", "plate_colour": "blue", "lane": "南门入口", "confidence": 0.98},
            "南门入口 · 蓝牌",
            "南门入口 · Blue plate",
        ),
        ("vehicle.exited", {"plate": "陕AD12345", "plate_colour": "unknown"}, "", None),
        (
            "patrol.checked_in",
            {"checkpoint": "3号楼地下室", "guard": "夜班一组", "route": "东区"},
            "3号楼地下室 · 夜班一组 · 东区",
            None,
        ),
        ("sensor.reading", {"quantity": "temperature", "value": 23.5, "unit": "°C"}, "温度 · 23.5 °C", None),
        ("sensor.reading", {"quantity": "pressure", "value": 312.0, "unit": "kPa"}, "压力 · 312 kPa", None),
        # A quantity nobody labelled stays as the device sent it.
        ("sensor.reading", {"quantity": "pm25", "value": 41, "unit": "µg/m3"}, "pm25 · 41 µg/m3", None),
        (
            "meter.reading",
            {"quantity": "water", "value": 1234.56, "unit": "m3"},
            "用水量 · 1234.56 m3",
            "Water use · 1234.56 m3",
        ),
        (
            "alarm.raised",
            {"alarm": "door_forced", "level": "critical", "detail": "18号楼1单元门"},
            "门被强行打开 · 紧急 · 18号楼1单元门",
            None,
        ),
        ("alarm.cleared", {"alarm": "smoke", "level": "warning"}, "烟雾 · 警告", "Smoke · Warning"),
        (
            "throw.detected",
            {"floor": 12, "confidence": 0.874},
            "第 12 层 · 置信度 87%",
            "Floor 12 · Confidence 87%",
        ),
        ("throw.detected", {"confidence": 0.6}, "置信度 60%", None),
        (
            "motion.detected",
            {"kind": "line_crossing", "region": "北侧围墙", "target": "human"},
            "越线 · 北侧围墙 · 人",
            None,
        ),
        (
            "device.heartbeat",
            {"status": "ok", "firmware": "V5.5.0"},
            "ok · 固件 V5.5.0",
            "ok · Firmware V5.5.0",
        ),
        # The hub's own: online says nothing more than its type; offline says when the device was last heard.
        ("device.online", {"status": "online", "last_seen": "2026-12-06T19:21:04+00:00"}, "", None),
        (
            "device.offline",
            {"status": "offline", "last_seen": "2026-12-06T19:21:04+00:00"},
            "最后在线 2026-12-07 03:21:04",
            "Last seen 2026-12-07 03:21:04",
        ),
        ("device.offline", {"last_seen": "yesterday"}, "最后在线 yesterday", None),
        ("device.offline", {}, "", None),
        ("device.online", None, "", None),
        ("some.future_type", {"anything": 1}, "", None),
    ],
)
def test_each_type_says_what_matters(event_type: str, payload: Any, zh: str, en: str | None) -> None:
    assert _shown(event_type, payload) == zh
    assert summary_text(event_type, payload) == zh
    if en is not None:
        assert _shown(event_type, payload, "en") == en


def test_every_type_of_the_schema_has_a_summary() -> None:
    """A new event type must say something in lists: each type but device.online has a branch."""
    quiet = {EventType.DEVICE_ONLINE}
    samples: dict[str, dict[str, Any]] = {
        EventType.ACCESS_GRANTED: {"credential": "qr"},
        EventType.ACCESS_DENIED: {"credential": "password"},
        EventType.VEHICLE_ENTERED: {"plate": "陕A1", "lane": "1"},
        EventType.VEHICLE_EXITED: {"plate": "陕A1", "plate_colour": "green"},
        EventType.PATROL_CHECKED_IN: {"checkpoint": "A"},
        EventType.SENSOR_READING: {"quantity": "humidity", "value": 60, "unit": "%"},
        EventType.METER_READING: {"quantity": "electricity", "value": 10, "unit": "kWh"},
        EventType.ALARM_RAISED: {"alarm": "sos"},
        EventType.ALARM_CLEARED: {"alarm": "gas"},
        EventType.THROW_DETECTED: {"floor": 3, "confidence": 0.9},
        EventType.MOTION_DETECTED: {"kind": "intrusion"},
        EventType.DEVICE_HEARTBEAT: {"status": "normal"},
        EventType.DEVICE_OFFLINE: {"status": "offline", "last_seen": "2026-12-06T08:00:00+00:00"},
    }
    for event_type in EventType:
        if event_type in quiet:
            continue
        assert summary_parts(event_type.value, samples[event_type]), event_type


def test_odd_values_never_break_a_list() -> None:
    """Values of the wrong kind (an adapter's mapping gone wrong, an old stored row) are shown or skipped."""
    assert summary_text("sensor.reading", {"quantity": "temperature", "value": "hot"}) == "温度"
    assert summary_text("throw.detected", {"floor": "12", "confidence": None}) == ""
    assert summary_text("access.granted", {"credential": 7, "door": 0}) == "7 · 0"


def test_how_long_a_device_has_been_silent() -> None:
    from datetime import UTC, datetime, timedelta

    from linli.devices.pages_common import silent_for

    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert silent_for(None, now) is None
    assert silent_for(now - timedelta(minutes=59, seconds=50), now) == ("已离线 {m} 分钟", {"m": 59})
    assert silent_for(now - timedelta(minutes=60), now) == ("已离线 {h} 小时 {m} 分", {"h": 1, "m": 0})
    assert silent_for(now - timedelta(days=40, hours=1), now) == ("已离线 {d} 天 {h} 小时", {"d": 40, "h": 1})
    assert silent_for(now.replace(tzinfo=None) - timedelta(minutes=5), now) == ("已离线 {m} 分钟", {"m": 5})
    assert silent_for(now + timedelta(minutes=5), now) == ("已离线 {m} 分钟", {"m": 0})  # a clock skew
