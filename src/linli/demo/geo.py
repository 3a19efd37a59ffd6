"""Flat-earth geometry for the demo district: metre offsets, boxes and GeoJSON rectangles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class Box:
    """A lat/lon rectangle: south, west, north, east in degrees."""

    south: float
    west: float
    north: float
    east: float

    @property
    def centre(self) -> tuple[float, float]:
        """(lat, lon) of the middle of the box."""
        return round((self.south + self.north) / 2, 6), round((self.west + self.east) / 2, 6)

    def polygon(self) -> dict[str, Any]:
        """The box as a GeoJSON Polygon (exterior ring counter-clockwise, closed)."""
        s, w, n, e = (round(v, 6) for v in (self.south, self.west, self.north, self.east))
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}

    def padded(self, metres: float) -> Box:
        """The box grown by metres on every side."""
        dlat, dlon = degrees(metres, metres, self.south)
        return Box(self.south - dlat, self.west - dlon, self.north + dlat, self.east + dlon)

    def contains(self, other: Box) -> bool:
        """True if other lies inside this box."""
        return (
            self.south <= other.south
            and self.west <= other.west
            and other.north <= self.north
            and other.east <= self.east
        )


def degrees(north_m: float, east_m: float, lat: float) -> tuple[float, float]:
    """Metres north and east as degrees of latitude and longitude at lat."""
    return north_m / _M_PER_DEG_LAT, east_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat)))


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point north_m metres north and east_m metres east of (lat, lon)."""
    dlat, dlon = degrees(north_m, east_m, lat)
    return lat + dlat, lon + dlon


def box_around(lat: float, lon: float, width_m: float, height_m: float) -> Box:
    """A width_m (east-west) by height_m (north-south) rectangle centred on (lat, lon)."""
    dlat, dlon = degrees(height_m / 2, width_m / 2, lat)
    return Box(lat - dlat, lon - dlon, lat + dlat, lon + dlon)


def enclosing(boxes: list[Box], *, pad_m: float = 0.0) -> Box:
    """The smallest box holding every box, grown by pad_m."""
    box = Box(
        min(b.south for b in boxes),
        min(b.west for b in boxes),
        max(b.north for b in boxes),
        max(b.east for b in boxes),
    )
    return box.padded(pad_m) if pad_m else box


def sub_box(box: Box, *, x0: float, y0: float, x1: float, y1: float) -> Box:
    """The part of box between fractions x0..x1 west to east and y0..y1 south to north."""
    width, height = box.east - box.west, box.north - box.south
    return Box(box.south + y0 * height, box.west + x0 * width, box.south + y1 * height, box.west + x1 * width)
