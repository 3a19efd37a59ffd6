"""Waiting in tests for something another thread or process does: a bounded poll, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, *, every: float = 0.05) -> bool:
    """Poll predicate until it is true or timeout seconds passed; its last answer, as a bool."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
