"""Adapter discovery: every package under an adapter root with a valid manifest and a pure `parse`.

An adapter is a folder `<root>/<name>/` holding `manifest.json` and `adapter.py`; nothing else in the
code base names it. `discover()` imports them all and fails loudly (AdapterError naming the folder) on a
broken manifest, a missing or ill-shaped `parse`, or two adapters with the same name — start-up stops
rather than running without a vendor's data. Folders starting with `_` or `.` are not adapters.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linli.devices.adapters.common import describe_validation
from linli.devices.adapters.errors import AdapterError
from linli.devices.events import Envelope, EventType

ParseFn = Callable[..., list[Envelope]]
EXPECTED = "(raw, headers, *, device, received_at)"


class AdapterRoot(NamedTuple):
    """A folder of adapter packages and the import name of that folder."""

    path: Path
    package: str


BUILTIN_ROOT = AdapterRoot(Path(__file__).resolve().parent, "linli.devices.adapters")


class Manifest(BaseModel):
    """manifest.json: what an adapter is and what it produces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")
    vendor: str = Field(min_length=1, max_length=64)
    protocols: list[Literal["http", "mqtt", "ftp", "tcp", "file"]] = Field(min_length=1)
    event_types: list[EventType] = Field(min_length=1)
    content_types: list[str] = Field(min_length=1)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    description: str = Field(default="", max_length=500)


@dataclass(frozen=True)
class Adapter:
    """A discovered adapter: its manifest, its folder and its pure parse function."""

    manifest: Manifest
    folder: Path
    module: ModuleType
    parse: ParseFn

    @property
    def name(self) -> str:
        """The adapter's unique name (its folder's name)."""
        return self.manifest.name


def discover(*roots: AdapterRoot) -> dict[str, Adapter]:
    """Import every adapter under the roots (default: the built-in ones); AdapterError if any is broken."""
    found: dict[str, Adapter] = {}
    for root in roots or (BUILTIN_ROOT,):
        for folder in _adapter_folders(root.path):
            adapter = load_adapter(folder, f"{root.package}.{folder.name}")
            if adapter.name in found:
                other = found[adapter.name].folder
                raise AdapterError(str(folder), f"duplicate adapter name {adapter.name!r} (also in {other})")
            found[adapter.name] = adapter
    return found


def load_adapter(folder: Path, package: str) -> Adapter:
    """One adapter package: its manifest validated, its `adapter.parse` imported and checked."""
    manifest = read_manifest(folder)
    try:
        module = importlib.import_module(f"{package}.adapter")
    except Exception as exc:
        raise AdapterError(str(folder), f"adapter.py cannot be imported: {exc!r}") from exc
    parse = getattr(module, "parse", None)
    _check_parse(parse, folder)
    return Adapter(manifest=manifest, folder=folder, module=module, parse=parse)  # type: ignore[arg-type]


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest.json, validated; its name must be the folder's name."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise AdapterError(str(folder), "manifest.json is missing")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(data)
    except json.JSONDecodeError as exc:
        raise AdapterError(str(folder), f"manifest.json is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise AdapterError(str(folder), f"manifest.json is invalid: {describe_validation(exc)}") from exc
    if manifest.name != folder.name:
        raise AdapterError(str(folder), f"manifest name {manifest.name!r} does not match the folder name")
    return manifest


def _adapter_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise AdapterError(str(root), "adapter root is not a folder")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def _check_parse(parse: object, folder: Path) -> None:
    if not callable(parse):
        raise AdapterError(str(folder), f"adapter.py has no callable parse{EXPECTED}")
    params = inspect.signature(parse).parameters
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    missing = [name for name in ("device", "received_at") if name not in params]
    if len(positional) < 2 or missing:
        raise AdapterError(
            str(folder), f"parse must take {EXPECTED}; its signature is {inspect.signature(parse)}"
        )
    required_extra = [p.name for p in positional[2:] if p.default is p.empty]
    if required_extra:
        raise AdapterError(str(folder), f"parse has extra required positional parameters {required_extra}")


_loaded: dict[str, Adapter] | None = None


def load(*roots: AdapterRoot) -> dict[str, Adapter]:
    """Discover the adapters once at start-up and keep them for `get` (raises AdapterError if broken)."""
    global _loaded
    _loaded = discover(*roots)
    return _loaded


def get(name: str) -> Adapter:
    """The adapter called `name` (discovering the built-in adapters on first use)."""
    adapters = _loaded if _loaded is not None else load()
    try:
        return adapters[name]
    except KeyError:
        raise AdapterError(name, f"no such adapter; known: {', '.join(sorted(adapters))}") from None


def names() -> list[str]:
    """The names of the known adapters, sorted."""
    return sorted(_loaded if _loaded is not None else load())
