"""The device register: create, find, change, retire and delete devices; each device's signing secret."""

from __future__ import annotations

import math
import re
import secrets
import threading
import unicodedata
import weakref
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, exists, func, or_, select
from sqlalchemy.orm import Session, defer

from linli.areas import service as areas
from linli.areas.models import Level
from linli.core import audit
from linli.core.auth.roles import Perm
from linli.core.auth.service import Principal
from linli.core.errors import Conflict, Invalid, NotFound
from linli.db import starts_with
from linli.devices import health, vocab
from linli.devices.models import Device, DeviceState, StoredEvent
from linli.registry import places

SERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_TEXT_LIMITS = {"name": 64, "vendor": 64, "model": 64, "protocol": 32, "location": 200}
EDITABLE = (
    "name",
    "kind",
    "vendor",
    "model",
    "protocol",
    "community",
    "grid",
    "building_id",
    "floor",
    "lat",
    "lon",
    "location",
    "installed_on",
    "state",
)


def new_secret() -> str:
    """A fresh random device secret (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def normalise_serial(raw: str | None, *, field: str = "serial") -> str:
    """A serial as stored: full-width folded, trimmed; letters, digits and . _ : - only."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise Invalid("序列号不能为空", field=field)
    if not SERIAL_RE.match(text):
        raise Invalid(f"序列号“{raw}”只能包含字母、数字和 . _ : -，最长 64 位", field=field)
    return text


def _text(value: Any, limit: int) -> str:
    return " ".join(str(value or "").split())[:limit]


def _number(value: Any, *, field: str, low: float, high: float) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Invalid(f"“{value}”不是数字", field=field) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise Invalid(f"{value} 超出范围（{low}～{high}）", field=field)
    return number


def _floor(value: Any) -> int | None:
    number = _number(value, field="floor", low=-10, high=200)
    if number is None:
        return None
    if not number.is_integer():
        raise Invalid(f"楼层“{value}”应为整数", field="floor")
    return int(number)


def _area(session: Session, community: str, grid: str | None) -> str:
    """The device's area_code: the grid when given (it must lie in the community), else the community."""
    areas.get_community_or_raise(session, code=community)
    if not grid:
        return community
    area = areas.get_or_raise(session, code=grid, field="grid")
    if area.level != Level.GRID or not grid.startswith(community):
        raise Invalid(f"{grid} 不是社区 {community} 的网格", field="grid")
    return grid


def clean(session: Session, data: dict[str, Any], *, current: Device | None = None) -> dict[str, Any]:
    """Validate loose device facts (API body or sheet row) into column values; Invalid names the field."""
    out: dict[str, Any] = {}
    for key, limit in _TEXT_LIMITS.items():
        if key in data:
            out[key] = _text(data[key], limit)
    if "kind" in data or current is None:
        out["kind"] = vocab.to_kind(data.get("kind"))
    if "state" in data:
        out["state"] = vocab.to_state(data.get("state"))
    if "floor" in data:
        out["floor"] = _floor(data["floor"])
    if "lat" in data:
        out["lat"] = _number(data["lat"], field="lat", low=-90, high=90)
    if "lon" in data:
        out["lon"] = _number(data["lon"], field="lon", low=-180, high=180)
    if "installed_on" in data:
        installed = data["installed_on"]
        if installed is not None and not isinstance(installed, date):
            raise Invalid("安装日期格式不正确", field="installed_on")
        out["installed_on"] = installed
    community = data.get("community") or (current.community_code if current else None)
    if not community:
        raise Invalid("请选择设备所在社区", field="community")
    if current is None or "community" in data or "grid" in data:
        grid = data.get("grid") if "grid" in data or current is None else _grid_of(current)
        out["area_code"] = _area(session, str(community), grid or None)
        out["community_code"] = str(community)
    building_id = data.get("building_id", current.building_id if current else None)
    if building_id is not None and ("building_id" in data or "community_code" in out):
        building = places.get_building(session, building_id=int(building_id))
        places.check_same_community(str(community), building.community_code, field="building_id")
        out["building_id"] = building.id
    return out


def _grid_of(device: Device) -> str | None:
    return device.area_code if device.area_code != device.community_code else None


def create(
    session: Session, principal: Principal, data: dict[str, Any], *, source: str = "api"
) -> tuple[Device, str]:
    """Register a device; returns it and its secret (shown once, stored encrypted)."""
    principal.require(Perm.DEVICES_WRITE)
    serial = normalise_serial(data.get("serial"))
    facts = clean(session, data)
    if _serial_taken(session, serial):
        raise Conflict(f"序列号已登记：{serial}", field="serial")
    secret = new_secret()
    device = Device(serial=serial, secret=secret, **facts)
    session.add(device)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="device.create",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": serial, "kind": device.kind, "source": source},
    )
    return device, secret


