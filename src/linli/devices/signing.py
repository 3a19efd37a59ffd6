"""Device request signatures: HMAC-SHA256 of "{timestamp}.{raw body}" with the device's secret.

A device sends three headers: X-Linli-Device (its serial), X-Linli-Timestamp (unix seconds) and
X-Linli-Signature ("sha256=" + hex digest). The timestamp must be within the allowed skew of the hub's
clock, which limits how long a captured request could be replayed (dedup makes a replay harmless anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from linli.core.errors import Forbidden, Unauthorized
from linli.devices import register
from linli.devices.models import Device

logger = logging.getLogger(__name__)

DEVICE_HEADER = "X-Linli-Device"
TIMESTAMP_HEADER = "X-Linli-Timestamp"
SIGNATURE_HEADER = "X-Linli-Signature"
PREFIX = "sha256="

# Refused requests by reason, since start-up (no dead letter is kept for them: they were never trusted).
FAILURES: Counter[str] = Counter()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Linli-Signature value for body sent at timestamp."""
    message = str(timestamp).encode("ascii") + b"." + body
    return PREFIX + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class DeviceUnauthorized(Unauthorized):
    """A device request that failed authentication; reason is a stable word for programs."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def to_dict(self) -> dict[str, object]:
        """The JSON body: code, message and reason."""
        return {**super().to_dict(), "reason": self.reason}


def _refuse(reason: str, message: str, serial: str) -> DeviceUnauthorized:
    FAILURES[reason] += 1
    logger.warning("device request refused (%s) for %r: %s", reason, serial[:64], message)
    return DeviceUnauthorized(message, reason=reason)


def authenticate(
    session: Session,
    *,
    serial: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    skew_seconds: int,
) -> Device:
    """The registered device that signed this body, else Unauthorized saying why (Forbidden if retired)."""
    serial = (serial or "").strip()
    if not serial or not timestamp or not signature:
        missing = [
            h
            for h, v in (
                (DEVICE_HEADER, serial),
                (TIMESTAMP_HEADER, timestamp),
                (SIGNATURE_HEADER, signature),
            )
            if not v
        ]
        raise _refuse("missing_headers", f"missing header(s): {', '.join(missing)}", serial)
    try:
        sent_at = int(timestamp.strip())
    except ValueError:
        raise _refuse(
            "bad_timestamp", f"{TIMESTAMP_HEADER} must be unix seconds, got {timestamp[:32]!r}", serial
        ) from None
    drift = sent_at - int(now.timestamp())
    if abs(drift) > skew_seconds:
        raise _refuse(
            "stale_timestamp",
            f"timestamp is {abs(drift)} s {'ahead of' if drift > 0 else 'behind'} the hub's clock "
            f"(allowed: ±{skew_seconds} s); check the device's clock (NTP)",
            serial,
        )
    device = register.by_serials(session, {serial}, with_secrets=True).get(serial)
    if device is None:
        raise _refuse("unknown_device", f"unknown device: {serial} is not registered", serial)
    if not hmac.compare_digest(sign(device.secret, timestamp.strip(), body), signature.strip()):
        raise _refuse(
            "bad_signature",
            'signature mismatch: expected sha256=HMAC-SHA256(secret, "{timestamp}.{body}") in hex '
            "over the exact bytes sent",
            serial,
        )
    if register.is_retired(device):
        FAILURES["retired"] += 1
        raise Forbidden(f"device {serial} is retired", field="device")
    return device


@dataclass(frozen=True)
class Signed:
    """A device's signed request: its three headers and the exact bytes they sign."""

    serial: str | None
    timestamp: str | None
    signature: str | None
    body: bytes
    skew_seconds: int

    @classmethod
    def of(cls, headers: Mapping[str, str], body: bytes, *, skew_seconds: int) -> Signed:
        """The signed request of these HTTP headers (any case) and body."""
        return cls(
            headers.get(DEVICE_HEADER),
            headers.get(TIMESTAMP_HEADER),
            headers.get(SIGNATURE_HEADER),
            body,
            skew_seconds,
        )

    def authenticate(self, session: Session, *, now: datetime) -> Device:
        """The registered device that signed it (see authenticate)."""
        return authenticate(
            session,
            serial=self.serial,
            timestamp=self.timestamp,
            signature=self.signature,
            body=self.body,
            now=now,
            skew_seconds=self.skew_seconds,
        )
