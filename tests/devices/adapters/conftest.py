"""Recorded sample payloads for the adapter tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"
CONTENT_TYPES = {
    ".xml": "application/xml",
    ".json": "application/json",
    ".form": "application/x-www-form-urlencoded",
    ".csv": "text/csv",
}


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _headers(name: str) -> dict[str, str]:
    sidecar = SAMPLES / f"{name.rsplit('.', 1)[0]}.headers.json"
    if sidecar.exists():
        headers: dict[str, str] = json.loads(sidecar.read_text(encoding="utf-8"))
        return headers
    return {"Content-Type": CONTENT_TYPES[Path(name).suffix]}


@pytest.fixture
def sample() -> Callable[[str], bytes]:
    """Read a recorded payload by its path under samples/."""
    return _sample


@pytest.fixture
def headers_for() -> Callable[[str], dict[str, str]]:
    """The HTTP headers a recorded payload arrived with (its .headers.json, else by extension)."""
    return _headers


@pytest.fixture
def parts_of() -> Callable[[str], dict[str, bytes]]:
    """The picture bytes recorded beside a multipart sample (its .parts.json)."""

    def read(name: str) -> dict[str, bytes]:
        sidecar = SAMPLES / f"{name.rsplit('.', 1)[0]}.parts.json"
        return {key: bytes.fromhex(value) for key, value in json.loads(sidecar.read_text()).items()}

    return read
