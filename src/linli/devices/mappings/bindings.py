"""Which adapter reads a device's data: a vendor adapter by name, or `mapping:<name>` for a stored mapping.

The binding is used by everything in this package that turns a device's bytes into envelopes: vendor
pushes to /api/v1/ingest/mapped/{serial}, batch uploads and pull sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, NotFound
from linli.core.timeutil import utcnow
from linli.devices import adapters, register
from linli.devices.adapters.mapping import CompiledMapping
from linli.devices.adapters.mapping.adapter import parse as parse_mapped
from linli.devices.events import Envelope
from linli.devices.mappings import service as mappings
from linli.devices.mappings.models import DeviceBinding
from linli.devices.models import Device
from linli.devices.push import authenticate_key, translate
from linli.devices.receive import Received

MAPPING_PREFIX = "mapping:"
NEEDS_DOCUMENT = "mapping"  # the bare mapping adapter cannot be bound: it needs a document's name

ParseFn = Callable[..., list[Envelope]]


@dataclass(frozen=True)
class Reader:
    """How one device's bytes are read: the adapter's name, its mapping if it is one, its parse function."""

    adapter: str
    mapping: CompiledMapping | None
    parse: ParseFn
    extract: Callable[..., dict[str, bytes]] | None = None  # the adapter's pictures (devices/media.py)

    @property
    def source(self) -> str:
        """The envelope source: mapping:<name> or the adapter's name."""
        return self.mapping.source if self.mapping else self.adapter


def reader_for(session: Session, *, adapter: str, community_code: str) -> Reader:
    """The reader of an adapter name for a device of that community (NotFound naming the adapter)."""
    adapter = adapter.strip()
    if adapter.startswith(MAPPING_PREFIX):
        compiled = mappings.resolve(
            session, name=adapter[len(MAPPING_PREFIX) :], community_code=community_code
        )

        def parse(
            raw: bytes,
            headers: Mapping[str, str],
            *,
            device: str | None = None,
            received_at: datetime | None = None,
        ) -> list[Envelope]:
            return parse_mapped(raw, headers, mapping=compiled, device=device, received_at=received_at)

        return Reader(adapter, compiled, parse)
    if adapter == NEEDS_DOCUMENT:
        raise Invalid("请写成 mapping:<映射名称>", field="adapter")
    try:
        found = adapters.get(adapter)
    except adapters.AdapterError:
        raise NotFound(f"没有名为 {adapter} 的适配器或映射", field="adapter") from None
    return Reader(adapter, None, found.parse, getattr(found.module, "extract_media", None))


def receive_mapped(
    session: Session,
    *,
    serial: str,
    key: str | None,
    mapping_name: str,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
) -> Received:
    """A vendor push read with the named mapping, else the device's bound adapter or mapping."""
    device = authenticate_key(session, serial=serial, key=key)
    adapter = f"{MAPPING_PREFIX}{mapping_name}" if mapping_name else adapter_of(session, device=device)
    if not adapter:
        raise Invalid(f"设备 {serial} 没有绑定适配器或映射", field="adapter")
    reader = reader_for(session, adapter=adapter, community_code=device.community_code)
    return translate(
        session,
        device=device,
        source=f"push:{reader.source}"[:64],
        name=adapter,
        parse=reader.parse,
        extract=reader.extract,
        body=body,
        headers=headers,
        now=now,
        bound=not mapping_name,
    )


def adapter_of(session: Session, *, device: Device) -> str | None:
    """The adapter a device is bound to, if any."""
    return session.scalar(select(DeviceBinding.adapter).where(DeviceBinding.device_id == device.id))


def bind(session: Session, principal: Principal, *, device_id: int, adapter: str) -> DeviceBinding | None:
    """Bind a device (in the caller's scope) to an adapter or mapping:<name>; "" unbinds. Audited."""
    principal.require(Perm.DEVICES_WRITE)
    device = register.get_or_raise(session, device_id=device_id)
    adapter = adapter.strip()
    binding = session.get(DeviceBinding, device.id)
    if adapter:
        reader_for(session, adapter=adapter, community_code=device.community_code)  # must exist
    old = binding.adapter if binding else ""
    if not adapter:
        if binding is not None:
            session.delete(binding)
        binding = None
    elif binding is None:
        binding = DeviceBinding(device_id=device.id, adapter=adapter[:64], updated_at=utcnow())
        session.add(binding)
    else:
        binding.adapter, binding.updated_at = adapter[:64], utcnow()
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="device.bind_adapter",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": device.serial, "from": old, "to": adapter},
    )
    return binding
