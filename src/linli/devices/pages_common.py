"""What every device console page shares: labels of kinds, states, events and media; community and people's
names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.devices.events import EventType
from linli.devices.health import UNMONITORED
from linli.devices.models import StoredEvent
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


def community_names(session: Session) -> dict[str, str]:
    """Community names by code, in the caller's scope."""
    return {a.code: a.name for a in areas.get_all(session, level=Level.COMMUNITY.value)}


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
    }
