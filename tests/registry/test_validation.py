"""Tests for linli.registry.validation, using python-stdnum as an independent oracle where it applies."""

from __future__ import annotations

import pickle
import random
from datetime import date, timedelta

import pytest
from stdnum.cn import ric, uscc

from linli.registry.validation import (
    InvalidValue,
    Plate,
    ResidentId,
    check_resident_id_matches,
    fold_width,
    gb11643_check_digit,
    gb11714_check_char,
    gb32100_check_char,
    mask_id,
    mask_phone,
    normalise_hmt_permit,
    normalise_mobile,
    normalise_passport,
    normalise_resident_id,
    normalise_uscc,
    parse_plate,
    parse_resident_id,
    validate_id,
    validate_uscc,
)

N_RANDOM = 2000
# Region codes that stdnum's location database accepts for every birth year since 1900, so that
# stdnum's (stricter, county-level) birth-place check never disagrees with our province-level check.
ORACLE_REGIONS = ["110101", "110105", "110108", "120101", "310101", "310104", "710000"]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def make_rid(region: str, birth: date, seq: int) -> str:
    """Build a valid 18-digit number with our check digit."""
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + gb11643_check_digit(first17)


def random_birth(rng: random.Random) -> date:
    return date.fromordinal(rng.randint(date(1900, 1, 1).toordinal(), date.today().toordinal()))


def reason_of(excinfo: pytest.ExceptionInfo[InvalidValue]) -> str:
    return excinfo.value.reason


# --------------------------------------------------------------------------- InvalidValue / fold_width


def test_invalid_value_carries_field_and_reason() -> None:
    exc = InvalidValue("id_number", "身份证号码应为18位")
    assert isinstance(exc, ValueError)
    assert exc.field == "id_number"
    assert exc.reason == "身份证号码应为18位"
    assert str(exc) == "身份证号码应为18位"


def test_invalid_value_pickles() -> None:
    clone = pickle.loads(pickle.dumps(InvalidValue("plate", "车牌号不能为空")))
    assert (clone.field, clone.reason) == ("plate", "车牌号不能为空")


def test_fold_width_folds_ascii_and_space_only() -> None:
    assert fold_width("ＡＢＣ１２３ｘ") == "ABC123x"
    assert fold_width("１３８\u3000００１３") == "138 0013"
    assert fold_width("（＋８６）－") == "(+86)-"
    # Non-ASCII full-width characters (CJK, middle dot) are untouched, and nothing is stripped.
    assert fold_width(" 陕Ａ·１２ ") == " 陕A·12 "
    assert fold_width("") == ""


# --------------------------------------------------------------------------- resident ID: oracle tests


def test_check_digit_matches_stdnum_on_random_input() -> None:
    rng = random.Random(11643)
    for _ in range(N_RANDOM):
        first17 = "".join(rng.choice("0123456789") for _ in range(17))
        assert gb11643_check_digit(first17) == ric.calc_check_digit(first17 + "0"), first17


def test_check_digit_standard_example() -> None:
    # Worked example from GB 11643-1999 itself.
    assert gb11643_check_digit("11010519491231002") == "X"
    assert gb11643_check_digit("44052418800101001") == "4"


@pytest.mark.parametrize(
    "bad", ["", "1234567890123456", "1101051949123100A", "１１０１０５１９４９１２３１００２"]
)
def test_check_digit_rejects_non_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="17"):
        gb11643_check_digit(bad)


def test_random_valid_resident_ids_agree_with_stdnum() -> None:
    rng = random.Random(1999)
    for _ in range(N_RANDOM):
        birth = random_birth(rng)
        seq = rng.randint(0, 999)
        number = make_rid(rng.choice(ORACLE_REGIONS), birth, seq)
        assert ric.is_valid(number), number
        rid = parse_resident_id(number)
        assert rid.number == number
        assert rid.birth_date == birth == ric.get_birth_date(number)
        assert rid.sex == ("M" if seq % 2 else "F")
        assert rid.region_code == number[:6]


