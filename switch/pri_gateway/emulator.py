"""A PRI media gateway emulator: the PSTN side of N E1 spans, speaking SIP to the switch.

A library for tests, the demo and the benchmarks, and a program
(`python -m switch.pri_gateway.emulator --help`). It places calls toward the switch
(caller/called numbers, audio, an RFC 4733 DTMF script, a hang-up with a Q.850 cause)
and answers calls from the switch with a scripted outcome per called number. Every
call records what it hears, so a test can check that audio crossed the switch.

Like a real PRI gateway it trusts the switch by address (never sends credentials), and
it has 30 channels per span shared by both directions: an INVITE beyond them gets 503
with `Reason: Q.850;cause=34`, and `place_call` refuses to start one.

This is an asyncio adapter over the sans-I/O stack (STYLE.md §4): it feeds
`loop.time()` in, drains events, transmits and re-arms one timer. The scripted parts of
a call (DTMF times, hang-up after N seconds, no-answer timeout) are loop timers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import secrets
import struct
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from switch.media import DtmfReceived, MediaEngine, MediaError
from switch.pri_gateway.errors import PriGatewayError
from switch.pri_gateway.q850 import (
    ReasonHeaderError,
    format_reason,
    parse_reason,
    q850_cause_for_status,
    q850_cause_from_reason,
    sip_status_for_cause,
)
from switch.pri_gateway.trunks import CHANNELS_PER_E1_SPAN
from switch.sip import (
    MAGIC_COOKIE,
    AckReceived,
    Answered,
    ByeReceived,
    Direction,
    Ended,
    Held,
    InviteClient,
    InviteEvent,
    InviteServer,
    NameAddr,
    NoAcceptableMedia,
    ParseError,
    Peer,
    Rejected,
    Request,
    RequestReceived,
    Response,
    ResponseReceived,
    Resumed,
    SdpError,
    SessionDescription,
    SipMessage,
    SipTransport,
    SipUri,
    StrayResponseReceived,
    TelUri,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    Uri,
    build_offer,
    build_response,
    negotiate_answer,
    options_response,
    process_answer,
)

__all__ = [
    "OUTCOME_RESPONSES",
    "Audio",
    "EmulatedCall",
    "EmulatorError",
    "GatewayEmulator",
    "Outcome",
    "main",
    "tone_pcm",
]

SAMPLE_RATE_HZ = 8000  # G.711 (RFC 3551 §4.5.14)
TONE_AMPLITUDE = 8000  # about -12 dBm0: loud enough to detect, far from clipping
NO_ANSWER_AFTER_S = 30.0  # how long NO_ANSWER rings before 480 (cause 19)
Q850_NORMAL_CLEARING = 16  # Q.850 Table 1
Q850_NO_CIRCUIT_AVAILABLE = 34  # Q.850 Table 1: every channel of the spans is busy

# ("tone", hz) for a sine, or a WAV path; None sends nothing.
Audio = tuple[str, float] | str | os.PathLike[str] | None


class EmulatorError(PriGatewayError):
    """The emulator cannot do what was asked (all channels busy, bad argument)."""


class Outcome(Enum):
    """What the emulated PSTN does with a call the switch sends it."""

    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    UNALLOCATED = "unallocated"
    CONGESTION = "congestion"


# The final response and Q.850 cause of each failing outcome (RFC 3398 §8.2.6.1 / Q.850).
OUTCOME_RESPONSES: dict[Outcome, tuple[int, int]] = {
    Outcome.BUSY: (486, 17),  # user busy
    Outcome.NO_ANSWER: (480, 19),  # no answer from user (user alerted)
    Outcome.UNALLOCATED: (404, 1),  # unallocated (unassigned) number
    Outcome.CONGESTION: (503, 34),  # no circuit/channel available
}


def tone_pcm(frequency_hz: float, seconds: float = 1.0) -> bytes:
    """Signed 16-bit 8 kHz PCM of a sine; a whole second of an integer frequency loops
    without a click."""
    n_samples = int(SAMPLE_RATE_HZ * seconds)
    step = 2 * math.pi * frequency_hz / SAMPLE_RATE_HZ
    samples = [round(TONE_AMPLITUDE * math.sin(step * k)) for k in range(n_samples)]
    return struct.pack(f"<{n_samples}h", *samples)


def _reason_cause(message: SipMessage) -> int | None:
    value = message.headers.get("Reason")
    if value is None:
        return None
    try:
        return q850_cause_from_reason(parse_reason(value))
    except ReasonHeaderError:
        return None


def _user(uri: Uri) -> str:
    if isinstance(uri, SipUri):
        return uri.user or ""
    if isinstance(uri, TelUri):
        return uri.number
    return ""


def _reason(cause: int) -> list[tuple[str, str]]:
    """`Reason: Q.850;cause=N` for a BYE, CANCEL or failure response (RFC 3326, RFC 6432)."""
    return [("Reason", format_reason(cause))]


class EmulatedCall:
    """One call on the emulated spans, placed by us (`placed`) or by the switch."""

    def __init__(self, emulator: GatewayEmulator, call_id: str, caller: str, called: str,
                 *, placed: bool) -> None:
        self._emulator = emulator
        self.call_id = call_id
        self.caller = caller
        self.called = called
        self.placed = placed
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.final_status: int | None = None
        self.remote_reason: int | None = None  # Q.850 cause of the far end's BYE/failure
        self.end_cause: str | None = None  # the session's Ended.cause
        self.recording_path: Path | None = None
        self.digits = ""  # RFC 4733 digits heard on this call
        self.held = False  # the far end's last re-INVITE put us on hold
        self.reinvites_answered = 0
        self.reinvited = asyncio.Event()  # set at each re-INVITE we answered
        self.session: InviteClient | InviteServer | None = None
        self.invite: Request | None = None  # the switch's INVITE (calls we received)
        self.response: Response | None = None  # the final response to our INVITE
        self.provisionals: list[Response] = []  # 101-199 to our INVITE, resends too
        self.bye: Request | None = None  # the far end's BYE, if it hung up
        self.cancel: Request | None = None  # the far end's CANCEL, if it gave up ringing
        self.leg: int | None = None
        self._recording: int | None = None
        self._sdp_id = 0  # o= session id of our SDP; the version counts up (RFC 3264 §8)
        self._sdp_version = 1
        self._digit_arrived = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []

    def __repr__(self) -> str:
        return (f"<EmulatedCall {self.caller}->{self.called} status={self.final_status} "
                f"ended={self.ended.is_set()}>")

    async def wait_digits(self, count: int) -> str:
        """Wait until `count` digits were heard (wrap in asyncio.wait_for)."""
        while len(self.digits) < count:
            self._digit_arrived.clear()
            await self._digit_arrived.wait()
        return self.digits

    def hangup(self, q850_cause: int = Q850_NORMAL_CLEARING) -> None:
        """BYE with the cause once answered; CANCEL before that (placed calls)."""
        self._emulator._hangup(self, q850_cause)

    def hold(self) -> None:
        """re-INVITE with a sendonly offer (RFC 3264 §8.4)."""
        self._emulator._reinvite(self, Direction.SENDONLY)

    def resume(self) -> None:
        self._emulator._reinvite(self, Direction.SENDRECV)

    def _heard_digit(self, digit: str) -> None:
        self.digits += digit
        self._digit_arrived.set()


@dataclass(frozen=True, slots=True)
class _Script:
    audio: Audio
    dtmf: tuple[tuple[float, str], ...]
    hangup_after_s: float | None
    q850_cause: int


class GatewayEmulator:
    """The PSTN side of `spans` E1 spans, sending calls to and taking calls from `switch`."""

    def __init__(self, local_host: str = "127.0.0.1", sip_port: int = 0, *,
                 switch: tuple[str, int] | None = None, spans: int = 1,
                 media_ports: tuple[int, int] = (30000, 30999),
                 recordings_dir: str | os.PathLike[str] | None = None,
                 answer_audio: Audio = ("tone", 400.0), require_100rel: bool = False) -> None:
        if spans < 1:
            raise EmulatorError(f"spans must be >= 1, got {spans}")
        self.local_host = local_host
        self.sip_port = sip_port
        self.switch = switch
        self.spans = spans
        self.answer_audio = answer_audio
        # Like many PRI gateways: our INVITEs say Require: 100rel, so every 18x of the
        # switch must come reliably and we PRACK it (RFC 3262).
        self.require_100rel = require_100rel
        self.recordings_dir = Path(recordings_dir or tempfile.mkdtemp(prefix="gw-emulator-"))
        self.calls: dict[str, EmulatedCall] = {}  # every call, ended ones too
        self.down = False
        self.ignored_while_down = 0  # messages dropped by set_down(True)
        self._media_ports = media_ports
        self._outcomes: dict[str, Outcome] = {}
        self._no_answer_after_s = NO_ANSWER_AFTER_S
        self._answer_after_s = 0.0  # ANSWER rings this long first
        self._transport = SipTransport(self._on_message, self._on_parse_error)
        self._layer = TransactionLayer(new_branch=lambda: MAGIC_COOKIE + secrets.token_hex(8))
        self._engine: MediaEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._scripts: dict[str, _Script] = {}
        self._offers: dict[str, SessionDescription] = {}
        self._sdp_versions = itertools.count(1)

    # -- lifecycle

    @property
    def channels(self) -> int:
        return self.spans * CHANNELS_PER_E1_SPAN

    @property
    def busy_channels(self) -> int:
        return sum(1 for call in self.calls.values() if not call.ended.is_set())

    @property
    def address(self) -> tuple[str, int]:
        return self.local_host, self._transport.port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._transport.start(self.local_host, self.sip_port)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        engine = MediaEngine(workers=1, port_range=self._media_ports,
                             bind_host=self.local_host, rtp_timeout_s=3600.0)
        engine.start()
        self._engine = engine
        self._loop.add_reader(engine.events_fd, self._on_media_events)

    async def close(self) -> None:
        for call in self.calls.values():
            self._finish(call, "closed")
        if self._timer is not None:
            self._timer.cancel()
        if self._engine is not None and self._loop is not None:
            self._loop.remove_reader(self._engine.events_fd)
            self._engine.stop()
            self._engine = None
        await self._transport.close()

    async def __aenter__(self) -> GatewayEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- scripting

    def set_outcome(self, number_or_prefix: str, outcome: Outcome) -> None:
        """Outcome for calls whose called number equals or starts with this; the longest
        match wins; "" is the default (ANSWER when nothing matches)."""
        self._outcomes[number_or_prefix] = outcome

    def set_no_answer_timeout(self, seconds: float) -> None:
        self._no_answer_after_s = seconds

    def set_answer_delay(self, seconds: float) -> None:
        """Calls answered (Outcome.ANSWER) ring this long first (0: answer at once)."""
        self._answer_after_s = seconds

    def set_down(self, down: bool) -> None:
        """A dead gateway: every incoming message is ignored (OPTIONS too)."""
        self.down = down

    def outcome_for(self, called: str) -> Outcome:
        matches = [p for p in self._outcomes if called.startswith(p)]
        return self._outcomes[max(matches, key=len)] if matches else Outcome.ANSWER

    async def place_call(self, caller: str, called: str, *, audio: Audio = None,
                         dtmf: Sequence[tuple[float, str]] = (),
                         hangup_after_s: float | None = None,
                         q850_cause: int = Q850_NORMAL_CLEARING,
                         headers: Sequence[tuple[str, str]] = ()) -> EmulatedCall:
        """Send an INVITE to the switch from `caller` to `called`; returns at once (wait
        on `call.answered` / `call.ended`). Once answered: play `audio`, send `dtmf`
        (seconds after the answer, digits), hang up after `hangup_after_s` with
        `q850_cause`. `headers` go on the INVITE (a test posing as a phone adds its
        Authorization there)."""
        if self.switch is None:
            raise EmulatorError("no switch address to send calls to")
        if self.busy_channels >= self.channels:
            raise EmulatorError(f"all {self.channels} channels are busy")
        format_reason(q850_cause)  # validates the cause before anything is sent
        engine = self._require_engine()
        call_id = f"{secrets.token_hex(12)}@{self.local_host}"
        call = EmulatedCall(self, call_id, caller, called, placed=True)
        call.leg = engine.open_leg()
        call._sdp_id = next(self._sdp_versions)
        offer = build_offer(self.local_host, engine.leg_port(call.leg),
                            session_id=call._sdp_id, session_version=1)
        host, port = self.switch
        peer = Peer("UDP", host, port)
        local = f"{self.local_host}:{self._transport.port}"
        now = self._now()
        call.session = InviteClient(
            self._layer, peer, request_uri=f"sip:{called}@{host}:{port}",
            from_=NameAddr.parse(f"<sip:{caller}@{local}>").with_tag(secrets.token_hex(6)),
            to=NameAddr.parse(f"<sip:{called}@{host}:{port}>"),
            contact=NameAddr.parse(f"<sip:{caller}@{local}>"), call_id=call_id,
            offer=offer.serialize(), via_host=self.local_host,
            via_port=self._transport.port, now=now,
            extra_headers=[*headers, *([("Require", "100rel")] if self.require_100rel else [])],
            reliable_provisional=self.require_100rel)
        self.calls[call_id] = call
        self._scripts[call_id] = _Script(audio, tuple(dtmf), hangup_after_s, q850_cause)
        self._offers[call_id] = offer
        self._pump()
        return call

    # -- SIP in

    def _now(self) -> float:
        assert self._loop is not None, "start() the emulator first"
        return self._loop.time()

    def _on_parse_error(self, error: ParseError, peer: Peer) -> None:
        pass  # a test peer's garbage: a gateway would drop it too

    def _on_message(self, message: SipMessage, peer: Peer) -> None:
        if self.down:
            self.ignored_while_down += 1
            return
        self._layer.receive(message, peer, self._now())
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        self._layer.handle_timer(now)
        for call in list(self.calls.values()):
            session = call.session
            if session is not None and not call.ended.is_set():
                deadline = session.next_deadline()
                if deadline is not None and deadline <= now:
                    session.handle_timer(now)
                    self._session_events(call)
        self._pump()

    def _pump(self) -> None:
        """Route transaction events to calls, transmit, re-arm the one timer."""
        now = self._now()
        while events := self._layer.events():
            for event in events:
                self._route(event, now)
        for outgoing in self._layer.outgoing():
            self._transport.send(outgoing)
        self._arm()

    def _arm(self) -> None:
        deadlines = [d for d in [self._layer.next_deadline(),
                                 *(c.session.next_deadline() for c in self.calls.values()
                                   if c.session is not None and not c.ended.is_set())]
                     if d is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines and self._loop is not None:
            self._timer = self._loop.call_at(min(deadlines), self._on_timer)

    def _route(self, event: TransactionEvent, now: float) -> None:
        if isinstance(event, RequestReceived):
            request = event.request
            call = self.calls.get(request.call_id)
            if call is None:
                self._on_new_request(event, now)
                return
            if request.method == "BYE":
                call.remote_reason = _reason_cause(request)
                call.bye = request
            elif request.method == "CANCEL":
                call.remote_reason = _reason_cause(request)
                call.cancel = request
        elif isinstance(event, ResponseReceived | StrayResponseReceived):
            response: Response = event.response
            call = self.calls.get(response.call_id)
            if call is not None and 101 <= response.status <= 199 \
                    and response.cseq.method == "INVITE":
                call.provisionals.append(response)
            if call is not None and response.status >= 200 \
                    and response.cseq.method == "INVITE" and call.response is None:
                call.response = response
                if response.status >= 300:
                    call.remote_reason = _reason_cause(response)
        elif isinstance(event, AckReceived):
            call = self.calls.get(event.request.call_id)
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            call = self.calls.get(event.transaction.request.call_id)
        else:
            return
        if call is not None and call.session is not None:
            call.session.handle(event, now)
            self._session_events(call)

    def _on_new_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        tag = secrets.token_hex(6)
        if request.method == "OPTIONS":
            self._layer.send_response(event.transaction, options_response(request, to_tag=tag),
                                      now)
        elif request.method == "INVITE" and request.to.tag is None:
            self._on_invite(event, now)
        elif request.method != "ACK":
            self._layer.send_response(event.transaction, build_response(request, 481), now)

    def _on_invite(self, event: RequestReceived, now: float) -> None:
        request = event.request
        call = EmulatedCall(self, request.call_id, _user(request.from_.uri),
                            _user(request.uri), placed=False)
        call.invite = request
        call._sdp_id = next(self._sdp_versions)
        full = self.busy_channels >= self.channels
        local = f"{self.local_host}:{self._transport.port}"
        server = InviteServer(self._layer, event, to_tag=secrets.token_hex(6),
                         contact=NameAddr.parse(f"<sip:{call.called}@{local}>"),
                         via_host=self.local_host, via_port=self._transport.port,
                         peer=event.transaction.peer)
        call.session = server
        self.calls[call.call_id] = call
        if full:
            server.reject(503, now, headers=_reason(Q850_NO_CIRCUIT_AVAILABLE))
            self._session_events(call)
            return
        outcome = self.outcome_for(call.called)
        if outcome is Outcome.ANSWER and self._answer_after_s > 0:
            server.ring(now)
            self._later(call, self._answer_after_s, self._answer_later, call, server)
        elif outcome is Outcome.ANSWER:
            self._answer(call, server, now)
        elif outcome is Outcome.NO_ANSWER:
            server.ring(now)
            status, cause = OUTCOME_RESPONSES[outcome]
            self._later(call, self._no_answer_after_s, self._reject_later, call, status, cause)
        else:
            status, cause = OUTCOME_RESPONSES[outcome]
            server.reject(status, now, headers=_reason(cause))
        self._session_events(call)

    def _answer(self, call: EmulatedCall, server: InviteServer, now: float) -> None:
        engine = self._require_engine()
        leg = engine.open_leg()
        call.leg = leg
        try:
            negotiation = negotiate_answer(
                SessionDescription.parse(server.offer), local_address=self.local_host,
                local_port=engine.leg_port(leg), session_id=call._sdp_id,
                session_version=1)
        except SdpError as exc:
            status = exc.status if isinstance(exc, NoAcceptableMedia) else 488
            server.reject(status, now, headers=_reason(q850_cause_for_status(status)))
            return
        media = negotiation.media
        engine.set_remote(leg, media.remote_address, media.remote_port, media.payload_type,
                          media.dtmf_payload_type)
        server.ring(now)
        server.answer(negotiation.answer.serialize(), now)
        self._start_media(call, self.answer_audio)

    def _answer_later(self, call: EmulatedCall, server: InviteServer) -> None:
        if server.final_status is None and not call.ended.is_set():
            self._answer(call, server, self._now())
            self._session_events(call)
            self._pump()

    def _answer_reinvite(self, call: EmulatedCall, sdp: bytes) -> None:
        """Hold/resume from the far end: answer with the same leg, follow its address."""
        engine = self._require_engine()
        session = call.session
        assert session is not None and call.leg is not None
        call._sdp_version += 1
        try:
            negotiation = negotiate_answer(
                SessionDescription.parse(sdp), local_address=self.local_host,
                local_port=engine.leg_port(call.leg), session_id=call._sdp_id,
                session_version=call._sdp_version)
        except SdpError:
            self._hangup(call, 47)  # resource unavailable, unspecified
            return
        media = negotiation.media
        engine.set_remote(call.leg, media.remote_address, media.remote_port,
                          media.payload_type, media.dtmf_payload_type)
        session.accept_reinvite(negotiation.answer.serialize(), self._now())
        call.reinvites_answered += 1
        call.reinvited.set()

    def _reinvite(self, call: EmulatedCall, direction: Direction) -> None:
        engine = self._require_engine()
        session = call.session
        if session is None or call.leg is None or not call.answered.is_set():
            raise EmulatorError("only an answered call can be put on hold")
        call._sdp_version += 1
        offer = build_offer(self.local_host, engine.leg_port(call.leg),
                            session_id=call._sdp_id, session_version=call._sdp_version,
                            direction=direction)
        session.reinvite(offer.serialize(), self._now())
        self._pump()

    def _reject_later(self, call: EmulatedCall, status: int, cause: int) -> None:
        session = call.session
        if isinstance(session, InviteServer) and session.final_status is None \
                and not call.ended.is_set():
            session.reject(status, self._now(), headers=_reason(cause))
            self._session_events(call)
            self._pump()

    # -- call progress

    def _session_events(self, call: EmulatedCall) -> None:
        session = call.session
        assert session is not None
        for event in session.events():
            self._on_call_event(call, event)

    def _on_call_event(self, call: EmulatedCall, event: InviteEvent) -> None:
        session = call.session
        if isinstance(event, Answered) and isinstance(session, InviteClient):
            call.final_status = session.final_status
            self._on_answered(call, event.sdp)
        elif isinstance(event, Rejected):
            call.final_status = event.status
        elif isinstance(event, Held | Resumed):
            call.held = isinstance(event, Held)
            self._answer_reinvite(call, event.sdp)
        elif isinstance(event, ByeReceived):
            pass  # remote_reason was read from the BYE on its way in
        elif isinstance(event, Ended):
            assert session is not None
            if isinstance(session, InviteServer) or call.final_status is None:
                call.final_status = session.final_status  # also 487 after our CANCEL
            self._finish(call, event.cause)

    def _on_answered(self, call: EmulatedCall, sdp: bytes) -> None:
        engine = self._require_engine()
        offer = self._offers.pop(call.call_id)
        script = self._scripts.pop(call.call_id)
        assert call.leg is not None
        try:
            media = process_answer(offer, SessionDescription.parse(sdp))
        except SdpError:
            self._hangup(call, 47)  # resource unavailable, unspecified
            return
        engine.set_remote(call.leg, media.remote_address, media.remote_port,
                          media.payload_type, media.dtmf_payload_type)
        self._start_media(call, script.audio)
        for at_s, digits in script.dtmf:
            self._later(call, at_s, self._send_dtmf, call, digits)
        if script.hangup_after_s is not None:
            self._later(call, script.hangup_after_s, self._hangup, call, script.q850_cause)

    def _start_media(self, call: EmulatedCall, audio: Audio) -> None:
        engine = self._require_engine()
        assert call.leg is not None
        call.recording_path = self.recordings_dir / f"{call.call_id.split('@')[0]}.wav"
        call._recording = engine.record(call.leg, None, call.recording_path, stereo=False)
        if isinstance(audio, tuple):
            engine.play(call.leg, [tone_pcm(audio[1])], loop=True)
        elif audio is not None:
            engine.play(call.leg, [os.fspath(audio)])
        call.answered.set()
        if call.final_status is None:
            call.final_status = 200

    def _send_dtmf(self, call: EmulatedCall, digits: str) -> None:
        if call.leg is not None and not call.ended.is_set():
            self._require_engine().send_dtmf(call.leg, digits)

    def _hangup(self, call: EmulatedCall, q850_cause: int) -> None:
        session = call.session
        if session is None or call.ended.is_set() or session.ended:
            return
        now = self._now()
        reason = _reason(q850_cause)
        if call.answered.is_set():
            session.bye(now, headers=reason)
        elif isinstance(session, InviteClient):
            session.cancel(now, headers=reason)
        elif session.final_status is None:
            session.reject(sip_status_for_cause(q850_cause), now, headers=reason)
        self._session_events(call)
        self._pump()

    def _finish(self, call: EmulatedCall, cause: str) -> None:
        if call.ended.is_set():
            return
        call.end_cause = cause
        for timer in call._timers:
            timer.cancel()
        self._scripts.pop(call.call_id, None)
        self._offers.pop(call.call_id, None)
        engine = self._engine
        if engine is not None:
            with contextlib.suppress(MediaError):
                if call._recording is not None:
                    engine.stop_recording(call._recording)
                if call.leg is not None:
                    engine.close_leg(call.leg)
        call.ended.set()

    def _later(self, call: EmulatedCall, delay_s: float, callback: Callable[..., object],
               *args: object) -> None:
        """A scripted step of `call`, cancelled when the call ends."""
        assert self._loop is not None
        call._timers.append(self._loop.call_later(delay_s, callback, *args))

    # -- media in

    def _on_media_events(self) -> None:
        engine = self._engine
        if engine is None:
            return
        by_leg = {c.leg: c for c in self.calls.values()
                  if c.leg is not None and not c.ended.is_set()}
        for event in engine.drain_events():
            if isinstance(event, DtmfReceived) and event.leg in by_leg:
                by_leg[event.leg]._heard_digit(event.digit)

    def _require_engine(self) -> MediaEngine:
        if self._engine is None:
            raise EmulatorError("start() the emulator first")
        return self._engine


# -- the program


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _port_range(text: str) -> tuple[int, int]:
    low, _sep, high = text.partition(":")
    if not (low.isdigit() and high.isdigit() and 0 < int(low) < int(high) < 65536):
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH ports, got {text!r}")
    return int(low), int(high)


def _call_spec(text: str) -> tuple[str, str]:
    caller, sep, called = text.partition(":")
    if not sep or not caller or not called:
        raise argparse.ArgumentTypeError(f"expected CALLER:CALLED, got {text!r}")
    return caller, called


def _outcome_spec(text: str) -> tuple[str, Outcome]:
    number, _sep, name = text.partition("=")
    try:
        return number, Outcome(name)
    except ValueError:
        choices = ", ".join(o.value for o in Outcome)
        raise argparse.ArgumentTypeError(
            f"expected NUMBER=OUTCOME with OUTCOME one of {choices}, got {text!r}") from None


def _dtmf_spec(text: str) -> tuple[float, str]:
    at, _sep, digits = text.partition(":")
    try:
        return float(at), digits
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS:DIGITS, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m switch.pri_gateway.emulator",
        description="Emulate a PRI media gateway (E1 spans) toward the switch: place a "
                    "call, or listen and answer calls with scripted outcomes.")
    parser.add_argument("--switch", type=_host_port, help="the switch's SIP HOST:PORT")
    parser.add_argument("--listen", action="store_true",
                        help="answer calls from the switch until interrupted")
    parser.add_argument("--bind", type=_host_port, default=("127.0.0.1", 0),
                        help="our SIP HOST:PORT (default 127.0.0.1, any port)")
    parser.add_argument("--spans", type=int, default=1, help="E1 spans (30 channels each)")
    parser.add_argument("--media-ports", type=_port_range, default=(30000, 30999), metavar="LO:HI",
                        help="RTP port range (default 30000:30999)")
    parser.add_argument("--call", type=_call_spec, metavar="CALLER:CALLED",
                        help="place one call")
    parser.add_argument("--tone", type=float, metavar="HZ", help="play a sine tone")
    parser.add_argument("--wav", help="play a WAV file (8 kHz mono)")
    parser.add_argument("--dtmf", type=_dtmf_spec, action="append", default=[],
                        metavar="SECONDS:DIGITS", help="send RFC 4733 digits after answer")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="hang up this long after the answer")
    parser.add_argument("--cause", type=int, default=Q850_NORMAL_CLEARING,
                        help="Q.850 cause of our hang-up (default 16)")
    parser.add_argument("--outcome", type=_outcome_spec, action="append", default=[],
                        metavar="NUMBER=OUTCOME",
                        help="listen mode: answer, busy, no-answer, unallocated, congestion"
                             " for a called number or prefix")
    parser.add_argument("--recordings", help="directory for recordings")
    parser.add_argument("--require-100rel", action="store_true",
                        help="our INVITEs require reliable provisional responses (RFC 3262)")
    return parser


async def _run(args: argparse.Namespace) -> int:
    emulator = GatewayEmulator(args.bind[0], args.bind[1], switch=args.switch,
                               spans=args.spans, media_ports=args.media_ports,
                               recordings_dir=args.recordings,
                               require_100rel=args.require_100rel)
    async with emulator:
        print(f"gateway emulator on {emulator.address[0]}:{emulator.address[1]}, "
              f"{emulator.channels} channels", flush=True)
        if args.listen:
            for number, outcome in args.outcome:
                emulator.set_outcome(number, outcome)
            await asyncio.Event().wait()  # until interrupted
            return 0
        audio: Audio = ("tone", args.tone) if args.tone is not None else args.wav
        caller, called = args.call
        call = await emulator.place_call(caller, called, audio=audio, dtmf=args.dtmf,
                                         hangup_after_s=args.seconds,
                                         q850_cause=args.cause)
        await call.ended.wait()
        reason = f" Q.850 cause {call.remote_reason}" if call.remote_reason else ""
        print(f"{caller} -> {called}: {call.final_status}{reason}, ended: {call.end_cause}, "
              f"heard digits {call.digits!r}, recording {call.recording_path}")
        return 0 if call.answered.is_set() else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.listen and (args.call is None or args.switch is None):
        parser.error("give --switch and --call to place a call, or --listen")
    if args.tone is not None and args.wav is not None:
        parser.error("--tone and --wav exclude each other")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_run(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
