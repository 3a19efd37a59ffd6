"""The simulator's devices: a realistic device set for a community, registered through the device register,
and the registered devices, their secrets and the community's plates read back for a simulation.

The simulator runs server-side, next to the database: it reads each device's signing secret from the
register (where it is stored encrypted; decrypting it needs the deployment's LINLI_SECRET_KEY or
LINLI_PII_KEY), exactly as the hub does to verify a signature. A simulator on another machine would need
the secrets handed over, which the register never does after showing them once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core.auth.service import Principal
from linli.db import starts_with
from linli.demo.simulator import SimDevice
from linli.devices import register
from linli.devices.models import Device, DeviceCredential, DeviceKind, DeviceState
from linli.registry.models import Building, House, Residence, Vehicle

HIKVISION = "海康威视"
DEFAULT_UNITS = 2
MAX_BUILDINGS = 40  # per-building devices for at most this many buildings (large communities stay usable)


@dataclass(frozen=True)
class BuildingRef:
    """What the plan needs of a building: its id in the register (None if made up), number and units."""

    id: int | None
    number: str
    units: int


@dataclass(frozen=True)
class Registered:
    """A community's registered devices as the simulator plays them, with their secrets and the plates."""

    devices: tuple[SimDevice, ...]
    secrets: dict[str, str]
    plates: tuple[str, ...]
    cards: tuple[str, ...] = ()  # access cards enrolled community-wide (the demo's residents')
    faces: dict[str, tuple[str, ...]] = field(default_factory=dict)  # face ids each terminal's unit uses


def plan_devices(
    community: str, buildings: list[BuildingRef], *, per_entrance: int = 1
) -> list[dict[str, Any]]:
    """The device set of a community as register.create input: per building entrance (unit door)
    `per_entrance` face terminals, per building a smoke sensor, a fire-exit door sensor and a water meter;
    two plate gates, two pedestrian card readers, perimeter cameras, patrol tags and handsets, a pump room
    water sensor, SOS buttons and hydrant pressure monitors."""
    code = community
    made: list[dict[str, Any]] = []

    def add(
        serial: str, kind: str, location: str, *, vendor: str = "", model: str = "", **facts: Any
    ) -> None:
        made.append(
            {
                "serial": serial,
                "kind": kind,
                "community": code,
                "vendor": vendor,
                "model": model,
                "location": location,
                "protocol": "http",
                **facts,
            }
        )

    for index, building in enumerate(buildings[:MAX_BUILDINGS], start=1):
        b, where = _serial_part(building.number, index), f"{building.number}号楼"
        extra = {"building_id": building.id} if building.id is not None else {}
        for unit in range(1, max(1, building.units) + 1):
            for n in range(1, per_entrance + 1):
                add(
                    f"DS-K1T671M-{code}-{b}-{unit}-{n}",
                    DeviceKind.FACE_TERMINAL,
                    f"{where}{unit}单元门",
                    vendor=HIKVISION,
                    model="DS-K1T671M",
                    **extra,
                )
        add(
            f"YG-{code}-{b}",
            DeviceKind.SMOKE_SENSOR,
            f"{where}配电间",
            vendor="泛海三江",
            model="JTY-GD",
            **extra,
        )
        add(
            f"MC-{code}-{b}",
            DeviceKind.DOOR_SENSOR,
            f"{where}消防通道门",
            vendor="涂鸦",
            model="DS-01",
            **extra,
        )
        add(
            f"SB-{code}-{b}",
            DeviceKind.WATER_METER,
            f"{where}总水表",
            vendor="三川",
            model="LXSY-50",
            **extra,
        )
    for serial, where in (("S", "南门车行道"), ("N", "北门车行道")):
        add(f"DS-TCG227-{code}-{serial}", DeviceKind.PLATE_GATE, where, vendor=HIKVISION, model="DS-TCG227")
    for serial, where in (("S", "南门人行通道"), ("N", "北门人行通道")):
        add(f"DS-K1T804-{code}-{serial}", DeviceKind.CARD_READER, where, vendor=HIKVISION, model="DS-K1T804")
    for n, where in enumerate(("南门广场", "北门广场", "东侧围墙", "西侧围墙"), start=1):
        add(f"DS-2CD3T46-{code}-{n}", DeviceKind.CAMERA, where, vendor=HIKVISION, model="DS-2CD3T46WDV3-I3")
    checkpoints = [f"{b.number}号楼北侧" for b in buildings[:MAX_BUILDINGS:2]] + [
        "南门岗亭",
        "北门岗亭",
        "地下车库入口",
        "水泵房",
    ]
    for n, where in enumerate(checkpoints, start=1):
        add(f"XG-{code}-{n:02d}", DeviceKind.PATROL_TAG, where, vendor="兰德华", model="L-9000")
    for n in (1, 2):
        add(
            f"XGB-{code}-{n}", DeviceKind.PATROL_HANDSET, f"保安室巡更棒{n}", vendor="兰德华", model="L-9000E"
        )
    add(f"SJ-{code}-1", DeviceKind.WATER_SENSOR, "地下水泵房", vendor="涂鸦", model="SJ-02")
    for n, where in enumerate(("老年活动室", "社区服务站"), start=1):
        add(f"SOS-{code}-{n}", DeviceKind.SOS_BUTTON, where, vendor="涂鸦", model="SOS-01")
    for n, where in enumerate(("南区消防栓", "北区消防栓"), start=1):
        add(f"XFS-{code}-{n}", DeviceKind.HYDRANT_PRESSURE, where, vendor="宇星", model="YX-P1")
    return made


