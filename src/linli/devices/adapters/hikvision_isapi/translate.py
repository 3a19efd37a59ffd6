"""What each ISAPI eventType means in schema v1: the rules from an alert dict to (type, payload, keys)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from linli.devices.adapters.common import header
from linli.devices.adapters.errors import AdapterParseError
from linli.devices.adapters.hikvision_isapi.alert import integer, section, text
from linli.devices.events import EventType

LANE_HEADER = "X-Linli-Lane"  # "in" / "out": set by the hub from the register for one-way lane cameras


class Translation(NamedTuple):
    """One alert's meaning: its event type, its payload and the fields that make it unique."""

    type: EventType
    payload: dict[str, Any]
    keys: tuple[str, ...]


Rule = Callable[[dict[str, Any], Mapping[str, str]], Translation | None]

PLATE_COLOURS = {
    "blue": "blue",
    "yellow": "yellow",
    "green": "green",
    "newenergygreen": "green",
    "white": "white",
    "black": "black",
    "yellowgreen": "yellow_green",
    "newenergyyellowgreen": "yellow_green",
}
# Chinese firmwares prefix the plate with its colour ("蓝皖A7XG66"); 黑 alone is also a province.
PLATE_PREFIXES = {
    "黄绿": "yellow_green",
    "蓝": "blue",
    "黄": "yellow",
    "绿": "green",
    "白": "white",
    "黑": "black",
}
PROVINCES = set("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领")
NO_PLATE = {"unknown", "无车牌", "无牌车", "车牌"}

# majorEventType 5 (event) subEventType → (granted, credential, reason), per the HCNetSDK MINOR_* codes.
ACCESS_CODES: dict[int, tuple[bool, str, str | None]] = {
    0x01: (True, "card", None),  # MINOR_LEGAL_CARD_PASS
    0x02: (True, "card", None),  # MINOR_CARD_AND_PSW_PASS
    0x03: (False, "card", "card_and_password_failed"),
    0x06: (False, "card", "card_no_right"),
    0x07: (False, "card", "card_invalid_period"),
    0x08: (False, "card", "card_expired"),
    0x09: (False, "card", "invalid_card"),  # MINOR_INVALID_CARD: no such card
    0x26: (True, "fingerprint", None),  # MINOR_FINGERPRINT_COMPARE_PASS
    0x27: (False, "fingerprint", "fingerprint_not_matched"),
    0x31: (False, "fingerprint", "fingerprint_unknown"),
    0x4B: (True, "face", None),  # 75 MINOR_FACE_VERIFY_PASS
    0x4C: (False, "face", "face_not_matched"),  # 76 MINOR_FACE_VERIFY_FAIL
    0x4D: (True, "face", None),  # MINOR_EMPLOYEENO_AND_FACE_VERIFY_PASS
    0x4E: (False, "face", "employee_and_face_failed"),
    0x50: (False, "face", "face_not_recognised"),  # MINOR_FACE_RECOGNIZE_FAIL
    0x68: (True, "password", None),  # MINOR_EMPLOYEENO_AND_PW_PASS
    0x96: (False, "password", "password_failed"),
    0x97: (False, "password", "password_mismatch"),
    0x9C: (True, "qr", None),  # MINOR_QR_CODE_VERIFY_PASS
    0x9D: (False, "qr", "qr_code_failed"),
    0xB5: (True, "password", None),  # MINOR_PASSWD_VERIFY_PASS
}

MOTION_KINDS = {
    "vmd": "motion",
    "pir": "motion",
    "linedetection": "line_crossing",
    "fielddetection": "intrusion",
    "regionentrance": "region_entrance",
    "regionexiting": "region_exit",
}


