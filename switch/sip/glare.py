"""How long to wait before retrying a re-INVITE that met glare (RFC 3261 §14.1).

A 491 Request Pending means both ends sent a re-INVITE at once. Each retries after a
random pause, the one that owns the dialog's Call-ID (it sent the initial INVITE)
after the longer one, so the other's retry usually goes through first. The pause is
drawn anew for every 491, from a source the owner passes in (`randbelow(n)` returns
0 <= k < n, like `secrets.randbelow`), so tests can name the exact delay.
"""

from __future__ import annotations

from collections.abc import Callable

from switch.sip.errors import LocalProtocolError

__all__ = ["OTHER_DELAY_CS", "OWNER_DELAY_CS", "RandBelow", "glare_retry_delay_s"]

RandBelow = Callable[[int], int]

# RFC 3261 §14.1, in its units of 10 ms (centiseconds), both ends included:
OWNER_DELAY_CS = (210, 400)  # "between 2.1 and 4 seconds" when we own the Call-ID
OTHER_DELAY_CS = (0, 200)  # "between 0 and 2 seconds" when we do not


def glare_retry_delay_s(*, owns_call_id: bool, randbelow: RandBelow) -> float:
    """The §14.1 pause before sending the re-INVITE again, in seconds."""
    low, high = OWNER_DELAY_CS if owns_call_id else OTHER_DELAY_CS
    span = high - low + 1
    drawn = randbelow(span)
    if not 0 <= drawn < span:
        raise LocalProtocolError(f"randbelow({span}) returned {drawn}")
    return (low + drawn) / 100
