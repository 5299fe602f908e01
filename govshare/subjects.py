"""Data subjects (数据主体): the people and enterprises records are about, as the access records know them.

The access record of an answer names the subjects of the rows it returned (README "Who looked at my data") by a
keyed hash of each one's identifier (a person's 公民身份号码, an enterprise's 统一社会信用代码): HMAC-SHA256 under
the platform's subject key, kept outside the database (``subject_key_file``), so that the index holds no number
and nobody with the database alone can tell whose accesses a row lists, nor confirm a guessed number.

Imports nothing of ours (python-stdnum checks credit codes).
"""

from __future__ import annotations

import datetime
import hashlib
import re

from stdnum.cn import uscc

# What a catalog item's ``subject`` may declare it identifies.
KINDS = ("person", "enterprise", "person_or_enterprise")


def normal(value: object) -> str:
    """An identifier as it is hashed: its text without surrounding blanks, in capitals (a final ``x`` of an ID
    number, a credit code typed in small letters)."""
    return str(value).strip().upper()


class SubjectKey:
    """HMAC-SHA256 under the platform's subject key, as 64 hex digits."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError(f"a subject key needs 32 bytes, not {len(secret)}")
        # HMAC (RFC 2104) by its padded keys, hashed once: each value then costs two copies of a hash state (a third
        # less than copying an hmac.HMAC, whose copy is Python; hmac.digest prepares the key again for every value).
        block = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, value: object) -> str:
        inner = self._inner.copy()
        inner.update(normal(value).encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def index_key(subject_hash: str) -> int:
    """The subject index's key of a subject hash: its first 64 bits as a signed integer (an integer column stores five
    times as many keys a page as the 64 hex digits). Not unique in principle, so whoever finds records by it checks the
    full hash on the rows it found (resolvers/subjects.py)."""
    key = int(subject_hash[:16], 16)
    return key - (1 << 64) if key >= 1 << 63 else key


_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number_valid(value: str) -> bool:
    """An 18-character 公民身份号码 (GB 11643-1999): 17 digits, a real birth date, and its ISO 7064 MOD 11-2 check
    character. (python-stdnum's ``cn.ric`` also requires the address code in its own, older table of divisions.)"""
    if not _ID_NUMBER.fullmatch(value):
        return False
    try:
        datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return "10X98765432"[sum(int(c) * w for c, w in zip(value, _ID_WEIGHTS, strict=False)) % 11] == value[17]


def credit_code_valid(value: str) -> bool:
    """An 18-character 统一社会信用代码 (GB 32100-2015) with its check character."""
    return len(value) == 18 and bool(uscc.is_valid(value))
