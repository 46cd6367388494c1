"""Call control: a back-to-back user agent with media anchored in our engine.

A `Call` is the leg it came in on (`a`, an `InviteServer`), at most one leg it is
connected to (`b`, an `InviteClient` we dialled) and the engine legs under them. Every
SDP we send carries our engine's address and port, so RTP always flows through the
switch (never direct media): that is what lets us record, play music on hold, ring back
and let a supervisor listen in.

A call is either *bridged* (routed straight to an extension or a trunk group: `a` is
answered when `b` answers) or *owned by an application* (IVR, queue: the application
answers `a`, plays, collects digits and may dial `b` later). Applications never see
SIP: they get `ChannelEvent`s (switch.call_events) and call the methods in the section
"for applications" below, through switch.applications.

`CallControl` is sans-I/O like the SIP stack below it: it shares the service's
`TransactionLayer`, takes `now` on every input, and the owner (switch.signalling) routes
transaction events to `handle`, media events to `handle_media`, and calls
`handle_timer(now)` at `next_deadline()`. It never touches a socket or a clock.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

from switch.call_events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallStarted,
    ChannelEvent,
    DigitReceived,
    HungUp,
    LegAdded,
    LegAnswered,
    LegEnded,
    PeerAnswered,
    PeerFailed,
    PeerRinging,
    PlaybackDone,
    RecordingStarted,
)
from switch.legs import NORMAL_CLEARING, Leg, LegKind
from switch.media import DtmfReceived, MediaError, MediaEvent, PlaybackFinished, RtpTimedOut
from switch.pri_gateway import (
    ReasonHeaderError,
    Seizure,
    parse_reason,
    q850_cause_for_status,
    q850_cause_from_reason,
)
from switch.sip import (
    AckReceived,
    NameAddr,
    Peer,
    RequestReceived,
    ResponseReceived,
    SdpError,
    StrayResponseReceived,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    build_offer,
)
from switch.sip.invite_client import (
    Answered,
    ByeReceived,
    Cancelled,
    DialogRequest,
    DialogResponse,
    EarlyMedia,
    Ended,
    Held,
    InviteClient,
    InviteEvent,
    ReinviteAnswered,
    ReinviteFailed,
    Rejected,
    Resumed,
    Ringing,
)
from switch.sip.invite_server import InviteServer
from switch.sip.offer_answer import CODECS, TELEPHONE_EVENT
from switch.sip.transaction import TransactionEvent
from switch.transfers import PendingTransfer, on_refer, on_target_event, transferor_left

__all__ = [
    "Call", "CallControl", "CallOrigin", "CallSettings", "CallState", "DialTarget",
    "MediaControl", "disposition_for", "map_failure",
]

# Q.850 causes call control chooses itself.
NO_ANSWER = 19  # "no answer from user (user alerted)": the ring timeout
TIMER_EXPIRY = 102  # "recovery on timer expiry": the maximum call duration
NO_ROUTE = 3  # "no route to destination"
TEMPORARY_FAILURE = 41


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


@dataclass(frozen=True, slots=True)
class CallOrigin:
    """Who is calling, as routing found out before the call was accepted."""

    direction: str  # "inbound", "internal" or "outbound" (see switch.call_events)
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


def _reason_cause(reason_header: str | None) -> int | None:
    if not reason_header:
        return None
    try:
        return q850_cause_from_reason(parse_reason(reason_header))
    except ReasonHeaderError:
        return None


@dataclass(slots=True)
class _Ending:
    """Why and how a call is being taken down."""

    cause: str  # for logs
    disposition: str | None = None  # None: answered if it was, else from the status
    status: int = 480  # for an unanswered inbound leg
    q850_cause: int | None = None
    reason_header: str | None = None  # a Reason to pass on unchanged
    sip_status: int | None = None  # for the CDR
    recorded_q850: int | None = None  # the CDR's cause when q850_cause is None


@dataclass(slots=True)
class _Arrangement:
    """What the engine is doing for the call now, so changes are sent once."""

    bridged: bool = False
    playing: dict[int, str] = field(default_factory=dict)  # engine leg -> what
    recording: int | None = None


class Call:
    def __init__(self, control: CallControl, call_id: str, a: Leg, origin: CallOrigin,
                 now: float) -> None:
        self.control = control
        self.call_id = call_id
        self.a = a
        self.b: Leg | None = None
        self.all_legs = [a]  # with legs that failed or were replaced, until they end
        self.origin = origin
        self.application: str | None = None  # the owning application's name
        self.transfer: PendingTransfer | None = None  # a blind transfer ringing
        self.state = CallState.CALLING
        self.cause: str | None = None
        self.started_at = now
        self.answered_at: float | None = None
        self._ring_deadline: float | None = None
        self._next_index = 1
        self._media = _Arrangement()
        self._unfinished_byes: list[Leg] = []  # BYE waits for the ACK of our 2xx
        self._closed = False

    def __repr__(self) -> str:
        return f"<Call {self.call_id} {self.state.value}>"

    @property
    def legs(self) -> Iterator[Leg]:
        """The two parties (a leg that moved to another call no longer counts)."""
        for leg in (self.a, self.b):
            if leg is not None and leg in self.all_legs:
                yield leg

    def other(self, leg: Leg) -> Leg | None:
        """The party `leg` is talking to."""
        if leg is self.a:
            return self.b
        return self.a if leg is self.b else None

    def next_leg_index(self) -> int:
        index, self._next_index = self._next_index, self._next_index + 1
        return index

    @property
    def done(self) -> bool:
        """Nothing more to route to this call: every SIP leg has ended."""
        return self.state is CallState.ENDED and all(leg.ended for leg in self.all_legs) \
            and not self._unfinished_byes

    # -- for applications (and routing)

    def answer(self, now: float) -> None:
        """Answer the caller (an application takes the call)."""
        session = self.a.session
        assert isinstance(session, InviteServer)
        if session.final_status is None:
            self._stop_playing(self.a, "ringback")
            self._set_remote(self.a)
            session.answer(self.a.local_sdp, now)
            self._mark_answered(now)

    def dial(self, target: DialTarget, now: float) -> Leg | None:
        """Ring `target` as this call's other party; None (and PeerFailed for an
        application) when the engine has no port for it."""
        if self.b is not None and not self.b.ended:
            raise RuntimeError(f"{self} is already connected to {self.b}")
        leg = self._new_leg(target, now)
        if leg is None:  # no free RTP port
            self.dial_failed(None, 503, TEMPORARY_FAILURE, now)
            return None
        self.b = leg
        return leg

    def dial_extra(self, target: DialTarget, now: float) -> Leg | None:
        """Ring `target` beside the two parties (a blind transfer's target)."""
        return self._new_leg(target, now)

    def _new_leg(self, target: DialTarget, now: float) -> Leg | None:
        control = self.control
        try:
            engine_leg = control.engine.open_leg(group=self.call_id)
        except MediaError:  # no free RTP port
            return None
        a_media = self.a.media
        assert a_media is not None
        # Offer the callee the caller's codec only, so the bridge relays without
        # transcoding (plus DTMF if the caller has it).
        codec = CODECS[a_media.codec_name.lower()]
        codecs = (codec, TELEPHONE_EVENT) if a_media.dtmf_payload_type is not None \
            else (codec,)
        session_id = control.new_session_id()
        offer = build_offer(control.media_address, control.engine.leg_port(engine_leg),
                            session_id=session_id, session_version=1, codecs=codecs)
        sip_call_id = control.new_token()
        session = InviteClient(
            control.layer, target.peer, request_uri=target.request_uri,
            from_=target.from_.with_tag(control.new_token()), to=target.to,
            contact=control.contact, call_id=sip_call_id, offer=offer.serialize(),
            via_host=control.via_host, via_port=control.via_port, now=now,
            extra_headers=list(target.headers),
            session_expires_s=control.settings.session_expires_s,
            min_se_s=control.settings.min_se_s)
        leg = Leg(self.next_leg_index(), session, engine_leg, target.kind,
                  session_id=session_id, seizure=target.seizure)
        leg.offer = offer
        leg.local_sdp = offer.serialize()
        leg.sdp_version = 2
        self.all_legs.append(leg)
        control.adopt(self, leg)
        control.report(LegAdded(self.call_id, leg.index, target.kind.name, sip_call_id))
        self._ring_deadline = now + control.settings.ring_timeout_s
        return leg

    def play(self, prompts: list[str | bytes | os.PathLike[str]]) -> None:
        """Play to the caller; PlaybackDone when the list ends."""
        self._set_remote(self.a)
        self._media.playing[self.a.engine_leg] = "prompt"
        self.control.engine.play(self.a.engine_leg, prompts)

    def play_tone(self, name: Literal["dial", "ringback", "busy", "congestion"]) -> None:
        self._set_remote(self.a)
        self._media.playing[self.a.engine_leg] = name
        self.control.engine.play_tone(self.a.engine_leg, name)

    def stop_playing(self) -> None:
        self._stop_playing(self.a, None)

    def hang_up(self, now: float, *, q850_cause: int = NORMAL_CLEARING,
                status: int = 480, cause: str = "hung-up") -> None:
        """Take the whole call down (an application hangs up, or a route failed)."""
        self._finish(_Ending(cause, status=status, q850_cause=q850_cause,
                             sip_status=status if self.answered_at is None else None), now)

    # -- events from the legs

    def on_leg_event(self, leg: Leg, event: InviteEvent, now: float) -> None:
        if isinstance(event, DialogRequest):
            self._on_dialog_request(leg, event, now)
        elif isinstance(event, DialogResponse | ReinviteAnswered | ReinviteFailed):
            return  # answers to our NOTIFYs and session refreshes: nothing to do
        elif leg.engine_closed and self.state is not CallState.ENDED:
            # A leg that left (transferred away): its dialog finishes by itself.
            if isinstance(event, Held | Resumed):
                leg.session.accept_reinvite(leg.local_sdp, now)
        elif self.transfer is not None and leg is self.transfer.target:
            on_target_event(self, leg, event, now)
        elif isinstance(event, ByeReceived) and transferor_left(self, leg):
            return
        elif leg is self.a:
            self._on_a(event, now)
        elif leg is self.b:
            self._on_b(leg, event, now)

    def _on_dialog_request(self, leg: Leg, event: DialogRequest, now: float) -> None:
        method = event.request.method
        if method == "REFER" and not leg.ended:
            on_refer(self, leg, event, now)
        else:
            # INFO (DTMF the phone sends that way, or nothing we know), OPTIONS pings,
            # a stray NOTIFY: acknowledge, so the dialog is not torn down over them.
            leg.session.respond(event.transaction,
                                200 if method in _ACKNOWLEDGED else 405, now)

    def _on_a(self, event: InviteEvent, now: float) -> None:
        if isinstance(event, Cancelled):
            self._finish(_Ending("cancelled", "cancelled", status=487,
                                 reason_header=event.reason_header,
                                 q850_cause=_reason_cause(event.reason_header)), now)
        elif isinstance(event, ByeReceived):
            # A plain BYE (phones send no Reason) is a normal release: the CDR says
            # cause 16, the other side is told nothing more than BYE.
            self._finish(_Ending("caller-bye", reason_header=event.reason_header,
                                 q850_cause=_reason_cause(event.reason_header),
                                 recorded_q850=NORMAL_CLEARING), now)
        elif isinstance(event, Ended):
            self._finish(_Ending(f"caller-{event.cause}"), now)
        elif isinstance(event, Held | Resumed):
            self._answer_reinvite(self.a, event.sdp, now)

    def _on_b(self, leg: Leg, event: InviteEvent, now: float) -> None:
        if self.state is CallState.ENDED or leg is not self.b:
            return
        a_session = self.a.session
        # After a transfer the caller's side may be a leg we dialled: answered, then.
        unanswered = isinstance(a_session, InviteServer) and a_session.final_status is None
        if isinstance(event, Ringing):
            if self.state is CallState.CALLING:
                self.state = CallState.RINGING
            if self.application is not None:
                self.control.tell(PeerRinging(self.call_id))
            if unanswered and not self.a.kind.trunk and isinstance(a_session, InviteServer):
                a_session.ring(now)  # a phone plays its own ringback
            elif self.a.engine_leg not in self._media.playing:
                # The PSTN caller hears ringback only if someone sends it in-band: we do,
                # as early media (an application's caller is answered: same tone).
                if unanswered and isinstance(a_session, InviteServer):
                    a_session.early_media(self.a.local_sdp, now)
                self._set_remote(self.a)
                self.play_to(self.a, "ringback")
        elif isinstance(event, EarlyMedia):
            if leg.take_answer(event.sdp):
                self.state = CallState.RINGING
                if unanswered and isinstance(a_session, InviteServer):
                    a_session.early_media(self.a.local_sdp, now)
                self._connect(now)
        elif isinstance(event, Answered):
            if not leg.take_answer(event.sdp):
                leg.hang_up(now)
                self.dial_failed(leg, 488, None, now)
                return
            leg.answered = True
            self._ring_deadline = None
            self.control.report(LegAnswered(self.call_id, leg.index))
            if unanswered and isinstance(a_session, InviteServer):
                a_session.answer(self.a.local_sdp, now)
            self._mark_answered(now)
            self._connect(now)
            if self.application:
                self.control.tell(PeerAnswered(self.call_id))
        elif isinstance(event, Rejected):
            cause = _reason_cause(event.reason_header)
            leg.final_status = event.status
            self.dial_failed(leg, event.status, cause, now,
                             reason_header=event.reason_header)
        elif isinstance(event, ByeReceived):
            # A plain BYE (phones send no Reason) is a normal release: the CDR says
            # cause 16, the other side is told nothing more than BYE.
            self._finish(_Ending("callee-bye", reason_header=event.reason_header,
                                 q850_cause=_reason_cause(event.reason_header),
                                 recorded_q850=NORMAL_CLEARING), now)
        elif isinstance(event, Ended):
            if not leg.answered and leg.final_status is not None:
                return  # the Rejected before it said it all
            self._finish(_Ending(f"callee-{event.cause}"), now)
        elif isinstance(event, Held | Resumed):
            self._answer_reinvite(leg, event.sdp, now)

    def dial_failed(self, leg: Leg | None, status: int, q850_cause: int | None, now: float,
                    reason_header: str | None = None) -> None:
        """The dialled leg will not answer: an application is told and keeps the call;
        a bridged call ends with the failure mapped for the caller."""
        if q850_cause is None and status >= 400:
            q850_cause = q850_cause_for_status(status)  # a phone's 486 is still cause 17
        self._ring_deadline = None
        self._stop_playing(self.a, "ringback")
        if self._media.bridged:  # early media was flowing
            self._media.bridged = False
            self.control.engine.unbridge(self.a.engine_leg)
        if leg is not None:
            self.b = None
            leg.final_status = status
            leg.end_reported = True  # reported here, with the cause
            self.control.report(LegEnded(self.call_id, leg.index, status, q850_cause))
            self.detach(leg)
        if self.application is not None:
            self.control.tell(PeerFailed(self.call_id, status, q850_cause))
            return
        self._finish(_Ending(f"rejected-{status}", status=map_failure(status),
                             q850_cause=q850_cause, reason_header=reason_header,
                             sip_status=status), now)

    def on_media(self, event: MediaEvent, now: float) -> None:
        if isinstance(event, RtpTimedOut):
            # A party that put the call on hold with "inactive" (or 0.0.0.0) may send
            # nothing at all until it resumes: silence from it is not a dead far end.
            silent = next((leg for leg in self.legs if leg.engine_leg == event.leg), None)
            if self.state is CallState.ANSWERED and not (silent is not None and silent.held):
                self._finish(_Ending("rtp-timeout", q850_cause=TIMER_EXPIRY), now)
        elif isinstance(event, DtmfReceived):
            if self.application is not None and event.leg == self.a.engine_leg:
                self.control.tell(DigitReceived(self.call_id, event.digit))
        elif isinstance(event, PlaybackFinished) \
                and self._media.playing.get(event.leg) == "prompt":
            del self._media.playing[event.leg]
            if self.application is not None:
                self.control.tell(PlaybackDone(self.call_id))

    def next_deadline(self) -> float | None:
        deadlines = [self._ring_deadline]
        if self.answered_at is not None and self.state is CallState.ANSWERED:
            deadlines.append(self.answered_at + self.control.settings.max_duration_s)
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if self.state is CallState.ENDED:
            return
        if self._ring_deadline is not None and now >= self._ring_deadline:
            self._ring_deadline = None
            target = self.transfer.target if self.transfer is not None else None
            if target is not None and not target.answered:
                target.hang_up(now, q850_cause=NO_ANSWER)
                on_target_event(self, target, Rejected(480, "No Answer"), now)
                return
            leg = self.b
            if leg is not None and not leg.answered:
                leg.hang_up(now, q850_cause=NO_ANSWER)
                self.dial_failed(leg, 480, NO_ANSWER, now)
        if self.answered_at is not None and self.state is CallState.ANSWERED \
                and now >= self.answered_at + self.control.settings.max_duration_s:
            self._finish(_Ending("max-duration", q850_cause=TIMER_EXPIRY), now)

    def retry_hang_up(self, now: float) -> None:
        self._unfinished_byes = [leg for leg in self._unfinished_byes
                                 if not leg.hang_up(now, q850_cause=leg.q850_cause)]

    # -- media

    def _set_remote(self, leg: Leg) -> None:
        media = leg.media
        if media is not None:
            self.control.engine.set_remote(leg.engine_leg, media.remote_address,
                                           media.remote_port, media.payload_type,
                                           media.dtmf_payload_type)

    def _connect(self, now: float) -> None:
        """Both legs have media: bridge them in the engine (once), start recording when
        both have answered, and play music on hold where a party is held."""
        b = self.b
        assert b is not None and b.media is not None
        self._set_remote(b)
        if not self._media.bridged:
            self._stop_playing(self.a, None)
            self._set_remote(self.a)
            self.control.engine.bridge(self.a.engine_leg, b.engine_leg)
            self._media.bridged = True
        self._apply_hold()
        record = self.control.settings.recording_path
        if record is not None and b.answered and self._media.recording is None:
            path = record(self.call_id)
            self._media.recording = self.control.engine.record(
                self.a.engine_leg, b.engine_leg, path)
            self.control.report(RecordingStarted(self.call_id, path))

    def _apply_hold(self) -> None:
        """Music on hold toward whoever is not holding, while the other one holds. Play
        overrides relay in the engine, so the bridge itself stays as it is."""
        b = self.b
        if b is None or not self._media.bridged:
            return
        for holder, listener in ((self.a, b), (b, self.a)):
            playing = self._media.playing.get(listener.engine_leg)
            if holder.held and playing is None:
                self._media.playing[listener.engine_leg] = "moh"
                moh = self.control.settings.music_on_hold
                if moh is not None:
                    self.control.engine.play(listener.engine_leg, [moh], loop=True)
                else:
                    self.control.engine.play_tone(listener.engine_leg, "ringback")
            elif not holder.held and playing == "moh":
                self._stop_playing(listener, "moh")

    def play_to(self, leg: Leg, tone: Literal["dial", "ringback", "busy", "congestion"]) -> None:
        self._media.playing[leg.engine_leg] = tone
        self.control.engine.play_tone(leg.engine_leg, tone)

    # -- transfers (switch.transfers decides, these do)

    def replace(self, old: Leg, new: Leg, now: float) -> None:
        """`new` (answered) takes `old`'s place, bridged to the party that stays;
        `old` is released with a normal BYE."""
        stayer = self.other(old)
        assert stayer is not None
        engine = self.control.engine
        self._stop_recording()
        self._stop_playing(stayer, None)
        self._stop_playing(new, None)
        if self._media.bridged:
            engine.unbridge(stayer.engine_leg)
        self._set_remote(stayer)
        self._set_remote(new)
        engine.bridge(stayer.engine_leg, new.engine_leg)
        self._media.bridged = True
        if old is self.a:
            self.a = new
        else:
            self.b = new
        self.detach(old)
        if not old.hang_up(now):
            self._unfinished_byes.append(old)
        self._apply_hold()

    def detach(self, leg: Leg) -> None:
        """`leg` no longer takes part: its media and E1 channel are released now, its
        SIP dialog finishes on its own."""
        if not leg.engine_closed:
            leg.engine_closed = True
            self._stop_playing(leg, None)
            if self._media.bridged and leg in (self.a, self.b):
                self._media.bridged = False
                self.control.engine.unbridge(leg.engine_leg)
            self.control.engine.close_leg(leg.engine_leg)
        self._release(leg)
        if not leg.end_reported:
            leg.end_reported = True
            self.control.report(LegEnded(self.call_id, leg.index, leg.final_status, None))

    def drop_extra(self, leg: Leg, status: int) -> None:
        """A leg rung beside the parties failed (`status`)."""
        leg.final_status = status
        self.detach(leg)

    def restore_after_transfer(self) -> None:
        """A failed transfer: the party that stayed is back with the transferor."""
        for leg in self.legs:
            self._stop_playing(leg, "ringback")
        self._apply_hold()

    def release_leg(self, leg: Leg) -> None:
        """`leg` moves to another call (attended transfer): forget it here, media and
        signalling untouched, except what this call did with it."""
        self._stop_recording()
        self._stop_playing(leg, None)
        if self._media.bridged:
            self._media.bridged = False
            self.control.engine.unbridge(leg.engine_leg)
        self.all_legs.remove(leg)
        if leg is self.b:
            self.b = None

    def adopt_leg(self, leg: Leg) -> None:
        self.all_legs.append(leg)
        self.control.adopt(self, leg)

    def _stop_recording(self) -> None:
        if self._media.recording is not None:
            self.control.engine.stop_recording(self._media.recording)
            self._media.recording = None

    def _stop_playing(self, leg: Leg, what: str | None) -> None:
        """Stop what plays toward `leg` (only if it is `what`, unless None)."""
        playing = self._media.playing.get(leg.engine_leg)
        if playing is not None and (what is None or playing == what):
            del self._media.playing[leg.engine_leg]
            self.control.engine.stop_playing(leg.engine_leg)

    def _answer_reinvite(self, leg: Leg, sdp: bytes, now: float) -> None:
        """A re-INVITE (hold, resume, new address or codec): answer it from the same
        engine leg, follow the new address, and start or stop music on hold."""
        control = self.control
        try:
            answer = leg.answer_offer(sdp, media_address=control.media_address,
                                      local_port=control.engine.leg_port(leg.engine_leg))
        except SdpError:
            # Keep the call: answer with what we had, the media stays as it was.
            leg.session.accept_reinvite(leg.local_sdp, now)
            return
        leg.session.accept_reinvite(answer, now)
        if self._media.bridged or (leg is self.a and self.answered_at is not None):
            self._set_remote(leg)
        self._apply_hold()

    # -- ending

    def _mark_answered(self, now: float) -> None:
        self.a.answered = True
        if self.answered_at is None:
            self.answered_at = now
            self.state = CallState.ANSWERED
            self.control.report(LegAnswered(self.call_id, self.a.index))
            self.control.report(CallAnswered(self.call_id))

    def _finish(self, ending: _Ending, now: float) -> None:
        """Take down whatever is still up on every leg, once, and release the media."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.cause = ending.cause
        for leg in self.legs:
            leg.q850_cause = ending.q850_cause
            if not leg.hang_up(now, status=ending.status, q850_cause=ending.q850_cause,
                               reason_header=ending.reason_header):
                self._unfinished_byes.append(leg)
        self._close_media()
        control = self.control
        for leg in self.legs:
            self._release(leg)
            if not leg.end_reported:
                leg.end_reported = True
                control.report(LegEnded(self.call_id, leg.index,
                                        leg.final_status, leg.q850_cause))
        disposition = ending.disposition or (
            "answered" if self.answered_at is not None
            else disposition_for(ending.sip_status, ending.q850_cause))
        if self.answered_at is not None:
            disposition = "answered"
        q850 = ending.q850_cause if ending.q850_cause is not None else ending.recorded_q850
        if q850 is None and ending.sip_status is not None and ending.sip_status >= 400:
            q850 = q850_cause_for_status(ending.sip_status)
        control.report(CallEnded(self.call_id, disposition, q850, ending.sip_status,
                                 ending.cause))
        if self.application is not None:
            control.tell(HungUp(self.call_id, ending.cause))

    def _release(self, leg: Leg) -> None:
        if leg.seizure is not None:
            self.control.release(leg.seizure)
            leg.seizure = None

    def _close_media(self) -> None:
        if self._closed:
            return
        self._closed = True
        engine = self.control.engine
        self._stop_recording()
        for leg in self.legs:
            if not leg.engine_closed:
                leg.engine_closed = True
                engine.close_leg(leg.engine_leg)
        self._media = _Arrangement()


class CallControl:
    """All calls on one TransactionLayer; the owner routes events here by Call-ID."""

    def __init__(self, layer: TransactionLayer, engine: MediaControl, *, via_host: str,
                 via_port: int, media_address: str, new_token: Callable[[], str],
                 new_session_id: Callable[[], int],
                 settings: CallSettings | None = None,
                 release: Callable[[Seizure], object] = lambda seizure: None) -> None:
        self.layer = layer
        self.engine = engine
        self.via_host, self.via_port = via_host, via_port
        self.media_address = media_address
        self.new_token = new_token
        self.new_session_id = new_session_id
        self.settings = settings or CallSettings()
        self.release = release  # gives an E1 channel back to the trunk accounting
        self.calls: dict[str, Call] = {}  # by our call id
        self._by_sip_call_id: dict[str, tuple[Call, Leg]] = {}
        self._by_engine_leg: dict[int, Call] = {}
        self._reports: list[CallEvent] = []
        self._channel_events: list[ChannelEvent] = []
        # Timers: a heap of (deadline, sequence, call id); `_scheduled` holds each call's
        # current deadline, so superseded heap entries are skipped.
        self._deadlines: list[tuple[float, int, str]] = []
        self._scheduled: dict[str, float] = {}
        self._sequence = itertools.count()
        # Number -> where to ring it, or the SIP status why not (switch.routing sets it).
        self.resolve: Callable[[Call, str, float], DialTarget | int] = \
            lambda call, number, now: 404

    @functools.cached_property
    def contact(self) -> NameAddr:
        return NameAddr.parse(f"<sip:{self.via_host}:{self.via_port}>")


    # -- outputs

    def report(self, event: CallEvent) -> None:
        self._reports.append(event)

    def tell(self, event: ChannelEvent) -> None:
        self._channel_events.append(event)

    def events(self) -> list[CallEvent]:
        """What happened to calls since the last call (for CDRs and logs)."""
        reports, self._reports = self._reports, []
        return reports

    def channel_events(self) -> list[ChannelEvent]:
        """What applications must hear since the last call."""
        events, self._channel_events = self._channel_events, []
        return events

    # -- starting a call

    def accept(self, received: RequestReceived, caller_peer: Peer, origin: CallOrigin,
               now: float) -> Call | None:
        """Take an INVITE on as a call: an engine leg for the caller and our SDP answer
        (not sent yet: routing decides whether to ring someone or answer). None when
        the offer is unusable (answered 488) or no RTP port is free (503)."""
        session = InviteServer(self.layer, received, to_tag=self.new_token(),
                               contact=self.contact, via_host=self.via_host,
                               via_port=self.via_port, peer=caller_peer,
                               session_expires_s=self.settings.session_expires_s,
                               min_se_s=self.settings.min_se_s)
        if not received.request.body:
            # A late offer (INVITE without SDP), which call control does not take.
            session.reject(488, now)
            return None
        try:
            engine_leg = self.engine.open_leg(group=received.request.call_id)
        except MediaError:  # no free RTP port
            session.reject(503, now)
            return None
        leg = Leg(0, session, engine_leg, origin.kind, session_id=self.new_session_id(),
                  seizure=origin.seizure)
        try:
            leg.answer_offer(received.request.body, media_address=self.media_address,
                             local_port=self.engine.leg_port(engine_leg))
        except SdpError as exc:
            self.engine.close_leg(engine_leg)
            session.reject(exc.status, now)
            return None
        call = Call(self, self.new_token(), leg, origin, now)
        self.calls[call.call_id] = call
        self.adopt(call, leg)
        self.report(CallStarted(call.call_id, origin.direction, origin.caller,
                                origin.callee, origin.trunk, origin.gateway))
        self.report(LegAdded(call.call_id, 0, origin.kind.name, leg.sip_call_id))
        return call

    def adopt(self, call: Call, leg: Leg) -> None:
        self._by_sip_call_id[leg.sip_call_id] = (call, leg)
        self._by_engine_leg[leg.engine_leg] = call

    # -- inputs

    def find_leg(self, sip_call_id: str) -> tuple[Call, Leg] | None:
        return self._by_sip_call_id.get(sip_call_id)

    def owns(self, sip_call_id: str) -> bool:
        return sip_call_id in self._by_sip_call_id

    def handle(self, event: TransactionEvent, now: float) -> bool:
        """Route a transaction event to its call; False when no call knows it."""
        sip_call_id = _call_id_of(event)
        found = self._by_sip_call_id.get(sip_call_id) if sip_call_id is not None else None
        if found is None:
            return False
        call, leg = found
        leg.session.handle(event, now)
        call.retry_hang_up(now)
        self._drain(call, now)
        return True

    def handle_media(self, events: list[MediaEvent], now: float) -> None:
        for event in events:
            call = self._by_engine_leg.get(getattr(event, "leg", -1))
            if call is not None:
                call.on_media(event, now)
                self._drain(call, now)

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap:
            deadline, _, call_id = heap[0]
            if self._scheduled.get(call_id) == deadline:
                return deadline
            heapq.heappop(heap)  # superseded by a later schedule, or the call is gone
        return None

    def handle_timer(self, now: float) -> None:
        """Run the timers of the calls that are due (a heap: thousands of calls up
        cost nothing until one of them has something to do)."""
        heap, due = self._deadlines, []
        while heap and heap[0][0] <= now:
            deadline, _, call_id = heapq.heappop(heap)
            if self._scheduled.get(call_id) == deadline:
                del self._scheduled[call_id]
                due.append(call_id)
        for call_id in due:
            call = self.calls.get(call_id)
            if call is None:
                continue
            call.handle_timer(now)
            for leg in list(call.all_legs):
                leg.session.handle_timer(now)
            self._drain(call, now)

    def _schedule(self, call: Call) -> None:
        deadlines = [call.next_deadline(),
                     *(leg.session.next_deadline() for leg in call.all_legs)]
        deadline = min((d for d in deadlines if d is not None), default=None)
        if deadline is None:
            self._scheduled.pop(call.call_id, None)
        elif self._scheduled.get(call.call_id) != deadline:
            self._scheduled[call.call_id] = deadline
            heapq.heappush(self._deadlines, (deadline, next(self._sequence), call.call_id))

    def drain(self, call: Call, now: float) -> None:
        """Deliver what the call's legs emitted (after an application's command)."""
        self._drain(call, now)

    def _drain(self, call: Call, now: float) -> None:
        # Handling one leg's event may make another leg emit (and vice versa). A leg
        # replaced by a new one still finishes its own signalling.
        while True:
            pending = [(leg, event) for leg in call.all_legs
                       for event in leg.session.events()]
            if not pending:
                break
            for leg, event in pending:
                call.on_leg_event(leg, event, now)
        if call.done:
            self._forget(call)
        else:
            self._schedule(call)

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.call_id, None)
        self._scheduled.pop(call.call_id, None)
        for leg in call.all_legs:
            self._by_sip_call_id.pop(leg.sip_call_id, None)
            self._by_engine_leg.pop(leg.engine_leg, None)


_ACKNOWLEDGED = frozenset({"INFO", "OPTIONS", "NOTIFY", "UPDATE"})


def _call_id_of(event: TransactionEvent) -> str | None:
    if isinstance(event, RequestReceived | AckReceived):
        return event.request.call_id
    if isinstance(event, ResponseReceived | StrayResponseReceived):
        return event.response.call_id
    if isinstance(event, TransactionTimedOut | TransportFailed):
        return event.transaction.request.call_id
    return None
