"""Small builders of realistic test data: a district with two streets, three communities, users per role."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from linli.areas import service as areas
from linli.core.auth import service as accounts
from linli.registry.validation import gb11643_check_digit


@dataclass(frozen=True)
class World:
    """Codes of the fixed test areas."""

    district: str = "6111"
    new_city: str = "611102"
    street: str = "611102001"
    tianfu: str = "611102001001"
    tianfu_grid: str = "61110200100101"
    tianfu_grid2: str = "61110200100102"
    yuyu: str = "611102001002"
    other_street: str = "611102002"
    xingfu: str = "611102002001"


USERS = {
    "admin": ("district_admin", "district"),
    "jiedao": ("street_staff", "street"),
    "shequ": ("community_worker", "tianfu"),
    "shequ2": ("community_worker", "yuyu"),
    "shequ3": ("community_worker", "xingfu"),
    "wangge": ("grid_worker", "tianfu_grid"),
    "wuye": ("property_staff", "tianfu"),
    "jingwu": ("police_liaison", "district"),
    "jumin": ("resident", "tianfu"),
}


def build_world(session: Session, *, password: str) -> World:
    """Create the fixed areas and users (the caller commits)."""
    w = World()
    areas.create(session, code=w.district, name="西咸新区")
    areas.create(session, code=w.new_city, name="沣东新城")
    areas.create(session, code=w.street, name="斗门街道")
    areas.create(session, code=w.tianfu, name="天府和苑", resettlement=True, lat=34.30, lon=108.70)
    areas.create(session, code=w.tianfu_grid, name="第一网格")
    areas.create(session, code=w.tianfu_grid2, name="第二网格")
    areas.create(session, code=w.yuyu, name="昱宇西苑", resettlement=True)
    areas.create(session, code=w.other_street, name="王寺街道")
    areas.create(session, code=w.xingfu, name="幸福里", resettlement=True)
    for username, (role, attr) in USERS.items():
        accounts.create(
            session, username=username, password=password, role=role, area_codes=[getattr(w, attr)]
        )
    return w


_serial = itertools.count(101)


def resident_id(*, born: date = date(1956, 3, 7), male: bool = True, region: str = "610402") -> str:
    """A valid (fictitious) 18-digit resident ID number, unique per call."""
    seq = next(_serial) % 500 * 2
    order = f"{seq + (1 if male else 0):03d}"[-3:]
    if (int(order[-1]) % 2 == 1) != male:
        order = order[:2] + str((int(order[-1]) + 1) % 10)
    first17 = f"{region}{born:%Y%m%d}{order}"
    return first17 + gb11643_check_digit(first17)


def person(**overrides: Any) -> dict[str, Any]:
    """Loose input for one person, as a form or spreadsheet row would give it."""
    male = overrides.pop("male", True)
    born = overrides.pop("born", date(1956, 3, 7))
    data: dict[str, Any] = {
        "name": "张三",
        "id_number": resident_id(born=born, male=male),
        "phone": "13800138000",
        "hukou_place": "陕西省咸阳市秦都区",
        "ethnicity": "汉族",
    }
    data.update(overrides)
    return data
