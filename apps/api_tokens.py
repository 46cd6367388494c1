"""API tokens: bearer tokens for integrations and scripts, each acting as one user with
that user's permissions as they are at every request.

A token is ``cc_`` and 256 random bits (URL-safe base64); it is shown once, when made.
The database keeps its SHA-256 (like a web session id, the token has too many random
bits for a plain hash to be guessed back), its user, a label, when it was made, last
used (written at most once per ``touch_interval_s``, not on every request) and revoked.
A revoked token, a token of a disabled user and a token never made are refused alike.
Disabling a user also revokes their tokens, so enabling them again does not bring the
tokens back (as with their web sessions). Making and revoking tokens is audited in the
change's transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from apps.audit import Actor, AuditLog
from apps.db import Database
from apps.models import ApiToken, User
from apps.permissions import demand
from apps.users import UserRecord, user_record

TOKEN_PREFIX = "cc_"  # recognisable in a config file or a secret scanner's findings
TOKEN_BYTES = 32  # 256 random bits
TOUCH_INTERVAL_S = 60.0  # last_used_at moves at most this often
MAX_TOKEN_LENGTH = 128  # anything longer in a header is not one of ours
MAX_LABEL_LENGTH = 100  # apps.models.ApiToken.label
MANAGE = "users.manage"  # the capability a user needs to make or revoke tokens


class ApiTokenError(Exception):
    """A token request that cannot be done; the message is shown as is."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_key(token: str) -> str:
    """What the database keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ApiTokenRecord:
    """A token as listed: never the token itself."""

    id: int
    username: str
    label: str | None
    created_at: datetime  # aware, UTC
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the only time it is seen: show it once, store it nowhere
    record: ApiTokenRecord


def _record(row: ApiToken, username: str) -> ApiTokenRecord:
    return ApiTokenRecord(row.id, username, row.label, row.created_at, row.last_used_at,
                          row.revoked_at)


def _target(username: str) -> str:
    return f"user:{username}"


class ApiTokenService:
    """Make, check, list and revoke API tokens on ``db``, audited to ``audit``.
    ``clock`` is wall-clock UTC; ``new_token`` makes the tokens (tests pass their own).
    Making or revoking a token as a user (not the command line) needs users.manage."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        *,
        touch_interval_s: float = TOUCH_INTERVAL_S,
        clock: Callable[[], datetime] = _utc_now,
        new_token: Callable[[], str] = _new_token,
    ) -> None:
        if touch_interval_s < 0:
            raise ValueError("touch_interval_s must be >= 0")
        self._db = db
        self._audit = audit
        self._touch_interval = timedelta(seconds=touch_interval_s)
        self._clock = clock
        self._new_token = new_token

    async def create(self, actor: Actor, username: str, *, label: str | None = None,
                     source_ip: str | None = None) -> IssuedToken:
        """A new token acting as ``username``; the token is in the answer and nowhere
        else. Raises ApiTokenError for an unknown or disabled user or a label too long."""
        if label is not None and len(label) > MAX_LABEL_LENGTH:
            raise ApiTokenError(f"label must be at most {MAX_LABEL_LENGTH} characters")
        token = self._new_token()
        async with self._db.session() as session:
            await demand(session, self._audit, actor, {MANAGE}, "create an API token",
                         _target(username), source_ip=source_ip)
            user = await _user(session, username)
            if user.disabled_at is not None:
                raise ApiTokenError(f"user '{username}' is disabled")
            row = ApiToken(token_sha256=token_key(token), user_id=user.id, label=label,
                           created_at=self._clock())
            session.add(row)
            await session.flush()  # the id, for the audit entry
            self._audit.add_by(session, actor, "token.create", target=_target(username),
                               detail={"token_id": row.id, "label": label},
                               source_ip=source_ip)
            await session.commit()
            return IssuedToken(token, _record(row, username))

    async def authenticate(self, token: str) -> UserRecord | None:
        """The user ``token`` acts as, as the database has them now; None when it was
        never made, is revoked, or its user is disabled (all alike). Marks the token
        used, at most once per touch interval."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        key = token_key(token)
        now = self._clock()
        async with self._db.session() as session:
            found = (await session.execute(
                select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_sha256 == key))).first()
            if found is None:
                return None
            row, user = found
            if row.revoked_at is not None or user.disabled_at is not None:
                return None
            if row.last_used_at is None or now - row.last_used_at >= self._touch_interval:
                # A statement, not a flush: a revocation in the meantime stays as it is.
                await session.execute(
                    update(ApiToken).where(ApiToken.id == row.id)
                    .values(last_used_at=now).execution_options(synchronize_session=False))
                await session.commit()
            return user_record(user)

    async def list_tokens(self, username: str | None = None) -> list[ApiTokenRecord]:
        """Every token (only ``username``'s when given), oldest first; raises
        ApiTokenError for an unknown user."""
        query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
        async with self._db.session() as session:
            if username is not None:
                user = await _user(session, username)
                query = query.where(ApiToken.user_id == user.id)
            rows = await session.execute(query.order_by(ApiToken.id))
            return [_record(row, name) for row, name in rows]

    async def revoke(self, actor: Actor, token_id: int, *,
                     source_ip: str | None = None) -> ApiTokenRecord:
        """Revoke one token: its next request is refused. Raises ApiTokenError for an
        unknown token or one already revoked (which changes and audits nothing)."""
        async with self._db.session() as session:
            found = (await session.execute(
                select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
                .where(ApiToken.id == token_id))).first()
            if found is None:
                raise ApiTokenError(f"no such token {token_id}")
            row, username = found
            await demand(session, self._audit, actor, {MANAGE}, "revoke an API token",
                         _target(username), source_ip=source_ip)
            if row.revoked_at is not None:
                raise ApiTokenError(f"token {token_id} is already revoked")
            row.revoked_at = self._clock()
            self._audit.add_by(session, actor, "token.revoke", target=_target(username),
                               detail={"token_id": row.id, "label": row.label},
                               source_ip=source_ip)
            await session.commit()
            return _record(row, username)


async def _user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiTokenError(f"no such user '{username}'")
    return user
