"""Chinese by default, English on request; every message in every template has an English entry."""

from __future__ import annotations

import json
import re
from pathlib import Path

from linli.core import i18n
from tests.web.helpers import Console, Register

SRC = Path(__file__).resolve().parents[2] / "src" / "linli"
TEMPLATES = sorted(SRC.glob("**/templates/**/*.html"))
CJK = re.compile(r"[\u3400-\u9fff]")
JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
LITERAL = re.compile(r"\"([^\"]*)\"|'([^']*)'")


def _catalogue() -> dict[str, str]:
    data: dict[str, str] = json.loads((SRC / "core" / "locales" / "en.json").read_text("utf-8"))
    return data


def test_every_chinese_text_in_templates_is_in_the_english_catalogue() -> None:
    catalogue = _catalogue()
    missing, raw = set(), []
    for path in TEMPLATES:
        text = path.read_text("utf-8")
        for tag in JINJA.findall(text):
            for dq, sq in LITERAL.findall(tag):
                literal = dq or sq
                if CJK.search(literal) and literal not in catalogue:
                    missing.add(literal)
        outside = JINJA.sub("", text)
        for line in outside.splitlines():
            if CJK.search(line) and "中文" not in line:
                raw.append(f"{path.name}: {line.strip()}")
    assert not missing, f"add to en.json: {sorted(missing)}"
    assert not raw, f"Chinese text outside t(...): {raw}"


def test_catalogue_placeholders_match() -> None:
    for zh, en in _catalogue().items():
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), zh
        # Chinese may stay only where it is example data quoted from the Chinese text (e.g. 陕A, 身份证号).
        assert all(run in zh for run in re.findall(r"[\u3400-\u9fff]+", en)), (zh, en)


def test_chinese_by_default_and_the_english_switch(console: Console, register: Register) -> None:
    console.login("shequ")
    home = console.get("/").text
    assert "概览" in home and "人口" in home and 'lang="zh-CN"' in home
    switched = console.get("/lang/en", params={"next": f"/people/{register.person}"})
    assert switched.status_code == 200 and str(switched.url).endswith(f"/people/{register.person}")
    page = switched.text
    assert 'lang="en"' in page
    for text in ("Overview", "People", "Houses", "Sign out", "Basic information", "Community worker"):
        assert text in page, text
    assert "Elderly living alone" in page  # vocab labels are bilingual
    assert "张秀英" in page  # data stays as entered
    nav = page.split('data-testid="mainnav"')[1].split("</nav>")[0]
    assert not CJK.search(nav)
    back = console.get("/lang/zh", params={"next": "/"})
    assert "概览" in back.text


def test_translate_falls_back_to_chinese() -> None:
    assert i18n.translate("概览", "en") == "Overview"
    assert i18n.translate("一句没有翻译的话", "en") == "一句没有翻译的话"
    # A context after "@" tells two English texts of one Chinese text apart; Chinese shows the text alone.
    assert i18n.translate("设备", "en") == "Devices" and i18n.translate("设备@one", "en") == "Device"
    assert i18n.translate("设备@one", "zh") == "设备" and i18n.translate("没有的@one", "en") == "没有的"


def test_labels_made_in_code_are_in_the_catalogue() -> None:
    from linli.accounts.pages import ACTIONS
    from linli.core.auth.roles import ROLE_LABELS
    from linli.devices import pages_common
    from linli.registry.pages_import import ENTITY_LABELS
    from linli.web.pages import _STAT_LINKS

    catalogue = _catalogue()
    for text in [*ACTIONS.values(), *ROLE_LABELS.values(), *ENTITY_LABELS.values(), *_STAT_LINKS]:
        assert text in catalogue, text
    device_labels = [
        *pages_common.EVENT_LABELS.values(),
        *pages_common.MEDIA_LABELS.values(),
        *pages_common.LETTER_LABELS.values(),
        *pages_common.KIND_LABELS.values(),
        *pages_common.STATE_LABELS.values(),
        *pages_common.PAYLOAD_FIELD_LABELS.values(),
        *pages_common.REASON_LABELS.values(),
        *(label for values in [pages_common.PLATE_COLOUR_SUMMARY] for label in values.values()),
        *(label for values in pages_common.PAYLOAD_VALUE_LABELS.values() for label in values.values()),
    ]
    assert [text for text in device_labels if text not in catalogue] == []
