"""Call control: a back-to-back user agent with media anchored in our engine.

A `Call` is the leg it came in on (`a`, an `InviteServer`), at most one leg it is
connected to (`b`, an `InviteClient` we dialled) and the engine legs under them. Every
SDP we send carries our engine's address and port, so RTP always flows through the
switch (never direct media): that is what lets us record, play music on hold, ring back
and let a supervisor listen in.

A call is either *bridged* (routed straight to an extension or a trunk group: `a` is
answered when `b` answers) or *owned by an application* (IVR, queue: the application
answers `a`, plays, collects digits and may dial `b` later). Applications never see
SIP: they get `ChannelEvent`s (switch.calls.events) and call the methods in the section
"for applications" below, through switch.applications.

Sans-I/O like the SIP stack below it: a call acts through its host, a `CallHost`
(switch.calls.host: the few members of the owning `CallControl` it may use), which
shares the service's `TransactionLayer` and takes `now` on every input; nothing here
touches a socket or a clock. The settings, origins, targets and failure tables are in
switch.calls.types.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from switch.calls.events import (
    CallAnswered,
    DigitReceived,
    HungUp,
    LegAdded,
    LegAnswered,
    LegEnded,
    PeerAnswered,
    PeerFailed,
    PeerRinging,
    PlaybackDone,
)
from switch.calls.forking import Forking
from switch.calls.legs import NORMAL_CLEARING, Leg, callee_codecs
from switch.calls.media import CallMedia, Tone
from switch.calls.originate import Originate
from switch.calls.park import Parkable
from switch.calls.parties import AddedParty, Conferenced
from switch.calls.recording import Recorded
from switch.calls.reports import Reported
from switch.calls.timers import AppTimed
from switch.calls.transfers import PendingTransfer, on_refer, on_target_event, transferor_left
from switch.calls.types import (
    INCOMPATIBLE,
    NO_ANSWER,
    TEMPORARY_FAILURE,
    TIMER_EXPIRY,
    CallOrigin,
    CallState,
    DialTarget,
    Ending,
    map_failure,
    reason_cause,
)
from switch.media import DtmfReceived, MediaError, MediaEvent, PlaybackFinished, RtpTimedOut
from switch.pri_gateway import (
    q850_cause_for_status,
)
from switch.sip import (
    Answered,
    AnswerReceived,
    ByeReceived,
    Cancelled,
    DialogRequest,
    DialogResponse,
    EarlyMedia,
    Ended,
    Held,
    InviteEvent,
    InviteServer,
    ReinviteAnswered,
    ReinviteFailed,
    Rejected,
    Resumed,
    Ringing,
    SdpError,
    SessionDescription,
    build_offer,
)

if TYPE_CHECKING:
    from switch.calls.host import CallHost

__all__ = ["Call"]

# In-dialog requests a call acknowledges without acting on them.
_ACKNOWLEDGED = frozenset({"INFO", "OPTIONS", "NOTIFY", "UPDATE"})


class Call(Recorded, Reported, Parkable, AppTimed, Conferenced):
    def __init__(self, control: CallHost, call_id: str, a: Leg, origin: CallOrigin,
                 now: float) -> None:
        self.control = control
        self.call_id = call_id
        self.a = a
        self.b: Leg | None = None
        self.all_legs = [a]  # with legs that failed or were replaced, until they end
        self.origin = origin
        self.application: str | None = None  # the owning application's name
        # What applications learn about the call and hand on to the next one (customer
        # id, VIP level, IVR path, digits collected), for later screen pops and records.
        self.variables: dict[str, object] = {}
        self.transfer: PendingTransfer | None = None  # a blind transfer ringing
        self.forking: Forking | None = None  # several legs ringing (switch.calls.forking)
        self.originate: Originate | None = None  # we started it (switch.calls.originate)
        self.recording_policy = control.settings.recording  # the route may change it
        self.state = CallState.CALLING
        self.cause: str | None = None
        self.started_at = now
        self.answered_at: float | None = None
        self._ring_deadline: float | None = None
        self._next_index = 1
        self._media = CallMedia(control.engine)
        self._bridged_legs: tuple[int, int] | None = None
        self._unfinished_byes: list[Leg] = []  # BYE waits for the ACK of our 2xx
        self._closed = False
        self._app_timers: dict[int, float] = {}  # switch.calls.timers
        self._next_timer_token = 0
        self._parties: dict[Leg, AddedParty] = {}  # added while up (switch.calls.parties)

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

    def resolve(self, number: str, now: float) -> DialTarget | int:
        """Where `number` rings for this call (a transfer's target), or the status why
        not."""
        return self.control.resolve(self, number, now)

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
            self._media.stop_playing(self.a, "ringback")
            self._media.set_remote(self.a)
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
        self._ring_deadline = now + self.control.settings.ring_timeout_s
        self.b = leg
        return leg

    def dial_extra(self, target: DialTarget, now: float, *,
                   ring_deadline: bool = True) -> Leg | None:
        """Ring `target` beside the two parties (a blind transfer's target, a fork, an
        added party: that one keeps its own ring deadline)."""
        leg = self._new_leg(target, now)
        if leg is not None and ring_deadline:
            self._ring_deadline = now + self.control.settings.ring_timeout_s
        return leg

    def fork(self, forking: Forking, now: float) -> None:
        """Ring several legs (switch.calls.forking): the first to answer becomes `b`."""
        if self.b is not None and not self.b.ended:
            raise RuntimeError(f"{self} is already connected to {self.b}")
        self.forking = forking
        forking.start(self, now)

    def _new_leg(self, target: DialTarget, now: float) -> Leg | None:
        control = self.control
        try:
            engine_leg = control.engine.open_leg(group=self.call_id)
        except MediaError:  # no free RTP port
            return None
        session_id = control.new_session_id()
        offer = build_offer(control.media_address, control.engine.leg_port(engine_leg),
                            session_id=session_id, session_version=1,
                            codecs=callee_codecs(self.a.media))
        session = control.new_client(target, offer.serialize(), now)
        leg = Leg(self.next_leg_index(), session, engine_leg, target.kind,
                  session_id=session_id, seizure=target.seizure)
        leg.offered(offer)
        self.all_legs.append(leg)
        control.adopt(self, leg)
        control.report(LegAdded(self.call_id, leg.index, target.kind.name, leg.sip_call_id))
        return leg

    def play(self, prompts: list[str | bytes | os.PathLike[str]]) -> None:
        """Play to the caller; PlaybackDone when the list ends."""
        self._media.set_remote(self.a)
        self._media.play(self.a, prompts)

    def play_tone(self, name: Tone) -> None:
        self._media.set_remote(self.a)
        self._media.play_tone(self.a, name)

    def stop_playing(self) -> None:
        self._media.stop_playing(self.a, None)

    def hang_up(self, now: float, *, q850_cause: int = NORMAL_CLEARING,
                status: int = 480, cause: str = "hung-up") -> None:
        """Take the whole call down (an application hangs up, or a route failed)."""
        self._finish(Ending(cause, status=status, q850_cause=q850_cause,
                             sip_status=status if self.answered_at is None else None), now)

    # -- events from the legs

    def on_leg_event(self, leg: Leg, event: InviteEvent, now: float) -> None:
        if isinstance(event, DialogRequest):
            self._on_dialog_request(leg, event, now)
        elif isinstance(event, DialogResponse | ReinviteAnswered | ReinviteFailed):
            return  # answers to our NOTIFYs and session refreshes: nothing to do
        elif isinstance(event, AnswerReceived) and not leg.engine_closed:
            self._on_answer(leg, event.sdp, now)
        elif leg.engine_closed and self.state is not CallState.ENDED:
            # A leg that left (transferred away): its dialog finishes by itself.
            if isinstance(event, Held | Resumed):
                leg.session.accept_reinvite(leg.local_sdp, now)
        elif leg in self._parties:
            self.on_party_event(leg, event, now)
        elif self.originate is not None and leg is self.a and not leg.answered:
            if self.state is not CallState.ENDED:
                self.originate.on_agent_event(self, leg, event, now)
        elif self.forking is not None and leg in self.forking.ringing:
            self.forking.on_event(self, leg, event, now)
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
            self._finish(Ending("cancelled", "cancelled", status=487,
                                 reason_header=event.reason_header,
                                 q850_cause=reason_cause(event.reason_header)), now)
        elif isinstance(event, ByeReceived):
            if self.party_left_call(self.a, now):
                return  # a party added to the call took the caller's place
            # A plain BYE (phones send no Reason) is a normal release: the CDR says
            # cause 16, the other side is told nothing more than BYE.
            self._finish(Ending("caller-bye", reason_header=event.reason_header,
                                 q850_cause=reason_cause(event.reason_header),
                                 recorded_q850=NORMAL_CLEARING), now)
        elif isinstance(event, Ended):
            self._finish(Ending(f"caller-{event.cause}"), now)
        elif isinstance(event, Held | Resumed):
            self.answer_reinvite(self.a, event.sdp, now)

    def _on_answer(self, leg: Leg, sdp: bytes, now: float) -> None:
        """The answer to our offer in a 2xx (or reliable 18x) to an INVITE without one.
        A late offer left unanswered is no session: BYE both (RFC 6337 §3.1), Q.850 88;
        a body-less re-INVITE's session just stays as it was."""
        late = leg.media is None
        offer = None if late else SessionDescription.parse(leg.session.local_sdp)
        if self.state is CallState.ENDED or not leg.take_answer(sdp, offer):
            if late and self.state is not CallState.ENDED:
                self._finish(Ending("caller-no-answer" if not sdp else "caller-bad-answer",
                                    q850_cause=INCOMPATIBLE), now)
            return
        self._media.set_remote(leg)  # ringback, prompts or the bridge reach it now

    def _on_b(self, leg: Leg, event: InviteEvent, now: float) -> None:
        if self.state is CallState.ENDED or leg is not self.b:
            return
        a_session = self.a.session
        # After a transfer the caller's side may be a leg we dialled: answered, then.
        unanswered = isinstance(a_session, InviteServer) and a_session.final_status is None
        if isinstance(event, Ringing | EarlyMedia):
            self.leg_ringing(leg)
        if isinstance(event, Ringing):
            self.peer_ringing(now)
        elif isinstance(event, EarlyMedia):
            if leg.take_answer(event.sdp):
                self.state = CallState.RINGING
                if unanswered and isinstance(a_session, InviteServer):
                    if a_session.early_sdp_allowed:
                        a_session.early_media(self.a.local_sdp, now)
                    else:
                        a_session.ring(now)
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
            cause = reason_cause(event.reason_header)
            leg.final_status = event.status
            self.dial_failed(leg, event.status, cause, now,
                             reason_header=event.reason_header)
        elif isinstance(event, ByeReceived):
            if self.party_left_call(leg, now):
                return  # a party added to the call took the callee's place
            # A plain BYE (phones send no Reason) is a normal release: the CDR says
            # cause 16, the other side is told nothing more than BYE.
            self._finish(Ending("callee-bye", reason_header=event.reason_header,
                                 q850_cause=reason_cause(event.reason_header),
                                 recorded_q850=NORMAL_CLEARING), now)
        elif isinstance(event, Ended):
            if not leg.answered and leg.final_status is not None:
                return  # the Rejected before it said it all
            self._finish(Ending(f"callee-{event.cause}"), now)
        elif isinstance(event, Held | Resumed):
            self.answer_reinvite(leg, event.sdp, now)

    def peer_ringing(self, now: float) -> None:
        """The party dialled (or one of the forks) rings: the caller is told so."""
        if self.state is CallState.CALLING:
            self.state = CallState.RINGING
        if self.application is not None:
            self.control.tell(PeerRinging(self.call_id))
        a_session = self.a.session
        unanswered = isinstance(a_session, InviteServer) and a_session.final_status is None
        if unanswered and isinstance(a_session, InviteServer) \
                and not a_session.ring_needs_offer \
                and (not self.a.kind.trunk or not a_session.early_sdp_allowed):
            # A phone plays its own ringback; so does a gateway whose INVITE had
            # no offer (ours cannot go in an unreliable 183, RFC 3261 §13.2.1).
            a_session.ring(now)
        elif self.a.engine_leg not in self._media.playing:
            # The PSTN caller hears ringback only if someone sends it in-band: we do,
            # as early media (an application's caller is answered: same tone).
            if unanswered and isinstance(a_session, InviteServer):
                a_session.early_media(self.a.local_sdp, now)
            self._media.set_remote(self.a)
            self.play_to(self.a, "ringback")

    def dial_failed(self, leg: Leg | None, status: int, q850_cause: int | None, now: float,
                    reason_header: str | None = None) -> None:
        """The dialled leg will not answer: an application is told and keeps the call;
        a bridged call ends with the failure mapped for the caller."""
        if q850_cause is None and status >= 400:
            q850_cause = q850_cause_for_status(status)  # a phone's 486 is still cause 17
        self._ring_deadline = None
        self._media.stop_playing(self.a, "ringback")
        self._media.unbridge(self.a)  # early media was flowing
        if leg is not None:
            self.b = None
            leg.final_status = status
            leg.end_reported = True  # reported here, with the cause
            self.control.report(LegEnded(self.call_id, leg.index, status, q850_cause))
            self.detach(leg)
        if self.application is not None:
            self.control.tell(PeerFailed(self.call_id, status, q850_cause))
            return
        self._finish(Ending(f"rejected-{status}", status=map_failure(status),
                             q850_cause=q850_cause, reason_header=reason_header,
                             sip_status=status), now)

    def on_media(self, event: MediaEvent, now: float) -> None:
        party = self.party_of_engine_leg(event.leg)
        if party is not None:
            if isinstance(event, RtpTimedOut):
                self.party_lost(party, now, "rtp-timeout")
            elif isinstance(event, DtmfReceived):
                self.party_digit(party, event.digit)
            return
        if isinstance(event, RtpTimedOut):
            # A party that put the call on hold with "inactive" (or 0.0.0.0) may send
            # nothing at all until it resumes: silence from it is not a dead far end.
            silent = next((leg for leg in self.legs if leg.engine_leg == event.leg), None)
            if self.state is CallState.ANSWERED and not (silent is not None and silent.held):
                self._finish(Ending("rtp-timeout", q850_cause=TIMER_EXPIRY), now)
        elif isinstance(event, DtmfReceived):
            if self.application is not None and event.leg == self.a.engine_leg:
                self.control.tell(DigitReceived(self.call_id, event.digit))
        elif isinstance(event, PlaybackFinished) \
                and self._media.playing.get(event.leg) == "prompt":
            del self._media.playing[event.leg]
            if self.application is not None:
                self.control.tell(PlaybackDone(self.call_id))

    def next_deadline(self) -> float | None:
        deadlines = [self._ring_deadline, self.forking.deadline if self.forking else None,
                     self.originate.deadline if self.originate else None,
                     self.app_deadline, self.parties_deadline]
        if self.answered_at is not None and self.state is CallState.ANSWERED:
            deadlines.append(self.answered_at + self.control.settings.max_duration_s)
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if self.state is CallState.ENDED:
            return
        if self.forking is not None:
            self.forking.handle_timer(self, now)
        if self.originate is not None:
            self.originate.handle_timer(self, now)
        self.fire_app_timers(now)
        self.party_timers(now)
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
            self._finish(Ending("max-duration", q850_cause=TIMER_EXPIRY), now)

    def retry_hang_up(self, now: float) -> None:
        self._unfinished_byes = [leg for leg in self._unfinished_byes
                                 if not leg.hang_up(now, q850_cause=leg.q850_cause)]

    # -- media

    def _connect(self, now: float) -> None:
        """Both legs have media: bridge them in the engine (once), record both once
        both have answered, and play music on hold where a party is held."""
        b = self.b
        assert b is not None and b.media is not None
        self._media.set_remote(b)
        if self.parked and not b.answered:
            return  # the parked caller's music plays on until the answer
        if not self._media.bridged:
            self._media.stop_playing(self.a, None)
            self._media.set_remote(self.a)
            self._media.bridge(self.a, b)
        self._apply_hold()
        if b.answered:
            self.follow_recording()  # a new party: the same file goes on
            self.report_bridged()

    def _apply_hold(self) -> None:
        if self.b is not None:
            self._media.hold_music(self.a, self.b, self.control.settings.music_on_hold)

    def play_to(self, leg: Leg, tone: Tone) -> None:
        self._media.play_tone(leg, tone)

    def send_dtmf(self, leg: Leg, digits: str) -> None:
        """Send DTMF (RFC 4733 events) toward `leg`: an IVR dialling into another."""
        self._media.send_dtmf(leg, digits)

    # -- transfers (switch.calls.transfers decides, these do)

    def replace(self, old: Leg, new: Leg, now: float) -> None:
        """`new` (answered) takes `old`'s place, bridged to the party that stays;
        `old` is released with a normal BYE."""
        stayer = self.other(old)
        assert stayer is not None
        self._media.stop_playing(stayer, None)
        self._media.stop_playing(new, None)
        self._media.unbridge(stayer)
        self._media.set_remote(stayer)
        self._media.set_remote(new)
        self._media.bridge(stayer, new)
        if old is self.a:
            self.a = new
        else:
            self.b = new
        self.follow_recording()
        self.report_bridged()
        self.detach(old)
        if not old.hang_up(now):
            self._unfinished_byes.append(old)
        self._apply_hold()

    def follow_recording(self, leaving: Leg | None = None) -> None:
        """Feed the call's recording from whoever takes part now: the two parties, and
        added parties everyone hears (conference, barge; never a whisper or a listener)
        on the agent's side; `leaving` is let go before its leg closes."""
        a, b = (None if party is leaving else party for party in (self.a, self.b))
        self._media.follow(a, b, [leg for leg in self.heard_parties() if leg is not leaving])

    def detach(self, leg: Leg) -> None:
        """`leg` no longer takes part: its media and E1 channel are released now, its
        SIP dialog finishes on its own."""
        if not leg.engine_closed:
            self._media.leave_mix(leg)
            self.follow_recording(leaving=leg)
            leg.engine_closed = True
            self._media.stop_playing(leg, None)
            if leg in (self.a, self.b):
                self._media.unbridge(leg)
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
            self._media.stop_playing(leg, "ringback")
        self._apply_hold()

    def release_leg(self, leg: Leg) -> None:
        """`leg` moves to another call (attended transfer): forget it here, media and
        signalling untouched, except what this call did with it."""
        self._media.stop_recording()
        self._media.stop_playing(leg, None)
        self._media.leave_mix(leg)
        self._media.unbridge(leg)
        self.all_legs.remove(leg)
        if leg is self.b:
            self.b = None

    def adopt_leg(self, leg: Leg) -> None:
        self.all_legs.append(leg)
        self.control.adopt(self, leg)

    def answer_reinvite(self, leg: Leg, sdp: bytes, now: float) -> None:
        """A re-INVITE (hold, resume, new address or codec): answer it from the same
        engine leg, follow the new address, and start or stop music on hold."""
        control = self.control
        was_held = leg.held
        try:
            answer = leg.answer_offer(sdp, media_address=control.media_address,
                                      local_port=control.engine.leg_port(leg.engine_leg))
        except SdpError:
            # Keep the call: answer with what we had, the media stays as it was.
            leg.session.accept_reinvite(leg.local_sdp, now)
            return
        leg.session.accept_reinvite(answer, now)
        self.report_hold(leg, was_held)
        if self._media.bridged or (leg is self.a and self.answered_at is not None):
            self._media.set_remote(leg)
        self._apply_hold()

    # -- ending

    def _mark_answered(self, now: float) -> None:
        first = not self.a.answered  # an originated call's agent answered before
        self.a.answered = True
        if self.answered_at is None:
            self.answered_at = now
            self.state = CallState.ANSWERED
            if first:
                self.control.report(LegAnswered(self.call_id, self.a.index))
            self.control.report(CallAnswered(self.call_id))
            if self.recording_policy == "always":
                self.start_recording(now)

    def _finish(self, ending: Ending, now: float) -> None:
        """Take down whatever is still up on every leg, once, and release the media."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.cause = ending.cause
        if self.forking is not None:
            self.forking.cancel(self, now, reason_header=ending.reason_header,
                                q850_cause=ending.q850_cause)
            self.forking = None
        if self.originate is not None:
            self.originate.finished(self, ending)
        self.end_parties(now, ending.q850_cause)
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
        self._app_timers.clear()
        control.report(ending.report(self.call_id, answered=self.answered_at is not None,
                                     variables=self.variables))
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
        self._media.stop_recording()
        self._media.unmix()
        for leg in self.legs:
            if not leg.engine_closed:
                leg.engine_closed = True
                engine.close_leg(leg.engine_leg)
        self._media = CallMedia(engine)
