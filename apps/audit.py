"""The audit log: who did what security-relevant thing, when, from where.

Logins and failed logins, permission and group changes, exports, downloads and supervisor
interventions (listen, whisper, barge, forced hang-up) each leave one ``audit_log`` row.

Failure policy: a failed audit write is never swallowed. ``AuditLog.record`` raises
``AuditError`` and the caller's action should fail with it (fail closed: an action that
must be audited and cannot be is not done). Changes made by the permission and group
services are written in the same transaction as their audit row (``AuditLog.add``), so
either both are stored or neither is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.db import Database
from apps.models import AuditLogEntry
from apps.users import UserRecord

# Column widths of audit_log (apps.models); longer values are refused, not cut, so that a
# stored row never says something other than what was recorded.
MAX_ACTION_LENGTH = 64
MAX_ACTOR_LENGTH = 64
MAX_TARGET_LENGTH = 255
MAX_SOURCE_IP_LENGTH = 64
MAX_RECENT_LIMIT = 1000  # one page of the audit view; older rows via ``since``

# Where an entry came from, stored in ``source_ip``: the client address of the web
# request (or API call) that did it, or this marker for the ``callcenter`` command line.
# Entries written before every writer recorded its source have None.
COMMAND_LINE: Final = "command-line"


class AuditError(Exception):
    """An audit entry that cannot be written or a query that cannot be answered."""


@dataclass(frozen=True)
class SystemActor:
    """The switch itself or an operator at the command line (who already holds the
    database): not a user, and allowed everything. Shaped like ``UserRecord`` where the
    services read an actor (``id``, ``username``)."""

    id: None = None
    username: str = "system"


SYSTEM: Final = SystemActor()

Actor = UserRecord | SystemActor


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime  # aware, UTC
    actor_id: int | None  # None: the system, or a user deleted since
    actor: str  # the username at the time, or "system"
    action: str
    target: str | None
    detail: Mapping[str, Any]
    source_ip: str | None  # a client address, COMMAND_LINE, or None (an older entry)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_length(what: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise AuditError(f"audit {what} is longer than {limit} characters: {value[:40]!r}...")


def _entry(row: AuditLogEntry) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor_id=row.actor_id,
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=dict(row.detail or {}),
        source_ip=row.source_ip,
    )


class AuditLog:
    """The audit log on ``db``; ``clock`` gives wall-clock UTC for each entry's time."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        action: str,
        *,
        actor_id: int | None = None,
        actor: str = "system",
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        source_ip: str | None = None,
    ) -> AuditEntry:
        """Write one entry in its own transaction and return it; raises ``AuditError``
        when it cannot be written (see the module docstring)."""
        async with self._db.session() as session:
            row = self.add(
                session,
                action,
                actor_id=actor_id,
                actor=actor,
                target=target,
                detail=detail,
                source_ip=source_ip,
            )
            try:
                await session.commit()
            except SQLAlchemyError as exc:
                raise AuditError(f"audit entry {action!r} was not written: {exc}") from exc
            return _entry(row)

    def add(
        self,
        session: AsyncSession,
        action: str,
        *,
        actor_id: int | None = None,
        actor: str = "system",
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        source_ip: str | None = None,
    ) -> AuditLogEntry:
        """Add an entry to ``session``'s transaction: it is stored if and only if the
        caller's change is committed with it."""
        if not action:
            raise AuditError("audit action must not be empty")
        _check_length("action", action, MAX_ACTION_LENGTH)
        _check_length("actor", actor, MAX_ACTOR_LENGTH)
        _check_length("target", target, MAX_TARGET_LENGTH)
        _check_length("source IP", source_ip, MAX_SOURCE_IP_LENGTH)
        stored_detail = dict(detail or {})
        try:
            # Checked here, where the caller can see which entry it was, rather than at
            # commit time inside the driver.
            json.dumps(stored_detail, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit detail of {action!r} is not JSON: {exc}") from exc
        row = AuditLogEntry(
            at=self._clock(),
            actor_id=actor_id,
            actor=actor,
            action=action,
            target=target,
            detail=stored_detail,
            source_ip=source_ip,
        )
        session.add(row)
        return row

    def add_by(
        self,
        session: AsyncSession,
        actor: Actor,
        action: str,
        *,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        source_ip: str | None = None,
    ) -> AuditLogEntry:
        """``add`` for an action done by ``actor`` (a user or ``SYSTEM``) from
        ``source_ip`` (a client address or ``COMMAND_LINE``)."""
        return self.add(session, action, actor_id=actor.id, actor=actor.username,
                        target=target, detail=detail, source_ip=source_ip)

    async def recent(
        self,
        limit: int = 100,
        action: str | None = None,
        actor_id: int | None = None,
        since: datetime | None = None,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first; only ``action``'s, only
        ``actor_id``'s, only those at or after ``since`` when given."""
        if not 1 <= limit <= MAX_RECENT_LIMIT:
            raise AuditError(f"limit must be between 1 and {MAX_RECENT_LIMIT}, not {limit}")
        if since is not None and since.tzinfo is None:
            raise AuditError(f"since must be an aware datetime, not {since!r}")
        query = select(AuditLogEntry)
        if action is not None:
            query = query.where(AuditLogEntry.action == action)
        if actor_id is not None:
            query = query.where(AuditLogEntry.actor_id == actor_id)
        if since is not None:
            query = query.where(AuditLogEntry.at >= since)
        # id breaks ties between entries written within one clock tick.
        query = query.order_by(AuditLogEntry.at.desc(), AuditLogEntry.id.desc()).limit(limit)
        async with self._db.session() as session:
            return [_entry(row) for row in await session.scalars(query)]
