"""SQLAlchemy table models. Every schema change here needs a migration in
apps/migrations/versions/ (tests/apps/test_migrations.py fails until the two agree).

Portable types only: the same models run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, MetaData, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints: PostgreSQL and SQLite then agree on names, and later migrations can
# drop or alter a constraint by a name they know in advance.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    PostgreSQL keeps the offset (timestamptz); SQLite stores text without one and hands
    back naive values, which are UTC because only UTC is ever written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A person who logs in to the web pages; with an extension, also a SIP phone account.

    Only derived secrets are stored: an argon2 hash for the web login and the two digest
    HA1 values for the phone, which are bound to ``sip_realm``.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    extension: Mapped[str | None] = mapped_column(String(8), unique=True)
    web_password_hash: Mapped[str] = mapped_column(String(255))
    sip_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    sip_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    sip_realm: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Call(Base):
    """One call detail record. The row is written when the call starts (``state`` open),
    so a crash leaves evidence of every call that was up, and is completed in one
    transaction when the call ends (``state`` closed). Numbers are stored as call control
    gave them, already normalised."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)  # ours, not a SIP Call-ID
    direction: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str] = mapped_column(String(64))
    callee: Mapped[str] = mapped_column(String(64))
    trunk: Mapped[str | None] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The latest moment the call was known to be up: where an interrupted call ends.
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    duration_s: Mapped[int | None] = mapped_column(Integer)
    billable_s: Mapped[int | None] = mapped_column(Integer)
    disposition: Mapped[str | None] = mapped_column(String(32))
    q850_cause: Mapped[int | None] = mapped_column(Integer)
    sip_status: Mapped[int | None] = mapped_column(Integer)
    # Filled by the queue/ACD and recording issues.
    queue_name: Mapped[str | None] = mapped_column(String(64))
    agent_username: Mapped[str | None] = mapped_column(String(64))
    recording_path: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(8), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class CallLeg(Base):
    """One SIP dialog of a call (a B2BUA call has two or more)."""

    __tablename__ = "call_legs"

    call_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True
    )
    leg_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    peer: Mapped[str] = mapped_column(String(255))
    sip_call_id: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sip_status: Mapped[int | None] = mapped_column(Integer)
    q850_cause: Mapped[int | None] = mapped_column(Integer)
