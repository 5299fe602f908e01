"""Sealing the values a data-error report holds (the record's key, the proposed value) at rest.

AES-GCM (``cryptography``) under a key derived from the platform secret (``pseudonym_secret_file``: every process
reads the same one) by HMAC-SHA256 with a label of its own, so the hash mask's keys and this one never coincide. The
report's id is the associated data: a sealed value copied onto another report does not open."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LABEL = b"govshare data-error reports v1"
NONCE_BYTES = 12


class SealBroken(ValueError):
    """A sealed value that does not open under this platform's secret and report id."""


def _key(secret: bytes) -> bytes:
    if len(secret) < 32:
        raise ValueError("the platform secret must be 32 bytes")
    return hmac.new(secret, LABEL, hashlib.sha256).digest()


def seal(secret: bytes, report_id: str, value: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key(secret)).encrypt(nonce, value.encode(), report_id.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def open_sealed(secret: bytes, report_id: str, text: str) -> str:
    raw = base64.urlsafe_b64decode(text.encode())
    try:
        return AESGCM(_key(secret)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], report_id.encode()).decode()
    except InvalidTag:
        raise SealBroken(report_id) from None