def _corrupt(number: str, rng: random.Random) -> str:
    chars = list(number)
    kind = rng.randrange(4)
    if kind == 0:  # one substituted character after the region code
        chars[rng.randrange(6, 18)] = rng.choice("0123456789X")
    elif kind == 1:  # adjacent transposition
        i = rng.randrange(6, 17)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    elif kind == 2:  # random check character
        chars[17] = rng.choice("0123456789X")
    else:  # entirely random tail
        chars[6:] = [rng.choice("0123456789") for _ in range(11)] + [rng.choice("0123456789X")]
    return "".join(chars)


def _ours_valid(number: str) -> bool:
    try:
        parse_resident_id(number)
    except InvalidValue:
        return False
    return True


def test_corrupted_resident_ids_agree_with_stdnum() -> None:
    rng = random.Random(7064)
    today = date.today()
    outcomes = {True: 0, False: 0}
    for _ in range(N_RANDOM):
        number = _corrupt(make_rid(rng.choice(ORACLE_REGIONS), random_birth(rng), rng.randint(0, 999)), rng)
        expected = ric.is_valid(number) and date(1900, 1, 1) <= ric.get_birth_date(number) <= today
        assert _ours_valid(number) is expected, number
        outcomes[expected] += 1
    # The sample really exercises both branches.
    assert outcomes[True] > 50
    assert outcomes[False] > 200


def test_fully_random_strings_never_pass_when_stdnum_fails_checksum() -> None:
    rng = random.Random(18)
    rejected_for_checksum = 0
    for _ in range(N_RANDOM):
        number = "".join(rng.choice("0123456789") for _ in range(17)) + rng.choice("0123456789X")
        if rng.random() < 0.5:  # give half of them a correct check digit
            number = number[:17] + gb11643_check_digit(number[:17])
        if _ours_valid(number):
            # Anything we accept has a checksum and birth date stdnum agrees with.
            assert ric.calc_check_digit(number) == number[17]
            assert ric.get_birth_date(number) == parse_resident_id(number).birth_date
        if number[17] != ric.calc_check_digit(number):
            assert not _ours_valid(number)
            rejected_for_checksum += 1
    assert rejected_for_checksum > 500


# --------------------------------------------------------------------------- resident ID: edge cases

VALID_RID = "11010519491231002X"


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002x",
        " 110105 19491231 002X ",
        "110105-19491231-002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５\u3000１９４９１２３１\u3000００２ｘ",
        "\t110105194912310 02X\n",
    ],
)
def test_resident_id_normalisation(raw: str) -> None:
    assert normalise_resident_id(raw) == VALID_RID
    assert parse_resident_id(raw).number == VALID_RID


def test_resident_id_parsed_fields() -> None:
    rid = parse_resident_id(VALID_RID)
    assert rid == ResidentId(number=VALID_RID, birth_date=date(1949, 12, 31), sex="F", region_code="110105")
    male = parse_resident_id(make_rid("610102", date(1990, 1, 1), 123))
    assert male.sex == "M"
    assert male.region_code == "610102"


def test_fullwidth_shaanxi_number() -> None:
    number = make_rid("610102", date(1985, 6, 15), 37)
    full = fold_width_inverse(number)
    assert full.startswith("６１０１")
    assert parse_resident_id(full).number == number