def _serial_part(number: str, index: int) -> str:
    """A building number as it may appear in a serial (letters and digits only; else its position)."""
    kept = "".join(ch for ch in number if ch.isascii() and ch.isalnum())
    return kept or f"b{index}"


def buildings_of(session: Session, community: str) -> list[BuildingRef]:
    """The community's buildings in number order; four made-up ones if it has none in the register."""
    stmt = select(Building.id, Building.number, Building.units).where(Building.community_code == community)
    rows = list(session.execute(stmt.execution_options(skip_scope=True)))
    found = [BuildingRef(row.id, row.number, row.units or DEFAULT_UNITS) for row in rows]
    found.sort(key=lambda b: (len(b.number), b.number))
    return found or [BuildingRef(None, str(n), DEFAULT_UNITS) for n in range(1, 5)]


def active_devices(session: Session, community: str) -> list[Device]:
    """The community's devices that are not retired, by serial."""
    stmt = (
        select(Device)
        .where(Device.community_code == community, Device.state != DeviceState.RETIRED.value)
        .order_by(Device.serial)
    )
    return list(session.scalars(stmt.execution_options(skip_scope=True)))


def create_devices(session: Session, community: str, *, per_entrance: int = 1) -> list[Device]:
    """Register the planned device set of the community (the caller commits); Invalid if it is unknown."""
    areas.get_community_or_raise(session, code=community)
    principal = Principal.system()
    created = []
    for data in plan_devices(community, buildings_of(session, community), per_entrance=per_entrance):
        device, _secret = register.create(session, principal, data, source="simulator")
        created.append(device)
    return created


def plates_of(session: Session, community: str) -> tuple[str, ...]:
    """The plates of the vehicles registered in the community (or any of its grids), in order."""
    stmt = select(Vehicle.plate).where(starts_with(Vehicle.area_code, community)).order_by(Vehicle.plate)
    return tuple(session.scalars(stmt.execution_options(skip_scope=True)))


def load(session: Session, community: str) -> Registered:
    """The community's registered devices (with their decrypted secrets) and registered plates."""
    devices = active_devices(session, community)
    return Registered(
        devices=tuple(SimDevice(d.serial, d.kind, d.community_code, d.location) for d in devices),
        secrets={d.serial: d.secret for d in devices},
        plates=plates_of(session, community),
        cards=cards_of(session, community),
        faces=faces_of(session, community, devices),
    )


UNIT_DOOR = re.compile(r"(\d+)单元")


def faces_of(session: Session, community: str, devices: list[Device]) -> dict[str, tuple[str, ...]]:
    """The face ids (community-wide person_ref credentials) of each face terminal's unit: the current
    residents of the unit its location names (`…N单元门`) in its building."""
    doors: dict[tuple[int, str], list[str]] = {}
    for device in devices:
        found = UNIT_DOOR.search(device.location or "")
        if device.kind == DeviceKind.FACE_TERMINAL and device.building_id is not None and found:
            doors.setdefault((device.building_id, found.group(1)), []).append(device.serial)
    if not doors:
        return {}
    stmt = (
        select(House.building_id, House.unit, DeviceCredential.value)
        .join(Residence, Residence.house_id == House.id)
        .join(DeviceCredential, DeviceCredential.person_id == Residence.person_id)
        .where(
            House.building_id.in_({building for building, _ in doors}),
            Residence.move_out.is_(None),
            DeviceCredential.area_code == community,
            DeviceCredential.kind == "person_ref",
            DeviceCredential.device_id.is_(None),
        )
        .order_by(DeviceCredential.value)
    )
    refs: dict[tuple[int, str], list[str]] = {}
    for building, unit, value in session.execute(stmt.execution_options(skip_scope=True)):
        refs.setdefault((building, unit), []).append(value)
    return {
        serial: tuple(refs[door]) for door, serials in doors.items() if door in refs for serial in serials
    }


def cards_of(session: Session, community: str) -> tuple[str, ...]:
    """The access cards enrolled on every door of the community, in order."""
    stmt = (
        select(DeviceCredential.value)
        .where(
            DeviceCredential.area_code == community,
            DeviceCredential.kind == "card",
            DeviceCredential.device_id.is_(None),
        )
        .order_by(DeviceCredential.value)
    )
    return tuple(session.scalars(stmt.execution_options(skip_scope=True)))
