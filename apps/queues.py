"""Call queues as data (issue 12): name, strategy, per-agent ring timeout, wrap-up, max
wait with an overflow target, and the member agents with their penalty (tier). Nothing
live here: the queue engine that routes calls reads these rows.

Changing queues needs ``queues.manage``. Every change, and every refused attempt, is
audited in the change's transaction with the ``source_ip`` the caller names. A refusal is
a ``QueueError`` whose ``code`` and ``params`` let the web pages say it in their language;
``str()`` is the English text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.audit import Actor, AuditLog
from apps.db import Database
from apps.models import Queue, QueueMember, User
from apps.permissions import AccessError, demand

CAPABILITY: Final = "queues.manage"
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_DISPLAY_NAME_LENGTH: Final = 100  # queues.display_name
MAX_OVERFLOW_LENGTH: Final = 255  # queues.overflow_target
# Inclusive ranges of the numeric settings; max_wait_s may also be None (no limit).
LIMITS: Final[Mapping[str, tuple[int, int]]] = {
    "ring_timeout_s": (1, 600),
    "wrap_up_s": (0, 3600),
    "max_wait_s": (1, 86400),
    "penalty": (0, 100),
}
DEFAULT_RING_TIMEOUT_S: Final = 15
DEFAULT_WRAP_UP_S: Final = 30


class Strategy(enum.Enum):
    """How the queue engine picks the next agent."""

    longest_idle = "longest_idle"
    round_robin = "round_robin"  # with memory of the last agent offered
    fewest_calls = "fewest_calls"
    least_talk_time = "least_talk_time"
    ring_all = "ring_all"
    linear = "linear"  # top-down, by penalty then username
    random = "random"


# English texts of the refusals, by code; the web pages have one per code in each language.
_MESSAGES: Final[Mapping[str, str]] = {
    "bad_name": "queue name must be 1 to 64 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit",
    "display_name_required": "display name is required",
    "display_name_too_long": f"display name must be at most {MAX_DISPLAY_NAME_LENGTH} "
                             "characters",
    "overflow_too_long": f"overflow target must be at most {MAX_OVERFLOW_LENGTH} characters",
    "unknown_strategy": "unknown strategy '{strategy}' (choose from {choices})",
    "out_of_range": "'{field}' must be an integer from {low} to {high}",
    "duplicate": "queue '{name}' already exists",
    "not_found": "no such queue '{name}'",
    "unknown_user": "no such user '{username}'",
    "disabled_user": "user '{username}' is disabled and cannot be a queue member",
}


class QueueError(AccessError):
    """A queue request that cannot be done."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(_MESSAGES[code].format(**params))
        self.code = code
        self.params = params


@dataclass(frozen=True)
class QueueMemberRecord:
    username: str
    name: str | None
    penalty: int


@dataclass(frozen=True)
class QueueRecord:
    id: int
    name: str
    display_name: str
    strategy: Strategy
    ring_timeout_s: int
    wrap_up_s: int
    max_wait_s: int | None
    overflow_target: str | None
    created_at: datetime
    updated_at: datetime
    members: tuple[QueueMemberRecord, ...]


@dataclass(frozen=True)
class QueueSettings:
    """Everything of a queue but its name and members; validated when made."""

    display_name: str
    strategy: Strategy = Strategy.longest_idle
    ring_timeout_s: int = DEFAULT_RING_TIMEOUT_S
    wrap_up_s: int = DEFAULT_WRAP_UP_S
    max_wait_s: int | None = None
    overflow_target: str | None = None

    def __post_init__(self) -> None:
        if not self.display_name.strip():
            raise QueueError("display_name_required")
        if len(self.display_name) > MAX_DISPLAY_NAME_LENGTH:
            raise QueueError("display_name_too_long")
        if self.overflow_target is not None and len(self.overflow_target) > MAX_OVERFLOW_LENGTH:
            raise QueueError("overflow_too_long")
        for field in ("ring_timeout_s", "wrap_up_s", "max_wait_s"):
            value = getattr(self, field)
            if value is not None or field != "max_wait_s":
                check_range(field, value)