def fold_width_inverse(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_resident_id_is_frozen() -> None:
    rid = parse_resident_id(VALID_RID)
    with pytest.raises(AttributeError):
        rid.sex = "M"  # type: ignore[misc]


@pytest.mark.parametrize("birth", [date(1900, 1, 1), date(2000, 2, 29), date(2024, 2, 29), date.today()])
def test_boundary_and_leap_birth_dates_accepted(birth: date) -> None:
    assert parse_resident_id(make_rid("610102", birth, 1)).birth_date == birth


@pytest.mark.parametrize("digits", ["19000229", "19990230", "20230229", "19901301", "19900100", "19900431"])
def test_impossible_birth_dates_rejected(digits: str) -> None:
    first17 = "610102" + digits + "123"
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id(first17 + gb11643_check_digit(first17))
    assert excinfo.value.field == "id_number"
    assert digits in reason_of(excinfo)
    assert "出生日期" in reason_of(excinfo)


def test_birth_date_before_1900_rejected() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id(make_rid("110101", date(1899, 12, 31), 5))
    assert "1899-12-31" in reason_of(excinfo)
    assert "1900" in reason_of(excinfo)


@pytest.mark.parametrize("days", [1, 400, 365 * 50])
def test_future_birth_date_rejected(days: int) -> None:
    future = date.today() + timedelta(days=days)
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id(make_rid("610102", future, 5))
    assert future.isoformat() in reason_of(excinfo)
    assert "晚于今天" in reason_of(excinfo)


def test_wrong_check_digit_names_expected_digit() -> None:
    number = make_rid("610102", date(1990, 1, 1), 123)
    expected = number[17]
    wrong = "0" if expected != "0" else "1"
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id(number[:17] + wrong)
    assert excinfo.value.field == "id_number"
    assert f"应为“{expected}”" in reason_of(excinfo)
    assert f"实际为“{wrong}”" in reason_of(excinfo)


def test_wrong_check_digit_expected_x() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id("110105194912310021")
    assert "应为“X”" in reason_of(excinfo)


def test_first_generation_15_digit_id_rejected() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id("110105491231002")
    assert "15位" in reason_of(excinfo)
    assert "18位" in reason_of(excinfo)
    assert "第一代" in reason_of(excinfo)


@pytest.mark.parametrize(("raw", "length"), [("1101051949123100", 16), ("11010519491231002X1", 19), ("1", 1)])
def test_wrong_length_rejected(raw: str, length: int) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id(raw)
    assert "18位" in reason_of(excinfo)
    assert f"当前为{length}位" in reason_of(excinfo)


def test_empty_resident_id_rejected() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id("   ")
    assert "不能为空" in reason_of(excinfo)


def test_non_digit_names_position() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id("1101O519491231002X")
    assert "第5位“O”" in reason_of(excinfo)
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id("11010519491231002Y")
    assert "最后一位" in reason_of(excinfo)
    assert "“Y”" in reason_of(excinfo)


@pytest.mark.parametrize(
    "province", ["00", "10", "16", "20", "24", "38", "47", "49", "55", "60", "66", "72", "84", "99"]
)
def test_invalid_province_rejected(province: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id(make_rid(province + "0101", date(1990, 1, 1), 1))
    assert f"“{province}”" in reason_of(excinfo)
    assert "省级行政区划代码" in reason_of(excinfo)


VALID_PROVINCES = [
    *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66),
    71, 81, 82, 83, 91,
]  # fmt: skip


@pytest.mark.parametrize("province", VALID_PROVINCES)
def test_valid_provinces_accepted(province: int) -> None:
    number = make_rid(f"{province}0101", date(1990, 1, 1), 1)
    assert parse_resident_id(number).region_code == f"{province}0101"


def test_custom_field_name_used() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_resident_id("123", field="guardian_id_number")
    assert excinfo.value.field == "guardian_id_number"


# --------------------------------------------------------------------------- check_resident_id_matches


def test_matching_details_pass() -> None:
    rid = parse_resident_id(VALID_RID)
    for sex in ["F", "f", "女", " F "]:
        check_resident_id_matches(rid, birth_date=date(1949, 12, 31), sex=sex)
    check_resident_id_matches(rid, birth_date=None, sex=None)
    male = parse_resident_id(make_rid("610102", date(1990, 1, 1), 123))
    for sex in ["M", "m", "男"]:
        check_resident_id_matches(male, birth_date=date(1990, 1, 1), sex=sex)
    assert (rid.sex, male.sex) == ("F", "M")  # the calls above raised nothing for matching values


def test_birth_date_mismatch() -> None:
    rid = parse_resident_id(VALID_RID)
    with pytest.raises(InvalidValue) as excinfo:
        check_resident_id_matches(rid, birth_date=date(1949, 12, 30), sex="F")
    assert excinfo.value.field == "birth_date"
    assert "1949-12-30" in reason_of(excinfo)
    assert "1949-12-31" in reason_of(excinfo)


@pytest.mark.parametrize("sex", ["M", "m", "男"])
def test_sex_mismatch(sex: str) -> None:
    rid = parse_resident_id(VALID_RID)
    with pytest.raises(InvalidValue) as excinfo:
        check_resident_id_matches(rid, birth_date=None, sex=sex)
    assert excinfo.value.field == "sex"
    assert "不一致" in reason_of(excinfo)
    assert "应为女" in reason_of(excinfo)


def test_unknown_sex_value() -> None:
    rid = parse_resident_id(VALID_RID)
    with pytest.raises(InvalidValue) as excinfo:
        check_resident_id_matches(rid, birth_date=None, sex="X")
    assert excinfo.value.field == "sex"
    assert "“X”" in reason_of(excinfo)


# ----------------------------------------------------------------------- passport / HMT permits / validate_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("e1234 5678", "E12345678"),
        ("ＥＡ１２３４５６７", "EA1234567"),
        (" G12345678 ", "G12345678"),
        ("AB123", "AB123"),
    ],
)
def test_passport_normalised(raw: str, expected: str) -> None:
    assert normalise_passport(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "不能为空"),
        ("1234", "当前为4位"),
        ("A" * 21, "当前为21位"),
        ("E1234-5678", "“-”"),
        ("E1234567#", "“#”"),
    ],
)
def test_passport_rejected(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        normalise_passport(raw)
    assert excinfo.value.field == "id_number"
    assert fragment in reason_of(excinfo)


HK_RESIDENCE = make_rid("810000", date(1990, 1, 1), 12)
TW_RESIDENCE = make_rid("830000", date(1975, 7, 7), 21)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("H12345678", "H12345678"),
        ("h 1234 5678", "H12345678"),
        ("M1234567801", "M1234567801"),
        ("H12345678(01)", "H1234567801"),
        ("Ｈ１２３４５６７８", "H12345678"),
        ("12345678", "12345678"),
        ("1234567890", "1234567890"),
        (HK_RESIDENCE, HK_RESIDENCE),
        (TW_RESIDENCE[:17] + TW_RESIDENCE[17].lower(), TW_RESIDENCE),
    ],
)
def test_hmt_permit_normalised(raw: str, expected: str) -> None:
    assert normalise_hmt_permit(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "不能为空"),
        ("H1234567", "当前“H”后为7位"),
        ("M123456789", "当前“M”后为9位"),
        ("H1234567A", "非数字"),
        ("A12345678", "格式不正确"),
        ("1234567", "格式不正确"),
        (make_rid("110105", date(1990, 1, 1), 1), "810000"),
        (HK_RESIDENCE[:17] + ("0" if HK_RESIDENCE[17] != "0" else "1"), f"应为“{HK_RESIDENCE[17]}”"),
    ],
)
def test_hmt_permit_rejected(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        normalise_hmt_permit(raw)
    assert excinfo.value.field == "id_number"
    assert fragment in reason_of(excinfo)


def test_validate_id_each_type() -> None:
    assert validate_id("resident_id", "11010519491231002x") == VALID_RID
    assert validate_id("passport", "e12345678") == "E12345678"
    assert validate_id("hmt_permit", "h12345678") == "H12345678"
    assert validate_id("hmt_residence", HK_RESIDENCE) == HK_RESIDENCE


def test_validate_id_hmt_residence_requires_hmt_prefix() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        validate_id("hmt_residence", VALID_RID)
    assert "810000" in reason_of(excinfo)
    assert "830000" in reason_of(excinfo)


@pytest.mark.parametrize(
    ("id_type", "raw"),
    [("resident_id", "123"), ("passport", "12"), ("hmt_permit", "X"), ("hmt_residence", "1")],
)
def test_validate_id_uses_given_field(id_type: str, raw: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        validate_id(id_type, raw, field="spouse_id_number")
    assert excinfo.value.field == "spouse_id_number"


def test_validate_id_unknown_type() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        validate_id("driving_licence", VALID_RID)
    assert excinfo.value.field == "id_type"
    assert "driving_licence" in reason_of(excinfo)


# --------------------------------------------------------------------------- masking


def test_mask_id_18_chars() -> None:
    assert mask_id("61010219900101123X") == "610***********123X"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("H12345678", "H*****678"),
        ("H1234567801", "H1******801"),
        ("12345678", "1****678"),
        ("E1234567", "E****567"),
        ("AB123", "A***3"),
        ("", ""),
    ],
)
def test_mask_id_short(number: str, expected: str) -> None:
    assert mask_id(number) == expected


