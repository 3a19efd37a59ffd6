"""What every device console page shares: labels of kinds, states, events and media; community and people's
names."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.timeutil import as_utc, format_local
from linli.devices import deadletters
from linli.devices.events import EventType
from linli.devices.health import UNMONITORED
from linli.devices.models import Device, StoredEvent
from linli.devices.vocab import KIND_LABELS, STATE_LABELS
from linli.registry import people

EVENT_LABELS: dict[str, str] = {
    EventType.ACCESS_GRANTED: "门禁通行",
    EventType.ACCESS_DENIED: "门禁拒绝",
    EventType.VEHICLE_ENTERED: "车辆入场",
    EventType.VEHICLE_EXITED: "车辆出场",
    EventType.PATROL_CHECKED_IN: "巡更打卡",
    EventType.SENSOR_READING: "传感器读数",
    EventType.METER_READING: "抄表读数",
    EventType.ALARM_RAISED: "报警",
    EventType.ALARM_CLEARED: "报警解除",
    EventType.THROW_DETECTED: "高空抛物",
    EventType.MOTION_DETECTED: "移动侦测",
    EventType.DEVICE_HEARTBEAT: "心跳",
    EventType.DEVICE_ONLINE: "设备上线",
    EventType.DEVICE_OFFLINE: "设备离线",
}
MEDIA_LABELS: dict[str, str] = {
    "plate": "车牌",
    "face": "人脸",
    "scene": "全景",
    "evidence": "取证",
    "": "图片",
}
LETTER_LABELS: dict[str, str] = {"new": "待处理", "replayed": "已重放", "discarded": "已丢弃"}
# An event's payload on its page: each field of the schema's payloads by name, the key shown beside it.
PAYLOAD_FIELD_LABELS: dict[str, str] = {
    "credential": "凭证",
    "door": "门",
    "direction": "方向",
    "card_no": "卡号",
    "person_ref": "设备人员编号",
    "reason": "原因",
    "similarity": "相似度",
    "plate": "车牌",
    "plate_colour": "车牌颜色",
    "vehicle_colour": "车身颜色",
    "lane": "车道",
    "confidence": "置信度",
    "checkpoint": "巡更点",
    "guard": "巡更人",
    "route": "巡更路线",
    "quantity": "测量项",
    "value": "数值",
    "unit": "计量单位",
    "alarm": "报警类型",
    "level": "级别",
    "detail": "详情",
    "floor": "楼层",
    "column": "所在列",
    "floor_uncertainty": "楼层误差",
    "trajectory": "轨迹",
    "origin": "起点",
    "size_px": "大小（像素）",
    "image_size": "画面尺寸",
    "kind": "类型",
    "region": "侦测区域",
    "target": "目标",
    "status": "状态",
    "firmware": "固件版本",
    "last_seen": "最后在线",
}
# The fixed values of those fields (the schema's Literal choices), by field.
PAYLOAD_VALUE_LABELS: dict[str, dict[str, str]] = {
    "credential": {
        "face": "人脸",
        "card": "门禁卡",
        "qr": "二维码",
        "password": "密码",
        "fingerprint": "指纹",
        "remote": "远程开门",
    },
    "direction": {"in": "进", "out": "出", "unknown": "未知"},
    "plate_colour": {
        "blue": "蓝",
        "yellow": "黄",
        "green": "绿",
        "white": "白",
        "black": "黑",
        "yellow_green": "黄绿",
        "unknown": "未知",
    },
    "alarm": {
        "smoke": "烟雾",
        "gas": "燃气泄漏",
        "water": "水浸",
        "door_forced": "门被强行打开",
        "door_open_too_long": "门长时间未关",
        "tamper": "防拆",
        "sos": "紧急求助",
        "intrusion": "区域入侵",
        "line_crossing": "越线",
        "elevator": "电梯故障",
        "hydrant_pressure": "消防水压异常",
        "video_loss": "视频丢失",
        "scene_change": "画面变更",
        "other": "其他",
    },
    "level": {"info": "提示", "warning": "警告", "critical": "紧急"},
    "kind": {
        "motion": "移动",
        "intrusion": "区域入侵",
        "line_crossing": "越线",
        "region_entrance": "进入区域",
        "region_exit": "离开区域",
    },
    "target": {"human": "人", "vehicle": "车", "unknown": "未知"},
    # What a reading measures: the simulator's and the adapters' quantities (others show as sent).
    "quantity": {
        "temperature": "温度",
        "humidity": "湿度",
        "smoke": "烟雾浓度",
        "gas": "可燃气体浓度",
        "pressure": "压力",
        "water": "用水量",
        "electricity": "用电量",
        "gas_volume": "燃气用量",
    },
}
# A plate read's colour in its one-line summary ("unknown" says nothing and is left out).
PLATE_COLOUR_SUMMARY: dict[str, str] = {
    "blue": "蓝牌",
    "yellow": "黄牌",
    "green": "绿牌",
    "white": "白牌",
    "black": "黑牌",
    "yellow_green": "黄绿牌",
}
LONG_LIST = 6  # a payload list longer than this (a trajectory) shows as its length


# A piece of an event's summary: text as the device sent it, or a message to translate with its values.
Part = str | tuple[str, dict[str, Any]]


def summary_parts(event_type: str, payload: dict[str, Any] | None) -> list[Part]:
    """What an event says, in a few words for a row of a list (the event's page shows every field): the
    credential and door of an access, the lane and plate colour of a plate read, the value of a reading,
    the kind and level of an alarm, the floor of a thrown object. Pieces of text the device sent stay as
    sent; labels are messages for the page's language. An unknown type or an empty payload says nothing.
    """
    p = payload or {}

    def label(field: str) -> Part | None:
        value = p.get(field)
        if value in (None, "", "unknown"):
            return None
        named = PAYLOAD_VALUE_LABELS.get(field, {}).get(value) if isinstance(value, str) else None
        return (named, {}) if named else str(value)

    def text(field: str) -> Part | None:
        value = p.get(field)
        return str(value) if value not in (None, "") else None

    parts: list[Part | None]
    kind = str(event_type)
    if kind in (EventType.ACCESS_GRANTED, EventType.ACCESS_DENIED):
        parts = [label("credential"), text("door"), label("direction"), text("reason")]
    elif kind in (EventType.VEHICLE_ENTERED, EventType.VEHICLE_EXITED):
        colour = PLATE_COLOUR_SUMMARY.get(str(p.get("plate_colour")))
        parts = [text("lane"), (colour, {}) if colour else None]
    elif kind == EventType.PATROL_CHECKED_IN:
        parts = [text("checkpoint"), text("guard"), text("route")]
    elif kind in (EventType.SENSOR_READING, EventType.METER_READING):
        value = p.get("value")
        shown = f"{value:g}" if isinstance(value, int | float) else None
        parts = [label("quantity"), f"{shown} {p.get('unit') or ''}".strip() if shown else None]
    elif kind in (EventType.ALARM_RAISED, EventType.ALARM_CLEARED):
        parts = [label("alarm"), label("level"), text("detail")]
    elif kind == EventType.THROW_DETECTED:
        floor, confidence = p.get("floor"), p.get("confidence")
        parts = [
            ("第 {n} 层", {"n": floor}) if isinstance(floor, int) else None,
            ("置信度 {p}", {"p": f"{confidence:.0%}"}) if isinstance(confidence, int | float) else None,
        ]
    elif kind == EventType.MOTION_DETECTED:
        parts = [label("kind"), text("region"), label("target")]
    elif kind == EventType.DEVICE_HEARTBEAT:
        firmware = text("firmware")
        parts = [text("status"), ("固件 {v}", {"v": firmware}) if firmware else None]
    elif kind == EventType.DEVICE_OFFLINE:  # the hub's own: its status repeats the type; when last heard
        parts = [("最后在线 {t}", {"t": _local_text(p.get("last_seen"))}) if p.get("last_seen") else None]
    else:
        parts = []
    return [part for part in parts if part is not None]


def silent_for(last_seen: datetime | None, now: datetime) -> Part | None:
    """How long an offline device has been silent, as a message: days and hours, hours and minutes, or
    minutes; None if it was never seen."""
    if last_seen is None:
        return None
    minutes = max(0, int((as_utc(now) - as_utc(last_seen)).total_seconds() // 60))
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return ("已离线 {d} 天 {h} 小时", {"d": days, "h": hours})
    if minutes >= 60:
        return ("已离线 {h} 小时 {m} 分", {"h": minutes // 60, "m": mins})
    return ("已离线 {m} 分钟", {"m": minutes})


def _local_text(value: Any) -> str:
    """An ISO time from a payload in Asia/Shanghai, to the second; as sent if it is not one."""
    try:
        return format_local(datetime.fromisoformat(str(value)), with_seconds=True)
    except ValueError:
        return str(value)


def summary_text(event_type: str, payload: dict[str, Any] | None) -> str:
    """summary_parts in Chinese, one line (the .xlsx export's)."""
    return " · ".join(
        part if isinstance(part, str) else part[0].format(**part[1])
        for part in summary_parts(event_type, payload)
    )


# Why a dead letter was refused, in words for staff, by kind (deadletters.REASONS); the reason itself is
# shown under it.
REASON_LABELS: dict[str, str] = {
    "schema": "不符合事件规范",
    "future": "发生时间超前，晚于平台时钟 5 分钟以上",
    "too_old": "发生时间过早，超出可接收的期限",
    "unknown_device": "设备未登记",
    "retired_device": "设备已停用",
    "wrong_device": "无权代其他设备发送",
    "oversized": "消息过大",
    "malformed": "JSON 格式有误",
    "adapter": "适配器无法读取",
    "device": "设备信息有误",
    "mapping": "映射无法读取",
}
BODY_SHOWN = 4000  # characters of a dead letter's body shown on the page


def reason_kind(reason: str) -> str | None:
    """The kind of a dead letter's reason in Chinese (a message to translate), None if it says itself."""
    code = deadletters.reason_code(reason)
    return REASON_LABELS[code] if code else None


def shown_body(body: str) -> str:
    """A dead letter's body for reading: JSON indented, at most BODY_SHOWN characters."""
    try:
        text = json.dumps(json.loads(body), ensure_ascii=False, indent=2)
    except ValueError:
        text = body
    return text if len(text) <= BODY_SHOWN else text[:BODY_SHOWN] + "\n…"


def community_names(session: Session) -> dict[str, str]:
    """Community names by code, in the caller's scope."""
    return {a.code: a.name for a in areas.get_all(session, level=Level.COMMUNITY.value)}


def device_places(session: Session, events: Iterable[StoredEvent]) -> dict[int, str]:
    """What staff call the devices of events (name, else location), by device id: a row then says
    "1号楼1单元门" above the serial. Devices with neither are left out (the row shows the serial alone)."""
    wanted = {e.device_id for e in events}
    if not wanted:
        return {}
    rows = session.execute(
        select(Device.id, Device.name, Device.location).where(Device.id.in_(sorted(wanted)))
    )
    return {device_id: name or location for device_id, name, location in rows if name or location}


def person_names(
    session: Session, principal: Principal, events: Iterable[StoredEvent], *, also: int | None = None
) -> dict[int, str]:
    """The names of the people events point at (and of `also`), for a caller who may read people."""
    if not principal.can(Perm.PEOPLE_READ):
        return {}
    wanted = {e.person_id for e in events if e.person_id is not None} | ({also} if also else set())
    return people.names_of(session, person_ids=wanted)


def labels() -> dict[str, Any]:
    """The vocabularies every device page shows, for the templates."""
    return {
        "kind_labels": KIND_LABELS,
        "state_labels": STATE_LABELS,
        "event_labels": EVENT_LABELS,
        "letter_labels": LETTER_LABELS,
        "media_labels": MEDIA_LABELS,
        "unmonitored": UNMONITORED,
        "field_labels": PAYLOAD_FIELD_LABELS,
        "value_labels": PAYLOAD_VALUE_LABELS,
        "long_list": LONG_LIST,
        "summary_parts": summary_parts,
        "reason_kind": reason_kind,
        "shown_body": shown_body,
        "reason_labels": REASON_LABELS,
    }
