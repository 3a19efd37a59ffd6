"""Validation and normalisation of identifiers used in the population register (一标三实).

Pure functions only: no I/O, no database, no imports from other linli modules.  Every
failure raises :class:`InvalidValue` whose ``reason`` is a Simplified Chinese message
that names what is wrong, suitable for showing to the community worker who typed it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = [
    "InvalidValue",
    "Plate",
    "ResidentId",
    "check_resident_id_matches",
    "fold_width",
    "gb11643_check_digit",
    "gb11714_check_char",
    "gb32100_check_char",
    "mask_id",
    "mask_phone",
    "normalise_hmt_permit",
    "normalise_mobile",
    "normalise_passport",
    "normalise_resident_id",
    "normalise_uscc",
    "parse_plate",
    "parse_resident_id",
    "validate_id",
    "validate_uscc",
]


class InvalidValue(ValueError):
    """A value failed validation; .field names the field (e.g. 'id_number'), .reason is a Chinese message."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidValue], tuple[str, str]]:
        """Pickle with both constructor arguments (the default would pass only the message)."""
        return (self.__class__, (self.field, self.reason))


# --------------------------------------------------------------------------- width folding

_FULL_WIDTH_TABLE: dict[int, int] = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_WIDTH_TABLE[0x3000] = 0x20  # ideographic (full-width) space


def fold_width(text: str) -> str:
    """Fold full-width ASCII (ＡＢＣ１２３, full-width space) to half-width; does not strip, callers do."""
    return text.translate(_FULL_WIDTH_TABLE)


_SPACES_AND_HYPHENS = re.compile(r"[\s\-‐‑‒–—―]")


def _compact(raw: str) -> str:
    """Fold width, drop whitespace and hyphens, upper-case."""
    return _SPACES_AND_HYPHENS.sub("", fold_width(raw)).upper()


def _quote(char: str) -> str:
    return f"“{char}”"


# --------------------------------------------------------------------------- resident identity card

_PROVINCE_CODES = frozenset(
    [*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66)]
).union([71, 81, 82, 83, 91])  # 71 台湾, 81 香港, 82 澳门, 83 台湾居住证, 91
_GB11643_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
_GB11643_CHECK = "10X98765432"
_EARLIEST_BIRTH = date(1900, 1, 1)
_HMT_RESIDENCE_PREFIXES = {"810000": "香港", "820000": "澳门", "830000": "台湾"}


@dataclass(frozen=True)
class ResidentId:
    """A parsed, valid 18-digit resident identity card number (GB 11643-1999)."""

    number: str  # normalised: 18 chars, upper-case X
    birth_date: date
    sex: str  # "M" or "F" (17th digit odd = male)
    region_code: str  # first 6 digits


def normalise_resident_id(raw: str) -> str:
    """Fold width, strip, remove spaces/hyphens and upper-case a trailing x; does not validate."""
    return _compact(raw.strip())


