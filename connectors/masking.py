"""Masks (Art 28): how a data item's value is shown when a grant does not give it in clear.

A mask is written as text in grants and policy rules (``keep:6,4``, ``year``, ...) and parsed into a ``Mask``.
Each kind says which item types it applies to and, for the check that no other item undoes it, which
character positions of the value's text it keeps in clear (``kept``). Connectors apply masks in the source's
SQL (connectors/sql.py) or, for upstream platforms, with ``apply`` here; both give the same values.

| text | shows | for |
|---|---|---|
| ``keep:H,T`` | the first H and last T characters, ``*`` between (all ``*`` when the value is that short) | text |
| ``id_number``, ``credit_code``, ``phone``, ``name``, ``full`` | presets: keep:6,4 / keep:8,2 / keep:3,4 / keep:1,0 / keep:0,0 | text |
| ``nullify`` | nothing (null) | any type |
| ``year`` | the year only, as the first day of that year (1978-11-26 → 1978-01-01) | date |
| ``range:W`` | the lower bound of the value's range of width W (1234.5 with range:1000 → 1000) | integer, decimal |
| ``hash`` | a keyed pseudonym (24 hex digits), stable for one consumer department, different for another | text |
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import math
import re
from dataclasses import dataclass

PRESETS = {
    "id_number": (6, 4),  # 371311********1234
    "credit_code": (8, 2),
    "phone": (3, 4),  # 138****1234
    "name": (1, 0),  # 张**
    "full": (0, 0),
}
KINDS = ("keep", "nullify", "year", "range", "hash")
TYPES = {  # the item types each kind may mask: a masked value keeps its item's type
    "keep": ("string",),
    "hash": ("string",),
    "nullify": ("string", "integer", "decimal", "date", "boolean"),
    "year": ("date",),
    "range": ("integer", "decimal"),
}
PSEUDONYM_DIGITS = 24  # hex digits of a pseudonym: 96 bits


class MaskError(ValueError):
    """The text of a mask is not one of the forms above."""


@dataclass(frozen=True)
class Mask:
    kind: str  # one of KINDS
    head: int = 0  # keep: characters kept at the start
    tail: int = 0  # keep: characters kept at the end
    width: float = 0  # range: the width of a range
    key: str = ""  # hash: the consumer department's key, hex (set by the data path, never from a grant)

    @property
    def text(self) -> str:
        if self.kind == "keep":
            return f"keep:{self.head},{self.tail}"
        if self.kind == "range":
            return f"range:{_number(self.width)}"
        return self.kind

    def applies_to(self, item_type: str) -> bool:
        return item_type in TYPES[self.kind]

    def kept(self, length: int) -> frozenset[int]:
        """The 1-based positions of a value's text (of ``length`` characters) this mask shows in clear."""
        if self.kind == "keep":
            if length <= self.head + self.tail:
                return frozenset()
            return frozenset(range(1, self.head + 1)) | frozenset(range(length - self.tail + 1, length + 1))
        if self.kind == "year":  # ISO text YYYY-MM-DD: the year's four digits
            return frozenset(range(1, 5))
        return frozenset()  # nullify, range, hash: no character is shown as it is

    def keyed(self, key: str) -> Mask:
        return Mask(self.kind, self.head, self.tail, self.width, key)

    def apply(self, value: object) -> object:
        """The masked value (the reference the SQL expressions of connectors/sql.py must equal)."""
        if value is None or self.kind == "nullify":
            return None
        if self.kind == "keep":
            text = str(value)
            if len(text) <= self.head + self.tail:
                return "*" * len(text)
            return text[: self.head] + "*" * (len(text) - self.head - self.tail) + text[len(text) - self.tail :]
        if self.kind == "year":
            moment = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))
            return datetime.date(moment.year, 1, 1)
        if self.kind == "range":
            low = math.floor(float(value) / self.width) * self.width  # type: ignore[arg-type]
            return int(low) if isinstance(value, int) and float(self.width).is_integer() else low
        return pseudonym(bytes.fromhex(self.key), str(value))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_KEEP = re.compile(r"keep:(\d{1,3}),(\d{1,3})")
_RANGE = re.compile(r"range:(\d{1,12}(?:\.\d{1,6})?)")


def parse_mask(text: str) -> Mask:
    """A mask from its text; MaskError when it is none of the forms in this module's table."""
    if not isinstance(text, str):
        raise MaskError(text)
    if text in PRESETS:
        return Mask("keep", *PRESETS[text])
    if text in ("nullify", "year", "hash"):
        return Mask(text)
    if match := _KEEP.fullmatch(text):
        return Mask("keep", int(match[1]), int(match[2]))
    if (match := _RANGE.fullmatch(text)) and float(match[1]) > 0:
        return Mask("range", width=float(match[1]))
    raise MaskError(text)


def is_mask(text: object) -> bool:
    try:
        parse_mask(text)  # type: ignore[arg-type]
    except MaskError:
        return False
    return True


MASK_FORMS = "keep:H,T, " + ", ".join(PRESETS) + ", nullify, year, range:W, hash"


def department_key(secret: bytes, department: str) -> str:
    """The key (hex) of one consumer department's pseudonyms: its pseudonyms cannot be matched with another's."""
    return hmac.new(secret, b"govshare-pseudonym:" + department.encode(), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_DIGITS]


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys, so that a database can compute the HMAC with SHA-256 alone:
    HMAC(k, m) = SHA256(opad || SHA256(ipad || m))."""
    block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)
