"""Login throttling, as a pure data structure: every call takes ``now`` (monotonic
seconds), nothing reads a clock.

Failed logins count in a sliding window of ``window_s`` seconds under three keys, each
with its own consequence, so that failures from one place cannot lock an account's
owner out from another:

===================  ==========================  =========================================
key                  limit                       then
===================  ==========================  =========================================
username + address   ``max_failures``            refused (429): guessing one password from
                                                 one place stops there
address              ``address_max_failures``    refused (429): trying many usernames from
                                                 one place stops there
username             ``max_failures``            slowed, never refused: each attempt waits
                                                 ``user_delay_s`` before the password is
                                                 checked, from every address
===================  ==========================  =========================================

A refusal lasts until the oldest failure it counts leaves the window. Unknown usernames
count like known ones, so the throttle tells nobody which usernames exist.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# Keys kept at most per kind; past this the least recently failed keys are forgotten, so
# a flood of made-up usernames or addresses cannot grow memory without bound.
MAX_KEYS = 100_000
MAX_USERNAME_KEY_LENGTH = 150  # longer names are cut: variants share one counter
_NO_ADDRESS = "-"  # a client without an address (a unix socket) counts as one address


class FailureWindow:
    """Failure times per key inside a sliding window; a key with ``limit`` failures in
    the last ``window_s`` seconds is over its limit until the oldest leaves."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = MAX_KEYS) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` is under its limit again; 0.0 if it is now."""
        times = self._failures.get(key)
        if not times:
            return 0.0
        self._expire(times, now)
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window_s - now

    def record(self, key: str, now: float) -> None:
        times = self._failures.pop(key, None) or deque()
        self._expire(times, now)
        times.append(now)
        # Only the newest ``limit`` matter for the decision.
        while len(times) > self.limit:
            times.popleft()
        self._failures[key] = times  # re-inserted: dict order is least recently failed
        while len(self._failures) > self._max_keys:
            del self._failures[next(iter(self._failures))]

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()


@dataclass(frozen=True)
class Admission:
    """What the throttle says about a login attempt before the password is checked."""

    retry_after_s: int | None  # refused: whole seconds until an attempt may be admitted
    delay_s: float = 0.0  # admitted, but wait this long before checking the password


class LoginThrottle:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        *,
        address_max_failures: int,
        user_delay_s: float,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if user_delay_s < 0:
            raise ValueError("user_delay_s must be >= 0")
        self.user_delay_s = user_delay_s
        self._pairs = FailureWindow(max_failures, window_s, max_keys=max_keys)
        self._addresses = FailureWindow(address_max_failures, window_s, max_keys=max_keys)
        self._users = FailureWindow(max_failures, window_s, max_keys=max_keys)

    def admit(self, source_ip: str | None, username: str, now: float) -> Admission:
        """Whether a login for ``username`` from ``source_ip`` may be tried now."""
        user, address = user_key(username), source_ip or _NO_ADDRESS
        longest = max(self._pairs.wait_s(_pair_key(user, address), now),
                      self._addresses.wait_s(address, now))
        if longest > 0:
            return Admission(math.ceil(longest))
        slowed = self._users.wait_s(user, now) > 0
        return Admission(None, self.user_delay_s if slowed else 0.0)

    def record_failure(self, source_ip: str | None, username: str, now: float) -> None:
        user, address = user_key(username), source_ip or _NO_ADDRESS
        self._pairs.record(_pair_key(user, address), now)
        self._addresses.record(address, now)
        self._users.record(user, now)

    def record_success(self, source_ip: str | None, username: str) -> None:
        """The owner is in: their username's counts start again. The address's count
        stays, so that logging in to an account of one's own between guesses at others
        does not reset it."""
        user, address = user_key(username), source_ip or _NO_ADDRESS
        self._pairs.forget(_pair_key(user, address))
        self._users.forget(user)

    def __len__(self) -> int:
        """Keys held, of all kinds."""
        return len(self._pairs) + len(self._addresses) + len(self._users)


def user_key(username: str) -> str:
    """Usernames are compared case-folded and cut short, so variants of one name share a
    counter and cannot bloat memory."""
    return username.strip().casefold()[:MAX_USERNAME_KEY_LENGTH]


def _pair_key(user: str, address: str) -> str:
    return f"{address} {user}"  # an address has no space