def gb11643_check_digit(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check digit ('0'-'9' or 'X') for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("gb11643_check_digit expects exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


def _first_non_digit(text: str) -> int | None:
    for index, char in enumerate(text):
        if not ("0" <= char <= "9"):
            return index
    return None


def _parse_resident_number(number: str, field: str, label: str) -> ResidentId:
    """Validate an already-normalised number; ``label`` names the document in messages."""
    if not number:
        raise InvalidValue(field, f"{label}不能为空")
    if len(number) == 15 and _first_non_digit(number) is None:
        raise InvalidValue(field, f"这是15位的第一代{label}，已停止使用，请填写18位的第二代{label}")
    if len(number) != 18:
        raise InvalidValue(field, f"{label}应为18位，当前为{len(number)}位")
    bad = _first_non_digit(number[:17])
    if bad is not None:
        raise InvalidValue(field, f"{label}前17位应全部为数字，第{bad + 1}位{_quote(number[bad])}不是数字")
    last = number[17]
    if last not in "0123456789X":
        raise InvalidValue(field, f"{label}最后一位应为数字或X，当前为{_quote(last)}")
    expected = gb11643_check_digit(number[:17])
    if last != expected:
        raise InvalidValue(
            field,
            f"{label}校验位错误：按前17位计算最后一位应为{_quote(expected)}，实际为{_quote(last)}，"
            "请核对号码是否输错",
        )
    province = number[:2]
    if int(province) not in _PROVINCE_CODES:
        raise InvalidValue(field, f"{label}前两位{_quote(province)}不是有效的省级行政区划代码")
    digits = number[6:14]
    try:
        birth = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise InvalidValue(field, f"{label}中的出生日期{digits}不是有效日期") from None
    if birth < _EARLIEST_BIRTH:
        raise InvalidValue(field, f"{label}中的出生日期{birth.isoformat()}早于1900-01-01")
    if birth > date.today():
        raise InvalidValue(field, f"{label}中的出生日期{birth.isoformat()}晚于今天")
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return ResidentId(number=number, birth_date=birth, sex=sex, region_code=number[:6])


def parse_resident_id(raw: str, *, field: str = "id_number") -> ResidentId:
    """Normalise and fully validate an 18-digit resident ID number (GB 11643-1999)."""
    return _parse_resident_number(normalise_resident_id(raw), field, "身份证号码")


_SEX_ALIASES = {"M": "M", "F": "F", "男": "M", "女": "F"}
_SEX_LABELS = {"M": "男", "F": "女"}


def check_resident_id_matches(rid: ResidentId, *, birth_date: date | None, sex: str | None) -> None:
    """Raise InvalidValue(field='birth_date' or 'sex') if an entered value disagrees with the ID number."""
    if birth_date is not None and birth_date != rid.birth_date:
        raise InvalidValue(
            "birth_date",
            f"出生日期{birth_date.isoformat()}与身份证号码中的出生日期{rid.birth_date.isoformat()}不一致",
        )
    if sex is not None:
        entered = _SEX_ALIASES.get(sex.strip().upper())
        if entered is None:
            raise InvalidValue("sex", f"性别取值{_quote(sex)}无效，应为M（男）或F（女）")
        if entered != rid.sex:
            raise InvalidValue(
                "sex",
                f"性别“{_SEX_LABELS[entered]}”与身份证号码（第17位为"
                f"{'奇数，应为男' if rid.sex == 'M' else '偶数，应为女'}）不一致",
            )


# --------------------------------------------------------------------------- other identity documents

_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")
_HMT_BRACKETS = re.compile(r"[()\[\]]")


def normalise_passport(raw: str) -> str:
    """Fold width, upper-case and drop spaces; require 5-20 chars of A-Z0-9 else InvalidValue('id_number')."""
    number = re.sub(r"\s", "", fold_width(raw)).upper()
    if not number:
        raise InvalidValue("id_number", "护照号码不能为空")
    if not _PASSPORT.fullmatch(number):
        bad = next((c for c in number if not ("A" <= c <= "Z" or "0" <= c <= "9")), None)
        if bad is not None:
            raise InvalidValue("id_number", f"护照号码只能包含英文字母和数字，不能包含{_quote(bad)}")
        raise InvalidValue("id_number", f"护照号码应为5-20位，当前为{len(number)}位")
    return number


def _parse_hmt_residence(number: str, field: str) -> str:
    label = "港澳台居民居住证号码"
    rid = _parse_resident_number(number, field, label)
    if rid.region_code not in _HMT_RESIDENCE_PREFIXES:
        raise InvalidValue(field, f"{label}应以810000（香港）、820000（澳门）或830000（台湾）开头")
    return rid.number


def normalise_hmt_permit(raw: str) -> str:
    """Normalise an HK/Macau/Taiwan travel permit or 18-digit residence permit number, else InvalidValue."""
    field = "id_number"
    number = _HMT_BRACKETS.sub("", _compact(raw.strip()))
    if not number:
        raise InvalidValue(field, "港澳台居民证件号码不能为空")
    if number[0] in "HM":
        rest = number[1:]
        if _first_non_digit(rest) is None and len(rest) in (8, 10):
            return number
        raise InvalidValue(
            field,
            f"港澳居民来往内地通行证号码应为{_quote(number[0])}加8位或10位数字，"
            f"当前{_quote(number[0])}后为{len(rest)}位"
            + ("" if _first_non_digit(rest) is None else "且含非数字字符"),
        )
    if _first_non_digit(number) is None:
        if len(number) in (8, 10):
            return number
        if len(number) == 18:
            return _parse_hmt_residence(number, field)
    raise InvalidValue(
        field,
        "港澳台居民证件号码格式不正确：港澳居民来往内地通行证为H或M加8位或10位数字，"
        "台湾居民来往大陆通行证为8位或10位数字，港澳台居民居住证为18位",
    )


_ID_TYPES = ("resident_id", "passport", "hmt_permit", "hmt_residence")


def validate_id(id_type: str, raw: str, *, field: str = "id_number") -> str:
    """Validate ``raw`` as a document of ``id_type`` and return the normalised number."""
    if id_type == "resident_id":
        return parse_resident_id(raw, field=field).number
    if id_type == "hmt_residence":
        return _parse_hmt_residence(normalise_resident_id(raw), field)
    try:
        if id_type == "passport":
            return normalise_passport(raw)
        if id_type == "hmt_permit":
            return normalise_hmt_permit(raw)
    except InvalidValue as exc:
        if exc.field == field:
            raise
        raise InvalidValue(field, exc.reason) from None
    raise InvalidValue("id_type", f"不支持的证件类型{_quote(id_type)}，应为：{'、'.join(_ID_TYPES)}")


def mask_id(number: str) -> str:
    """Mask an ID number: 18 chars keep first 3 + last 4; shorter keep 1-2 + 2-4 with at least half masked."""
    n = len(number)
    if n >= 18:
        head, tail = 3, 4
    else:
        keep = n // 2  # at most this many characters stay visible
        head = 2 if keep >= 5 else 1
        tail = min(4, keep - head)
        if tail < 1:
            return "*" * n
    return number[:head] + "*" * (n - head - tail) + number[n - tail :]


# --------------------------------------------------------------------------- unified social credit code

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_GB11714_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_GB11714_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def normalise_uscc(raw: str) -> str:
    """Fold width, strip, drop spaces/hyphens and upper-case a USCC; does not validate."""
    return _compact(raw.strip())


def gb32100_check_char(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters of a USCC."""
    if len(first17) != 17 or any(c not in _USCC_VALUES for c in first17):
        raise ValueError("gb32100_check_char expects 17 characters of 0-9A-Y without I, O, S, V, Z")
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[-total % 31]


def gb11714_check_char(first8: str) -> str:
    """Return the GB 11714-1997 check character ('0'-'9' or 'X') for an 8-char organisation code body."""
    if len(first8) != 8 or any(c not in _GB11714_VALUES for c in first8):
        raise ValueError("gb11714_check_char expects 8 characters of 0-9A-Z")
    remainder = 11 - sum(_GB11714_VALUES[c] * w for c, w in zip(first8, _GB11714_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def validate_uscc(raw: str, *, field: str = "uscc") -> str:
    """Normalise and validate a unified social credit code (GB 32100-2015, incl. the GB 11714 org code)."""
    label = "统一社会信用代码"
    code = normalise_uscc(raw)
    if not code:
        raise InvalidValue(field, f"{label}不能为空")
    if len(code) != 18:
        raise InvalidValue(field, f"{label}应为18位，当前为{len(code)}位")
    for index, char in enumerate(code):
        if char not in _USCC_VALUES:
            hint = "（不使用字母I、O、S、V、Z）" if char in "IOSVZ" else ""
            raise InvalidValue(field, f"{label}第{index + 1}位{_quote(char)}不是合法字符{hint}")
    bad = _first_non_digit(code[2:8])
    if bad is not None:
        raise InvalidValue(
            field, f"{label}第3-8位为行政区划码，应全部为数字，第{bad + 3}位{_quote(code[bad + 2])}不是数字"
        )
    expected = gb32100_check_char(code[:17])
    if code[17] != expected:
        raise InvalidValue(
            field,
            f"{label}校验位错误：按前17位计算第18位应为{_quote(expected)}，实际为{_quote(code[17])}，"
            "请核对号码是否输错",
        )
    org_expected = gb11714_check_char(code[8:16])
    if code[16] != org_expected:
        raise InvalidValue(
            field,
            f"{label}第9-17位（组织机构代码）校验错误：第17位应为{_quote(org_expected)}，"
            f"实际为{_quote(code[16])}，请核对号码是否输错",
        )
    return code


# --------------------------------------------------------------------------- mobile phone

_MOBILE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―()]")


def normalise_mobile(raw: str, *, field: str = "phone") -> str:
    """Return the 11-digit mainland mobile number, tolerating +86/0086/86, spaces, hyphens and full width."""
    number = _MOBILE_SEPARATORS.sub("", fold_width(raw))
    if not number:
        raise InvalidValue(field, "手机号码不能为空")
    if number.startswith("+"):
        if not number.startswith("+86"):
            raise InvalidValue(field, "仅支持中国大陆手机号码（+86）")
        number = number[3:]
    elif number.startswith("0086"):
        number = number[4:]
    elif number.startswith("86") and len(number) == 13:
        number = number[2:]
    bad = _first_non_digit(number)
    if bad is not None:
        raise InvalidValue(field, f"手机号码只能包含数字，不能包含{_quote(number[bad])}")
    if len(number) != 11:
        raise InvalidValue(field, f"手机号码应为11位数字，当前为{len(number)}位")
    if number[0] != "1" or number[1] not in "3456789":
        raise InvalidValue(field, f"手机号码应以13-19开头，当前为{_quote(number[:2])}开头")
    return number


def mask_phone(number: str) -> str:
    """Mask an 11-digit mobile number as '138****5678'; other lengths fall back to mask_id."""
    if len(number) == 11:
        return number[:3] + "****" + number[7:]
    return mask_id(number)


# --------------------------------------------------------------------------- vehicle plates

_PLATE_PROVINCES = frozenset("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")
_PLATE_LETTERS = frozenset("ABCDEFGHJKLMNPQRSTUVWXYZ")
_PLATE_ALNUM = _PLATE_LETTERS | frozenset("0123456789")
_PLATE_SUFFIXES = {"挂": "trailer", "学": "coach", "警": "police", "港": "hk_macau", "澳": "hk_macau"}
_PLATE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―·•・.]")
_NEV_SMALL = re.compile(r"[DABCEFGHJK][A-HJ-NP-Z0-9][0-9]{4}")
_NEV_LARGE = re.compile(r"[0-9]{5}[DF]")
_MILITARY = re.compile(r"[A-Z]{2}[0-9]{5}")  # 2012-style PLA plates, e.g. "VA12345"


@dataclass(frozen=True)
class Plate:
    """A parsed mainland vehicle plate number."""

    number: str  # normalised, e.g. "陕A12345", "陕AD12345"
    kind: str  # "ordinary" | "new_energy" | "trailer" | "coach" | "police" | "hk_macau"


def parse_plate(raw: str, *, field: str = "plate") -> Plate:
    """Normalise and validate a mainland plate number; unsupported plate types raise InvalidValue."""
    number = _PLATE_SEPARATORS.sub("", fold_width(raw)).upper()
    if not number:
        raise InvalidValue(field, "车牌号不能为空")
    if "使" in number or "领" in number:
        raise InvalidValue(field, "暂不支持登记使馆、领馆车辆号牌（使/领），请联系管理员人工处理")
    if "应急" in number or "民航" in number:
        raise InvalidValue(field, "暂不支持登记应急救援或民航车辆号牌，请联系管理员人工处理")
    first = number[0]
    if first not in _PLATE_PROVINCES:
        if number.startswith("WJ") or _MILITARY.fullmatch(number):
            raise InvalidValue(field, "暂不支持登记军队、武警车辆号牌，请联系管理员人工处理")
        raise InvalidValue(field, f"车牌号第1位应为省份简称（如“陕”），{_quote(first)}不是有效的省份简称")
    if len(number) < 7:
        raise InvalidValue(
            field, f"车牌号位数不足：普通号牌应为7位，新能源号牌应为8位，当前为{len(number)}位"
        )
    if len(number) > 8:
        raise InvalidValue(
            field, f"车牌号位数过多：普通号牌应为7位，新能源号牌应为8位，当前为{len(number)}位"
        )
    city = number[1]
    if city in "IO":
        raise InvalidValue(field, f"车牌号第2位发牌机关代号不使用字母I或O，当前为{_quote(city)}")
    if city not in _PLATE_LETTERS:
        raise InvalidValue(field, f"车牌号第2位应为发牌机关代号字母（A-Z，不含I、O），当前为{_quote(city)}")
    for index, char in enumerate(number[2:], start=3):
        if char in "IO":
            digit = "1" if char == "I" else "0"
            raise InvalidValue(
                field,
                f"车牌号不使用字母I和O，第{index}位{_quote(char)}是否应为数字{_quote(digit)}？请核对后重新输入",
            )
    serial = number[2:]
    if len(serial) == 6:
        if _NEV_SMALL.fullmatch(serial) or _NEV_LARGE.fullmatch(serial):
            return Plate(number=number, kind="new_energy")
        raise InvalidValue(
            field,
            "新能源号牌格式不正确：小型新能源车第3位应为D、A、B、C、E、F、G、H、J、K之一且后4位为数字，"
            "大型新能源车第3-7位应为数字且最后一位为D或F",
        )
    body, last = serial[:4], serial[4]
    kind = _PLATE_SUFFIXES.get(last, "ordinary")
    checked = body if kind != "ordinary" else serial
    for index, char in enumerate(checked, start=3):
        if char not in _PLATE_ALNUM:
            raise InvalidValue(field, f"车牌号第{index}位{_quote(char)}不是有效字符，应为字母或数字")
    return Plate(number=number, kind=kind)
