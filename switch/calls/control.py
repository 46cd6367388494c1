"""`CallControl`: every call on one TransactionLayer. It routes transaction and media
events to their call by SIP Call-ID and engine leg, runs call timers off a heap, and
accepts new INVITEs as calls (see switch.calls.call for what a call does)."""

from __future__ import annotations

import functools
import heapq
import itertools
import secrets
from collections.abc import Callable

from switch.calls.call import Call
from switch.calls.events import (
    CallEvent,
    CallStarted,
    ChannelEvent,
    LegAdded,
)
from switch.calls.legs import Leg, callee_codecs
from switch.calls.parties import PartyError, PartyMode
from switch.calls.types import (
    CallOrigin,
    CallSettings,
    CallState,
    DialTarget,
    MediaControl,
)
from switch.media import MediaError, MediaEvent
from switch.pri_gateway import (
    Seizure,
)
from switch.sip import (
    AckReceived,
    InviteClient,
    InviteServer,
    NameAddr,
    Peer,
    RequestReceived,
    ResponseReceived,
    SdpError,
    StrayResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    build_offer,
)


class CallControl:
    """All calls on one TransactionLayer; the owner routes events here by Call-ID."""

    def __init__(self, layer: TransactionLayer, engine: MediaControl, *, via_host: str,
                 via_port: int, media_address: str, new_token: Callable[[], str],
                 new_session_id: Callable[[], int],
                 settings: CallSettings | None = None,
                 release: Callable[[Seizure], object] = lambda seizure: None,
                 randbelow: Callable[[int], int] = secrets.randbelow) -> None:
        self.layer = layer
        self.engine = engine
        self.via_host, self.via_port = via_host, via_port
        self.media_address = media_address
        self.new_token = new_token
        self.new_session_id = new_session_id
        self.settings = settings or CallSettings()
        self.release = release  # gives an E1 channel back to the trunk accounting
        # Every leg retries a re-INVITE (hold, resume, session refresh) that met glare
        # after the RFC 3261 §14.1 random pause, drawn from here (switch.sip.glare);
        # the first RSeq of reliable provisional responses too (RFC 3262 §3).
        self.randbelow = randbelow
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
        # Dialled legs of finished calls while another fork may still answer their
        # INVITE (RFC 6026 §8.4): such a 2xx is ACKed and BYEd by the session
        # (RFC 3261 §13.2.2.4) and concerns nobody else. A heap of (until, Call-ID).
        self._lingering: dict[str, InviteClient] = {}
        self._lingering_until: list[tuple[float, str]] = []
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
        """Take an INVITE on as a call: an engine leg for the caller and our SDP answer,
        or our offer when the INVITE had none (not sent yet: routing decides whether
        to ring someone or answer). None when the offer is unusable (answered 488) or
        no RTP port is free (503)."""
        session = InviteServer(self.layer, received, to_tag=self.new_token(),
                               contact=self.contact, via_host=self.via_host,
                               via_port=self.via_port, peer=caller_peer,
                               glare_random=self.randbelow,
                               session_expires_s=self.settings.session_expires_s,
                               min_se_s=self.settings.min_se_s, rseq_random=self.randbelow)
        try:
            engine_leg = self.engine.open_leg(group=received.request.call_id)
        except MediaError:  # no free RTP port
            session.reject(503, now)
            return None
        leg = Leg(0, session, engine_leg, origin.kind, session_id=self.new_session_id(),
                  seizure=origin.seizure)
        local_port = self.engine.leg_port(engine_leg)
        if session.late_offer:
            # No SDP in the INVITE (RFC 3261 §13.2.1): our offer goes in the 2xx and
            # the caller answers in its ACK (Call takes it from AnswerReceived).
            leg.make_offer(media_address=self.media_address, local_port=local_port)
        else:
            try:
                leg.answer_offer(received.request.body, media_address=self.media_address,
                                 local_port=local_port)
            except SdpError as exc:
                self.engine.close_leg(engine_leg)
                session.reject(exc.status, now)
                return None
        return self._start(Call(self, self.new_token(), leg, origin, now))

    def originate(self, target: DialTarget, origin: CallOrigin, now: float) -> Call | None:
        """A call we start: its first leg (`a`) rings `target` (the agent's phone) with
        our offer of every codec; None when no RTP port is free."""
        try:
            engine_leg = self.engine.open_leg()
        except MediaError:
            return None
        session_id = self.new_session_id()
        offer = build_offer(self.media_address, self.engine.leg_port(engine_leg),
                            session_id=session_id, session_version=1,
                            codecs=callee_codecs(None))
        session = self.new_client(target, offer.serialize(), now)
        leg = Leg(0, session, engine_leg, target.kind, session_id=session_id)
        leg.offered(offer)
        return self._start(Call(self, self.new_token(), leg, origin, now))

    def _start(self, call: Call) -> Call:
        self.calls[call.call_id] = call
        self.adopt(call, call.a)
        origin = call.origin
        self.report(CallStarted(call.call_id, origin.direction, origin.caller,
                                origin.callee, origin.trunk, origin.gateway))
        self.report(LegAdded(call.call_id, 0, call.a.kind.name, call.a.sip_call_id))
        return call

    def new_client(self, target: DialTarget, offer: bytes, now: float) -> InviteClient:
        """The INVITE session of a leg a call dials, with our SIP settings."""
        call_id = self.new_token()
        return InviteClient(
            self.layer, target.peer, request_uri=target.request_uri,
            from_=target.from_.with_tag(self.new_token()), to=target.to,
            contact=self.contact, call_id=call_id, offer=offer, via_host=self.via_host,
            via_port=self.via_port, now=now, extra_headers=list(target.headers),
            glare_random=self.randbelow, session_expires_s=self.settings.session_expires_s,
            min_se_s=self.settings.min_se_s,
            # Gateways may send reliable 18x (RFC 3262); we PRACK them. Phones are not
            # asked to: their 180 needs no reliability.
            reliable_provisional=target.kind.trunk)

    def adopt(self, call: Call, leg: Leg) -> None:
        self._by_sip_call_id[leg.sip_call_id] = (call, leg)
        self._by_engine_leg[leg.engine_leg] = call

    # -- parties added to a call that is up (switch.calls.parties)

    def add_party(self, call_id: str, number: str, now: float, *,
                  mode: PartyMode = "conference", coached_index: int | None = None,
                  ring_timeout_s: float | None = None) -> int:
        """Ring `number` (an extension or an outside number, as a transfer would) and put
        it on the call in `mode` when it answers; returns the new leg's index. PartyError
        when the call, the number or the mode will not do (nothing is left ringing)."""
        call = self._call(call_id)
        coached = None if coached_index is None else self._leg(call, coached_index)
        target = self.resolve(call, number, now)
        if isinstance(target, int):
            raise PartyError(f"cannot ring {number!r} (SIP {target})")
        try:
            leg = call.add_party(target, now, mode=mode, coached=coached,
                                 ring_timeout_s=ring_timeout_s)
        except PartyError:
            if target.seizure is not None:
                self.release(target.seizure)
            raise
        self._drain(call, now)
        return leg.index

    def set_party_mode(self, call_id: str, leg_index: int, mode: PartyMode, now: float, *,
                       coached_index: int | None = None) -> None:
        call = self._call(call_id)
        coached = None if coached_index is None else self._leg(call, coached_index)
        call.set_party_mode(self._leg(call, leg_index), mode, coached)
        self._drain(call, now)

    def remove_party(self, call_id: str, leg_index: int, now: float) -> None:
        call = self._call(call_id)
        call.remove_party(self._leg(call, leg_index), now)
        self._drain(call, now)

    def take_over(self, call_id: str, leg_index: int, replaced_index: int,
                  now: float) -> None:
        """The added party `leg_index` replaces the call's party `replaced_index`."""
        call = self._call(call_id)
        call.take_over(self._leg(call, leg_index), self._leg(call, replaced_index), now)
        self._drain(call, now)

    def _call(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None or call.state is CallState.ENDED:
            raise PartyError(f"no call {call_id!r} is up")
        return call

    @staticmethod
    def _leg(call: Call, index: int) -> Leg:
        leg = next((leg for leg in call.all_legs if leg.index == index), None)
        if leg is None or leg.ended:
            raise PartyError(f"call {call.call_id} has no leg {index} up")
        return leg

    # -- inputs

    def find_leg(self, sip_call_id: str) -> tuple[Call, Leg] | None:
        return self._by_sip_call_id.get(sip_call_id)

    def owns(self, sip_call_id: str) -> bool:
        return sip_call_id in self._by_sip_call_id

    def handle(self, event: TransactionEvent, now: float) -> bool:
        """Route a transaction event to its call; False when no call knows it."""
        sip_call_id = _call_id_of(event)
        if sip_call_id is None:
            return False
        found = self._by_sip_call_id.get(sip_call_id)
        if found is None:
            lingering = self._lingering.get(sip_call_id)
            if lingering is None:
                return False
            lingering.handle(event, now)
            lingering.events()  # the call is over: nothing there is news to anyone
            return True
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
                break
            heapq.heappop(heap)  # superseded by a later schedule, or the call is gone
        deadlines = [heap[0][0]] if heap else []
        if self._lingering_until:
            deadlines.append(self._lingering_until[0][0])
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        """Run the timers of the calls that are due (a heap: thousands of calls up
        cost nothing until one of them has something to do)."""
        lingering = self._lingering_until
        while lingering and lingering[0][0] <= now:
            self._lingering.pop(heapq.heappop(lingering)[1], None)
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
            self._forget(call, now)
        else:
            self._schedule(call)

    def _forget(self, call: Call, now: float) -> None:
        self.calls.pop(call.call_id, None)
        self._scheduled.pop(call.call_id, None)
        for leg in call.all_legs:
            self._by_sip_call_id.pop(leg.sip_call_id, None)
            self._by_engine_leg.pop(leg.engine_leg, None)
            session = leg.session
            if isinstance(session, InviteClient) and session.forks_until is not None \
                    and session.forks_until > now:
                self._lingering[leg.sip_call_id] = session
                heapq.heappush(self._lingering_until, (session.forks_until, leg.sip_call_id))


def _call_id_of(event: TransactionEvent) -> str | None:
    if isinstance(event, RequestReceived | AckReceived):
        return event.request.call_id
    if isinstance(event, ResponseReceived | StrayResponseReceived):
        return event.response.call_id
    if isinstance(event, TransactionTimedOut | TransportFailed):
        return event.transaction.request.call_id
    return None
