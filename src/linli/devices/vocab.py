"""Words for device kinds and states: the codes, their Chinese labels, and what staff type in sheets."""

from __future__ import annotations

from linli.core.errors import Invalid
from linli.devices.models import DeviceKind, DeviceState

KIND_LABELS: dict[str, str] = {
    DeviceKind.CAMERA: "摄像机",
    DeviceKind.FACE_TERMINAL: "人脸识别门禁",
    DeviceKind.CARD_READER: "刷卡门禁",
    DeviceKind.PLATE_GATE: "车牌识别道闸",
    DeviceKind.BARRIER: "道闸",
    DeviceKind.PATROL_TAG: "巡更点",
    DeviceKind.PATROL_HANDSET: "巡更棒",
    DeviceKind.SMOKE_SENSOR: "烟感",
    DeviceKind.GAS_SENSOR: "燃气报警器",
    DeviceKind.WATER_SENSOR: "水浸传感器",
    DeviceKind.DOOR_SENSOR: "门磁",
    DeviceKind.SOS_BUTTON: "紧急呼叫按钮",
    DeviceKind.WATER_METER: "智能水表",
    DeviceKind.ELECTRICITY_METER: "智能电表",
    DeviceKind.GAS_METER: "智能燃气表",
    DeviceKind.ELEVATOR_MONITOR: "电梯监测",
    DeviceKind.HYDRANT_PRESSURE: "消防栓水压监测",
    DeviceKind.THROW_CAMERA: "高空抛物摄像机",
    DeviceKind.GATEWAY: "网关",
}
_KIND_SYNONYMS: dict[str, str] = {
    "摄像头": DeviceKind.CAMERA,
    "监控": DeviceKind.CAMERA,
    "监控摄像头": DeviceKind.CAMERA,
    "枪机": DeviceKind.CAMERA,
    "球机": DeviceKind.CAMERA,
    "人脸门禁": DeviceKind.FACE_TERMINAL,
    "人脸识别终端": DeviceKind.FACE_TERMINAL,
    "人脸闸机": DeviceKind.FACE_TERMINAL,
    "门禁": DeviceKind.CARD_READER,
    "门禁读卡器": DeviceKind.CARD_READER,
    "读卡器": DeviceKind.CARD_READER,
    "车牌识别": DeviceKind.PLATE_GATE,
    "车牌识别一体机": DeviceKind.PLATE_GATE,
    "车辆道闸": DeviceKind.PLATE_GATE,
    "栏杆机": DeviceKind.BARRIER,
    "巡更点位": DeviceKind.PATROL_TAG,
    "巡更标签": DeviceKind.PATROL_TAG,
    "巡更机": DeviceKind.PATROL_HANDSET,
    "烟雾报警器": DeviceKind.SMOKE_SENSOR,
    "烟感报警器": DeviceKind.SMOKE_SENSOR,
    "燃气探测器": DeviceKind.GAS_SENSOR,
    "可燃气体探测器": DeviceKind.GAS_SENSOR,
    "水浸": DeviceKind.WATER_SENSOR,
    "门磁传感器": DeviceKind.DOOR_SENSOR,
    "一键报警": DeviceKind.SOS_BUTTON,
    "sos": DeviceKind.SOS_BUTTON,
    "水表": DeviceKind.WATER_METER,
    "电表": DeviceKind.ELECTRICITY_METER,
    "燃气表": DeviceKind.GAS_METER,
    "气表": DeviceKind.GAS_METER,
    "电梯": DeviceKind.ELEVATOR_MONITOR,
    "电梯监控": DeviceKind.ELEVATOR_MONITOR,
    "消防栓": DeviceKind.HYDRANT_PRESSURE,
    "消火栓水压": DeviceKind.HYDRANT_PRESSURE,
    "高空抛物": DeviceKind.THROW_CAMERA,
    "高空抛物监测": DeviceKind.THROW_CAMERA,
    "物联网网关": DeviceKind.GATEWAY,
}
STATE_LABELS: dict[str, str] = {
    DeviceState.ACTIVE: "在用",
    DeviceState.MAINTENANCE: "维修中",
    DeviceState.RETIRED: "已停用",
}
_STATE_SYNONYMS: dict[str, str] = {
    "正常": DeviceState.ACTIVE,
    "启用": DeviceState.ACTIVE,
    "运行": DeviceState.ACTIVE,
    "维修": DeviceState.MAINTENANCE,
    "维护": DeviceState.MAINTENANCE,
    "检修": DeviceState.MAINTENANCE,
    "停用": DeviceState.RETIRED,
    "报废": DeviceState.RETIRED,
    "拆除": DeviceState.RETIRED,
}


def _lookup(raw: str, codes: dict[str, str], synonyms: dict[str, str]) -> str | None:
    text = "".join(raw.split()).casefold()
    for code, label in codes.items():
        if text in (str(code), label.casefold()):
            return str(code)
    return synonyms.get(text)


def kinds_named(word: str) -> set[str]:
    """The kind codes whose Chinese name, a synonym or the code holds word ("烟" → smoke sensors, "门禁" →
    face terminals and card readers, "meter" → every meter; part of a code in letters only, so that "_"
    names no kind): what a search word means as a kind."""
    text = word.casefold()
    if not text:
        return set()
    found = {
        str(code)
        for code, label in KIND_LABELS.items()
        if text in label.casefold() or text == code or (text.isalpha() and text in str(code))
    }
    return found | {str(code) for synonym, code in _KIND_SYNONYMS.items() if text in synonym}


def to_kind(raw: str | None, *, field: str = "kind") -> str:
    """A device kind code from a code or a Chinese name; Invalid naming field otherwise."""
    if not raw or not raw.strip():
        raise Invalid("设备类型不能为空", field=field)
    kind = _lookup(raw, KIND_LABELS, _KIND_SYNONYMS)
    if kind is None:
        raise Invalid(
            f"未知的设备类型：{raw}（可填写如 摄像机、人脸识别门禁、车牌识别道闸、烟感）", field=field
        )
    return kind


def to_state(raw: str | None, *, field: str = "state") -> str:
    """A device state code (blank: active); Invalid naming field for unknown words."""
    if not raw or not raw.strip():
        return DeviceState.ACTIVE.value
    state = _lookup(raw, STATE_LABELS, _STATE_SYNONYMS)
    if state is None:
        raise Invalid(f"未知的设备状态：{raw}（在用、维修中、已停用）", field=field)
    return state
