"""Pinyin search keys: names read as names, surnames by their surname reading."""

from __future__ import annotations

import pytest

from linli.core.text import is_latin_query, name_pinyin_keys, pinyin_keys


@pytest.mark.parametrize(
    ("name", "full", "initials"),
    [
        ("张三", "zhangsan", "zs"),
        ("曾伟", "zengwei", "zw"),
        ("单田芳", "shantianfang", "stf"),
        ("解晓东", "xiexiaodong", "xxd"),
        ("仇红", "qiuhong", "qh"),
        ("区志强", "ouzhiqiang", "ozq"),
        ("朴正", "piaozheng", "pz"),
        ("长孙无忌", "zhangsunwuji", "zswj"),
        ("尉迟恭", "yuchigong", "ycg"),
        ("欧阳 娜娜", "ouyangnana", "oynn"),
        ("李 Mary", "limary", "lm"),
        ("李朝阳", "lizhaoyang", "lzy"),  # a given name read as a phrase
        ("朝晖", "chaohui", "ch"),  # 朝 as a surname
    ],
)
def test_name_keys(name: str, full: str, initials: str) -> None:
    assert name_pinyin_keys(name) == (full, initials)


def test_text_keys_and_query_kind() -> None:
    assert pinyin_keys("重庆路") == ("chongqinglu", "cql")  # phrases read as phrases in ordinary text
    assert is_latin_query("zs") and not is_latin_query("张s") and not is_latin_query("1234")


def test_chinese_unless_switched() -> None:
    from linli.core.i18n import pick_lang, translate

    assert pick_lang(None) == "zh" and pick_lang("fr") == "zh" and pick_lang("en") == "en"
    assert translate("人口", "en") == "People" and translate("人口", "zh") == "人口"
