"""Tables of stored mappings (one row per name and scope, one per version), device bindings, pull sources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.pii import EncryptedText
from linli.core.timeutil import utcnow
from linli.db import Base


class LongEncryptedText(EncryptedText):
    """EncryptedText without the 255-character limit (a bearer token alone can be longer)."""

    impl = Text()
    cache_ok = True


DISTRICT_WIDE = ""  # community_code of a mapping every community may use


class StoredMapping(Base):
    """A mapping document's name in one scope (a community, or "" for the whole district) and its head."""

    __tablename__ = "device_mappings"
    __table_args__ = (UniqueConstraint("community_code", "name", name="uq_device_mappings_scope_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(48), index=True)
    community_code: Mapped[str] = mapped_column(String(32), default=DISTRICT_WIDE)
    active_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MappingVersion(Base):
    """One saved version of a mapping document, kept as written (YAML or JSON); never changed."""

    __tablename__ = "device_mapping_versions"
    __table_args__ = (UniqueConstraint("mapping_id", "version", name="uq_device_mapping_versions"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mapping_id: Mapped[int] = mapped_column(ForeignKey("device_mappings.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    document: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceBinding(Base):
    """The adapter a device's pushes, uploads and polls are read with: an adapter name or mapping:<name>."""

    __tablename__ = "device_bindings"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    adapter: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PullSource(Base):
    """A device that only answers queries: where and how to poll it, its cursor and how the polls went."""

    __tablename__ = "device_pull_sources"
    __table_args__ = (Index("ix_device_pull_sources_due", "enabled", "next_poll_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Request headers often carry a token or a password: kept encrypted, never shown back in full.
    secret_headers: Mapped[str] = mapped_column(LongEncryptedText(), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    cursor: Mapped[str] = mapped_column(String(200), default="")
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_ok_at: Mapped[datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_stored: Mapped[int] = mapped_column(default=0)
    last_duplicates: Mapped[int] = mapped_column(default=0)
    last_rejected: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
