"""Static facts of the demo district: a Xixian-like 西咸新区 with 5 new cities, 21 streets, 142 communities.

Names and the three pilot communities are fixed here; the other communities' facts (households,
buildings, ratios, position) are derived from their code alone, so the district looks the same whatever
seed the residents are generated with.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import lazy_pinyin

from linli.demo.geo import Box, box_around, enclosing, offset, sub_box

DISTRICT_CODE = "6111"
DISTRICT_NAME = "西咸新区"
DISTRICT_NAME_EN = "Xixian New Area"

TIANFU = "天府和苑"
YUYU = "昱宇西苑"
XINGFULI = "幸福里"

# The pilot communities of the 2021 study: (buildings, households, name_en).
PILOTS: dict[str, tuple[int, int, str]] = {
    TIANFU: (20, 5399, "Tianfu Heyuan"),
    YUYU: (8, 2860, "Yuyu Xiyuan"),
    XINGFULI: (32, 3300, "Xingfuli"),
}

# (code, name, name_en, centre lat, centre lon, streets); a street lists its communities, a trailing
# "*" marks a resettlement community (回迁安置社区).
# fmt: off
_NEW_CITIES: tuple[tuple[str, str, str, float, float, tuple[tuple[str, str], ...]], ...] = (
    ("611101", "空港新城", "Konggang New City", 34.445, 108.735, (
        ("底张街道", "底张新苑* 陈马家园* 马家堡和苑* 坡刘佳苑* 航港花园 长兴社区* 空港雅苑"),
        ("北杜街道", "北杜家园* 成任新苑* 上召安居苑* 蒋刘小区* 空港国际社区 润泽苑"),
        ("太平镇", "太平家园* 西孙佳苑* 东孙和苑* 崇礼新苑* 临空花园 太平社区*"),
        ("航港街道", "航港家园* 空港新苑* 云港佳苑 临港小区 自贸花园 北区社区*"),
    )),
    ("611102", "沣东新城", "Fengdong New City", 34.270, 108.815, (
        ("斗门街道", "天府和苑* 昱宇西苑* 斗门家园* 石匣新苑* 花园村社区* 镐京佳苑* 丰镐和苑* "
                     "沣东花园 斗门小区"),
        ("王寺街道", "幸福里* 王寺家园* 西围墙新苑* 东马坊佳苑* 大石头和苑* 沣泽苑 王寺小区* 三义社区*"),
        ("上林街道", "上林家园* 上林苑 张旺渠新苑* 兴隆安居苑* 东张和苑* 阿房宫小区 上林雅居"),
        ("建章路街道", "建章佳苑* 建章小区 后卫寨家园* 南沣新苑* 大兴社区 建章花园 沣东雅苑"),
        ("三桥街道", "三桥家园* 车张新苑* 车刘和苑* 小苏佳苑* 三桥花园 王家庄社区* 新桥小区 凤栖苑"),
    )),
    ("611103", "秦汉新城", "Qinhan New City", 34.375, 108.850, (
        ("渭城街道", "渭柳佳苑* 渭城家园* 聂家沟新苑* 渭阳佳苑* 秦汉花园 兰池社区* 渭城小区 兰池大道小区"),
        ("窑店街道", "窑店家园* 毛王新苑* 黄家沟和苑* 仓张佳苑* 渭陵社区* 窑店小区 秦汉新苑"),
        ("正阳街道", "正阳家园* 柏家嘴新苑* 后排和苑* 肖家村社区* 正阳小区 秦汉雅苑 咸阳原花园"),
        ("周陵街道", "周陵家园* 严家沟新苑* 新庄佳苑* 贺家社区* 周陵小区 秦汉御苑"),
    )),
    ("611104", "沣西新城", "Fengxi New City", 34.275, 108.660, (
        ("大王街道", "大王家园* 西宝新苑* 康定和园* 同德佳苑* 沣西花园 大王社区* 沣西小区"),
        ("马王街道", "马王家园* 客省庄新苑* 西户佳苑* 张家堡和苑* 马王小区 沣西雅苑 沣河社区*"),
        ("高桥街道", "高桥家园* 新寨新苑* 曹家和苑* 沣西新苑 高桥小区 沣柳佳苑*"),
        ("钓台街道", "钓台家园* 马坊新苑* 钓台社区* 统一佳苑* 白马河小区 沣润苑"),
    )),
    ("611105", "泾河新城", "Jinghe New City", 34.455, 108.935, (
        ("泾干街道", "泾干家园* 泾河新苑* 泾阳社区* 茯茶佳苑* 泾干小区 泾河花园"),
        ("永乐镇", "永乐家园* 永乐新苑* 店子王和苑* 永乐社区* 永乐小区 泾河雅苑"),
        ("崇文镇", "崇文家园* 崇文新苑* 塔底佳苑* 崇文社区* 崇文小区 泾河湾苑"),
        ("高庄镇", "高庄家园* 高庄新苑* 桥底和苑* 寨头佳苑* 高庄社区* 泾渭小区"),
    )),
)
# fmt: on

_GRID_NAMES = ("第一网格", "第二网格", "第三网格", "第四网格")
_SUFFIXES = (
    "安居苑",
    "家园",
    "新苑",
    "和苑",
    "佳苑",
    "和园",
    "雅苑",
    "花园",
    "社区",
    "小区",
    "雅居",
    "御苑",
    "湾苑",
    "苑",
)
_STREET_RADIUS_M = 3_600.0
_COMMUNITY_SPACING_M = 800.0


@dataclass(frozen=True)
class Grid:
    """网格: a strip of a community."""

    code: str
    name: str
    box: Box


@dataclass(frozen=True)
class Community:
    """社区 with the facts the study keeps and where it lies."""

    code: str
    name: str
    name_en: str
    resettlement: bool
    index: int  # 0..141 in district order: partitions identifier spaces so communities never clash
    new_city_code: str
    street_code: str
    households: int
    buildings: int
    floor_area: float
    plot_ratio: float
    green_ratio: float
    built_year: int
    box: Box
    grids: tuple[Grid, ...]

    @property
    def pilot(self) -> bool:
        """True for the three communities the study describes in detail."""
        return self.name in PILOTS


@dataclass(frozen=True)
class Street:
    """街道 or 镇."""

    code: str
    name: str
    name_en: str
    box: Box
    communities: tuple[Community, ...]


@dataclass(frozen=True)
class NewCity:
    """新城."""

    code: str
    name: str
    name_en: str
    box: Box
    streets: tuple[Street, ...]


@dataclass(frozen=True)
class District:
    """新区: the whole demo tree."""

    code: str
    name: str
    name_en: str
    box: Box
    new_cities: tuple[NewCity, ...]

    @property
    def streets(self) -> list[Street]:
        """Every street, in code order."""
        return [s for c in self.new_cities for s in c.streets]

    @property
    def communities(self) -> list[Community]:
        """Every community, in code order."""
        return [m for s in self.streets for m in s.communities]

    def community(self, name: str) -> Community:
        """The community with that name (KeyError if none)."""
        for community in self.communities:
            if community.name == name:
                return community
        raise KeyError(name)


def _title(text: str) -> str:
    return "".join(lazy_pinyin(text)).capitalize()


def community_name_en(name: str) -> str:
    """English form of a community name: 底张新苑 → 'Dizhang Xinyuan'."""
    if name in PILOTS:
        return PILOTS[name][2]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{_title(name[: -len(suffix)])} {_title(suffix)}"
    return _title(name)


def street_name_en(name: str) -> str:
    """English form of a street or town: 斗门街道 → 'Doumen Subdistrict', 太平镇 → 'Taiping Town'."""
    if name.endswith("街道"):
        return f"{_title(name[:-2])} Subdistrict"
    return f"{_title(name[:-1])} Town"


def _facts(code: str, name: str, resettlement: bool) -> tuple[int, int, float, float, float, int]:
    """(households, buildings, floor_area, plot_ratio, green_ratio, built_year), fixed per community."""
    rng = random.Random(f"linli-demo-facts-{code}")
    if name in PILOTS:
        buildings, households = PILOTS[name][:2]
    else:
        households = int(rng.triangular(1500, 4500, 2300))
        buildings = max(4, round(households / rng.uniform(80, 300)))
    mean_area = rng.uniform(84, 96) if resettlement else rng.uniform(95, 112)
    floor_area = round(households * mean_area * rng.uniform(1.12, 1.22), -2)
    plot_ratio = round(rng.uniform(2.0, 3.5), 2)
    green_ratio = round(rng.uniform(0.30, 0.40), 2)
    built_year = rng.randint(2012, 2020) if resettlement else rng.randint(2008, 2022)
    return households, buildings, floor_area, plot_ratio, green_ratio, built_year


def _community_box(code: str, lat: float, lon: float, floor_area: float, plot_ratio: float) -> Box:
    """A rectangle whose area is the site area the plot ratio implies, each side kept within 300-600 m."""
    rng = random.Random(f"linli-demo-site-{code}")
    site = floor_area / plot_ratio
    aspect = rng.uniform(0.75, 1.35)
    width = min(max(math.sqrt(site * aspect), 300.0), 600.0)
    height = min(max(site / width, 300.0), 600.0)
    lat, lon = offset(lat, lon, rng.uniform(-50, 50), rng.uniform(-50, 50))
    return box_around(lat, lon, round(width), round(height))


def _grids(code: str, households: int, buildings: int, box: Box) -> tuple[Grid, ...]:
    """1-4 grids, one per ~1,500 households, as west-to-east strips of the community."""
    count = max(1, min(4, math.ceil(households / 1500), buildings))
    return tuple(
        Grid(
            code=f"{code}{i + 1:02d}",
            name=_GRID_NAMES[i],
            box=sub_box(box, x0=i / count, y0=0, x1=(i + 1) / count, y1=1),
        )
        for i in range(count)
    )


def _street(
    code: str, name: str, spec: str, centre: tuple[float, float], first_index: int, new_city: str
) -> Street:
    names = spec.split()
    cols = math.ceil(math.sqrt(len(names)))
    rows = math.ceil(len(names) / cols)
    communities = []
    for j, raw in enumerate(names):
        cname, resettlement = raw.rstrip("*"), raw.endswith("*")
        ccode = f"{code}{j + 1:03d}"
        households, buildings, floor_area, plot_ratio, green_ratio, built_year = _facts(
            ccode, cname, resettlement
        )
        row, col = divmod(j, cols)
        lat, lon = offset(
            *centre,
            (row - (rows - 1) / 2) * _COMMUNITY_SPACING_M,
            (col - (cols - 1) / 2) * _COMMUNITY_SPACING_M,
        )
        box = _community_box(ccode, lat, lon, floor_area, plot_ratio)
        communities.append(
            Community(
                code=ccode,
                name=cname,
                name_en=community_name_en(cname),
                resettlement=resettlement,
                index=first_index + j,
                new_city_code=new_city,
                street_code=code,
                households=households,
                buildings=buildings,
                floor_area=floor_area,
                plot_ratio=plot_ratio,
                green_ratio=green_ratio,
                built_year=built_year,
                box=box,
                grids=_grids(ccode, households, buildings, box),
            )
        )
    box = enclosing([c.box for c in communities], pad_m=150)
    return Street(code=code, name=name, name_en=street_name_en(name), box=box, communities=tuple(communities))


@lru_cache(maxsize=1)
def district() -> District:
    """The demo district tree with every area's facts and geometry (built once)."""
    new_cities = []
    index = 0
    for code, name, name_en, lat, lon, street_specs in _NEW_CITIES:
        streets = []
        for i, (sname, spec) in enumerate(street_specs):
            angle = 2 * math.pi * i / len(street_specs) + math.pi / 4
            centre = offset(lat, lon, _STREET_RADIUS_M * math.sin(angle), _STREET_RADIUS_M * math.cos(angle))
            street = _street(f"{code}{i + 1:03d}", sname, spec, centre, index, code)
            index += len(street.communities)
            streets.append(street)
        box = enclosing([s.box for s in streets], pad_m=300)
        new_cities.append(NewCity(code=code, name=name, name_en=name_en, box=box, streets=tuple(streets)))
    box = enclosing([c.box for c in new_cities], pad_m=500)
    return District(
        code=DISTRICT_CODE,
        name=DISTRICT_NAME,
        name_en=DISTRICT_NAME_EN,
        box=box,
        new_cities=tuple(new_cities),
    )
