"""Adapter discovery: built-in adapters load; a broken or duplicate one stops start-up, naming its folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from linli.devices import adapters
from linli.devices.adapters import AdapterError, AdapterRoot, discover
from linli.devices.adapters.registry import BUILTIN_ROOT
from linli.devices.events import EventType

GOOD_MANIFEST = {
    "name": "acme_gate",
    "vendor": "Acme",
    "protocols": ["http"],
    "event_types": ["vehicle.entered"],
    "content_types": ["application/json"],
    "version": "0.1.0",
}
GOOD_ADAPTER = """
from linli.devices.events import Envelope


def parse(raw, headers, *, device=None, received_at=None) -> list[Envelope]:
    return []
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AdapterRoot:
    """An empty adapter root importable under a package name unique to this test."""
    package = "extra_adapters_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return AdapterRoot(tmp_path / package, package)


def add_adapter(
    root: AdapterRoot, folder: str, *, manifest: dict | str | None = None, code: str | None = GOOD_ADAPTER
) -> Path:
    """Write an adapter package into the root (manifest None: no manifest.json; code None: no adapter.py)."""
    path = root.path / folder
    path.mkdir()
    (path / "__init__.py").write_text("")
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        (path / "manifest.json").write_text(text, encoding="utf-8")
    if code is not None:
        (path / "adapter.py").write_text(code)
    return path


def test_builtin_adapters_are_discovered_with_their_manifests() -> None:
    found = discover()
    assert sorted(found) == ["hikvision_isapi", "mapping", "patrol_csv"]
    hik = found["hikvision_isapi"]
    assert hik.manifest.vendor.startswith("Hikvision")
    assert EventType.VEHICLE_ENTERED in hik.manifest.event_types
    assert hik.folder == BUILTIN_ROOT.path / "hikvision_isapi"
    assert found["patrol_csv"].manifest.event_types == [EventType.PATROL_CHECKED_IN]


def test_get_returns_a_discovered_adapter_and_refuses_an_unknown_name() -> None:
    assert (
        adapters.get("hikvision_isapi").parse.__module__ == "linli.devices.adapters.hikvision_isapi.adapter"
    )
    with pytest.raises(AdapterError, match="no such adapter; known: hikvision_isapi, mapping, patrol_csv"):
        adapters.get("dahua")


def test_a_new_vendor_folder_is_picked_up_without_touching_any_other_file(root: AdapterRoot) -> None:
    add_adapter(root, "acme_gate", manifest=GOOD_MANIFEST)
    found = discover(root)
    assert list(found) == ["acme_gate"]
    assert found["acme_gate"].parse(b"{}", {}, device="X1", received_at=None) == []


@pytest.mark.parametrize(
    ("manifest", "code", "message"),
    [
        (None, GOOD_ADAPTER, "manifest.json is missing"),
        ('{"name": "acme_gate",', GOOD_ADAPTER, "manifest.json is not valid JSON"),
        ({**GOOD_MANIFEST, "event_types": ["vehicle.teleported"]}, GOOD_ADAPTER, "event_types.0"),
        ({k: v for k, v in GOOD_MANIFEST.items() if k != "vendor"}, GOOD_ADAPTER, "vendor: Field required"),
        ({**GOOD_MANIFEST, "name": "acme_barrier"}, GOOD_ADAPTER, "does not match the folder name"),
        ({**GOOD_MANIFEST, "colour": "red"}, GOOD_ADAPTER, "colour: Extra inputs are not permitted"),
        (GOOD_MANIFEST, None, "adapter.py cannot be imported"),
        (GOOD_MANIFEST, "import no_such_module\n", "No module named 'no_such_module'"),
        (GOOD_MANIFEST, "PARSE = None\n", "has no callable parse"),
        (GOOD_MANIFEST, "def parse(raw):\n    return []\n", "parse must take"),
        (GOOD_MANIFEST, "def parse(raw, headers):\n    return []\n", "parse must take"),
    ],
)
def test_a_broken_adapter_stops_discovery_naming_its_folder(
    root: AdapterRoot, manifest: dict | str | None, code: str | None, message: str
) -> None:
    folder = add_adapter(root, "acme_gate", manifest=manifest, code=code)
    with pytest.raises(AdapterError) as caught:
        discover(root)
    assert caught.value.folder == str(folder)
    assert str(folder) in str(caught.value)
    assert message in caught.value.reason


def test_a_stray_folder_without_a_manifest_is_not_silently_skipped(root: AdapterRoot) -> None:
    add_adapter(root, "acme_gate", manifest=GOOD_MANIFEST)
    (root.path / "notes").mkdir()
    with pytest.raises(AdapterError, match=r"notes.*manifest\.json is missing"):
        discover(root)


def test_private_folders_are_not_adapters(root: AdapterRoot) -> None:
    add_adapter(root, "acme_gate", manifest=GOOD_MANIFEST)
    (root.path / "_shared").mkdir()
    (root.path / "__pycache__").mkdir(exist_ok=True)
    assert list(discover(root)) == ["acme_gate"]


def test_a_duplicate_adapter_name_stops_discovery(root: AdapterRoot) -> None:
    folder = add_adapter(root, "hikvision_isapi", manifest={**GOOD_MANIFEST, "name": "hikvision_isapi"})
    with pytest.raises(AdapterError, match="duplicate adapter name 'hikvision_isapi'") as caught:
        discover(BUILTIN_ROOT, root)
    assert caught.value.folder == str(folder)
    assert str(BUILTIN_ROOT.path / "hikvision_isapi") in caught.value.reason


def test_a_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="adapter root is not a folder"):
        discover(AdapterRoot(tmp_path / "nowhere", "nowhere"))


def test_the_app_loads_the_adapters_at_start_up(settings) -> None:  # type: ignore[no-untyped-def]
    from linli.app import create_app
    from linli.devices import adapters

    create_app(settings)
    assert adapters.get("hikvision_isapi").manifest.vendor
