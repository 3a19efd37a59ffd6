"""Text keys for Chinese search: full pinyin and initials (张三 → zhangsan, zs)."""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin


@lru_cache(maxsize=65536)
def pinyin_keys(text: str) -> tuple[str, str]:
    """(full pinyin, initials) of text, lower-case, no separators; non-Chinese characters kept as is."""
    syllables = [s.lower() for s in lazy_pinyin(text, style=Style.NORMAL, errors="default") if s.strip()]
    full = "".join(syllables)
    initials = "".join(s[0] for s in syllables if s)
    return full[:128], initials[:32]


def is_latin_query(text: str) -> bool:
    """True when a search query is plain ASCII letters (a pinyin or initials query)."""
    return text.isascii() and text.isalpha()
