"""Valid fictitious identifiers: resident ID numbers, mobiles, plates and USCCs.

Each community draws from its own slice of every identifier space (values congruent to the community's
index modulo PARTITIONS), so communities generated separately, even in parallel, never collide; within
a community a set of used values catches the rest.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from linli.demo import pools
from linli.demo.households import Weighted, pick
from linli.registry.validation import gb11643_check_digit, gb11714_check_char, gb32100_check_char

PARTITIONS = 142  # at least the number of communities
_DIGITS = "0123456789"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # valid in both GB 32100 and GB 11714
_NEV_SECOND = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
# Ordinary plate serials: each position's alphabet; no two patterns can spell the same serial.
_ORDINARY_PATTERNS = {
    "DDDDD": (_DIGITS,) * 5,
    "LDDDD": (pools.PLATE_LETTERS, *(_DIGITS,) * 4),
    "LLDDD": (pools.PLATE_LETTERS, pools.PLATE_LETTERS, *(_DIGITS,) * 3),
    "DDDDL": (*(_DIGITS,) * 4, pools.PLATE_LETTERS),
    "DLDDD": (_DIGITS, pools.PLATE_LETTERS, *(_DIGITS,) * 3),
}
_ORDINARY_KINDS = Weighted({"DDDDD": 45, "LDDDD": 25, "LLDDD": 12, "DDDDL": 10, "DLDDD": 8})
_NEV_PATTERN = ("DF", _NEV_SECOND, *(_DIGITS,) * 4)
# Issuing prefix ("+" for new energy) and weights: Xi'an 陕A and Xianyang 陕D most, a few from elsewhere.
_PLATE_KINDS = Weighted({"陕A": 50, "陕D": 30, "陕A+": 9, "陕D+": 4, "陕E": 3, "陕C": 2, "甘A": 1, "豫A": 1})
_USCC_KINDS = {"enterprise": "91", "property": "91", "shop": "92", "social": "52"}


def _space(pattern: tuple[str, ...]) -> int:
    size = 1
    for alphabet in pattern:
        size *= len(alphabet)
    return size


def _spell(value: int, pattern: tuple[str, ...]) -> str:
    """value written in the mixed radix of pattern (last position fastest)."""
    chars = []
    for alphabet in reversed(pattern):
        value, digit = divmod(value, len(alphabet))
        chars.append(alphabet[digit])
    return "".join(reversed(chars))


class Identities:
    """Identifier source for one community: deterministic given rng, unique within the district."""

    def __init__(self, rng: random.Random, index: int) -> None:
        if not 0 <= index < PARTITIONS:
            raise ValueError(f"community index {index} outside 0..{PARTITIONS - 1}")
        self.rng = rng
        self.index = index
        self._ids: set[str] = set()
        self._plates: set[str] = set()
        self._usccs: set[str] = set()
        # Sequence numbers (positions 15-17) of this community: s // 2 ≡ index (mod PARTITIONS).
        self._slots = [k for k in range(index, 500, PARTITIONS)]

    def _pick(self, pattern: tuple[str, ...]) -> str:
        """A random value of pattern in this community's slice."""
        count = (_space(pattern) - 1 - self.index) // PARTITIONS + 1
        return _spell(self.index + PARTITIONS * int(self.rng.random() * count), pattern)

    def resident_id(self, region: str, birth: date, sex: str) -> tuple[str, date]:
        """A valid unused 18-digit ID number for (region, birth, sex); on a clash the birth moves a day."""
        parity = 1 if sex == "M" else 0
        slots = self._slots
        first = int(self.rng.random() * len(slots))
        while True:
            stem = f"{region}{birth:%Y%m%d}"
            for k in range(len(slots)):
                first17 = f"{stem}{2 * slots[(first + k) % len(slots)] + parity:03d}"
                if first17 not in self._ids:
                    self._ids.add(first17)
                    return first17 + gb11643_check_digit(first17), birth
            birth -= timedelta(days=1)

    def mobile(self) -> str:
        """A mainland mobile number (may repeat: numbers are not unique in the register)."""
        rng = self.rng
        return f"{pick(rng, pools.MOBILE_PREFIXES)}{int(rng.random() * 100_000_000):08d}"

    def plate(self) -> tuple[str, str]:
        """(plate, kind): an unused plate of a common mainland format."""
        while True:
            prefix = _PLATE_KINDS.draw(self.rng)
            if prefix.endswith("+"):
                prefix = prefix[:-1]
                number, kind = prefix + self._pick(_NEV_PATTERN), "new_energy"
            else:
                pattern = _ORDINARY_PATTERNS[_ORDINARY_KINDS.draw(self.rng)]
                number, kind = prefix + self._pick(pattern), "ordinary"
            if number not in self._plates:
                self._plates.add(number)
                return number, kind

    def uscc(self, org_type: str, region: str) -> str:
        """An unused unified social credit code whose organisation code and check character are valid."""
        while True:
            body = "MA6" + self._pick((_USCC_CHARS,) * 5)
            first17 = f"{_USCC_KINDS[org_type]}{region}{body}{gb11714_check_char(body)}"
            code = first17 + gb32100_check_char(first17)
            if code not in self._usccs:
                self._usccs.add(code)
                return code
