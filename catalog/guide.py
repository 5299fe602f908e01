"""The national guide's vocabulary (政务信息资源目录编制指南（试行）, 发改高技〔2017〕1272号, after GB/T 21063.3-2007's
core metadata): resource codes, the classification a code carries, the data types of 信息项, the resource formats,
and the Chinese labels of every value a catalog author writes (the spreadsheet's cells, docs/catalog-fields.md).

Codes the catalog stores are English identifiers; the labels are what a 资源目录 sheet shows and accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.cn import uscc

# 类: the first digit of a resource code, the resource's classification (资源属性分类).
CLASS_DIGITS = {"base": "1", "theme": "2", "department": "3"}
CLASSIFICATION_LABELS = {"base": "基础信息资源", "theme": "主题信息资源", "department": "部门信息资源"}

# 信息资源代码: 前段码 (类 1 digit, 项 2 digits, 目 3 digits, 细目 of any length) "/" 后段码 (顺序码, 6 digits).
RESOURCE_CODE = re.compile(r"^(?P<cls>[1-3])(?P<item>\d{2})(?P<entry>\d{3})(?P<sub>[0-9A-Z]{0,24})/(?P<seq>\d{6})$")


@dataclass(frozen=True)
class ResourceCode:
    """A resource code taken apart: the classification path 类/项/目/细目 and the sequence number."""

    cls: str
    item: str
    entry: str
    subentry: str
    sequence: str

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cls, self.item, self.entry, self.subentry) if p)


def parse_resource_code(text: str) -> ResourceCode | None:
    found = RESOURCE_CODE.match(text)
    if found is None:
        return None
    return ResourceCode(found["cls"], found["item"], found["entry"], found["sub"], found["seq"])


# 信息项 data types of the guide → the item types of ours they may describe (the first is the default's source).
GUIDE_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "C": ("字符型", ("string",)),
    "N": ("数值型", ("decimal", "integer")),
    "Y": ("货币型", ("decimal",)),
    "D": ("日期型", ("date",)),
    "T": ("日期时间型", ("string",)),  # no date-time item type: the value is its ISO 8601 text
    "L": ("逻辑型", ("boolean",)),
    "M": ("备注型", ("string",)),
    "G": ("通用型", ()),  # embedded objects: nothing online query can serve
    "B": ("双精度型", ("decimal",)),
    "I": ("整型", ("integer",)),
    "F": ("浮点型", ("decimal",)),
}
DEFAULT_GUIDE_TYPES = {"string": "C", "integer": "I", "decimal": "N", "date": "D", "boolean": "L"}


def guide_type_label(letter: str) -> str:
    """``C`` → ``字符型C`` (how a 资源目录 sheet writes a data type)."""
    return f"{GUIDE_TYPES[letter][0]}{letter}" if letter in GUIDE_TYPES else letter


def guide_type_of(text: str) -> str:
    """The letter a cell names (``C``, ``字符型``, ``字符型C``, ``字符型（C）``), or the text itself when it names none."""
    compact = re.sub(r"[\s()（）]", "", text)
    for letter, (name, _) in GUIDE_TYPES.items():
        if compact in (letter, name, f"{name}{letter}"):
            return letter
    return text


# 信息资源格式 (the guide's classes of format).
FORMAT_LABELS = {
    "database": "数据库",
    "document": "电子文件",
    "spreadsheet": "电子表格",
    "image": "图形图像",
    "stream": "流媒体",
    "self_describing": "自描述格式",
    "other": "其他",
}
SHARE_TYPE_LABELS = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}
SHARE_METHOD_LABELS = {"online_query": "联机查询", "exchange": "数据交换", "interface": "接口服务"}
UPDATE_CYCLE_LABELS = {
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "half-yearly": "每半年",
    "yearly": "每年",
    "irregular": "不定期",
}
STATUS_LABELS = {"draft": "草稿", "under_review": "审核中", "published": "已发布", "retired": "已停用"}


_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def organisation_code_check(body: str) -> str:
    """The check character of an organisation code's first eight characters (GB 11714)."""
    remainder = 11 - sum(_ORG_ALPHABET.index(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def org_code_problem(code: str) -> str | None:
    """Why ``code`` is neither an 18-character unified social credit code (GB 32100, check character included)
    nor a 9-character organisation code (GB 11714, ``XXXXXXXX-X`` or without the hyphen); None when it is one."""
    if len(code) == 18:
        return None if uscc.is_valid(code) else "not a unified social credit code (GB 32100: its check character fails)"
    compact = code.replace("-", "")
    if len(compact) == 9 and re.fullmatch(r"[0-9A-Z]{8}[0-9X]", compact):
        if organisation_code_check(compact[:8]) == compact[8]:
            return None
        return "not an organisation code (GB 11714: its check character fails)"
    return "expected an 18-character unified social credit code or a 9-character organisation code"
