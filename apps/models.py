"""SQLAlchemy table models. Every schema change here needs a migration in
apps/migrations/versions/ (tests/apps/test_migrations.py fails until the two agree).

Portable types only: the same models run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
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
    # Set when the account was disabled (staff who left): no web login, no phone, but the
    # row stays so that calls, contact records and the audit log keep naming the person.
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


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
    # When the recording's first sample was taken, and its pauses (silence in the file):
    # [[from_s, to_s], ...] seconds into the file, to_s null while paused.
    recording_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    recording_pauses: Mapped[list[list[float | None]] | None] = mapped_column(JSON)
    # What the call's applications learnt (customer id, VIP level, IVR path, digits), as
    # a JSON object (apps.cdr_variables); null when they set none.
    variables: Mapped[dict[str, object] | None] = mapped_column(JSON)
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


# --- Customers (issue 5) -----------------------------------------------------------------
# Custom fields are a free JSON object (str -> str | int | float | bool); portable JSON
# (json on PostgreSQL, text on SQLite) because nothing queries inside them. The server
# defaults let bulk loaders (Core inserts, the Excel import) leave the column out.


class CustomerGroup(Base):
    """An enterprise customer (集团): its members are ``customers`` rows with its id."""

    __tablename__ = "customer_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # the group's own number
    name: Mapped[str] = mapped_column(String(200))
    vip_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    account_manager_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Customer(Base):
    """A person we serve, alone or as a member of a group (``title``: position there)."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("customer_groups.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100))
    vip_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    account_manager_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    # The row's id in the import source: a repeated import updates instead of duplicating.
    external_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CustomerPhone(Base):
    """One number of a customer, in the national form of
    ``switch.pri_gateway.normalize(...).national`` (13800138000, 01088886666): the form
    the caller lookup normalises an incoming number to, so lookup is one index probe."""

    __tablename__ = "customer_phones"
    __table_args__ = (
        UniqueConstraint("customer_id", "number", name="uq_customer_phones_customer_id_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customers.id", ondelete="CASCADE")
    )
    number: Mapped[str] = mapped_column(String(32), index=True)
    label: Mapped[str | None] = mapped_column(String(32))


class ContactRecord(Base):
    """A contact with a customer (沟通记录): a call, an SMS, a visit ..."""

    __tablename__ = "contact_records"
    # "The last N for a customer" walks this index backwards and stops after N rows.
    __table_args__ = (Index("ix_contact_records_customer_id_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customers.id", ondelete="CASCADE")
    )
    call_id: Mapped[str | None] = mapped_column(String(64))  # calls.call_id, not SIP's
    agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    channel: Mapped[str] = mapped_column(String(16))  # phone, sms, visit, email, other
    text: Mapped[str] = mapped_column(Text)


# --- Agent groups, permissions, audit (issue 5) ---------------------------------------------


class AgentGroup(Base):
    """A group of agents (分组); permissions can be granted or revoked per group."""

    __tablename__ = "agent_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))


class AgentGroupMember(Base):
    __tablename__ = "agent_group_members"

    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("agent_groups.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed on its own: "which groups is this user in" runs on every permission check.
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GroupPermission(Base):
    """A grant (``granted`` True) or revoke (False) of one capability for one agent
    group, on top of the defaults of its members' roles."""

    __tablename__ = "group_permissions"

    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("agent_groups.id", ondelete="CASCADE"), primary_key=True
    )
    capability: Mapped[str] = mapped_column(String(64), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)


class AuditLogEntry(Base):
    """A security-relevant action: login, permission change, export, download, barge..."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # actor keeps the name when the user is deleted later (actor_id becomes NULL).
    actor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(String(64))  # username or "system"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    source_ip: Mapped[str | None] = mapped_column(String(64))


# --- Web sessions (issue 9) -----------------------------------------------------------------


class WebSession(Base):
    """A logged-in browser. The cookie carries a random session id; only its SHA-256 is
    stored, so a copy of this table (a backup, a read-only leak) cannot be replayed as a
    login. Deleting the row ends the session on its next request."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Written at most once a minute (not on every request): see apps.web_sessions.
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # last_seen_at plus the idle timeout; the purge deletes rows past it.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


# --- API tokens (issue 12) ------------------------------------------------------------------


class ApiToken(Base):
    """A bearer token for an integration or a script, acting as its user. Like a session
    id, only the token's SHA-256 is stored: the token itself is shown once, when made."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # hex
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Written at most once a minute (not on every request): see apps.api_tokens.
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Queue(Base):
    """A call queue (issue 12), as data: the queue engine that routes calls reads it."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # the API's identifier
    display_name: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(32))  # apps.queues.Strategy
    ring_timeout_s: Mapped[int] = mapped_column(Integer)
    wrap_up_s: Mapped[int] = mapped_column(Integer)
    max_wait_s: Mapped[int | None] = mapped_column(Integer)  # None: no limit
    overflow_target: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class QueueMember(Base):
    __tablename__ = "queue_members"

    queue_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    penalty: Mapped[int] = mapped_column(Integer, default=0)  # tier: lower rings first
