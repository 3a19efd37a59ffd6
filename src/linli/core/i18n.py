"""UI text: Simplified Chinese by default, English available.

Templates and code write the Chinese text itself as the message id (gettext style), so a page reads
naturally in the source; `locales/en.json` maps each Chinese message to English. Where one Chinese text
needs two English ones, a context after "@" tells them apart ("设备" Devices in the menu, "设备@one"
Device in a column): Chinese shows the text before it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
_DIR = Path(__file__).parent / "locales"


@lru_cache
def catalogue(lang: str) -> dict[str, str]:
    """The message catalogue of a language (empty for Chinese, the source language)."""
    path = _DIR / f"{lang}.json"
    if lang == DEFAULT_LANG or not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text("utf-8"))
    return data


def pick_lang(requested: str | None) -> str:
    """The language to use: the user's explicit choice, else Chinese.

    The browser's Accept-Language is not followed: office PCs often run an English browser, and the
    console is Chinese unless its user switches.
    """
    return requested if requested in LANGS else DEFAULT_LANG


def translate(message: str, lang: str = DEFAULT_LANG, **values: object) -> str:
    """message (Chinese) in lang; unknown messages stay Chinese (without their "@context"). {name}
    placeholders are filled."""
    found = catalogue(lang).get(message) if lang != DEFAULT_LANG else None
    text = found if found is not None else message.split("@", 1)[0]
    return text.format(**values) if values else text
