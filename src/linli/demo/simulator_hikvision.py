"""The simulator's Hikvision ISAPI voice: envelopes of cameras, gates and access terminals as ISAPI XML.

`render` writes the `EventNotificationAlert` a Hikvision device would push to its alarm server for an
event (ANPR for plate gates, AccessControllerEvent for face terminals and card readers, VMD /
linedetection / fielddetection for cameras, heartBeat for all of them), in the shape of the recorded
samples the `hikvision_isapi` adapter is tested with. Over HTTP the simulator posts that XML to the hub's
vendor push endpoint; over MQTT (which those devices do not speak) `through_adapter` parses it with the
adapter in the simulator and its envelopes are published. Events with no ISAPI form (alarms of access
terminals, every event of sensors and meters) stay in the Linli schema.
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

from linli.core.timeutil import LOCAL_TZ
from linli.devices.adapters.hikvision_isapi import adapter as hikvision
from linli.devices.events import Envelope, EventType
from linli.devices.models import DeviceKind

HIKVISION_KINDS = frozenset(
    {DeviceKind.PLATE_GATE, DeviceKind.FACE_TERMINAL, DeviceKind.CARD_READER, DeviceKind.CAMERA}
)
HEADERS = {"Content-Type": "application/xml; charset=UTF-8"}
_NS = "http://www.isapi.org/ver20/XMLSchema"
# (granted, credential) -> subEventType of majorEventType 5 (HCNetSDK MINOR_* codes).
ACCESS_SUBTYPES = {
    (True, "face"): 75,
    (False, "face"): 76,
    (True, "card"): 1,
    (False, "card"): 9,
    (True, "fingerprint"): 38,
    (False, "fingerprint"): 39,
    (True, "password"): 181,
    (False, "password"): 150,
    (True, "qr"): 156,
    (False, "qr"): 157,
}
MOTION_TYPES = {
    "motion": "VMD",
    "line_crossing": "linedetection",
    "intrusion": "fielddetection",
    "region_entrance": "regionEntrance",
    "region_exit": "regionExiting",
}
PLATE_COLOURS = {"yellow_green": "yellowGreen"}


def _mac(serial: str) -> str:
    digest = hashlib.sha256(serial.encode()).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 12, 2))


def _leaf(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _alert(envelope: Envelope, event_type: str, body: str = "", *, description: str = "") -> bytes:
    when = envelope.occurred_at.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds")
    head = "".join(
        [
            _leaf("ipAddress", "192.168.10.64"),
            _leaf("portNo", 80),
            _leaf("protocol", "HTTP"),
            _leaf("macAddress", _mac(envelope.device)),
            _leaf("channelID", 1),
            _leaf("dateTime", when),
            _leaf("activePostCount", 1),
            _leaf("eventType", event_type),
            _leaf("eventState", "active"),
            _leaf("eventDescription", description or event_type),
        ]
    )
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0" xmlns="{_NS}">'
        f"{head}{body}</EventNotificationAlert>"
    )
    return xml.encode("utf-8")


def _serial_no(envelope: Envelope) -> int:
    """A device-side record number, stable for the event (the adapter's dedup id includes it)."""
    return int(hashlib.sha256(envelope.id.encode()).hexdigest()[:7], 16)


def render(envelope: Envelope, kind: str) -> bytes | None:
    """The ISAPI alert a device of that kind would push for the event, or None if it has no ISAPI form."""
    if kind not in HIKVISION_KINDS:
        return None
    payload = envelope.payload
    if envelope.type == EventType.DEVICE_HEARTBEAT:
        return _alert(envelope, "heartBeat")
    if (
        envelope.type in (EventType.VEHICLE_ENTERED, EventType.VEHICLE_EXITED)
        and kind == DeviceKind.PLATE_GATE
    ):
        colour = str(payload.get("plate_colour") or "unknown")
        confidence = payload.get("confidence")
        vehicle = f"<vehicleInfo>{_leaf('color', payload.get('vehicle_colour') or 'unknown')}</vehicleInfo>"
        body = "<ANPR>" + "".join(
            [
                _leaf("country", 59),
                _leaf("licensePlate", payload["plate"]),
                _leaf("line", 1 if envelope.type == EventType.VEHICLE_ENTERED else 2),
                _leaf("direction", "forward" if envelope.type == EventType.VEHICLE_ENTERED else "reverse"),
                _leaf("confidenceLevel", round(float(confidence) * 100) if confidence is not None else ""),
                _leaf("plateType", "92TypeCivil"),
                _leaf("plateColor", PLATE_COLOURS.get(colour, colour)),
                _leaf("vehicleType", "vehicle"),
                vehicle,
                _leaf("originalLicensePlate", payload["plate"]),
            ]
        )
        return _alert(envelope, "ANPR", body + "</ANPR>")
    if envelope.type in (EventType.ACCESS_GRANTED, EventType.ACCESS_DENIED):
        granted = envelope.type == EventType.ACCESS_GRANTED
        code = ACCESS_SUBTYPES.get((granted, str(payload.get("credential"))))
        if code is None:
            return None
        parts = [
            _leaf("deviceName", payload.get("door") or envelope.device),
            _leaf("majorEventType", 5),
            _leaf("subEventType", code),
        ]
        if payload.get("card_no"):
            parts += [_leaf("cardNo", payload["card_no"]), _leaf("cardType", 1)]
        if payload.get("person_ref"):
            parts.append(_leaf("employeeNoString", payload["person_ref"]))
        parts += [_leaf("serialNo", _serial_no(envelope)), _leaf("doorNo", 1)]
        body = "<AccessControllerEvent>" + "".join(parts) + "</AccessControllerEvent>"
        return _alert(envelope, "AccessControllerEvent", body, description="Access Controller Event")
    if envelope.type == EventType.MOTION_DETECTED and kind == DeviceKind.CAMERA:
        event_type = MOTION_TYPES[str(payload.get("kind") or "motion")]
        target = str(payload.get("target") or "unknown")
        region = (
            "<DetectionRegionList><DetectionRegionEntry>"
            + _leaf("regionID", 1)
            + _leaf("detectionTarget", target if target != "unknown" else "others")
            + "</DetectionRegionEntry></DetectionRegionList>"
        )
        return _alert(envelope, event_type, region + _leaf("targetType", target))
    return None


def through_adapter(envelope: Envelope, kind: str) -> list[Envelope]:
    """What the hikvision_isapi adapter makes of the device's ISAPI push (the event itself if none)."""
    xml = render(envelope, kind)
    if xml is None:
        return [envelope]
    return hikvision.parse(xml, HEADERS, device=envelope.device)
