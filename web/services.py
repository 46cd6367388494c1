"""What the web routes need from the rest of the system, as Protocols.

apps provides the real implementations (UserService, WebSessionStore, ApiTokenService,
PermissionService.effective, AuditLog); tests plug in small in-memory ones. Only these
shapes cross into web/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from apps import UserRecord, WebSessionRecord
from web.hub import EventHub


class PasswordVerifier(Protocol):
    async def verify_web_password(self, username: str, password: str) -> UserRecord | None:
        """The user if the password is theirs, else None (unknown user included)."""
        ...


class SessionStore(Protocol):
    """Sessions on the server: the cookie holds only the id ``start`` returns."""

    async def start(self, user_id: int, *, source_ip: str | None = None,
                    user_agent: str | None = None) -> str:
        """A new session of ``user_id``; returns its id."""
        ...

    async def resume(self, session_id: str, *, touch: bool = True) -> WebSessionRecord | None:
        """The live session and its user as they are now, or None when the session ended,
        idled out, or its user is disabled (asked on every request). ``touch`` slides
        the expiry."""
        ...

    async def end(self, session_id: str) -> bool:
        """End one session (logout)."""
        ...

    async def end_all(self, user_id: int) -> int:
        """End every session of the user; returns how many there were."""
        ...

    async def count_live(self, user_id: int) -> int:
        """How many sessions of the user are live."""
        ...


class TokenVerifier(Protocol):
    async def authenticate(self, token: str) -> UserRecord | None:
        """The user an API token acts as, as they are now; None when the token was never
        made, is revoked, or its user is disabled (asked on every bearer request)."""
        ...


class NoTokens:
    """A TokenVerifier that knows no tokens: every bearer request is refused."""

    async def authenticate(self, token: str) -> UserRecord | None:
        return None


class AuditSink(Protocol):
    async def record(
        self,
        action: str,
        *,
        actor_id: int | None,
        actor: str,
        target: str | None,
        detail: Mapping[str, Any],
        source_ip: str | None,
    ) -> Any:
        """Append one security-relevant action to the audit log."""
        ...


# The capabilities a user holds now (role defaults plus group grants, minus revokes).
PermissionLookup = Callable[[int], Awaitable[frozenset[str]]]


@dataclass(frozen=True)
class WebSettings:
    # The session cookie's lifetime, renewed by every answer; the server's own idle
    # timeout (apps.WebSessionStore) is set from the same configuration key.
    session_max_age_s: int = 12 * 3600
    secure_cookies: bool = False  # mark cookies Secure (only when served over HTTPS)
    # See web.throttle: failures of one username from one address, and of one address
    # for any usernames, within login_window_s get 429; failures of one username from
    # anywhere only slow its logins by login_user_delay_s.
    login_max_failures: int = 5
    login_address_max_failures: int = 20
    login_window_s: float = 300.0
    login_user_delay_s: float = 2.0
    timezone: str = "Asia/Shanghai"  # pages show times here ([web] timezone)


@dataclass(frozen=True)
class WebServices:
    users: PasswordVerifier
    sessions: SessionStore
    permissions_of: PermissionLookup
    audit: AuditSink
    secret_key: str  # signs session cookies; see web.secret.load_or_create_secret
    hub: EventHub = field(default_factory=EventHub)
    tokens: TokenVerifier = field(default_factory=NoTokens)  # Authorization: Bearer ...
    settings: WebSettings = field(default_factory=WebSettings)
    # Monotonic seconds for the login throttle; tests pass a fake clock ...
    clock: Callable[[], float] = time.monotonic
    # ... and a sleep that only records how long the throttle slowed a login.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