# Members wanted in a queue: username -> penalty.
Members = Mapping[str, int]
NO_MEMBERS: Final[Members] = MappingProxyType({})


def parse_strategy(text: str) -> Strategy:
    try:
        return Strategy(text)
    except ValueError:
        raise QueueError("unknown_strategy", strategy=text,
                         choices=", ".join(s.value for s in Strategy)) from None


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise QueueError("bad_name")
    return name


def check_range(field: str, value: int) -> int:
    low, high = LIMITS[field]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueueError("out_of_range", field=field, low=low, high=high)
    return value


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _settings_of(queue: Queue) -> dict[str, Any]:
    return {"display_name": queue.display_name, "strategy": queue.strategy,
            "ring_timeout_s": queue.ring_timeout_s, "wrap_up_s": queue.wrap_up_s,
            "max_wait_s": queue.max_wait_s, "overflow_target": queue.overflow_target}


def _target(name: str) -> str:
    return f"queue:{name}"


class QueueService:
    """Queues and their members on ``db``, audited to ``audit``."""

    def __init__(self, db: Database, audit: AuditLog,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock

    async def create(self, actor: Actor, name: str, settings: QueueSettings,
                     members: Members = NO_MEMBERS, *, source_ip: str | None = None) -> QueueRecord:
        check_name(name)
        async with self._db.session() as session:
            await demand(session, self._audit, actor, {CAPABILITY}, "create queues",
                         _target(name), source_ip=source_ip)
            if await self._find(session, name) is not None:
                raise QueueError("duplicate", name=name)
            now = self._clock()
            queue = Queue(name=name, created_at=now, updated_at=now,
                          **_settings_of_settings(settings))
            session.add(queue)
            await session.flush()
            await self._write_members(session, queue.id, members)
            self._audit.add_by(session, actor, "queue.create", target=_target(name),
                               detail={"name": name, **_settings_of(queue),
                                       "members": sorted(members)},
                               source_ip=source_ip)
            await self._commit(session, name)
        return await self.get(name)

    async def update(self, actor: Actor, name: str, settings: QueueSettings | None = None,
                     members: Members | None = None, *,
                     source_ip: str | None = None) -> QueueRecord:
        """Change the settings, the members (the whole set), or both, in one transaction;
        an entry is audited only if something changed."""
        async with self._db.session() as session:
            queue = await self._find_or_error(session, name)
            await demand(session, self._audit, actor, {CAPABILITY}, f"change queue '{name}'",
                         _target(name), source_ip=source_ip)
            changes: dict[str, Any] = {}
            if settings is not None:
                before = _settings_of(queue)
                after = _settings_of_settings(settings)
                for field, value in after.items():
                    if before[field] != value:
                        changes[field] = {"before": before[field], "after": value}
                        setattr(queue, field, value)
            if members is not None:
                before_members = await self._member_map(session, queue.id)
                if before_members != dict(members):
                    changes["members"] = {"before": sorted(before_members),
                                          "after": sorted(members)}
                    await session.execute(
                        delete(QueueMember).where(QueueMember.queue_id == queue.id))
                    await self._write_members(session, queue.id, members)
            if changes:
                queue.updated_at = self._clock()
                self._audit.add_by(session, actor, "queue.update", target=_target(name),
                                   detail={"name": name, "changes": changes},
                                   source_ip=source_ip)
                await session.commit()
        return await self.get(name)

    async def set_members(self, actor: Actor, name: str, members: Members, *,
                          source_ip: str | None = None) -> QueueRecord:
        return await self.update(actor, name, members=members, source_ip=source_ip)

    async def delete(self, actor: Actor, name: str, *, source_ip: str | None = None) -> None:
        async with self._db.session() as session:
            queue = await self._find_or_error(session, name)
            await demand(session, self._audit, actor, {CAPABILITY}, f"delete queue '{name}'",
                         _target(name), source_ip=source_ip)
            members = await self._member_map(session, queue.id)
            # Explicit rather than relying on ON DELETE CASCADE, which SQLite applies only
            # with its foreign_keys pragma on.
            await session.execute(delete(QueueMember).where(QueueMember.queue_id == queue.id))
            await session.execute(delete(Queue).where(Queue.id == queue.id))
            self._audit.add_by(session, actor, "queue.delete", target=_target(name),
                               detail={"name": name, "display_name": queue.display_name,
                                       "members": len(members)},
                               source_ip=source_ip)
            await session.commit()

    async def get(self, name: str) -> QueueRecord:
        async with self._db.session() as session:
            queue = await self._find_or_error(session, name)
            return (await self._records(session, [queue]))[0]

    async def list_queues(self) -> list[QueueRecord]:
        """Every queue by name, with its members."""
        async with self._db.session() as session:
            queues = list(await session.scalars(select(Queue).order_by(Queue.name)))
            return await self._records(session, queues)

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    async def _find(session: AsyncSession, name: str) -> Queue | None:
        found: Queue | None = await session.scalar(select(Queue).where(Queue.name == name))
        return found

    async def _find_or_error(self, session: AsyncSession, name: str) -> Queue:
        queue = await self._find(session, name)
        if queue is None:
            raise QueueError("not_found", name=name)
        return queue

    @staticmethod
    async def _member_map(session: AsyncSession, queue_id: int) -> dict[str, int]:
        rows = await session.execute(
            select(User.username, QueueMember.penalty)
            .join(QueueMember, QueueMember.user_id == User.id)
            .where(QueueMember.queue_id == queue_id))
        return {username: penalty for username, penalty in rows}

    @staticmethod
    async def _write_members(session: AsyncSession, queue_id: int, members: Members) -> None:
        if not members:
            return
        rows = await session.execute(
            select(User.username, User.id, User.disabled_at)
            .where(User.username.in_(list(members))))
        users = {username: (user_id, disabled_at) for username, user_id, disabled_at in rows}
        for username in sorted(members):
            if username not in users:
                raise QueueError("unknown_user", username=username)
            if users[username][1] is not None:
                raise QueueError("disabled_user", username=username)
        for username, penalty in members.items():
            check_range("penalty", penalty)
            session.add(QueueMember(queue_id=queue_id, user_id=users[username][0],
                                    penalty=penalty))
        await session.flush()

    @staticmethod
    async def _records(session: AsyncSession, queues: list[Queue]) -> list[QueueRecord]:
        ids = [queue.id for queue in queues]
        members: dict[int, list[QueueMemberRecord]] = {queue_id: [] for queue_id in ids}
        if ids:
            rows = await session.execute(
                select(QueueMember.queue_id, User.username, User.name, QueueMember.penalty)
                .join(User, User.id == QueueMember.user_id)
                .where(QueueMember.queue_id.in_(ids))
                .order_by(QueueMember.penalty, User.username))
            for queue_id, username, name, penalty in rows:
                members[queue_id].append(QueueMemberRecord(username, name, penalty))
        return [QueueRecord(q.id, q.name, q.display_name, Strategy(q.strategy),
                            q.ring_timeout_s, q.wrap_up_s, q.max_wait_s, q.overflow_target,
                            q.created_at, q.updated_at, tuple(members[q.id]))
                for q in queues]

    @staticmethod
    async def _commit(session: AsyncSession, name: str) -> None:
        try:
            await session.commit()
        except IntegrityError:
            # Another request took the name between the check and the write.
            await session.rollback()
            raise QueueError("duplicate", name=name) from None


def _settings_of_settings(settings: QueueSettings) -> dict[str, Any]:
    return {"display_name": settings.display_name.strip(),
            "strategy": settings.strategy.value,
            "ring_timeout_s": settings.ring_timeout_s, "wrap_up_s": settings.wrap_up_s,
            "max_wait_s": settings.max_wait_s, "overflow_target": settings.overflow_target}