def translate(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation | None:
    """The alert's meaning, or None for a valid alert we do not record (an unknown type, an ended state)."""
    kind = text(alert, "eventType")
    if not kind:
        raise AdapterParseError("缺少必填字段 eventType")
    rule = RULES.get(kind.lower())
    return rule(alert, headers) if rule else None


def anpr(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation:
    """ANPR: a plate read at a gate → vehicle.entered / vehicle.exited."""
    block = section(alert, "ANPR")
    raw_plate = text(block, "licensePlate")
    if not block or not raw_plate:
        raise AdapterParseError("ANPR 事件缺少 ANPR.licensePlate")
    prefix_colour, plate = split_plate_colour(raw_plate)
    lane = text(block, "line")
    vehicle_colour = text(section(block, "vehicleInfo"), "color")
    payload: dict[str, Any] = {
        "plate": "" if plate in NO_PLATE else plate,
        "plate_colour": PLATE_COLOURS.get(text(block, "plateColor").lower()) or prefix_colour or "unknown",
        "vehicle_colour": None if vehicle_colour in ("", "unknown") else vehicle_colour,
        "lane": lane,
        "confidence": _percent(text(block, "confidenceLevel")),
    }
    return Translation(_vehicle_direction(block, headers), payload, (payload["plate"], lane))


def split_plate_colour(plate: str) -> tuple[str | None, str]:
    """A colour prefix ('蓝皖A7XG66' → blue, '皖A7XG66'), only when a province letter follows it."""
    for prefix, colour in PLATE_PREFIXES.items():
        rest = plate[len(prefix) :]
        if plate.startswith(prefix) and rest[:1] in PROVINCES and len(rest) >= 7:
            return colour, rest
    return None, plate


def _vehicle_direction(block: dict[str, Any], headers: Mapping[str, str]) -> EventType:
    lane = header(headers, LANE_HEADER).lower()
    direction = {"in": "forward", "out": "reverse"}.get(lane) or text(block, "direction").lower()
    if direction == "forward":
        return EventType.VEHICLE_ENTERED
    if direction == "reverse":
        return EventType.VEHICLE_EXITED
    raise AdapterParseError(
        f"ANPR 行驶方向未知 ({direction or '空'})，无法判断进出；请在设备登记中设置车道方向（{LANE_HEADER}）"
    )


def _percent(value: str) -> float | None:
    try:
        return min(max(float(value) / 100, 0.0), 1.0) if value else None
    except ValueError as exc:
        raise AdapterParseError(f"confidenceLevel 不是数字: {value!r}") from exc


def access(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation | None:
    """AccessControllerEvent: a face/card/fingerprint/password/QR check → access.granted / access.denied."""
    block = section(alert, "AccessControllerEvent")
    if not block:
        raise AdapterParseError("AccessControllerEvent 事件缺少 AccessControllerEvent 节")
    major = integer(block, "majorEventType", where="AccessControllerEvent")
    minor = integer(block, "subEventType", where="AccessControllerEvent")
    rule = ACCESS_CODES.get(minor) if major == 5 else None
    if rule is None:
        return None  # door status, alarms and operations: not access decisions
    granted, credential, reason = rule
    door, card_no = text(block, "doorNo"), text(block, "cardNo")
    person_ref = text(block, "employeeNoString") or text(block, "employeeNo")
    payload = {
        "credential": credential,
        "door": door,
        "card_no": card_no or None,
        "person_ref": person_ref or None,
        "reason": reason,
    }
    event_type = EventType.ACCESS_GRANTED if granted else EventType.ACCESS_DENIED
    keys = (str(major), str(minor), text(block, "serialNo"), door, card_no, person_ref)
    return Translation(event_type, payload, keys)


def motion(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation | None:
    """VMD, PIR, linedetection, fielddetection, regionEntrance/Exiting → motion.detected (active only)."""
    if text(alert, "eventState").lower() == "inactive":
        return None  # the end of a motion period, not a new detection
    entry = section(section(alert, "DetectionRegionList"), "DetectionRegionEntry")
    target = (text(alert, "targetType") or text(entry, "detectionTarget")).lower()
    payload = {
        "kind": MOTION_KINDS[text(alert, "eventType").lower()],
        "region": text(entry, "regionID"),
        "target": target if target in ("human", "vehicle") else "unknown",
    }
    return Translation(EventType.MOTION_DETECTED, payload, (text(alert, "channelID"), payload["region"]))


def heartbeat(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation:
    """heartBeat → device.heartbeat."""
    return Translation(EventType.DEVICE_HEARTBEAT, {"status": "ok"}, ())


def video_loss(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation:
    """videoloss: inactive is the alertStream's idle keep-alive; active is a real loss of video."""
    if text(alert, "eventState").lower() == "inactive":
        return heartbeat(alert, headers)
    detail = f"videoloss channel {text(alert, 'channelID') or '?'}"
    payload = {"alarm": "other", "level": "warning", "detail": detail}
    return Translation(EventType.ALARM_RAISED, payload, (text(alert, "channelID"),))


def tamper(alert: dict[str, Any], headers: Mapping[str, str]) -> Translation | None:
    """shelteralarm / tamperdetection (lens covered) → alarm.raised tamper."""
    if text(alert, "eventState").lower() == "inactive":
        return None
    detail = f"{text(alert, 'eventType')} channel {text(alert, 'channelID') or '?'}"
    payload = {"alarm": "tamper", "level": "warning", "detail": detail}
    return Translation(EventType.ALARM_RAISED, payload, (text(alert, "channelID"),))


RULES: dict[str, Rule] = {
    "anpr": anpr,
    "accesscontrollerevent": access,
    **dict.fromkeys(MOTION_KINDS, motion),
    "heartbeat": heartbeat,
    "videoloss": video_loss,
    "shelteralarm": tamper,
    "tamperdetection": tamper,
}