@pytest.mark.parametrize("length", range(1, 25))
def test_mask_id_masks_at_least_half(length: int) -> None:
    number = "".join(str(i % 10) for i in range(length))
    masked = mask_id(number)
    assert len(masked) == length
    assert masked.count("*") * 2 >= length
    visible = [(a, b) for a, b in zip(number, masked, strict=True) if b != "*"]
    assert all(a == b for a, b in visible)


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(normalise_mobile("+86 138-0013-8000")) == "138****8000"
    assert mask_phone("1380013") == mask_id("1380013")


# --------------------------------------------------------------------------- USCC

# Real codes published online (from python-stdnum's test-suite); all pass GB 32100 and GB 11714 checks.
REAL_USCC = [
    "121200004013590816",
    "91110000600037341L",
    "91110000710926094P",
    "91120224064012553U",
    "911522010783710635",
    "91152201078371135X",
    "9115220107837941X1",
    "91310115MA1K3BTP2B",
    "9131012056010553X5",
    "91340600MA2PBM9HXD",
    "91340603MA2UJXXCXF",
    "913505007821784439",
    "9144030071526726XG",
    "9144060573144633XL",
    "91620105L015101280",
    "91620105MA73NBBLXE",
    "92340602MA2PEL8AXA",
    "92340621MA2PBKRXXG",
    "92340621MA2UK3PJXE",
]


