"""Text keys for Chinese search: full pinyin and initials (张三 → zhangsan, zs)."""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin

# Surnames whose reading differs from the character's everyday one (pypinyin reads 曾 as ceng, 单 as
# dan ...); staff search residents by the surname's real sound. Compound surnames first.
_COMPOUND_SURNAMES = {
    "长孙": ("zhang", "sun"),
    "尉迟": ("yu", "chi"),
    "万俟": ("mo", "qi"),
    "单于": ("chan", "yu"),
    "澹台": ("tan", "tai"),
    "令狐": ("ling", "hu"),
    "欧阳": ("ou", "yang"),
    "上官": ("shang", "guan"),
}
_SURNAMES = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "查": "zha",
    "盖": "ge",
    "缪": "miao",
    "翟": "zhai",
    "乐": "yue",
    "覃": "qin",
    "朴": "piao",
    "尉": "yu",
    "员": "yun",
    "召": "shao",
    "繁": "po",
    "秘": "bi",
    "句": "gou",
    "黑": "he",
    "宓": "mi",
    "牟": "mou",
    "种": "chong",
    "过": "guo",
    "相": "xiang",
    "折": "she",
    "都": "du",
    "纪": "ji",
    "任": "ren",
    "华": "hua",
    "燕": "yan",
    "冼": "xian",
    "祭": "zhai",
    "柏": "bai",
    "臧": "zang",
    "隗": "wei",
    "逄": "pang",
    "厍": "she",
    "訾": "zi",
    "阚": "kan",
    "闫": "yan",
}


@lru_cache(maxsize=65536)
def pinyin_keys(text: str) -> tuple[str, str]:
    """(full pinyin, initials) of any text, lower-case, no separators; other characters kept as is."""
    return _keys([s.lower() for s in lazy_pinyin(text, style=Style.NORMAL, errors="default") if s.strip()])


@lru_cache(maxsize=16384)
def _char(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.NORMAL, errors="default")[0].lower()


@lru_cache(maxsize=262144)
def name_pinyin_keys(name: str) -> tuple[str, str]:
    """Pinyin keys of a person's name: the surname read as a surname (曾伟 → zengwei, zw; 单田芳 → shan…),
    the given name as a phrase (朝阳 → zhaoyang). Cached per name: names repeat a lot in a district.
    """
    chars = [c for c in name if not c.isspace()]
    head = "".join(chars[:2])
    if head in _COMPOUND_SURNAMES:
        syllables, rest = list(_COMPOUND_SURNAMES[head]), chars[2:]
    elif chars and "\u4e00" <= chars[0] <= "\u9fff":
        syllables, rest = [_SURNAMES.get(chars[0]) or _char(chars[0])], chars[1:]
    else:  # a foreign or mixed name: pypinyin keeps latin runs whole
        syllables, rest = [], chars
    syllables += [s.lower() for s in lazy_pinyin("".join(rest), style=Style.NORMAL) if s.strip()]
    return _keys(syllables)


def _keys(syllables: list[str]) -> tuple[str, str]:
    full = "".join(syllables)
    initials = "".join(s[0] for s in syllables if s)
    return full[:128], initials[:32]


def is_latin_query(text: str) -> bool:
    """True when a search query is plain ASCII letters (a pinyin or initials query)."""
    return text.isascii() and text.isalpha()
