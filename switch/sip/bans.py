"""Ban source addresses after repeated failed authentications, sans-I/O.

A pure data structure: the caller feeds failures and successes with `now` (monotonic
seconds), asks `is_banned` before doing work for a request, and logs bans itself
using `describe_ban`. Memory is bounded so a flood from many addresses cannot grow it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable

from switch.sip.errors import LocalProtocolError

__all__ = ["FailureBanList", "describe_ban"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def describe_ban(source_ip: str, ban_s: float, n_failures: int) -> str:
    """The log line for a new ban."""
    duration = _format_seconds(ban_s)
    return f"banned {source_ip} for {duration} s after {n_failures} failed authentications"


@functools.lru_cache(maxsize=4096)  # every request's source goes through here
def _address(source_ip: str) -> _Address:
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        raise LocalProtocolError(f"not an IP address: {source_ip!r}") from None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; ban the IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class FailureBanList:
    """Ban an address for `ban_s` after `max_failures` failures within `window_s`."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 60.0,
        ban_s: float = 600.0,
        *,
        whitelist: Iterable[str] = (),
        max_tracked: int = 10_000,
        max_banned: int = 10_000,
    ) -> None:
        if max_failures < 1:
            raise LocalProtocolError(f"max_failures must be at least 1, not {max_failures}")
        self.max_failures = max_failures
        self.window_s = window_s
        self.ban_s = ban_s
        self.whitelist: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in whitelist
        )
        self._max_tracked = max_tracked
        self._max_banned = max_banned
        # address -> times of recent failures; order is recency of the last failure,
        # so the first entry is the one to forget when full.
        self._failures: OrderedDict[_Address, deque[float]] = OrderedDict()
        # address -> ban end; ban_s is fixed, so insertion order is expiry order.
        self._bans: OrderedDict[_Address, float] = OrderedDict()

    def is_whitelisted(self, source_ip: str) -> bool:
        address = _address(source_ip)
        return any(address in network for network in self.whitelist)

    def is_banned(self, source_ip: str, now: float) -> bool:
        address = _address(source_ip)
        until = self._bans.get(address)
        if until is None:
            return False
        if now >= until:
            del self._bans[address]
            return False
        return True

    def record_failure(self, source_ip: str, now: float) -> bool:
        """Count one failed authentication; True when it starts a ban."""
        address = _address(source_ip)
        if any(address in network for network in self.whitelist):
            return False
        if self.is_banned(source_ip, now):
            return False  # already banned: the ban is not extended
        times = self._failures.pop(address, None)
        if times is None:
            times = deque()
        self._failures[address] = times
        times.append(now)
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if len(times) >= self.max_failures:
            del self._failures[address]
            self._ban(address, now + self.ban_s)
            return True
        while len(self._failures) > self._max_tracked:
            self._failures.popitem(last=False)
        return False

    def record_success(self, source_ip: str) -> None:
        """A good authentication forgives the earlier failures (not an active ban)."""
        self._failures.pop(_address(source_ip), None)

    def unban(self, source_ip: str) -> None:
        self._bans.pop(_address(source_ip), None)

    def banned(self, now: float | None = None) -> list[tuple[str, float]]:
        """(address, ban end) pairs, soonest end first; expired ones dropped if `now`."""
        if now is not None:
            for address in [a for a, until in self._bans.items() if now >= until]:
                del self._bans[address]
        return [(str(address), until) for address, until in self._bans.items()]

    def _ban(self, address: _Address, until: float) -> None:
        self._bans[address] = until
        while len(self._bans) > self._max_banned:
            self._bans.popitem(last=False)

    def __repr__(self) -> str:
        return f"<FailureBanList {len(self._bans)} banned, {len(self._failures)} tracked>"