@pytest.mark.parametrize("code", REAL_USCC)
def test_real_uscc_valid(code: str) -> None:
    assert uscc.is_valid(code)
    assert validate_uscc(code) == code
    assert gb11714_check_char(code[8:16]) == code[16]


def _ref_gb11714(body: str) -> str:
    """Independent reference: GB 11714 char values are base-36 digit values."""
    remainder = (
        11 - sum(int(c, 36) * w for c, w in zip(body, [3, 7, 9, 10, 5, 8, 4, 2], strict=True)) % 11
    ) % 11
    return "X" if remainder == 10 else str(remainder)


def test_gb32100_check_char_matches_stdnum() -> None:
    rng = random.Random(32100)
    for _ in range(N_RANDOM):
        first17 = "".join(rng.choice(USCC_ALPHABET) for _ in range(17))
        assert gb32100_check_char(first17) == uscc.calc_check_digit(first17), first17


def test_gb11714_check_char_matches_reference() -> None:
    rng = random.Random(11714)
    for _ in range(N_RANDOM):
        body = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        assert gb11714_check_char(body) == _ref_gb11714(body), body


@pytest.mark.parametrize("bad", ["", "1234567890123456", "1234567890123456I", "a" * 17])
def test_gb32100_check_char_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="17"):
        gb32100_check_char(bad)


def test_gb11714_check_char_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="8"):
        gb11714_check_char("1234567")


