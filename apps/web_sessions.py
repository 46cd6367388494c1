"""Web sessions kept on the server: the browser holds a random session id, the database
a row per session under the id's SHA-256, with its user and its expiry.

A session ends when its row goes: at logout, "log out everywhere", when the user's
password or role changes or the account is disabled (apps.users deletes the rows in the
same transaction), and after ``idle_timeout_s`` without a request. Expiry slides with
use, but ``last_seen_at`` is written at most once per ``touch_interval_s`` so that a busy
page does not write a row per request. Expired rows are purged at every login.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from apps.db import Database
from apps.models import User, WebSession
from apps.users import UserRecord, user_record

SESSION_ID_BYTES = 32  # 256 random bits, URL-safe base64 in the cookie (43 characters)
TOUCH_INTERVAL_S = 60.0  # last_seen_at (and so the expiry) moves at most this often
MAX_SESSION_ID_LENGTH = 128  # anything longer in a cookie is not one of ours
MAX_USER_AGENT_LENGTH = 255  # apps.models.WebSession.user_agent
MAX_SOURCE_IP_LENGTH = 64  # apps.models.WebSession.source_ip


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def session_key(session_id: str) -> str:
    """What the database keeps of a session id: its SHA-256, in hex. The id has 256
    random bits, so a plain (unsalted, fast) hash is enough: nothing can be guessed."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class WebSessionRecord:
    key: str  # session_key(id): names the session (in logs, on sockets) without being it
    user: UserRecord  # as the database has the user now
    created_at: datetime  # aware, UTC
    last_seen_at: datetime
    expires_at: datetime
    source_ip: str | None  # where the login came from
    user_agent: str | None


def _session_record(row: WebSession, user: User) -> WebSessionRecord:
    return WebSessionRecord(row.id_sha256, user_record(user), row.created_at,
                            row.last_seen_at, row.expires_at, row.source_ip, row.user_agent)


class WebSessionStore:
    """Start, resume and end web sessions. ``clock`` is wall-clock UTC (sessions outlive
    the process); ``new_session_id`` makes the ids (tests pass their own)."""

    def __init__(
        self,
        db: Database,
        *,
        idle_timeout_s: float,
        touch_interval_s: float = TOUCH_INTERVAL_S,
        clock: Callable[[], datetime] = _utc_now,
        new_session_id: Callable[[], str] = _new_session_id,
    ) -> None:
        if idle_timeout_s <= 0 or touch_interval_s < 0:
            raise ValueError("idle_timeout_s must be > 0 and touch_interval_s >= 0")
        self._db = db
        self.idle_timeout = timedelta(seconds=idle_timeout_s)
        self._touch_interval = timedelta(seconds=touch_interval_s)
        self._clock = clock
        self._new_session_id = new_session_id

    async def start(self, user_id: int, *, source_ip: str | None = None,
                    user_agent: str | None = None) -> str:
        """A new session for ``user_id``; returns its id, for the cookie. The id itself
        is not stored anywhere: this is the only time it is seen."""
        now = self._clock()
        session_id = self._new_session_id()
        row = WebSession(
            id_sha256=session_key(session_id), user_id=user_id, created_at=now,
            last_seen_at=now, expires_at=now + self.idle_timeout,
            source_ip=source_ip[:MAX_SOURCE_IP_LENGTH] if source_ip else None,
            user_agent=user_agent[:MAX_USER_AGENT_LENGTH] if user_agent else None,
        )
        async with self._db.session() as session:
            await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
            session.add(row)
            await session.commit()
        return session_id

    async def resume(self, session_id: str, *, touch: bool = True) -> WebSessionRecord | None:
        """The live session with this id, or None: never started, ended, idle too long,
        or its user disabled or deleted. ``touch`` (a request from the user) moves the
        expiry on, at most once per touch interval; a background check passes False."""
        if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
            return None
        now = self._clock()
        key = session_key(session_id)
        async with self._db.session() as session:
            found = (await session.execute(
                select(WebSession, User).join(User, User.id == WebSession.user_id)
                .where(WebSession.id_sha256 == key))).first()
            if found is None:
                return None
            row, user = found
            if row.expires_at <= now or user.disabled_at is not None:
                await session.execute(delete(WebSession).where(WebSession.id_sha256 == key))
                await session.commit()
                return None
            if touch and now - row.last_seen_at >= self._touch_interval:
                row.last_seen_at, row.expires_at = now, now + self.idle_timeout
                # A statement, not a flush of the row: if a logout deleted the row in the
                # meantime this updates nothing (the ORM would call that an error).
                await session.execute(
                    update(WebSession).where(WebSession.id_sha256 == key)
                    .values(last_seen_at=row.last_seen_at, expires_at=row.expires_at)
                    .execution_options(synchronize_session=False))
                await session.commit()
            return _session_record(row, user)

    async def end(self, session_id: str) -> bool:
        """End one session (logout); False if it had already ended."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(WebSession).where(WebSession.id_sha256 == session_key(session_id)))
            await session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def end_all(self, user_id: int) -> int:
        """End every session of ``user_id`` ("log out everywhere"); returns how many."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(WebSession).where(WebSession.user_id == user_id))
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def count_live(self, user_id: int) -> int:
        """How many sessions of ``user_id`` are live now."""
        async with self._db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(WebSession)
                .where(WebSession.user_id == user_id, WebSession.expires_at > self._clock()))
        return int(count or 0)

    async def purge_expired(self) -> int:
        """Delete the rows of sessions idle past their expiry; returns how many."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(WebSession).where(WebSession.expires_at <= self._clock()))
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]
