"""What the web routes need from the rest of the system, as Protocols.

apps provides the real implementations (UserService, PermissionService.effective,
AuditLog); tests plug in small in-memory ones. Only these shapes cross into web/.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from apps import UserRecord
from web.hub import EventHub


class PasswordVerifier(Protocol):
    async def verify_web_password(self, username: str, password: str) -> UserRecord | None:
        """The user if the password is theirs, else None (unknown user included)."""
        ...

    async def is_active(self, user_id: int) -> bool:
        """Whether the user still exists and is not disabled (asked on every request, so
        that disabling an account ends its open sessions)."""
        ...


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
    session_max_age_s: int = 12 * 3600  # a signed session cookie older than this is void
    secure_cookies: bool = False  # mark cookies Secure (only when served over HTTPS)
    login_max_failures: int = 5  # failed logins per source address or username ...
    login_window_s: float = 300.0  # ... within this window: further attempts get 429


@dataclass(frozen=True)
class WebServices:
    users: PasswordVerifier
    permissions_of: PermissionLookup
    audit: AuditSink
    secret_key: str  # signs session cookies; see web.secret.load_or_create_secret
    hub: EventHub = field(default_factory=EventHub)
    settings: WebSettings = field(default_factory=WebSettings)
    # Monotonic seconds for the login throttle; tests pass a fake clock.
    clock: Callable[[], float] = time.monotonic
