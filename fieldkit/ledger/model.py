"""Vocabularies and row types of the household ledger (一户一档). No I/O.

Codes are stable machine words stored in the database and sent to the town server; the words the
staff use (Chinese labels and their common variants in office spreadsheets) map onto them here,
and the catalogues ``fieldkit/locale/ledger.*.toml`` render them back (``cat.<code>`` …).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import InputError

# The address rule is shared with the town server; the ledger's modules read it from here too.
from ..shared.address import address_key, clean_text  # noqa: F401

# -- person categories (REQUIREMENTS §4) ----------------------------------------------------
CONTACT_CATEGORIES = ("close_contact", "secondary_contact", "general_contact")
ORIGIN_CATEGORIES = ("overseas_return", "mid_high_risk_return", "low_risk_return")
VULNERABLE_CATEGORIES = (
    "vulnerable",
    "elderly_alone",
    "pregnant",
    "disabled",
    "mobility",
    "dialysis",
    "mental_illness",
    "chronic",
    "left_behind_child",
    "widowed_elderly",
    "hardship",
)
OCCUPATION_CATEGORIES = ("cold_chain", "logistics", "courier", "taxi", "port", "medical")
OTHER_CATEGORIES = ("tenant",)
CATEGORIES = (
    CONTACT_CATEGORIES
    + ORIGIN_CATEGORIES
    + VULNERABLE_CATEGORIES
    + OCCUPATION_CATEGORIES
    + OTHER_CATEGORIES
)
# Categories that make a household stand out in the patrol list.
FLAG_CATEGORIES = frozenset(CONTACT_CATEGORIES[:2] + ORIGIN_CATEGORIES[:2] + VULNERABLE_CATEGORIES)

CATEGORY_LABELS: dict[str, str] = {
    "密接": "close_contact",
    "密切接触者": "close_contact",
    "密接者": "close_contact",
    "次密接": "secondary_contact",
    "次密切接触者": "secondary_contact",
    "密接的密接": "secondary_contact",
    "一般接触者": "general_contact",
    "一般接触": "general_contact",
    "境外返回": "overseas_return",
    "境外返乡": "overseas_return",
    "境外来返": "overseas_return",
    "入境人员": "overseas_return",
    "境外返回人员": "overseas_return",
    "中高风险地区来返": "mid_high_risk_return",
    "中高风险地区来(返)": "mid_high_risk_return",
    "中高风险区域来返": "mid_high_risk_return",
    "中高风险区域来(返)人员": "mid_high_risk_return",
    "中高风险地区来返人员": "mid_high_risk_return",
    "中高风险地区来(返)人员": "mid_high_risk_return",
    "中高风险来返": "mid_high_risk_return",
    "低风险地区来返": "low_risk_return",
    "低风险地区来(返)": "low_risk_return",
    "七类人": "vulnerable",
    "七类人员": "vulnerable",
    "特殊人群": "vulnerable",
    "独居老人": "elderly_alone",
    "孕产妇": "pregnant",
    "孕妇": "pregnant",
    "残疾人": "disabled",
    "行动不便": "mobility",
    "行动不便人员": "mobility",
    "血透患者": "dialysis",
    "血液透析患者": "dialysis",
    "精神病患者": "mental_illness",
    "严重精神障碍患者": "mental_illness",
    "慢性病患者": "chronic",
    "慢病患者": "chronic",
    "慢性病": "chronic",
    "留守儿童": "left_behind_child",
    "孤寡老人": "widowed_elderly",
    "生活困难": "hardship",
    "生活困难人员": "hardship",
    "困难群众": "hardship",
    "冷链": "cold_chain",
    "冷链从业人员": "cold_chain",
    "货车物流": "logistics",
    "货车司机": "logistics",
    "物流": "logistics",
    "邮政快递": "courier",
    "快递": "courier",
    "快递员": "courier",
    "出租车网约车": "taxi",
    "出租车": "taxi",
    "网约车": "taxi",
    "网约车司机": "taxi",
    "口岸": "port",
    "口岸人员": "port",
    "医务": "medical",
    "医务人员": "medical",
    "租户": "tenant",
    "租客": "tenant",
    "流动人口": "tenant",
}
# Words offices write in 人员类别 that name where a person is registered or lives, not a watch
# group (trial_town item 2): no category of the ledger means them, so they are kept in the
# member's notes, without a warning. (流动人口 is a tenant, above.)
RESIDENCE_WORDS = frozenset(
    {
        "户籍人口",
        "户籍",
        "户籍居民",
        "本地户籍",
        "本地人口",
        "本地居民",
        "常住人口",
        "常住",
        "常住居民",
        "居民",
        "外来人员",
        "外来人口",
        "外地人员",
        "暂住人口",
        "非户籍人口",
        "人户分离",
    }
)
EMPTY_WORDS = frozenset({"", "无", "-", "--", "/", "—", "否", "暂无", "none", "无此项"})

# -- health management status -----------------------------------------------------------
HEALTH_STATUSES = (
    "none",
    "central_isolation",
    "home_isolation",
    "home_monitoring",
    "daily_monitoring",
    "released",
)
HOME_STATUSES = ("home_isolation", "home_monitoring")  # the gate alerts when these leave
STATUS_LABELS = {
    "集中隔离": "central_isolation",
    "集中隔离医学观察": "central_isolation",
    "居家隔离": "home_isolation",
    "居家隔离医学观察": "home_isolation",
    "居家医学观察": "home_isolation",
    # 居家观察 is said for 居家(医学)观察: home isolation, as 居家医学观察 (REQUIREMENTS §4).
    "居家观察": "home_isolation",
    "居家隔离观察": "home_isolation",
    "居家健康监测": "home_monitoring",
    "居家监测": "home_monitoring",
    "日常健康监测": "daily_monitoring",
    "自我健康监测": "daily_monitoring",
    "解除": "released",
    "已解除": "released",
    "解除隔离": "released",
    "期满解除": "released",
}

# -- members of a household ------------------------------------------------------------------
# 与户主关系 of the head: listed first on the card and in exports (trial_town item 24).
HEAD_RELATIONS = ("户主", "本人", "户主本人")
# ORDER BY of a household's members: the head, then the others in the order they were given.
MEMBER_ORDER = (
    "(CASE WHEN relation IN (" + ", ".join(f"'{r}'" for r in HEAD_RELATIONS) + ") "
    "THEN 0 ELSE 1 END), created_at, rowid"
)

FOUND_VIA = ("grid_screening", "big_data", "scan", "mutual_check", "self_report", "other")
FOUND_VIA_LABELS = {
    "网格排查": "grid_screening",
    "入户排查": "grid_screening",
    "大数据": "big_data",
    "大数据推送": "big_data",
    "扫码": "scan",
    "居民互查": "mutual_check",
    "主动报备": "self_report",
    "自主申报": "self_report",
    "其他": "other",
}

# -- visits ---------------------------------------------------------------------------
VISIT_OUTCOMES = ("seen", "nobody_home", "refused")
SYMPTOMS = ("fever", "dry_cough", "fatigue", "diarrhoea", "cough", "chest_tightness")
SYMPTOM_LABELS = {
    "发热": "fever",
    "干咳": "dry_cough",
    "乏力": "fatigue",
    "腹泻": "diarrhoea",
    "咳嗽": "cough",
    "胸闷": "chest_tightness",
}


def parse_symptoms(text: str) -> list[str]:
    """'15' or '1 5' → fever, cough: one digit per symptom, in the order of SYMPTOMS."""
    out: list[str] = []
    for ch in text.replace(" ", "").replace(",", ""):
        if not ch.isdigit() or not 1 <= int(ch) <= len(SYMPTOMS):
            raise InputError("err.symptom", value=ch)
        code = SYMPTOMS[int(ch) - 1]
        if code not in out:
            out.append(code)
    return out


def symptom_legend(t: Callable[[str], str]) -> str:
    """'1发热 2干咳 …': the digit of each symptom and its name in the catalogue."""
    return " ".join(f"{i}{t('ledger.symptom.' + s)}" for i, s in enumerate(SYMPTOMS, 1))


_SPLIT = re.compile(r"[、,，;；/|\s]+")


def split_labels(text: str) -> list[str]:
    return [p for p in _SPLIT.split(clean_text(text)) if p]


def parse_categories(text: str) -> tuple[list[str], list[str]]:
    """(codes, unknown labels) from a cell such as ``密接、独居老人``; codes also accepted."""
    codes, residence, unknown = read_categories(text)
    return list(codes), [*residence, *unknown]


@lru_cache(maxsize=4096)
def read_categories(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(codes, residence words, unknown labels) of a 人员类别 cell: a ledger repeats a few cell
    texts on thousands of rows, each is read once."""
    codes: list[str] = []
    residence: list[str] = []
    unknown: list[str] = []
    for label in split_labels(text):
        key = label.replace("（", "(").replace("）", ")")
        code = CATEGORY_LABELS.get(key) or CATEGORY_LABELS.get(re.sub(r"[()]", "", key))
        if code is None and key in CATEGORIES:
            code = key
        if code is None and key.lower() in EMPTY_WORDS:
            continue
        if code is None:
            (residence if key in RESIDENCE_WORDS else unknown).append(label)
        elif code not in codes:
            codes.append(code)
    return tuple(codes), tuple(residence), tuple(unknown)


