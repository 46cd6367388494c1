"""User accounts: web logins (argon2) and SIP phone credentials (digest HA1).

A user with an extension is also a SIP account: the phone registers with its extension
as the digest username, so the HA1 values are computed over the extension, not the
login name.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.db import Database
from apps.models import ApiToken, User, WebSession
from switch.sip import compute_ha1

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
_EXTENSION_RE = re.compile(r"[0-9]{2,8}")  # not \d: that also matches e.g. Arabic-Indic digits


class UserError(Exception):
    """A user-management request that cannot be done; the message is shown as is."""


class Role(enum.StrEnum):
    admin = "admin"
    service_manager = "service_manager"
    shift_leader = "shift_leader"
    supervisor = "supervisor"
    agent = "agent"
    account_manager = "account_manager"

    @property
    def label(self) -> str:
        """The Chinese name the customer uses for the role (shown in the UI)."""
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.admin: "系统管理员",
    Role.service_manager: "集团服务营销经理",
    Role.shift_leader: "值班长",
    Role.supervisor: "班长座席",
    Role.agent: "普通座席",
    Role.account_manager: "客户经理",
}


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    name: str | None
    role: Role
    extension: str | None
    created_at: datetime  # aware, UTC
    # A disabled account (staff who left) can neither log in nor register a phone; its
    # history stays. Defaulted so that records built positionally stay valid.
    disabled: bool = False


@dataclass(frozen=True)
class SipCredentials:
    """What a digest challenge needs; ``username`` is the digest username (the extension)."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str


def sip_ha1(username: str, realm: str, password: str) -> tuple[str, str]:
    """(MD5, SHA-256) HA1 of ``username:realm:password`` (RFC 7616 §3.4.2), computed by
    the SIP stack that will check them."""
    return (compute_ha1(username, realm, password, "MD5"),
            compute_ha1(username, realm, password, "SHA-256"))


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _end_web_sessions(session: AsyncSession, user_id: int) -> None:
    """End the user's web sessions (apps.web_sessions) in the caller's transaction: a
    session must not outlive the password, role or account it was opened under."""
    await session.execute(delete(WebSession).where(WebSession.user_id == user_id))


async def _revoke_api_tokens(session: AsyncSession, user_id: int, now: datetime) -> None:
    """Revoke the user's live API tokens (apps.api_tokens) in the caller's transaction."""
    await session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now))


def _parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role '{role}' (choose from {choices})") from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def _check_extension(extension: str) -> None:
    if not _EXTENSION_RE.fullmatch(extension):
        raise UserError("extension must be 2 to 8 digits")


def user_record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        username=user.username,
        name=user.name,
        role=Role(user.role),
        extension=user.extension,
        created_at=user.created_at,
        disabled=user.disabled_at is not None,
    )


