"""Tables: users, the areas each is bound to, and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.db import Base, Timestamped


class User(Timestamped, Base):
    """A person who signs in: staff of any level, or a resident."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped on password change or lock: invalidates every page session issued before.
    session_version: Mapped[int] = mapped_column(default=1)

    areas: Mapped[list[UserArea]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def area_codes(self) -> tuple[str, ...]:
        """The area codes whose subtrees this user may see."""
        return tuple(sorted(a.area_code for a in self.areas))


class UserArea(Base):
    """A user's binding to one area subtree."""

    __tablename__ = "user_areas"
    __table_args__ = (UniqueConstraint("user_id", "area_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    area_code: Mapped[str] = mapped_column(String(32))

    user: Mapped[User] = relationship(back_populates="areas", lazy="raise")


class ApiToken(Timestamped, Base):
    """A bearer token for the API; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(default=False)
