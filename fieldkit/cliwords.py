"""Words for what the command line shows that the code knows as codes.

* Option values (``--direction in``): ``--help`` names each value's word beside it
  (``in 进，out 出``) and a value may be given as its word (``--direction 进``).
* The audit trail (``fieldkit audit list``): actions and details in the reader's language,
  never raw JSON, and any resident ID number in a detail masked.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .i18n import LANGUAGES, has_key, t
from .shared.identity import RESIDENT_ID_IN_TEXT, mask_id

# Option destinations whose values already have words elsewhere in the catalogues.
_WORD_PREFIX = {
    "direction": "direction.",
    "code_colour": "colour.",
    "category": "category.",
    "id_kind": "gate.id_kind.",
    "role": "role.",
    "mode": "mode.",
}
# Values that are names in every language (engines, file formats): no word to add.
NAMES_ONLY = frozenset({"engine", "format"})


def choice_key(dest: str, value: str) -> str | None:
    """The catalogue key of an option value's word, or None."""
    prefix = _WORD_PREFIX.get(dest)
    if prefix and has_key(prefix + value):
        return prefix + value
    key = f"cli_choice.{dest}.{value}"
    return key if has_key(key) else None


def _from_words(dest: str, choices: list[str], then: Callable[[str], Any] | None) -> Callable:
    words: dict[str, str] = {}
    for value in choices:
        key = choice_key(dest, value)
        if key is None:
            continue
        for lang in LANGUAGES:
            words.setdefault(t(key, lang).strip().lower(), value)

    def convert(text: str) -> Any:
        value = words.get(text.strip().lower(), text) if text not in choices else text
        return then(value) if then else value

    return convert


def name_choices(parser: argparse.ArgumentParser) -> None:
    """Every option with fixed values, in this parser and its sub-commands: its help names
    each value's word, and the word is accepted as the value."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                name_choices(sub)
            continue
        if not action.choices or action.dest in NAMES_ONLY or action.help == argparse.SUPPRESS:
            continue
        values = [str(v) for v in action.choices]
        shown = []
        for value in values:
            key = choice_key(action.dest, value)
            word = t(key) if key else ""
            if word and word.lower() != value.lower():
                shown.append(t("cli_choice.pair", value=value, word=word))
        if shown:
            listed = t("cli_choice.sep").join(shown)
            action.help = (
                t("cli_choice.help", help=action.help, values=listed) if action.help else listed
            ).replace("%", "%%")
        then = action.type
        if all(isinstance(v, str) for v in action.choices) and (then is None or callable(then)):
            action.type = _from_words(action.dest, values, then)  # type: ignore[arg-type]


# -- the audit trail ------------------------------------------------------------------------


def _masked(value: str) -> str:
    return RESIDENT_ID_IN_TEXT.sub(lambda m: mask_id(m.group(1).upper()), value)


def detail_value(value: Any, lang: str | None = None) -> str:
    if isinstance(value, bool):
        return t("audit.value.yes" if value else "audit.value.no", lang)
    if isinstance(value, dict):
        return detail_text(value, lang)
    if isinstance(value, list | tuple):
        return t("cli_choice.sep", lang).join(detail_value(v, lang) for v in value)
    if value is None:
        return "-"
    text = str(value)
    key = "audit.value." + text.replace(" ", "_").replace("-", "_").lower()
    if has_key(key):
        return t(key, lang)
    return _masked(text)


def detail_text(detail: Any, lang: str | None = None) -> str:
    """An entry's details as ``label value`` pairs (a detail without a word keeps its code)."""
    if not isinstance(detail, dict):
        return _masked(json.dumps(detail, ensure_ascii=False)) if detail else ""
    parts = []
    for name, value in detail.items():
        key = f"audit.detail.{name}"
        label = t(key, lang) if has_key(key) else name
        parts.append(t("audit.pair", lang, label=label, value=detail_value(value, lang)))
    return t("cli_choice.sep", lang).join(parts)


def action_text(action: str, lang: str | None = None) -> str:
    key = f"audit.action.{action}"
    return t(key, lang) if has_key(key) else action


def local_time(ts: str) -> str:
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(ts)


def _width(text: str) -> int:
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal cells (a Chinese character takes two)."""
    return text + " " * max(0, width - _width(text))


def audit_lines(rows: list[dict[str, Any]], lang: str | None = None) -> str:
    return "\n".join(
        f"{r['seq']:>6} {local_time(r['ts'])} {pad(r['operator'] or '-', 12)} "
        f"{pad(action_text(r['action'], lang), 16)} {detail_text(r['detail'], lang)}".rstrip()
        for r in rows
    )
