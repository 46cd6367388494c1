"""What call control reports about calls, for CDRs, logs and (later) the agent desktop.

Sans-I/O like call control itself: these carry no times. The asyncio side that drains
them (apps.cdr_writer) stamps the wall clock as it receives them, which is within the
same loop iteration as the SIP message or timer that caused them.

`call_id` is ours (unique per call, stable across transfers), not a SIP Call-ID: a call
has one SIP dialog per leg. Leg 0 is the leg the call came in on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CALL_EVENT_TYPES", "CallAnswered", "CallBridged", "CallEnded", "CallEvent", "CallHeld",
    "CallResumed", "CallRinging", "CallStarted", "CallTransferred",
    "ChannelEvent", "DigitReceived", "HungUp", "LegAdded", "LegAnswered", "LegEnded",
    "OriginateFailed", "PartyDigit", "PartyJoined", "PartyLeft", "PartyModeChanged",
    "PeerAnswered", "PeerFailed", "PeerRinging", "PlaybackDone",
    "RecordingPaused", "RecordingResumed", "RecordingStarted", "TimerFired",
]


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    direction: str  # "inbound" (from a trunk), "outbound" (out through a trunk), "internal"
    caller: str  # normalised number or extension
    callee: str  # the dialled number or extension, normalised
    trunk: str | None = None  # trunk group of the inbound or outbound leg
    gateway: str | None = None  # gateway name of that leg


@dataclass(frozen=True, slots=True)
class LegAdded:
    call_id: str
    leg_index: int
    peer: str  # gateway name, extension or URI of the far end
    sip_call_id: str


@dataclass(frozen=True, slots=True)
class LegAnswered:
    call_id: str
    leg_index: int


@dataclass(frozen=True, slots=True)
class LegEnded:
    call_id: str
    leg_index: int
    sip_status: int | None  # the final status of the leg's INVITE when it failed
    q850_cause: int | None  # from a Reason header, or mapped from the status


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    call_id: str
    path: str  # absolute path of the WAV file


@dataclass(frozen=True, slots=True)
class RecordingPaused:
    """The call's recording takes silence from here (a card number being read out)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class RecordingResumed:
    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    disposition: str  # an apps.cdrs.Disposition value: answered, busy, no_answer, ...
    q850_cause: int | None
    sip_status: int | None
    cause: str  # what happened, for logs: "caller-bye", "callee-bye", "rejected-486", ...
    # What the call's applications learnt (customer id, VIP level, IVR path, digits),
    # for the CDR; None when no application set any.
    variables: Mapping[str, object] | None = None


# -- what the ACD and the wallboard follow (published, not made into CDRs)

@dataclass(frozen=True, slots=True)
class PartyJoined:
    """A party added to a call that is up (switch.calls.parties) answered and is on it:
    a conference member, or a supervisor listening, whispering or barging in."""

    call_id: str
    leg_index: int
    mode: str  # "conference", "listen", "whisper" or "barge"
    coached_index: int | None  # "whisper": the leg that hears it


@dataclass(frozen=True, slots=True)
class PartyModeChanged:
    call_id: str
    leg_index: int
    mode: str
    coached_index: int | None


@dataclass(frozen=True, slots=True)
class PartyLeft:
    """An added party is off the call (before or after answering)."""

    call_id: str
    leg_index: int
    why: str  # "hung-up", "removed", "rejected-486", "no-answer", "took-over", ...


@dataclass(frozen=True, slots=True)
class PartyDigit:
    """A DTMF digit from an added party (a supervisor's phone switching mode)."""

    call_id: str
    leg_index: int
    digit: str


@dataclass(frozen=True, slots=True)
class CallRinging:
    """A leg we dialled rings (180, or early media): an agent's phone, a fork, a
    transfer's target, the PSTN number; once per leg."""

    call_id: str
    leg_index: int
    target: str  # the extension, or the gateway for a trunk leg (LegAdded.peer)


@dataclass(frozen=True, slots=True)
class CallBridged:
    """Two answered legs talk to each other: first, and again after a transfer."""

    call_id: str
    leg_indexes: tuple[int, int]  # the caller's side, the other party


@dataclass(frozen=True, slots=True)
class CallHeld:
    """The party on this leg put the call on hold (the other one hears music)."""

    call_id: str
    leg_index: int


@dataclass(frozen=True, slots=True)
class CallResumed:
    call_id: str
    leg_index: int


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """A transfer was carried out: ``to`` replaces ``from_`` (extensions, or gateways)."""

    call_id: str
    kind: str  # "blind" or "attended"
    from_: str  # the transferor
    to: str  # who the party that stayed talks to now


@dataclass(frozen=True, slots=True)
class OriginateFailed:
    """A call the switch started (click-to-dial, switch.calls.originate) failed before the
    customer answered; the CDR has the call too, this says whose side failed."""

    call_id: str
    side: str  # "agent": the agent's phone did not answer; "customer": the number
    sip_status: int | None
    q850_cause: int | None
    cause: str  # as CallEnded's


CallEvent = (CallStarted | LegAdded | LegAnswered | LegEnded | CallAnswered
             | RecordingStarted | RecordingPaused | RecordingResumed | CallEnded
             | OriginateFailed | CallRinging | CallBridged | CallHeld | CallResumed
             | CallTransferred | PartyJoined | PartyModeChanged | PartyLeft | PartyDigit)
# What CDRs are made of (apps.cdrs): OriginateFailed is not, the CDR has the call's end,
# nor what the ACD follows (ringing, bridged, hold, transfers, added parties).
CALL_EVENT_TYPES: tuple[type, ...] = (CallStarted, LegAdded, LegAnswered, LegEnded,
                                      CallAnswered, RecordingStarted, RecordingPaused,
                                      RecordingResumed, CallEnded)


# -- what an application driving a call hears (switch.applications turns these into
# awaitable results); `call_id` is ours, as above.

@dataclass(frozen=True, slots=True)
class DigitReceived:
    call_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    call_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """An application's timer (Call.start_timer) passed."""

    call_id: str
    token: int


@dataclass(frozen=True, slots=True)
class PeerRinging:
    call_id: str


@dataclass(frozen=True, slots=True)
class PeerAnswered:
    call_id: str


@dataclass(frozen=True, slots=True)
class PeerFailed:
    call_id: str
    status: int  # the SIP status the dialled leg failed with (480 when nobody is there)
    q850_cause: int | None


@dataclass(frozen=True, slots=True)
class HungUp:
    call_id: str
    cause: str


ChannelEvent = (DigitReceived | PlaybackDone | TimerFired | PeerRinging | PeerAnswered
                | PeerFailed | HungUp)