def _serial_taken(session: Session, serial: str) -> bool:
    stmt = select(Device.id).where(Device.serial == serial).execution_options(skip_scope=True)
    return session.scalar(stmt) is not None


def get(session: Session, *, device_id: int) -> Device | None:
    """A device in the caller's scope, else None."""
    return session.scalar(select(Device).where(Device.id == device_id))


def get_or_raise(session: Session, *, device_id: int) -> Device:
    """A device in the caller's scope, else NotFound."""
    device = get(session, device_id=device_id)
    if device is None:
        raise NotFound("设备不存在或不在权限范围内", field="device")
    return device


def find_by_serial(session: Session, *, serial: str) -> Device | None:
    """The device with that serial, if in the caller's scope."""
    return session.scalar(select(Device).where(Device.serial == serial))


def by_serials(session: Session, serials: set[str], *, with_secrets: bool = False) -> dict[str, Device]:
    """Devices by serial, whatever the scope (for the hub itself: ingest, authentication).

    A secret is stored encrypted and decrypted as it is read: it is left unread unless with_secrets (a
    gateway's batch names a hundred devices, and only the sender's secret checks a signature). Reading
    one that was left loads it then."""
    found: dict[str, Device] = {}
    ordered = sorted(serials)
    secrets = () if with_secrets else (defer(Device.secret),)
    for start in range(0, len(ordered), 500):
        stmt = select(Device).where(Device.serial.in_(ordered[start : start + 500])).options(*secrets)
        for device in session.scalars(stmt.execution_options(skip_scope=True)):
            found[device.serial] = device
    return found


@dataclass
class _Kept:
    """The devices one thread loaded for the hub, by serial (None: no such device), as of one token."""

    engine: weakref.ref[Engine]
    token: str
    devices: dict[str, Device | None] = field(default_factory=dict)


_kept = threading.local()
KEEP_AT_MOST = 100_000  # devices kept per thread; past it the kept ones are dropped and loaded again


def live_by_serials(session: Session, serials: set[str]) -> dict[str, Device]:
    """by_serials for the hub's hot path (the ingest's judge), with the devices kept between batches.

    A gateway's batch names a hundred devices, and loading them as ORM objects cost 1.8 ms of a 20 ms
    batch. This thread keeps those it loaded while devices_version's token is the one it loaded them at:
    the database sets a new token whenever a device is added, removed, or changed in anything but its
    last-seen time and link state (models.DevicesVersion). One read of the token per batch instead.

    The kept devices belong to no session (they are loaded apart and detached): read them, never change
    them or add them to a session. A device the caller's session holds is returned as that object.
    Their last_seen_at and online are as loaded (nothing on the hot path may rely on them), and their
    secret is not loaded.
    """
    if session.autoflush:  # as a query of the session would: what the caller changed counts (check_offline)
        session.flush()
    connection = session.connection()
    token = connection.exec_driver_sql("SELECT token FROM devices_version WHERE id = 1").scalar()
    kept: _Kept | None = getattr(_kept, "devices", None)
    engine = connection.engine
    if (
        kept is None
        or token is None
        or kept.token != token
        or kept.engine() is not engine
        or len(kept.devices) > KEEP_AT_MOST
    ):
        kept = _Kept(weakref.ref(engine), str(token))
        if token is not None:
            _kept.devices = kept
    missing = serials - kept.devices.keys()
    if missing:
        # In a session of their own on the same connection (the caller's transaction, so the same view):
        # the caller's session keeps its own objects, and these are kept detached, whatever it does after.
        with Session(bind=connection) as side:
            found = by_serials(side, missing)
            side.expunge_all()
        for serial in missing:
            kept.devices[serial] = found.get(serial)
    found = {serial: device for serial in serials if (device := kept.devices[serial]) is not None}
    # A device the caller's session holds already is that one (as by_serials would return it): what the
    # hub then marks on it (online again, last seen) shows in the caller's session.
    own = {o.serial: o for o in session.identity_map.values() if type(o) is Device and o.serial in found}
    found.update(own)
    return found


MAX_SEARCH_WORDS = 5  # words of a device search used at most


