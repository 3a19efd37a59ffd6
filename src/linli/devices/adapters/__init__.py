"""Vendor adapters: one folder per vendor or protocol, each turning raw pushes into Envelopes.

See README.md for the adapter shape and the declarative mapping language.
"""

from __future__ import annotations

from linli.devices.adapters.errors import AdapterError, AdapterParseError
from linli.devices.adapters.registry import Adapter, AdapterRoot, Manifest, discover, get, load, names

__all__ = [
    "Adapter",
    "AdapterError",
    "AdapterParseError",
    "AdapterRoot",
    "Manifest",
    "discover",
    "get",
    "load",
    "names",
]
