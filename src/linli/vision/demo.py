"""Demo data of throw detection: one throw camera per pilot community, calibrated on a rendered still."""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core.auth.service import Principal
from linli.devices import register
from linli.devices.models import DeviceKind
from linli.registry.models import Building
from linli.vision import service
from linli.vision.calibration import Calibration

WIDTH, HEIGHT = 1920, 1080
COLUMNS = 6
TOP = ((620.0, 70.0), (1300.0, 70.0))  # the roof line: narrower, the camera looks up the facade
BOTTOM = ((520.0, 1010.0), (1400.0, 1010.0))


def calibration(floors: int) -> Calibration:
    """The demo camera's calibration: roof and ground lines of a facade filling the picture's height."""
    return Calibration.from_simple(
        width=WIDTH, height=HEIGHT, top_line=TOP, bottom_line=BOTTOM, floors=floors, columns=COLUMNS
    )


def still(cal: Calibration) -> np.ndarray:
    """A drawn facade matching the calibration: sky, wall, one window per floor and column."""
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:] = (225, 200, 170)  # sky
    wall = np.array(
        [cal.floor_lines[0][0], cal.floor_lines[0][1], cal.floor_lines[-1][1], cal.floor_lines[-1][0]]
    )
    cv2.fillPoly(image, [wall.astype(np.int32)], (175, 185, 195))
    for floor in range(cal.floors):
        for k in range(COLUMNS):
            fx = [(k + 0.3) / COLUMNS, (k + 0.7) / COLUMNS]
            corners = []
            for f, across in ((0.25, fx[0]), (0.25, fx[1]), (0.75, fx[1]), (0.75, fx[0])):
                (x1, y1), (x2, y2) = _between(cal, floor, f)
                corners.append((x1 + (x2 - x1) * across, y1 + (y2 - y1) * across))
            cv2.fillPoly(image, [np.array(corners, dtype=np.int32)], (95, 85, 70))
    cv2.rectangle(image, (0, round(BOTTOM[0][1])), (WIDTH, HEIGHT), (90, 110, 95), -1)  # the ground
    return image


def _between(cal: Calibration, floor: int, f: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The line a fraction f up floor `floor` (0-based), interpolated between its floor lines."""
    low, high = cal.floor_lines[floor], cal.floor_lines[floor + 1]
    return (
        (low[0][0] + (high[0][0] - low[0][0]) * f, low[0][1] + (high[0][1] - low[0][1]) * f),
        (low[1][0] + (high[1][0] - low[1][0]) * f, low[1][1] + (high[1][1] - low[1][1]) * f),
    )


def seed(session: Session, communities: list[str], *, now: datetime) -> int:
    """Register and calibrate a throw camera facing each community's tallest building; how many."""
    made = 0
    system = Principal.system()
    for code in communities:
        stmt = (
            select(Building)
            .where(Building.community_code == code)
            .order_by(Building.floors.desc().nulls_last(), Building.id)
            .limit(1)
        )
        building = session.scalar(stmt.execution_options(skip_scope=True))
        if building is None:
            continue
        floors = building.floors or 18
        device, _ = register.create(
            session,
            system,
            {
                "serial": f"GKPW-{code}-{building.number}",
                "kind": DeviceKind.THROW_CAMERA.value,
                "community": code,
                "name": f"{building.number}号楼高空抛物",
                "vendor": "海康威视",
                "model": "DS-2CD3T87WDV3-L",
                "protocol": "rtsp",
                "building_id": building.id,
                "location": f"{building.number}号楼南侧地面，仰拍外立面",
            },
            source="demo",
        )
        camera = service.configure(session, system, device_id=device.id)
        cal = calibration(floors)
        _, jpeg = cv2.imencode(".jpg", still(cal), [cv2.IMWRITE_JPEG_QUALITY, 85])
        service.store_reference_frame(
            session, system, camera=camera, jpeg=jpeg.tobytes(), width=WIDTH, height=HEIGHT, now=now
        )
        service.save_calibration(session, system, camera_id=camera.id, data=cal.to_json())
        made += 1
    return made