def make_uscc(rng: random.Random) -> str:
    head = "".join(rng.choice("0123456789") for _ in range(8))
    body = "".join(rng.choice(USCC_ALPHABET) for _ in range(8))
    first17 = head + body + gb11714_check_char(body)
    return first17 + gb32100_check_char(first17)


def _uscc_valid(code: str) -> bool:
    try:
        validate_uscc(code)
    except InvalidValue:
        return False
    return True


def test_random_uscc_agree_with_stdnum() -> None:
    rng = random.Random(2015)
    outcomes = {True: 0, False: 0}
    for _ in range(N_RANDOM):
        chars = list(make_uscc(rng))
        kind = rng.randrange(5)
        if kind == 1:  # positions 1-2 stay digits here: letters there are a known stdnum difference
            pos = rng.randrange(18)
            chars[pos] = rng.choice("0123456789" if pos < 2 else USCC_ALPHABET)
        elif kind == 2:
            i = rng.randrange(17)
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif kind == 3:
            chars[rng.randrange(8, 18)] = rng.choice("IOSVZ")
        elif kind == 4:
            chars[17] = rng.choice(USCC_ALPHABET)
        code = "".join(chars)
        expected = uscc.is_valid(code) and _ref_gb11714(code[8:16]) == code[16]
        assert _uscc_valid(code) is expected, code
        outcomes[expected] += 1
    assert outcomes[True] > 400
    assert outcomes[False] > 400


def test_stdnum_valid_but_org_code_wrong_is_rejected() -> None:
    # Pick a body whose GB 11714 check differs, then fix only the GB 32100 check char: stdnum accepts it.
    body = "60003734"
    wrong_org = "2" if gb11714_check_char(body) != "2" else "3"
    first17 = "91110000" + body + wrong_org
    code = first17 + gb32100_check_char(first17)
    assert uscc.is_valid(code)
    with pytest.raises(InvalidValue) as excinfo:
        validate_uscc(code)
    assert excinfo.value.field == "uscc"
    assert "组织机构代码" in reason_of(excinfo)
    assert f"应为“{gb11714_check_char(body)}”" in reason_of(excinfo)
    assert f"实际为“{wrong_org}”" in reason_of(excinfo)


def test_uscc_wrong_check_char_names_expected() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        validate_uscc("91110000600037341N")
    assert "应为“L”" in reason_of(excinfo)
    assert "实际为“N”" in reason_of(excinfo)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91110000600037341l", "91110000600037341L"),
        (" 91 110000 600037341L ", "91110000600037341L"),
        ("9111-0000-6000-3734-1L", "91110000600037341L"),
        ("９１１１００００６０００３７３４１Ｌ", "91110000600037341L"),
    ],
)
def test_uscc_normalisation(raw: str, expected: str) -> None:
    assert normalise_uscc(raw) == expected
    assert validate_uscc(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "不能为空"),
        ("91110000600037341", "当前为17位"),
        ("9111000060003IOZSV", "第14位“I”"),
        ("91110000600037341O", "不使用字母I、O、S、V、Z"),
        ("911100006000373#1L", "第16位“#”"),
        ("91A10000600037341L", "第3位“A”"),
    ],
)
def test_uscc_rejected(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        validate_uscc(raw, field="org_uscc")
    assert excinfo.value.field == "org_uscc"
    assert fragment in reason_of(excinfo)


def test_uscc_letter_registration_authority_accepted() -> None:
    # GB 32100 allows letters in positions 1-2 (e.g. N = 农业部门); stdnum is stricter and rejects them.
    first17 = "N2610102" + "60003734" + gb11714_check_char("60003734")
    code = first17 + gb32100_check_char(first17)
    assert validate_uscc(code) == code
    assert not uscc.is_valid(code)


# --------------------------------------------------------------------------- mobile phones


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138-0013-8000",
        "１３８００１３８０００",
        "0086 138 0013 8000",
        "8613800138000",
        "+8613800138000",
        "(+86) 13800138000",
        "＋８６\u3000１３８－００１３－８０００",
        " 138 0013 8000\n",
    ],
)
def test_mobile_accepted(raw: str) -> None:
    assert normalise_mobile(raw) == "13800138000"


