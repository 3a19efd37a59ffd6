"""Tables: the area hierarchy."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, synonym

from linli.db import AreaScoped, Base, Timestamped


class Level(StrEnum):
    """Levels of the hierarchy, top down; each code is the parent's code plus a fixed-width part."""

    DISTRICT = "district"
    NEW_CITY = "new_city"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


# Code length at each level: 6111 / 611101 / 611101001 / 611101001001 / 61110100100101
CODE_LENGTH = {
    Level.DISTRICT: 4,
    Level.NEW_CITY: 6,
    Level.STREET: 9,
    Level.COMMUNITY: 12,
    Level.GRID: 14,
}
LEVEL_OF_LENGTH = {length: level for level, length in CODE_LENGTH.items()}
LEVEL_ORDER = list(Level)


class Area(AreaScoped, Timestamped, Base):
    """One area of any level. Its own code is its area_code, so scoping applies to areas too."""

    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("area_code", name="uq_areas_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_code: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128), default="")
    resettlement: Mapped[bool] = mapped_column(default=False)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Community facts from the study (building count, floor area m², plot ratio, green ratio, households).
    buildings: Mapped[int | None] = mapped_column(default=None)
    floor_area: Mapped[float | None] = mapped_column(Float, default=None)
    plot_ratio: Mapped[float | None] = mapped_column(Float, default=None)
    green_ratio: Mapped[float | None] = mapped_column(Float, default=None)
    households: Mapped[int | None] = mapped_column(default=None)

    code = synonym("area_code")

    def __init__(self, **kw: Any) -> None:
        if "code" in kw:
            kw["area_code"] = kw.pop("code")
        super().__init__(**kw)
