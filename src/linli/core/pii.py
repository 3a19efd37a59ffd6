"""Personal data: AES-GCM encryption at rest, keyed look-up hashes, and masking for display."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_VERSION = b"\x01"


class _Keys:
    aes: AESGCM | None = None
    lookup: bytes = b""


def configure(*, aes_key: bytes, lookup_key: bytes) -> None:
    """Install the keys used for every encrypted column and look-up hash in this process."""
    _Keys.aes = AESGCM(aes_key)
    _Keys.lookup = lookup_key


def _aes() -> AESGCM:
    if _Keys.aes is None:
        from linli.settings import get_settings

        settings = get_settings()
        configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    assert _Keys.aes is not None
    return _Keys.aes


def encrypt(plaintext: str) -> str:
    """AES-GCM encrypt text; the result is base64 text holding version, nonce and ciphertext."""
    nonce = os.urandom(12)
    sealed = _aes().encrypt(nonce, plaintext.encode("utf-8"), None)
    return base64.b64encode(_VERSION + nonce + sealed).decode("ascii")


def decrypt(token: str) -> str:
    """Reverse encrypt(); raises on tampering or a wrong key."""
    blob = base64.b64decode(token)
    if blob[:1] != _VERSION:
        raise ValueError("unknown PII cipher version")
    return _aes().decrypt(blob[1:13], blob[13:], None).decode("utf-8")


def lookup_hash(kind: str, value: str) -> str:
    """Keyed HMAC-SHA256 of a normalised value, for equality look-ups without storing plaintext."""
    _aes()
    digest = hmac.new(_Keys.lookup, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:40]


class EncryptedText(TypeDecorator[str]):
    """A text column stored AES-GCM encrypted; reads give back the plaintext."""

    impl = String(255)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(value)


def mask_middle(value: str | None, *, keep_start: int, keep_end: int) -> str:
    """Mask all but the first keep_start and last keep_end characters with '*'."""
    if not value:
        return ""
    if len(value) <= keep_start + keep_end:
        keep_start, keep_end = min(1, len(value) - 1), min(1, max(len(value) - 2, 0))
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * hidden + (value[-keep_end:] if keep_end else "")


def mask_id_number(value: str | None) -> str:
    """610***********123X style: first 3 and last 4 shown (shorter documents keep less)."""
    if not value:
        return ""
    if len(value) >= 15:
        return mask_middle(value, keep_start=3, keep_end=4)
    return mask_middle(value, keep_start=1, keep_end=max(2, len(value) // 4))


def mask_phone(value: str | None) -> str:
    """138****5678 style."""
    if not value:
        return ""
    return mask_middle(value, keep_start=3, keep_end=4)


def mask_name(value: str | None) -> str:
    """张** style, for logs and lists shown to roles without the right to names."""
    if not value:
        return ""
    return value[0] + "*" * (len(value) - 1)
