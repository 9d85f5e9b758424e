"""Both catalogues hold the same keys with the same placeholders; a missing key never shows raw.

Covers every ``*.zh.toml`` / ``*.en.toml`` pair in fieldkit/locale, whoever added it.
"""

from __future__ import annotations

import logging
import string
import tomllib
from importlib import resources

import pytest

from fieldkit import i18n
from fieldkit.errors import FieldkitError, InputError
from fieldkit.i18n import Msg, catalogue, reason_text, t


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_catalogue_file_has_its_pair():
    names = {e.name for e in resources.files("fieldkit.locale").iterdir()}
    zh = {n.removesuffix(".zh.toml") for n in names if n.endswith(".zh.toml")}
    en = {n.removesuffix(".en.toml") for n in names if n.endswith(".en.toml")}
    assert zh == en, zh ^ en


def test_both_languages_have_the_same_keys_and_placeholders():
    zh, en = catalogue("zh"), catalogue("en")
    assert sorted(set(zh) - set(en)) == [], "keys only in Chinese"
    assert sorted(set(en) - set(zh)) == [], "keys only in English"
    differ = [k for k in zh if _placeholders(zh[k]) != _placeholders(en[k])]
    assert differ == [], [(k, zh[k], en[k]) for k in differ]


def test_no_key_is_defined_twice_with_different_texts_across_files():
    """Files are merged; one key in two files would make the winner depend on file order."""
    base = resources.files("fieldkit.locale")
    for lang in ("zh", "en"):
        seen: dict[str, tuple[str, str]] = {}
        clashes = []
        for name in i18n.catalogue_files(lang):
            flat: dict[str, str] = {}
            i18n._flatten("", tomllib.loads(base.joinpath(name).read_text("utf-8")), flat)
            for key, text in flat.items():
                if key in seen and seen[key][1] != text:
                    clashes.append((key, seen[key][0], name))
                seen[key] = (name, text)
        assert clashes == [], clashes


def test_a_key_missing_in_one_language_falls_back_to_the_other_and_is_logged(monkeypatch, caplog):
    zh = dict(catalogue("zh"))
    del zh["err.operator_name"]
    monkeypatch.setattr(i18n, "catalogue", lambda lang: zh if lang == "zh" else catalogue("en"))
    monkeypatch.setattr(i18n, "_logged", set())
    with caplog.at_level(logging.WARNING, logger="fieldkit.i18n"):
        text = t("err.operator_name", "zh")
    assert text == catalogue("en")["err.operator_name"]
    assert "err.operator_name" in caplog.text and "missing" in caplog.text


def test_a_key_missing_everywhere_is_a_sentence_not_the_key(caplog):
    with caplog.at_level(logging.WARNING, logger="fieldkit.i18n"):
        zh = t("no.such.key", "zh", n=3)
        en = t("no.such.key", "en")
    assert "no.such.key" not in zh and "3" in zh and "缺失" in zh
    assert "no.such.key" not in en and "missing" in en
    assert "no.such.key" in caplog.text


def test_a_missing_parameter_is_a_question_mark_not_a_crash():
    assert "?" in t("err.temp_range", "zh", value="44.0")


def test_errors_carry_a_code_and_render_in_either_language():
    err = InputError("err.temp_range", value="44.0", min="34.0", max="43.0")
    assert err.code == "err.temp_range" and err.params["value"] == "44.0"
    assert "重新测量" in str(err)  # the default language is Chinese
    assert "re-measure" in err.render("en")
    data = err.as_json("en")
    assert data["error"] == "err.temp_range" and data["params"]["min"] == "34.0"
    assert "re-measure" in data["message"]
    i18n.set_language("en")
    assert "re-measure" in str(err)


def test_old_style_errors_still_work():
    err = FieldkitError("something the old way")
    assert err.code is None and str(err) == "something the old way"


def test_nested_messages_render_in_the_readers_language():
    err = InputError("err.id_invalid", id="110105********1234", problem=Msg("id.problem.length"))
    assert "18" in err.render("zh") and "居民身份证" in err.render("zh")
    assert "resident ID" in err.render("en")
    assert err.as_json()["params"]["problem"] == {"code": "id.problem.length", "params": {}}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_coded_reason_parameters_are_words(lang):
    """第 2 位乘车人：refer — the occupant's outcome is a code; shown as a word."""
    text = reason_text("occupant_not_admitted", {"n": "2", "outcome": "refer"}, lang)
    assert "refer" not in text.split("：")[-1] if lang == "zh" else "REFER" in text
    if lang == "zh":
        assert text == "第 2 位乘车人：转诊"
    barred = reason_text("outsider_barred", {"mode": "high"}, lang)
    assert "high " not in barred if lang == "zh" else "high risk" in barred
