"""Household shapes: who lives together, their ages and sexes, and fast random draws for the generator."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TypeVar

from linli.demo import pools

T = TypeVar("T")


def pick(rng: random.Random, items: Sequence[T]) -> T:
    """A uniformly random item (random() based: a few times faster than rng.choice)."""
    return items[int(rng.random() * len(items))]


def between(rng: random.Random, low: int, high: int) -> int:
    """A random integer in [low, high] (random() based, like pick)."""
    return low + int(rng.random() * (high - low + 1))


class Weighted(tuple[str, ...]):
    """Values drawn with fixed weights; the cumulative weights are computed once."""

    cumulative: tuple[float, ...]

    def __new__(cls, weights: dict[str, float]) -> Weighted:
        self = super().__new__(cls, weights)
        self.cumulative = tuple(accumulate(weights.values()))
        return self

    def draw(self, rng: random.Random) -> str:
        """One value."""
        return self[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


# Household shapes: owners in resettlement housing (many elderly), other owners, tenants.
RESETTLED = Weighted({
    "elderly_single": 1.6, "single": 3, "elderly_couple": 18, "middle_couple": 12, "couple": 6,
    "couple_kids": 27, "three_gen": 27, "skipped": 3, "parent_child": 6,
})  # fmt: skip
OWNERS = Weighted({
    "elderly_single": 0.8, "single": 7, "elderly_couple": 8, "middle_couple": 10, "couple": 16,
    "couple_kids": 42, "three_gen": 12, "skipped": 1, "parent_child": 4,
})  # fmt: skip
TENANTS = Weighted({"single": 20, "couple": 30, "couple_kids": 40, "shared": 10})
SURNAMES = Weighted(dict(zip(pools.SURNAMES, pools.SURNAME_WEIGHTS, strict=True)))


@dataclass(frozen=True)
class Member:
    """One member of a household to be: age at AS_OF, sex, and whether they carry the family surname."""

    age: int
    sex: str
    own_surname: bool  # False: married in, keeps their own surname


def ethnicity(rng: random.Random, region: str) -> str:
    """Mostly 汉族; 回族 as common as in the home region; a few others."""
    draw = rng.random()
    hui = pools.HUI_SHARE.get(region, 0.006)
    if draw < hui:
        return "回族"
    if draw < hui + 0.002:
        return "满族"
    return "蒙古族" if draw < hui + 0.003 else "汉族"


def members(rng: random.Random, kind: str) -> list[Member]:
    """Ages and sexes of a household of kind, the householder first (1-4 people)."""
    r = rng.randint
    sex = "MF"[int(rng.random() * 2)]
    if kind == "elderly_single":
        return [Member(int(rng.triangular(70, 96, 76)), sex, True)]
    if kind == "single":
        return [Member(int(rng.triangular(22, 65, 30)), sex, True)]
    if kind == "elderly_couple":
        husband = int(rng.triangular(62, 94, 70))
        return [Member(husband, "M", True), Member(max(58, husband + r(-6, 3)), "F", False)]
    if kind == "middle_couple":
        husband = r(48, 66)
        return [Member(husband, "M", True), Member(max(45, husband + r(-5, 2)), "F", False)]
    if kind == "couple":
        husband = r(24, 40)
        return [Member(husband, "M", True), Member(max(22, husband + r(-4, 2)), "F", False)]
    if kind == "shared":
        return [Member(r(20, 38), pick(rng, "MF"), True) for _ in range(r(2, 3))]
    if kind == "couple_kids":
        father = r(28, 56)
        mother = max(24, father + r(-5, 2))
        count = 1 if rng.random() < 0.6 else 2
        kids = [Member(r(0, min(mother - 20, 26)), pick(rng, "MF"), True) for _ in range(count)]
        return [Member(father, "M", True), Member(mother, "F", False), *kids]
    if kind == "skipped":  # grandparents raising a grandchild whose parents work elsewhere
        grandfather = r(55, 78)
        elders = [Member(grandfather, "M", True), Member(grandfather + r(-4, 2), "F", False)]
        return [*elders[: r(1, 2)], Member(r(4, 15), sex, True)]
    if kind == "parent_child":
        elder = int(rng.triangular(65, 95, 78))
        return [Member(elder, sex, True), Member(r(35, min(60, elder - 22)), pick(rng, "MF"), True)]
    return _three_generations(rng)


def _three_generations(rng: random.Random) -> list[Member]:
    r = rng.randint
    son = r(28, 55)
    elder = min(95, son + r(24, 34))
    grandpa, grandma = Member(elder, "M", True), Member(max(50, elder + r(-5, 2)), "F", False)
    adult, spouse = Member(son, "M", True), Member(max(24, son + r(-4, 2)), "F", False)
    child = Member(r(0, min(son - 22, 20)), pick(rng, "MF"), True)
    shape = rng.random()
    if shape < 0.4:
        return [grandpa, grandma, adult, child]
    if shape < 0.75:
        return [pick(rng, (grandpa, grandma)), adult, spouse, child]
    return [grandpa, grandma, adult, spouse]