# -- phone numbers (the importer and the add-member form: one rule) ---------------------------
_CN = r"(?:\+86|0086)?"
_PHONE = re.compile(
    rf"{_CN}1[3-9]\d{{9}}"  # mobile: 11 digits
    r"|861[3-9]\d{9}"  # the same with 86 in front
    r"|0[1-9]\d{1,2}[2-9]\d{6,7}"  # landline with its area code (010, 0571 …)
    rf"|(?:\+86|0086)[1-9]\d{{1,2}}[2-9]\d{{6,7}}"  # the same from abroad, without the 0
    r"|[2-9]\d{6,7}"  # local landline: 7 or 8 digits
    r"|[48]00\d{7}"  # 400 / 800 lines
    r"|\+(?!86)[1-9]\d{6,14}"  # a number abroad: + and its country code
)
_PHONE_SPACING = re.compile(r"[\s\-()]")


def phone_problem(text: str) -> str | None:
    """None for a phone number as people write them (spaces, dashes, brackets allowed);
    else why not, as a code: ``mobile_length`` (starts with 1 but has not 11 digits) or
    ``form``. ``1330000`` is a mobile number with digits missing (trial_town item 23)."""
    s = _PHONE_SPACING.sub("", clean_text(text))
    if _PHONE.fullmatch(s):
        return None
    if s.isdigit() and s.startswith("1"):
        return "mobile_length"
    return "form"


