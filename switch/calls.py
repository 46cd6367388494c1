"""Call control, first cut: a back-to-back user agent with media anchored in our engine.

A `Call` is an inbound leg (an `InviteServer` facing the caller), an outbound leg (an
`InviteClient` facing the callee) and two engine legs bridged to each other. The caller
is answered with our engine leg's address and port, the callee is offered our other leg,
so RTP always flows through the switch (never direct media).

`CallControl` is sans-I/O like the SIP stack below it: it shares the service's
`TransactionLayer`, takes `now` on every input, and the owner (switch.signalling) routes
transaction events to `handle`, media events to `handle_media`, and calls
`handle_timer(now)` at `next_deadline()`. It never touches a socket or a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from switch.media import MediaError, MediaEvent, RtpTimedOut
from switch.sip import (
    AckReceived,
    LocalProtocolError,
    NameAddr,
    NegotiatedMedia,
    Peer,
    RequestReceived,
    ResponseReceived,
    SdpError,
    SessionDescription,
    SipUri,
    StrayResponseReceived,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    build_offer,
    negotiate_answer,
    process_answer,
)
from switch.sip.invite_client import (
    Answered,
    ByeReceived,
    Cancelled,
    EarlyMedia,
    Ended,
    Held,
    InviteClient,
    InviteEvent,
    Rejected,
    Resumed,
    Ringing,
)
from switch.sip.invite_server import InviteServer
from switch.sip.offer_answer import CODECS, TELEPHONE_EVENT
from switch.sip.transaction import TransactionEvent

__all__ = ["Call", "CallControl", "CallEnded", "CallState", "MediaControl", "map_failure"]


class MediaControl(Protocol):
    """The part of `MediaEngine` (and `FakeMediaEngine`) call control drives."""

    def open_leg(self, group: str | None = None, rtcp_mux: bool = False) -> int: ...
    def leg_port(self, leg: int) -> int: ...
    def set_remote(self, leg: int, host: str, port: int, payload_type: int = 0,
                   dtmf_payload_type: int | None = 101) -> None: ...
    def bridge(self, a: int, b: int) -> None: ...
    def close_leg(self, leg: int) -> None: ...
    def drain_events(self) -> list[MediaEvent]: ...


class CallState(Enum):
    CALLING = "calling"  # INVITE sent to the callee, nothing heard yet
    RINGING = "ringing"  # the callee rings (or sends early media)
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str  # the caller's Call-ID
    cause: str  # "caller-bye", "callee-bye", "cancelled", "rejected-486", "rtp-timeout"...


# The callee's final failure -> what the caller hears. A B2BUA answers for itself, so
# some answers cannot be passed on: a 503 would make the caller's proxy try elsewhere
# (RFC 3261 §16.7 item 6), 401/407 challenge the callee's credentials, not the caller's,
# and a redirect of an agent phone is not the caller's to follow. Others pass unchanged.
_FAILURE_MAP: dict[int, int] = {
    401: 500, 407: 500, 408: 480, 481: 500, 487: 487, 503: 500,
    300: 480, 301: 480, 302: 480, 305: 480, 380: 480,
}


def map_failure(status: int) -> int:
    """The status to answer the caller with when the callee's leg failed with `status`."""
    return _FAILURE_MAP.get(status, status if status >= 400 else 480)


