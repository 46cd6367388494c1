"""The vocabulary of call control: settings, who is calling, where a leg goes, what the
media engine must offer, and how failures map to what callers hear and reports say."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

from switch.calls.events import CallEnded
from switch.calls.legs import LegKind
from switch.media import MediaEvent
from switch.pri_gateway import (
    ReasonHeaderError,
    Seizure,
    parse_reason,
    q850_cause_for_status,
    q850_cause_from_reason,
)
from switch.sip import (
    NameAddr,
    Peer,
)

__all__ = [
    "INCOMPATIBLE", "NO_ANSWER", "NO_ROUTE", "TEMPORARY_FAILURE", "TIMER_EXPIRY", "CallOrigin",
    "CallSettings", "CallState", "DialTarget", "Ending", "MediaControl",
    "disposition_for", "map_failure", "reason_cause",
]

# Q.850 causes call control chooses itself.
NO_ANSWER = 19  # "no answer from user (user alerted)": the ring timeout
TIMER_EXPIRY = 102  # "recovery on timer expiry": the maximum call duration
NO_ROUTE = 3  # "no route to destination"
TEMPORARY_FAILURE = 41
INCOMPATIBLE = 88  # "incompatible destination": no media both ends can use (RFC 3398: 488)


class MediaControl(Protocol):
    """The part of `MediaEngine` (and `FakeMediaEngine`) call control drives."""

    def open_leg(self, group: str | None = None, rtcp_mux: bool = False) -> int: ...
    def leg_port(self, leg: int) -> int: ...
    def set_remote(self, leg: int, host: str, port: int, payload_type: int = 0,
                   dtmf_payload_type: int | None = 101) -> None: ...
    def bridge(self, a: int, b: int) -> None: ...
    def unbridge(self, leg: int) -> None: ...
    def close_leg(self, leg: int) -> None: ...
    def play(self, leg: int, prompts: list[str | bytes | os.PathLike[str]], *,
             loop: bool = False) -> None: ...
    def play_tone(self, leg: int,
                  name: Literal["dial", "ringback", "busy", "congestion"]) -> None: ...
    def stop_playing(self, leg: int) -> None: ...
    def record(self, leg_a: int, leg_b: int | None = None,
               path: str | os.PathLike[str] | None = None, *, stereo: bool = True) -> int: ...
    def stop_recording(self, recording_id: int) -> None: ...
    def retarget_recording(self, recording_id: int, leg_a: int,
                           leg_b: int | None = None, extra: Sequence[int] = ()) -> None: ...
    def pause_recording(self, recording_id: int, paused: bool) -> None: ...
    def create_mix(self) -> int: ...
    def join_mix(self, mix: int, leg: int) -> None: ...
    def leave_mix(self, mix: int, leg: int) -> None: ...
    def destroy_mix(self, mix: int) -> None: ...
    def set_hearing(self, mix: int, listener_leg: int, talker_leg: int,
                    audible: bool) -> None: ...
    def monitor(self, supervisor_leg: int, agent_leg: int, customer_leg: int,
                mode: Literal["listen", "whisper", "barge"]) -> int: ...
    def send_dtmf(self, leg: int, digits: str, *, duration_ms: int = 100) -> None: ...
    def drain_events(self) -> list[MediaEvent]: ...


class CallState(Enum):
    CALLING = "calling"  # set up, nobody rings yet
    RINGING = "ringing"  # the dialled party rings (or sends early media)
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallSettings:
    """The [calls] configuration, as call control uses it."""

    ring_timeout_s: float = 60.0  # a dialled leg that rings this long is given up
    max_duration_s: float = 4 * 3600.0  # an answered call is cut after this
    session_expires_s: int | None = 1800  # RFC 4028 session timers; None: off
    min_se_s: int = 90
    music_on_hold: str | None = None  # a WAV file; None: a ringback-like tone
    # Where a call's recording goes (given our call id), or None not to record.
    recording_path: Callable[[str], str] | None = None
    # A call's recording policy unless its route says otherwise (RECORDING_POLICIES).
    recording: str = "always"


@dataclass(frozen=True, slots=True)
class CallOrigin:
    """Who is calling, as routing found out before the call was accepted."""

    direction: str  # "inbound", "internal" or "outbound" (see switch.calls.events)
    caller: str
    callee: str
    kind: LegKind  # the far end of the leg the call came in on
    trunk: str | None = None
    gateway: str | None = None
    seizure: Seizure | None = None  # the E1 channel an inbound call holds
    display: str | None = None  # the caller's display name, passed on to phones
    restricted: bool = False  # presentation restricted: phones see "anonymous"


@dataclass(frozen=True, slots=True)
class DialTarget:
    """Where to send a new leg: the SIP request to build and what is at the far end."""

    peer: Peer
    request_uri: str
    to: NameAddr
    from_: NameAddr  # without tag
    kind: LegKind
    headers: tuple[tuple[str, str], ...] = ()  # P-Asserted-Identity, Privacy...
    seizure: Seizure | None = None


# The dialled leg's final failure -> what the caller hears. A B2BUA answers for itself,
# so some answers cannot be passed on: a 503 would make the caller's proxy try elsewhere
# (RFC 3261 §16.7 item 6), 401/407 challenge the callee's credentials, not the caller's,
# and a redirect of an agent phone is not the caller's to follow.
_FAILURE_MAP: dict[int, int] = {
    401: 500, 407: 500, 408: 480, 481: 500, 487: 487, 503: 500,
    300: 480, 301: 480, 302: 480, 305: 480, 380: 480,
}


def map_failure(status: int) -> int:
    """The status to answer the caller with when the callee's leg failed with `status`."""
    return _FAILURE_MAP.get(status, status if status >= 400 else 480)


