"""Session timers (RFC 4028), the pure part: header values, negotiation, deadlines.

The INVITE sessions do the sending; this module only decides. `refresher` values are
relative to the transaction that carries them ("uac" = whoever sent that INVITE or
UPDATE), so both sides can run the same rules whichever of them refreshes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from switch.sip.headers import HeaderError, parse_params, split_list
from switch.sip.message import Message

__all__ = [
    "MIN_SE_FLOOR_S", "TIMER_OPTION", "MinSE", "Refresher", "SessionExpires", "SessionTimer",
    "TimerAnswer", "TimerDue", "TooSmall", "answer_timer", "refresher_for",
    "request_timer_headers", "retry_after_422", "supports_timer", "uac_timer",
]

TIMER_OPTION = "timer"  # RFC 4028 §3: the option tag in Supported and Require
MIN_SE_FLOOR_S = 90  # RFC 4028 §4: no session interval may be below 90 seconds
BYE_MARGIN_CAP_S = 32  # RFC 4028 §10: BYE min(32 s, interval/3) before expiry
MAX_DELTA_S = 2**32 - 1  # RFC 3261 §25.1 delta-seconds; larger values are clamped

_DELTA = re.compile(r"[ \t]*([0-9]+)[ \t]*")


class Refresher(enum.Enum):
    UAC = "uac"
    UAS = "uas"


def _delta_seconds(text: str, header: str) -> tuple[int, str]:
    """The leading delta-seconds of a header value and the parameter text after it."""
    head, sep, params = text.partition(";")
    m = _DELTA.fullmatch(head)
    if m is None:
        raise HeaderError(f"{header} needs delta-seconds, got {text.strip()[:40]!r}")
    return min(int(m.group(1)), MAX_DELTA_S), sep + params


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """Session-Expires: delta-seconds [;refresher=uac|uas] (RFC 4028 §4)."""

    interval_s: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        interval_s, rest = _delta_seconds(text, "Session-Expires")
        params = parse_params(rest)
        if "refresher" not in params:
            return cls(interval_s)
        refresher = params["refresher"] or ""
        try:
            return cls(interval_s, Refresher(refresher.lower()))
        except ValueError:
            raise HeaderError(f"refresher must be uac or uas, got {refresher[:20]!r}") from None

    def serialize(self) -> str:
        if self.refresher is None:
            return str(self.interval_s)
        return f"{self.interval_s};refresher={self.refresher.value}"

    def __repr__(self) -> str:
        return f"<SessionExpires {self.serialize()}>"


@dataclass(frozen=True, slots=True)
class MinSE:
    """Min-SE: delta-seconds (RFC 4028 §5); generic parameters are ignored."""

    interval_s: int

    @classmethod
    def parse(cls, text: str) -> MinSE:
        interval_s, rest = _delta_seconds(text, "Min-SE")
        parse_params(rest)  # validated, then ignored: none is defined
        return cls(interval_s)

    def serialize(self) -> str:
        return str(self.interval_s)

    def __repr__(self) -> str:
        return f"<MinSE {self.interval_s}>"


def supports_timer(message: Message) -> bool:
    """The sender listed the timer option in Supported or Require (RFC 4028 §7.1)."""
    return any(tag.lower() == TIMER_OPTION for name in ("Supported", "Require")
               for value in message.headers.get_all(name) for tag in split_list(value))


def _session_expires(message: Message) -> SessionExpires | None:
    value = message.headers.get("Session-Expires")
    return None if value is None else SessionExpires.parse(value)


def _min_se(message: Message) -> int | None:
    value = message.headers.get("Min-SE")
    return None if value is None else MinSE.parse(value).interval_s


def request_timer_headers(interval_s: int, min_se_s: int,
                          refresher: Refresher | None = None) -> list[tuple[str, str]]:
    """What an INVITE or UPDATE we send carries (RFC 4028 §7.1, §7.4)."""
    return [("Supported", TIMER_OPTION),
            ("Session-Expires", SessionExpires(interval_s, refresher).serialize()),
            ("Min-SE", MinSE(min_se_s).serialize())]


def refresher_for(we_refresh: bool, we_send: bool) -> Refresher:
    """The refresher parameter naming us (or the peer) in a request we send (`we_send`)
    or a response to the peer's request."""
    return Refresher.UAC if we_refresh == we_send else Refresher.UAS


@dataclass(frozen=True, slots=True)
class TooSmall:
    """Answer 422 with this Min-SE (RFC 4028 §9)."""

    min_se_s: int