class Call:
    """One internal call: caller leg in, callee leg out, media bridged in the engine."""

    def __init__(self, control: CallControl, inbound: InviteServer, a_leg: int, b_leg: int,
                 answer_sdp: bytes, a_media: NegotiatedMedia) -> None:
        self.control = control
        self.inbound = inbound
        self.outbound: InviteClient | None = None
        self.a_leg = a_leg  # engine leg facing the caller
        self.b_leg = b_leg  # engine leg facing the callee
        self.answer_sdp = answer_sdp  # our answer to the caller's offer
        self.a_media = a_media
        self.offer: SessionDescription | None = None  # our offer to the callee
        self.state = CallState.CALLING
        self.cause: str | None = None
        self._media_open = True
        self._answer_version = 1
        self._bye_on_ack = False  # hung up before the caller ACKed our 200

    @property
    def call_id(self) -> str:
        return self.inbound.invite.call_id

    def __repr__(self) -> str:
        return f"<Call {self.call_id} {self.state.value}>"

    @property
    def done(self) -> bool:
        """Nothing more to route to this call: both SIP legs have ended."""
        return self.inbound.ended and (self.outbound is None or self.outbound.ended)

    def sessions(self) -> Iterator[InviteServer | InviteClient]:
        yield self.inbound
        if self.outbound is not None:
            yield self.outbound

    # -- events from the legs

    def on_inbound(self, event: InviteEvent, now: float) -> None:
        if isinstance(event, Cancelled):
            self._finish("cancelled", now)
        elif isinstance(event, ByeReceived):
            self._finish("caller-bye", now)
        elif isinstance(event, Ended):
            self._finish(f"caller-{event.cause}", now)
        elif isinstance(event, Held | Resumed):
            self._answer_reinvite(event.sdp, now)

    def on_outbound(self, event: InviteEvent, now: float) -> None:
        inbound = self.inbound
        if self.state is CallState.ENDED:
            return
        if isinstance(event, Ringing):
            if inbound.final_status is None and self.state is CallState.CALLING:
                self.state = CallState.RINGING
                inbound.ring(now)
        elif isinstance(event, EarlyMedia):
            if inbound.final_status is None and self._connect_media(event.sdp, now):
                self.state = CallState.RINGING
                inbound.early_media(self.answer_sdp, now)
        elif isinstance(event, Answered):
            if inbound.final_status is not None:
                return
            if not self._connect_media(event.sdp, now):
                self._finish("callee-bad-sdp", now, caller_status=488)
                return
            self.state = CallState.ANSWERED
            inbound.answer(self.answer_sdp, now)
        elif isinstance(event, Rejected):
            self._finish(f"rejected-{event.status}", now,
                         caller_status=map_failure(event.status))
        elif isinstance(event, Cancelled):
            self._finish("cancelled", now)
        elif isinstance(event, ByeReceived):
            self._finish("callee-bye", now)
        elif isinstance(event, Ended):
            self._finish(f"callee-{event.cause}", now)
        elif isinstance(event, Held | Resumed):
            # First cut: the callee's re-INVITE keeps our address; answer it as is.
            outbound = self.outbound
            assert outbound is not None and self.offer is not None
            outbound.accept_reinvite(self.offer.serialize(), now)

    def retry_hang_up(self, now: float) -> None:
        if self._bye_on_ack and not self.inbound.ended and _hang_up(self.inbound, now):
            self._bye_on_ack = False

    def on_media(self, event: MediaEvent, now: float) -> None:
        if isinstance(event, RtpTimedOut) and self.state is CallState.ANSWERED:
            self._finish("rtp-timeout", now)

    # -- helpers

    def _connect_media(self, sdp: bytes, now: float) -> bool:
        assert self.offer is not None
        try:
            media = process_answer(self.offer, SessionDescription.parse(sdp))
        except SdpError:
            return False
        engine = self.control.engine
        engine.set_remote(self.b_leg, media.remote_address, media.remote_port,
                          media.payload_type, media.dtmf_payload_type)
        a = self.a_media
        engine.set_remote(self.a_leg, a.remote_address, a.remote_port, a.payload_type,
                          a.dtmf_payload_type)
        engine.bridge(self.a_leg, self.b_leg)
        return True

    def _answer_reinvite(self, sdp: bytes, now: float) -> None:
        control = self.control
        self._answer_version += 1
        try:
            negotiation = negotiate_answer(
                SessionDescription.parse(sdp), local_address=control.media_address,
                local_port=control.engine.leg_port(self.a_leg),
                session_id=self._session_id(), session_version=self._answer_version)
        except SdpError:
            # Keep the call; the caller keeps the media it had (answer with the last SDP).
            self.inbound.accept_reinvite(self.answer_sdp, now)
            return
        self.a_media = negotiation.media
        self.answer_sdp = negotiation.answer.serialize()
        if self.state is CallState.ANSWERED:
            a = negotiation.media
            control.engine.set_remote(self.a_leg, a.remote_address, a.remote_port,
                                      a.payload_type, a.dtmf_payload_type)
        self.inbound.accept_reinvite(self.answer_sdp, now)

    def _session_id(self) -> int:
        return SessionDescription.parse(self.answer_sdp).origin.session_id

    def _finish(self, cause: str, now: float, caller_status: int = 480) -> None:
        """Take down whatever is still up on both legs, once, and release the media."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.cause = cause
        inbound, outbound = self.inbound, self.outbound
        if not inbound.ended:
            if inbound.final_status is None:
                inbound.reject(caller_status, now)
            elif inbound.final_status < 300 and not _hang_up(inbound, now):
                self._bye_on_ack = True
        if outbound is not None and not outbound.ended:
            if outbound.final_status is None:
                outbound.cancel(now)
            elif outbound.answered:
                _hang_up(outbound, now)
        self._close_media()
        self.control.ended.append(CallEnded(self.call_id, cause))

    def _close_media(self) -> None:
        if not self._media_open:
            return
        self._media_open = False
        self.control.engine.close_leg(self.a_leg)
        self.control.engine.close_leg(self.b_leg)


def _hang_up(session: InviteServer | InviteClient, now: float) -> bool:
    """BYE now; False while the dialog is not confirmed yet (our 2xx awaits its ACK)."""
    try:
        session.bye(now)
    except LocalProtocolError:
        return False
    return True


class CallControl:
    """All calls on one TransactionLayer; the owner routes events here by Call-ID."""

    def __init__(self, layer: TransactionLayer, engine: MediaControl, *, via_host: str,
                 via_port: int, media_address: str, new_token: Callable[[], str],
                 new_session_id: Callable[[], int]) -> None:
        self.layer = layer
        self.engine = engine
        self.via_host, self.via_port = via_host, via_port
        self.media_address = media_address
        self._new_token = new_token
        self._new_session_id = new_session_id
        self.calls: dict[str, Call] = {}  # by the caller's Call-ID
        self._by_call_id: dict[str, tuple[Call, bool]] = {}  # Call-ID -> (call, inbound?)
        self._by_leg: dict[int, Call] = {}
        self.ended: list[CallEnded] = []

    @property
    def contact(self) -> NameAddr:
        return NameAddr.parse(f"<sip:{self.via_host}:{self.via_port}>")

    def events(self) -> list[CallEnded]:
        ended, self.ended = self.ended, []
        return ended

    # -- starting a call

    def place(self, received: RequestReceived, caller_peer: Peer, *, callee_uri: str,
              callee_to: NameAddr, callee_peer: Peer, now: float,
              calling_extension: str | None = None) -> Call | None:
        """Answer-side setup for a routed INVITE: our engine leg for the caller, an
        offer from our other leg to the callee. None when the caller's offer is unusable
        (it has then been answered 488) or the engine has no port (503).

        `calling_extension` is who authenticated: the callee is told that number, not
        whatever the caller wrote in its From (a phone cannot pose as another)."""
        server = InviteServer(self.layer, received, to_tag=self._new_token(),
                              contact=self.contact, via_host=self.via_host,
                              via_port=self.via_port, peer=caller_peer)
        try:
            offer = SessionDescription.parse(received.request.body)
        except SdpError as exc:
            # An empty body is a late offer, which this first cut does not take.
            server.reject(exc.status if received.request.body else 488, now)
            return None
        try:
            a_leg = self.engine.open_leg(group=received.request.call_id)
        except MediaError:  # no free RTP port
            server.reject(503, now)
            return None
        session_id = self._new_session_id()
        try:
            negotiation = negotiate_answer(
                offer, local_address=self.media_address,
                local_port=self.engine.leg_port(a_leg), session_id=session_id,
                session_version=1)
        except SdpError as exc:
            self.engine.close_leg(a_leg)
            server.reject(exc.status, now)
            return None
        try:
            b_leg = self.engine.open_leg(group=received.request.call_id)
        except MediaError:  # no free RTP port
            self.engine.close_leg(a_leg)
            server.reject(503, now)
            return None
        call = Call(self, server, a_leg, b_leg, negotiation.answer.serialize(),
                    negotiation.media)
        # Offer the callee the caller's codec only, so the bridge relays without
        # transcoding (plus DTMF if the caller has it).
        codec = CODECS[negotiation.media.codec_name.lower()]
        codecs = (codec, TELEPHONE_EVENT) if negotiation.media.dtmf_payload_type is not None \
            else (codec,)
        call.offer = build_offer(self.media_address, self.engine.leg_port(b_leg),
                                 session_id=self._new_session_id(), session_version=1,
                                 codecs=codecs)
        caller = received.request.from_
        if calling_extension is not None:
            host = caller.uri.host if isinstance(caller.uri, SipUri) else self.via_host
            caller = NameAddr(SipUri(host=host, user=calling_extension), caller.display_name)
        from_ = caller.with_tag(self._new_token())
        out_call_id = self._new_token()
        call.outbound = InviteClient(
            self.layer, callee_peer, request_uri=callee_uri, from_=from_, to=callee_to,
            contact=self.contact, call_id=out_call_id, offer=call.offer.serialize(),
            via_host=self.via_host, via_port=self.via_port, now=now)
        self.calls[call.call_id] = call
        self._by_call_id[call.call_id] = (call, True)
        self._by_call_id[out_call_id] = (call, False)
        self._by_leg[a_leg] = call
        self._by_leg[b_leg] = call
        return call

    # -- inputs

    def owns(self, call_id: str) -> bool:
        return call_id in self._by_call_id

    def handle(self, event: TransactionEvent, now: float) -> bool:
        """Route a transaction event to its call; False when no call knows it."""
        call_id = _call_id_of(event)
        found = self._by_call_id.get(call_id) if call_id is not None else None
        if found is None:
            return False
        call, inbound = found
        session = call.inbound if inbound else call.outbound
        assert session is not None
        session.handle(event, now)
        call.retry_hang_up(now)
        self._drain(call, now)
        return True

    def handle_media(self, events: list[MediaEvent], now: float) -> None:
        for event in events:
            call = self._by_leg.get(getattr(event, "leg", -1))
            if call is not None:
                call.on_media(event, now)
                self._drain(call, now)

    def next_deadline(self) -> float | None:
        return min((d for call in self.calls.values() for s in call.sessions()
                    if (d := s.next_deadline()) is not None), default=None)

    def handle_timer(self, now: float) -> None:
        for call in list(self.calls.values()):
            for session in call.sessions():
                session.handle_timer(now)
            self._drain(call, now)

    def _drain(self, call: Call, now: float) -> None:
        # Handling one leg's event may make the other leg emit (and vice versa).
        while True:
            inbound = call.inbound.events()
            outbound = call.outbound.events() if call.outbound is not None else []
            if not inbound and not outbound:
                break
            for event in inbound:
                call.on_inbound(event, now)
            for event in outbound:
                call.on_outbound(event, now)
        if call.done:
            self._forget(call)

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.call_id, None)
        for session in call.sessions():
            self._by_call_id.pop(session.invite.call_id, None)
        self._by_leg.pop(call.a_leg, None)
        self._by_leg.pop(call.b_leg, None)


def _call_id_of(event: TransactionEvent) -> str | None:
    if isinstance(event, RequestReceived | AckReceived):
        return event.request.call_id
    if isinstance(event, ResponseReceived | StrayResponseReceived):
        return event.response.call_id
    if isinstance(event, TransactionTimedOut | TransportFailed):
        return event.transaction.request.call_id
    return None
