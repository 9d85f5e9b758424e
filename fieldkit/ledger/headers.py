"""The header words offices put over a ledger's columns, and the field each one means: 姓名,
身份证号码, 楼栋, 房号 … in their many spellings, found under title rows by :mod:`.rows`."""

from __future__ import annotations

import re
from typing import Any

from .model import clean_text

# Field → header variants seen in office ledgers (normalised: no spaces, no '*').
HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "居民姓名", "人员姓名", "户主姓名", "成员姓名"),
    "id_number": (
        "身份证号",
        "身份证号码",
        "证件号码",
        "证件号",
        "公民身份号码",
        "身份证",
        "身份证件号码",
    ),
    "phone": ("联系电话", "手机号", "手机号码", "电话", "联系方式", "电话号码", "手机"),
    "grid": ("网格", "所属网格", "网格名称", "网格号"),
    "community": ("小区", "小区名称", "村组", "村民小组", "小区(村组)"),
    "building": ("楼栋", "楼栋号", "栋", "楼号", "幢", "栋号", "楼栋名称"),
    "unit": ("单元", "单元号"),
    "room": ("房号", "门牌号", "房间号", "室", "户号", "房屋号", "门牌"),
    "address": ("详细地址", "住址", "地址", "现住址", "家庭住址", "居住地址"),
    "relation": ("与户主关系", "关系", "家庭关系"),
    "categories": ("人员类别", "人员分类", "类别", "重点人群类别", "人员类型", "重点人员类别"),
    "occupation": ("职业", "职业类别", "工作类别", "重点行业", "从业类别"),
    "health_status": (
        "健康管理状态",
        "管控状态",
        "管理状态",
        "健康管理措施",
        "管控措施",
        "管理措施",
        "隔离状态",
    ),
    "status_start": (
        "开始时间",
        "开始日期",
        "隔离开始时间",
        "管控开始日期",
        "隔离开始日期",
        "管控开始时间",
    ),
    "status_end": (
        "解除时间",
        "计划解除日期",
        "结束日期",
        "预计解除时间",
        "解除日期",
        "计划解除时间",
    ),
    "worker": ("包户干部", "包户人", "包户", "责任人", "包户责任人", "网格员", "包保人"),
    "registered_count": ("户籍人口数", "户籍人数", "户籍人口"),
    "resident_count": ("常住人口数", "常住人数", "常住人口"),
    "tested_count": ("核酸检测人数", "已检测人数", "检测人数"),
    "is_rental": ("是否出租", "出租房", "是否出租房"),
    "landlord_name": ("房东", "房东姓名", "房主", "房主姓名"),
    "landlord_phone": ("房东电话", "房东联系电话", "房主电话"),
    "found_via": ("来源", "发现途径", "排查来源", "信息来源", "发现方式"),
    "vaccination": ("疫苗接种", "疫苗接种情况", "接种情况", "疫苗接种剂次"),
    "last_test_date": (
        "最近核酸时间",
        "核酸检测时间",
        "末次核酸",
        "最近一次核酸时间",
        "最近核酸日期",
        "核酸检测日期",
    ),
    "last_test_result": ("核酸结果", "核酸检测结果", "最近核酸结果"),
    "notes": ("备注", "说明", "其他情况"),
    "_seq": ("序号", "编号", "序"),
    "_sex": ("性别",),
    "_age": ("年龄",),
}
_ALIAS = {alias: f for f, aliases in HEADERS.items() for alias in aliases}


def normalise_header(value: Any) -> str:
    s = clean_text(value)
    s = re.sub(r"[\s*＊:：]", "", s)
    return s.replace("（", "(").replace("）", ")")


def header_field(value: Any) -> str | None:
    s = normalise_header(value)
    if not s:
        return None
    if s in _ALIAS:
        return _ALIAS[s]
    base = re.sub(r"\(.*?\)$", "", s)
    if base in _ALIAS:
        return _ALIAS[base]
    # '户主身份证号码', '联系电话(手机)': the longest known alias inside the header.
    best = max((a for a in _ALIAS if len(a) >= 2 and a in s), key=len, default=None)
    return _ALIAS[best] if best else None
