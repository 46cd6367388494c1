"""Login throttling: a sliding window of failures per key (source address, username).

A pure data structure: every call takes ``now`` (monotonic seconds), nothing reads a
clock. A key with ``max_failures`` failures inside the last ``window_s`` seconds is
blocked until the oldest of them leaves the window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

# Keys kept at most; past this the oldest-touched keys are forgotten, so a flood of
# made-up usernames cannot grow memory without bound.
MAX_KEYS = 100_000


class LoginThrottle:
    def __init__(self, max_failures: int, window_s: float, *, max_keys: int = MAX_KEYS) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError("max_failures must be >= 1 and window_s > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, keys: Iterable[str], now: float) -> int | None:
        """Whole seconds until every one of ``keys`` may try again, or None if none is
        blocked now."""
        waits = [self._wait_s(key, now) for key in keys]
        longest = max((wait for wait in waits if wait > 0), default=0.0)
        return math.ceil(longest) if longest > 0 else None

    def record_failure(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            times = self._failures.pop(key, None) or deque()
            self._expire(times, now)
            times.append(now)
            # Only the newest max_failures matter for the decision.
            while len(times) > self.max_failures:
                times.popleft()
            self._failures[key] = times  # re-inserted: dict order is least recently failed
        while len(self._failures) > self._max_keys:
            del self._failures[next(iter(self._failures))]

    def forget(self, key: str) -> None:
        """Clear a key's failures (a username after its owner logged in)."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _wait_s(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        self._expire(times, now)
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.max_failures:
            return 0.0
        return times[0] + self.window_s - now

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()


def throttle_keys(source_ip: str | None, username: str) -> tuple[str, ...]:
    """The keys a login attempt counts against. Usernames are compared case-folded and
    cut short, so variants of one name share a counter and cannot bloat memory."""
    keys = [f"user:{username.strip().casefold()[:150]}"]
    if source_ip:
        keys.append(f"ip:{source_ip}")
    return tuple(keys)
