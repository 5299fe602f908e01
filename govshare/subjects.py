"""Data subjects (数据主体): the people and enterprises records are about, as the access records know them.

The access record of an answer names the subjects of the rows it returned (README "Who looked at my data") by a
keyed hash of each one's identifier (a person's 公民身份号码, an enterprise's 统一社会信用代码): HMAC-SHA256 under
the platform's subject key, kept outside the database (``subject_key_file``), so that the index holds no number
and nobody with the database alone can tell whose accesses a row lists, nor confirm a guessed number.

Imports nothing of ours.
"""

from __future__ import annotations

import hashlib
import hmac

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
        self._base = hmac.new(secret, digestmod=hashlib.sha256)  # its pads computed once: each hash copies them

    def digest(self, value: object) -> str:
        mac = self._base.copy()
        mac.update(normal(value).encode())
        return mac.hexdigest()