def parse_status(text: str) -> str | None:
    """Health management status code, '' for an empty cell, None when unknown."""
    s = clean_text(text).replace(" ", "")
    if s.lower() in EMPTY_WORDS:
        return ""
    if s in HEALTH_STATUSES:
        return s
    return STATUS_LABELS.get(s)


def parse_found_via(text: str) -> str | None:
    s = clean_text(text)
    if s.lower() in EMPTY_WORDS:
        return ""
    if s in FOUND_VIA:
        return s
    return FOUND_VIA_LABELS.get(s, "other")


@dataclass(frozen=True)
class HouseholdRow:
    """A household as screens see it: no personal field in clear."""

    id: str
    grid: str
    community: str
    building: str
    unit: str
    room: str
    worker: str | None
    registered_count: int | None
    resident_count: int | None
    tested_count: int | None
    is_rental: bool
    members: int
    flags: tuple[str, ...]
    today: str | None  # latest visit outcome today, or None
    follow_up: bool
    nobody_home_count: int  # in the current round, since the last time someone was seen
    reached: bool  # seen in the current round
    version: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberRow:
    id: str
    household_id: str
    name_masked: str | None
    id_masked: str | None
    phone_masked: str | None
    relation: str | None
    categories: tuple[str, ...]
    health_status: str
    status_start: str | None
    status_end: str | None
    found_via: str | None
    version: int