@dataclass(frozen=True, slots=True)
class TimerAnswer:
    """The Session-Expires (and Require) our 2xx carries (RFC 4028 §9)."""

    session_expires: SessionExpires
    require_timer: bool

    @property
    def we_refresh(self) -> bool:
        return self.session_expires.refresher is Refresher.UAS

    def headers(self) -> list[tuple[str, str]]:
        require = [("Require", TIMER_OPTION)] if self.require_timer else []
        return [*require, ("Session-Expires", self.session_expires.serialize())]


def answer_timer(request: Message, *, session_expires_s: int, min_se_s: int,
                 we_refresh: bool | None = None) -> TimerAnswer | TooSmall:
    """The UAS decision for a session refresh request (RFC 4028 §9).

    `session_expires_s` is the interval we want; `we_refresh` is who refreshes now, when a
    timer already runs (a request without a refresher parameter keeps that choice).
    Raises HeaderError for an unreadable Session-Expires or Min-SE."""
    asked = _session_expires(request)
    peer_supports = supports_timer(request)
    if asked is not None and peer_supports and asked.interval_s < min_se_s:
        return TooSmall(min_se_s)
    # The interval never goes below either side's minimum (RFC 4028 errata 1687: a
    # UAC that cannot handle a 422 gets the interval raised instead).
    floor_s = max(min_se_s, _min_se(request) or 0)
    if asked is None:
        interval_s = max(session_expires_s, floor_s)
    else:
        interval_s = max(min(asked.interval_s, session_expires_s), floor_s)
    if not peer_supports:
        refresher = Refresher.UAS  # §9: a UAC without the extension cannot refresh
    elif asked is not None and asked.refresher is not None:
        refresher = asked.refresher  # §9: copied from the request
    elif we_refresh is not None:
        refresher = refresher_for(we_refresh, we_send=False)
    else:
        # The UAC asked for a timer without choosing: it refreshes. It did not ask at
        # all: we want the timer, so we keep it alive ourselves.
        refresher = Refresher.UAC if asked is not None else Refresher.UAS
    return TimerAnswer(SessionExpires(interval_s, refresher), require_timer=peer_supports)


def uac_timer(response: Message) -> tuple[int, bool] | None:
    """(interval, we refresh) from a 2xx to our INVITE or UPDATE (RFC 4028 §7.2);
    None when the 2xx carries no Session-Expires: the session does not expire."""
    granted = _session_expires(response)
    if granted is None:
        return None
    # No refresher parameter: the UAS does not know the extension (a proxy added the
    # header), so the UAC refreshes.
    return granted.interval_s, granted.refresher is not Refresher.UAS


def retry_after_422(response: Message, *, session_expires_s: int,
                    min_se_s: int) -> tuple[int, int] | None:
    """(Session-Expires, Min-SE) for the INVITE that follows a 422 (RFC 4028 §7.3), or
    None when the 422 asks for nothing larger than what we sent."""
    wanted = _min_se(response)
    if wanted is None or wanted <= session_expires_s:
        return None  # what we sent was already large enough: a retry would loop
    return max(session_expires_s, wanted), max(min_se_s, wanted)


class TimerDue(enum.Enum):
    REFRESH = "refresh"  # we are the refresher and half the interval has passed
    EXPIRE = "expire"  # no refresh came (or ours got no answer): send BYE


@dataclass(slots=True)
class SessionTimer:
    """One running session timer. `refreshed_at` is when the last 2xx to a session
    refresh request was sent or received (RFC 4028 §10)."""

    interval_s: int
    we_refresh: bool
    refreshed_at: float
    refresh_pending: bool = False  # our refresh is sent or waiting for a busy INVITE

    def renew(self, now: float, interval_s: int | None = None,
              we_refresh: bool | None = None) -> None:
        self.refreshed_at = now
        self.refresh_pending = False
        if interval_s is not None:
            self.interval_s = interval_s
        if we_refresh is not None:
            self.we_refresh = we_refresh

    def next_deadline(self) -> float:
        if self.we_refresh:
            # §10: refresh at half the interval; with no answer by the expiry, BYE.
            half = 0 if self.refresh_pending else self.interval_s / 2
            return self.refreshed_at + self.interval_s - half
        margin_s = min(BYE_MARGIN_CAP_S, self.interval_s / 3)
        return self.refreshed_at + self.interval_s - margin_s

    def due(self, now: float) -> TimerDue | None:
        if now < self.next_deadline():
            return None
        return TimerDue.REFRESH if self.we_refresh and not self.refresh_pending \
            else TimerDue.EXPIRE