# How an unanswered call ended, for reports (apps.cdrs.Disposition values). Q.850 first:
# a gateway's cause is more exact than the SIP status it was mapped to.
_CAUSE_DISPOSITION: dict[int, str] = {
    1: "failed", 3: "failed", 20: "failed",  # no such number, no route, not registered
    17: "busy", 18: "no_answer", 19: "no_answer", 34: "congestion", 38: "congestion",
    41: "congestion", 42: "congestion", 44: "congestion", 47: "congestion",
}
_STATUS_DISPOSITION: dict[int, str] = {
    486: "busy", 600: "busy", 408: "no_answer", 480: "no_answer", 503: "congestion",
}


def disposition_for(status: int | None, q850_cause: int | None) -> str:
    if q850_cause is not None and q850_cause in _CAUSE_DISPOSITION:
        return _CAUSE_DISPOSITION[q850_cause]
    return _STATUS_DISPOSITION.get(status or 0, "failed")


def reason_cause(reason_header: str | None) -> int | None:
    if not reason_header:
        return None
    try:
        return q850_cause_from_reason(parse_reason(reason_header))
    except ReasonHeaderError:
        return None


@dataclass(slots=True)
class Ending:
    """Why and how a call is being taken down."""

    cause: str  # for logs
    disposition: str | None = None  # None: answered if it was, else from the status
    status: int = 480  # for an unanswered inbound leg
    q850_cause: int | None = None
    reason_header: str | None = None  # a Reason to pass on unchanged
    sip_status: int | None = None  # for the CDR
    recorded_q850: int | None = None  # the CDR's cause when q850_cause is None

    def report(self, call_id: str, *, answered: bool,
               variables: Mapping[str, object] | None = None) -> CallEnded:
        """The CDR's end of the call: disposition, cause and the call's variables."""
        disposition = "answered" if answered else (
            self.disposition or disposition_for(self.sip_status, self.q850_cause))
        return CallEnded(call_id, disposition, self.cdr_cause(), self.sip_status, self.cause,
                         dict(variables) if variables else None)

    def cdr_cause(self) -> int | None:
        """The Q.850 cause reports give: the one sent, else the one recorded, else the
        SIP failure's."""
        if self.q850_cause is not None:
            return self.q850_cause
        if self.recorded_q850 is None and self.sip_status is not None \
                and self.sip_status >= 400:
            return q850_cause_for_status(self.sip_status)
        return self.recorded_q850