class UserService:
    """Accounts for one switch whose SIP realm is ``realm``.

    The SIP HA1 values depend on the realm, and the plaintext password that produced them
    is never stored, so they cannot be re-derived. When the configured realm changes, every
    phone account made under the old realm stops authenticating: ``sip_credentials``
    returns None for it and logs a warning that its password must be reset (``set_password``
    recomputes the HA1 values under the current realm).
    """

    def __init__(
        self,
        db: Database,
        realm: str,
        *,
        password_hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._db = db
        self.realm = realm
        self._hasher = password_hasher or PasswordHasher()
        self._clock = clock
        # Verified against when the user does not exist, so that a wrong username costs
        # as much time as a wrong password and does not reveal which usernames exist.
        self._dummy_hash: str | None = None

    async def add_user(
        self,
        username: str,
        password: str,
        extension: str | None = None,
        role: str | Role = Role.agent,
        name: str | None = None,
    ) -> UserRecord:
        parsed_role = _parse_role(role)
        _check_password(password)
        if extension is not None:
            _check_extension(extension)
        now = self._clock()
        user = User(
            username=username,
            name=name,
            role=parsed_role.value,
            extension=extension,
            created_at=now,
            updated_at=now,
        )
        self._set_secrets(user, await self._hash(password), password)
        async with self._db.session() as session:
            await self._check_free(session, username, extension)
            session.add(user)
            try:
                await session.commit()
            except IntegrityError:
                # Someone else took the name or extension between check and insert.
                await session.rollback()
                await self._check_free(session, username, extension)
                raise
            return user_record(user)

    async def list_users(self) -> list[UserRecord]:
        async with self._db.session() as session:
            users = await session.scalars(select(User).order_by(User.username))
            return [user_record(user) for user in users]

    async def get_user(self, user_id: int) -> UserRecord | None:
        async with self._db.session() as session:
            user = await session.get(User, user_id)
            return None if user is None else user_record(user)

    async def update_user(
        self,
        username: str,
        *,
        name: str | None,
        role: str | Role,
        extension: str | None,
        password: str | None = None,
    ) -> UserRecord:
        """Set the user's name, role and extension (and, if given, password). A new
        extension needs the password too: the phone's HA1 values are derived from both.
        A new role or password ends the user's web sessions."""
        parsed_role = _parse_role(role)
        if extension is not None:
            _check_extension(extension)
        if password is not None:
            _check_password(password)
        web_password_hash = None if password is None else await self._hash(password)
        async with self._db.session() as session:
            user = await self._get(session, username)
            if user is None:
                raise UserError(f"no such user '{username}'")
            if extension != user.extension:
                if extension is not None and password is None:
                    raise UserError("a new extension needs a new password")
                if extension is not None:
                    owner = await session.scalar(
                        select(User.username).where(User.extension == extension))
                    if owner is not None:
                        raise UserError(f"extension {extension} is already used by '{owner}'")
            if parsed_role.value != user.role or password is not None:
                await _end_web_sessions(session, user.id)
            user.name = name
            user.role = parsed_role.value
            user.extension = extension
            if web_password_hash is not None:
                assert password is not None
                self._set_secrets(user, web_password_hash, password)
            elif extension is None:
                user.sip_ha1_md5 = user.sip_ha1_sha256 = user.sip_realm = None
            user.updated_at = self._clock()
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise UserError(f"extension {extension} is already used") from None
            return user_record(user)

    async def set_password(self, username: str, password: str) -> None:
        """Replace the web password and, for a phone account, re-derive its SIP HA1 values
        under the current realm. The user's web sessions end."""
        _check_password(password)
        web_password_hash = await self._hash(password)
        async with self._db.session() as session:
            user = await self._get(session, username)
            if user is None:
                raise UserError(f"no such user '{username}'")
            self._set_secrets(user, web_password_hash, password)
            user.updated_at = self._clock()
            await _end_web_sessions(session, user.id)
            await session.commit()

    async def set_disabled(self, username: str, disabled: bool) -> UserRecord:
        """Disable (or enable again) an account. A disabled user's web login, open web
        sessions and API tokens (ended and revoked, so enabling again does not bring them
        back) and phone stop working at once; the row, and every record naming the user,
        stays. Setting the state it already has changes nothing."""
        async with self._db.session() as session:
            user = await self._get(session, username)
            if user is None:
                raise UserError(f"no such user '{username}'")
            if (user.disabled_at is not None) != disabled:
                now = self._clock()
                user.disabled_at = now if disabled else None
                user.updated_at = now
                if disabled:
                    await _end_web_sessions(session, user.id)
                    await _revoke_api_tokens(session, user.id, now)
                await session.commit()
            return user_record(user)

    async def is_active(self, user_id: int) -> bool:
        """Whether ``user_id`` exists and is not disabled: a web session of anyone else is
        void (checked on every request)."""
        async with self._db.session() as session:
            user = await session.get(User, user_id)
            return user is not None and user.disabled_at is None

    async def sip_credentials(self, digest_username: str) -> SipCredentials | None:
        """Digest credentials for the phone registering as ``digest_username`` (an
        extension), or None if there is none, if the account is disabled (answered exactly
        like an unknown extension), or if its HA1 values were made under another realm
        (see the class docstring)."""
        async with self._db.session() as session:
            user = await session.scalar(select(User).where(User.extension == digest_username))
        if user is None or user.disabled_at is not None:
            return None
        if user.sip_ha1_md5 is None or user.sip_ha1_sha256 is None:
            return None
        if user.sip_realm != self.realm:
            logger.warning(
                "SIP credentials of user %r (extension %s) were made for realm %r but the "
                "realm is now %r; reset the user's password so the phone can register",
                user.username,
                digest_username,
                user.sip_realm,
                self.realm,
            )
            return None
        return SipCredentials(
            username=digest_username,
            realm=self.realm,
            ha1_md5=user.sip_ha1_md5,
            ha1_sha256=user.sip_ha1_sha256,
        )

    async def verify_web_password(self, username: str, password: str) -> UserRecord | None:
        """The user if ``password`` is theirs, else None. A disabled account is refused
        like a wrong password: its hash is still checked, so the answer and the time taken
        do not tell a disabled account from any other refusal. A hash made with other
        argon2 parameters than the current ones is replaced on a successful login."""
        async with self._db.session() as session:
            user = await self._get(session, username)
        if user is None:
            await self._burn_time(password)
            return None
        if not await self._verify(user.web_password_hash, password):
            return None
        if user.disabled_at is not None:
            return None
        if self._hasher.check_needs_rehash(user.web_password_hash):
            new_hash = await self._hash(password)
            async with self._db.session() as session:
                await session.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(web_password_hash=new_hash, updated_at=self._clock())
                )
                await session.commit()
        return user_record(user)

    # argon2 takes tens of milliseconds of CPU by design; it runs in a worker thread (the
    # C code releases the GIL) so that SIP and media signalling on the loop do not stall.
    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _set_secrets(self, user: User, web_password_hash: str, password: str) -> None:
        user.web_password_hash = web_password_hash
        if user.extension is None:
            user.sip_ha1_md5 = user.sip_ha1_sha256 = user.sip_realm = None
        else:
            user.sip_ha1_md5, user.sip_ha1_sha256 = sip_ha1(user.extension, self.realm, password)
            user.sip_realm = self.realm

    async def _burn_time(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash("not a password of anyone")
        await self._verify(self._dummy_hash, password)

    @staticmethod
    async def _get(session: AsyncSession, username: str) -> User | None:
        return await session.scalar(select(User).where(User.username == username))

    @staticmethod
    async def _check_free(session: AsyncSession, username: str, extension: str | None) -> None:
        if await session.scalar(select(User.id).where(User.username == username)) is not None:
            raise UserError(f"user '{username}' already exists")
        if extension is not None:
            owner = await session.scalar(select(User.username).where(User.extension == extension))
            if owner is not None:
                raise UserError(f"extension {extension} is already used by '{owner}'")