@pytest.mark.parametrize("prefix", "3456789")
def test_mobile_second_digit_range(prefix: str) -> None:
    number = f"1{prefix}012345678"
    assert normalise_mobile(number) == number


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "不能为空"),
        ("12345678901", "13-19开头"),
        ("23800138000", "“23”开头"),
        ("1380013800", "当前为10位"),
        ("138001380001", "当前为12位"),
        ("861380013800", "当前为12位"),
        ("+1 415 555 2671", "+86"),
        ("1380013800a", "“a”"),
        ("021-12345678", "“02”开头"),
    ],
)
def test_mobile_rejected(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        normalise_mobile(raw, field="contact_phone")
    assert excinfo.value.field == "contact_phone"
    assert fragment in reason_of(excinfo)


def test_mobile_default_field() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        normalise_mobile("12345678901")
    assert excinfo.value.field == "phone"


# --------------------------------------------------------------------------- plates


@pytest.mark.parametrize(
    ("raw", "number", "kind"),
    [
        ("陕A12345", "陕A12345", "ordinary"),
        ("陕A·12345", "陕A12345", "ordinary"),
        ("陕 a 12345", "陕A12345", "ordinary"),
        ("陕a-123b5", "陕A123B5", "ordinary"),
        ("陕Ａ１２３４５", "陕A12345", "ordinary"),
        ("陕Ａ·ＡＢ１２３", "陕AAB123", "ordinary"),
        ("京N8888X", "京N8888X", "ordinary"),
        ("陕AD12345", "陕AD12345", "new_energy"),
        ("陕ak12345", "陕AK12345", "new_energy"),
        ("粤BDF1234", "粤BDF1234", "new_energy"),
        ("陕A12345D", "陕A12345D", "new_energy"),
        ("陕A12345F", "陕A12345F", "new_energy"),
        ("陕A1234挂", "陕A1234挂", "trailer"),
        ("陕A1234学", "陕A1234学", "coach"),
        ("陕A1234警", "陕A1234警", "police"),
        ("粤Z1234港", "粤Z1234港", "hk_macau"),
        ("粤Z·A123澳", "粤ZA123澳", "hk_macau"),
    ],
)
def test_plate_accepted(raw: str, number: str, kind: str) -> None:
    assert parse_plate(raw) == Plate(number=number, kind=kind)


@pytest.mark.parametrize("province", "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")
def test_every_province_abbreviation(province: str) -> None:
    assert parse_plate(f"{province}B12345").number == f"{province}B12345"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "不能为空"),
        ("陕I12345", "第2位"),
        ("陕O12345", "“O”"),
        ("陕A1234", "位数不足"),
        ("陕A123456789", "位数过多"),
        ("陕A1234O", "第7位“O”是否应为数字“0”"),
        ("陕A12I45", "第5位“I”是否应为数字“1”"),
        ("陕112345", "第2位应为发牌机关代号字母"),
        ("A12345", "省份简称"),
        ("台A12345", "“台”不是有效的省份简称"),
        ("陕AX12345", "新能源号牌格式不正确"),
        ("陕AD1234F", "新能源号牌格式不正确"),
        ("陕A1234甲", "第7位“甲”"),
        ("陕A12_45", "第5位“_”"),
        ("使014578", "使馆"),
        ("沪A1234领", "领馆"),
        ("VA12345", "军队"),
        ("WJ京12345", "武警"),
        ("陕A1234应急", "应急"),
    ],
)
def test_plate_rejected(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_plate(raw, field="vehicle_plate")
    assert excinfo.value.field == "vehicle_plate"
    assert fragment in reason_of(excinfo)


def test_plate_default_field() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_plate("陕I12345")
    assert excinfo.value.field == "plate"
