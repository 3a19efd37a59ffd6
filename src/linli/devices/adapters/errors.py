"""The two ways an adapter fails: broken at start-up, or handed a payload it cannot read."""

from __future__ import annotations


class AdapterError(Exception):
    """A broken adapter (bad manifest, missing or invalid parse, duplicate name): start-up stops."""

    def __init__(self, folder: str, reason: str) -> None:
        super().__init__(f"adapter {folder!r}: {reason}")
        self.folder = folder
        self.reason = reason


class AdapterParseError(ValueError):
    """A payload the adapter cannot read; the caller dead-letters it with `reason`."""

    def __init__(self, reason: str, *, record: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record = record