def get_all(
    session: Session,
    *,
    area: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    online: bool | None = None,
    serial_prefix: str | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Device]:
    """Devices in the caller's scope, by serial; online False: those offline (never a kind whose online
    state is not tracked, health.UNMONITORED), the longest silent first. text: each of its words
    (blank-separated) is somewhere in the serial, name, model or location, whatever the case of Latin
    letters, or names the kind ("12号楼 烟感", "ds-k1t 1单元")."""
    # Offline devices: the longest silent first (never seen before them), the ones to go and look at.
    order = (Device.last_seen_at.asc().nulls_first(), Device.serial) if online is False else (Device.serial,)
    stmt = select(Device).order_by(*order).limit(limit).offset(offset)
    for word in (text or "").split()[:MAX_SEARCH_WORDS]:
        columns = (Device.serial, Device.name, Device.model, Device.location)
        matches = [column.icontains(word, autoescape=True) for column in columns]
        kinds = vocab.kinds_named(word)
        stmt = stmt.where(or_(*matches, Device.kind.in_(sorted(kinds))) if kinds else or_(*matches))
    if area:
        stmt = stmt.where(starts_with(Device.area_code, area))
    if kind:
        stmt = stmt.where(Device.kind == kind)
    if state:
        stmt = stmt.where(Device.state == state)
    if online is not None:
        stmt = stmt.where(Device.online.is_(online))
    if online is False:  # offline: silent past its kind's limit, which kinds never connecting have not
        stmt = stmt.where(Device.kind.not_in(health.UNMONITORED))
    if serial_prefix:
        stmt = stmt.where(starts_with(Device.serial, serial_prefix))
    return list(session.scalars(stmt))


def link_summary(session: Session, *, area: str | None = None, kind: str | None = None) -> dict[str, int]:
    """How many devices in use (state active) in the caller's scope are online, offline and not monitored
    (health.UNMONITORED), for the area and kind given."""
    counts = {"online": 0, "offline": 0, "unmonitored": 0}
    for by_kind in link_summary_by_kind(session, area=area, kind=kind).values():
        for key, count in by_kind.items():
            counts[key] += count
    return counts


def link_summary_by_kind(
    session: Session, *, area: str | None = None, kind: str | None = None
) -> dict[str, dict[str, int]]:
    """link_summary per kind, the kinds with devices in use only, most devices first."""
    stmt = select(Device.kind, Device.online, func.count()).where(Device.state == DeviceState.ACTIVE)
    if area:
        stmt = stmt.where(starts_with(Device.area_code, area))
    if kind:
        stmt = stmt.where(Device.kind == kind)
    found: dict[str, dict[str, int]] = {}
    for device_kind, online, count in session.execute(stmt.group_by(Device.kind, Device.online)):
        counts = found.setdefault(device_kind, {"online": 0, "offline": 0, "unmonitored": 0})
        key = "unmonitored" if device_kind in health.UNMONITORED else "online" if online else "offline"
        counts[key] += count
    return dict(sorted(found.items(), key=lambda item: (-sum(item[1].values()), item[0])))


def update(session: Session, principal: Principal, *, device_id: int, data: dict[str, Any]) -> Device:
    """Change a device's facts (not its serial); audited with the old and new values."""
    principal.require(Perm.DEVICES_WRITE)
    device = get_or_raise(session, device_id=device_id)
    facts = clean(session, {k: v for k, v in data.items() if k in EDITABLE}, current=device)
    changes = {}
    for key, value in facts.items():
        old = getattr(device, key)
        if old != value:
            changes[key] = [_plain(old), _plain(value)]
            setattr(device, key, value)
    if changes:
        audit.record(
            session,
            actor=principal.actor,
            action="device.update",
            target_type="device",
            target_id=device.id,
            area_code=device.area_code,
            detail={"serial": device.serial, "changes": changes},
        )
    return device


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def rotate_secret(session: Session, principal: Principal, *, device_id: int) -> tuple[Device, str]:
    """Give a device a new secret (the old one stops working at once); returns the new one, shown once."""
    principal.require(Perm.DEVICES_WRITE)
    device = get_or_raise(session, device_id=device_id)
    secret = new_secret()
    device.secret = secret
    audit.record(
        session,
        actor=principal.actor,
        action="device.secret_rotate",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": device.serial},
    )
    return device, secret


def delete(session: Session, principal: Principal, *, device_id: int) -> None:
    """Remove a device registered by mistake; one with stored events can only be retired."""
    principal.require(Perm.DEVICES_WRITE)
    device = get_or_raise(session, device_id=device_id)
    has_events = session.scalar(
        select(exists().where(StoredEvent.device_id == device.id)).execution_options(skip_scope=True)
    )
    if has_events:
        raise Conflict("设备已有事件记录，不能删除；请将状态改为“已停用”", field="state")
    audit.record(
        session,
        actor=principal.actor,
        action="device.delete",
        target_type="device",
        target_id=device.id,
        area_code=device.area_code,
        detail={"serial": device.serial, "kind": device.kind},
    )
    session.delete(device)
    session.flush()


def is_retired(device: Device) -> bool:
    """True if the device no longer belongs to the hub's live devices."""
    return device.state == DeviceState.RETIRED
