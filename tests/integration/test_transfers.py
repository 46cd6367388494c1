"""Call transfers from agent phones through the real `callcenter serve` (issue 4): blind
(REFER, RFC 3515) and attended (REFER whose Refer-To carries Replaces, RFC 3891).

The switch is a B2BUA and carries the REFER out itself: the PSTN caller (the gateway
emulator on 127.0.0.2, trusted by address) never sees a REFER; it just finds itself
talking to someone else. What a user would notice is checked:

* who hears whom: every party plays its own tone and records what it hears, and the
  recordings are read after the call (a tone per 100 ms window, Goertzel);
* what the transferor's phone is told: 202, NOTIFYs whose sipfrag bodies say 100 and
  then the final status, and the BYE(s) that release it;
* the CDR rows: which extensions took part in the call (call_legs) and how it ended.

The agents are either SIPp (UAS scenarios in sipp/transfer_*.xml) or `SoftPhone`, a
small phone built on our own sans-I/O SIP classes over a real UDP socket, with a media
engine for its tone and its recording. The test registers each agent's extension with
digest auth, its Contact naming the phone's port (the registrar honours a UDP Contact
on the registering host).

Only audio segments are timed (a call has to last a moment to carry audio); everything
else waits on SIP events, a process exit or CDR rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
import socket
import sqlite3
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from switch.media import MediaEngine
from switch.pri_gateway.emulator import EmulatedCall, GatewayEmulator, tone_pcm
from switch.sip import (
    MAGIC_COOKIE,
    AckReceived,
    Answered,
    ByeReceived,
    DialogRequest,
    DialogResponse,
    Direction,
    Ended,
    Held,
    InviteClient,
    InviteEvent,
    InviteServer,
    NameAddr,
    ParseError,
    Peer,
    ReinviteAnswered,
    Rejected,
    Request,
    RequestReceived,
    Response,
    ResponseReceived,
    Resumed,
    SessionDescription,
    SipMessage,
    SipTransport,
    SipUri,
    StrayResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    build_authorization,
    build_offer,
    build_response,
    negotiate_answer,
    options_response,
    parse_uri,
    process_answer,
)
from switch.sip.refer import ReferTo, Replaces, parse_sipfrag
from tests.conftest import require_tool
from tests.integration.switch_process import SwitchProcess
from tests.integration.test_pri_calls import register as register_on_behalf

pytestmark = pytest.mark.integration

GATEWAY_HOST = "127.0.0.2"  # trusted by address; phones stay on 127.0.0.1
SWITCH_RTP = (44000, 44199)
GATEWAY_RTP = (44200, 44299)
AGENT_RTP = {"1001": (44300, 44349), "1002": (44350, 44399)}
WAIT_S = 10.0
SCENARIOS = Path(__file__).parent / "sipp"

TRANSFEROR, TARGET, NOBODY = "1001", "1002", "1009"  # 1009 has an account, no phone
PASSWORDS = {TRANSFEROR: "agent-pass-1001", TARGET: "agent-pass-1002",
             NOBODY: "agent-pass-1009"}
DID = "4008001001"  # the service number routed to the transferor
CUSTOMER = "+8613800138000"  # as the gateway presents it
CUSTOMER_NATIONAL = "13800138000"  # as the switch passes it on

# Each party's voice, far enough apart for 100 ms windows (10 Hz bins).
CALLER_HZ = 1000.0
TRANSFEROR_HZ = 400.0
TARGET_HZ = 1300.0
MOH_HZ = 700.0
TONES = {"caller": CALLER_HZ, "transferor": TRANSFEROR_HZ, "target": TARGET_HZ,
         "moh": MOH_HZ}

CONFIG = """\
[rtp]
ports = "{rtp_lo}-{rtp_hi}"
[sip.auth]
algorithms = ["MD5"]
[media]
music_on_hold = "{moh}"
[[gateways]]
name = "gw1"
host = "{gw_host}"
port = {gw_port}
[[trunk_groups]]
name = "pstn"
gateways = ["gw1"]
[[routes]]
did = "{did}"
from_trunk = "pstn"
extension = "{agent}"
[[routes]]
extension = true
"""


# -- audio


def write_wav(path: Path, pcm: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm)
    return path


WINDOW = 800  # 100 ms at 8 kHz
MIN_RUN = 3  # a tone must last 300 ms to count: no blips at a switch-over


def tones_heard(path: Path | str | None, channel: int | None = None) -> list[str]:
    """The tones of TONES that a recording carries, in order, each run of at least
    MIN_RUN windows once; a window is a tone when that frequency holds more than half
    of its energy. Silence and anything else (ringback) are left out. `channel`: 0 or
    1 of a stereo recording (the switch's own: caller left, the other party right)."""
    assert path is not None and Path(path).exists(), f"no recording at {path}"
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == \
            (1 if channel is None else 2, 2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channel is not None:
        samples = samples[channel::2]
    samples = samples.astype(np.float64)
    n = np.arange(WINDOW)
    probes = {name: np.exp(-2j * math.pi * hz * n / 8000) for name, hz in TONES.items()}
    labels: list[str] = []
    for start in range(0, len(samples) - WINDOW + 1, WINDOW):
        window = samples[start:start + WINDOW]
        energy = float(np.dot(window, window))
        label = ""
        if energy > WINDOW * 100.0**2:  # above about -50 dBFS
            for name, probe in probes.items():
                if abs(np.dot(window, probe)) ** 2 * 2 / WINDOW > 0.5 * energy:
                    label = name
        labels.append(label)
    runs: list[str] = []
    count = 0
    for k, label in enumerate(labels):
        count = count + 1 if k and labels[k - 1] == label else 1
        if label and count == MIN_RUN and (not runs or runs[-1] != label):
            runs.append(label)
    return runs


async def talk(seconds: float = 1.0) -> None:
    """Let audio flow: a segment of the call, not a wait for an event."""
    await asyncio.sleep(seconds)


async def wait(awaitable: Awaitable[object], what: str, timeout_s: float = WAIT_S) -> None:
    try:
        await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait for a condition outside our loop (a database row)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- registration


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def register(switch: SwitchProcess, extension: str, contact_port: int) -> None:
    """REGISTER `extension` (its test password) with the Contact naming the phone's port."""
    register_on_behalf(switch, extension, PASSWORDS[extension], contact_port)


# -- an agent's phone on our own SIP stack


@dataclass
class PhoneCall:
    """One dialog of a SoftPhone, as the phone's user would see it."""

    call_id: str
    session: InviteClient | InviteServer
    offer: SessionDescription | None = None  # ours, while an answer is due
    leg: int | None = None
    recording: int | None = None
    recording_path: Path | None = None
    answered: bool = False
    bye_received: bool = False
    ended: bool = False
    end_cause: str | None = None
    response: Response | None = None  # the final response to our INVITE
    notifies: list[tuple[int, str]] = field(default_factory=list)  # sipfrag, Sub-State
    responses: list[tuple[str, int]] = field(default_factory=list)  # REFER etc.: status
    sdp_version: int = 1


class SoftPhone:
    """An agent's phone: answers every call at once with its tone, records what it
    hears, places calls with digest auth, holds, sends REFER, answers NOTIFYs 200.
    An asyncio adapter over switch.sip like the gateway emulator: feeds loop.time(),
    drains events, transmits, re-arms one timer."""

    def __init__(self, extension: str, switch_port: int, recordings_dir: Path,
                 tone_hz: float) -> None:
        self.extension = extension
        self.switch_port = switch_port
        self.recordings_dir = recordings_dir
        self.tone_hz = tone_hz
        self.calls: dict[str, PhoneCall] = {}
        self._transport = SipTransport(self._on_message, self._on_parse_error)
        self._layer = TransactionLayer(new_branch=lambda: MAGIC_COOKIE + secrets.token_hex(8))
        self._engine = MediaEngine(workers=1, port_range=AGENT_RTP[extension],
                                   bind_host="127.0.0.1", rtp_timeout_s=3600.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        # False: calls ring until answer_ringing(), so a test can order what happens
        # while the phone rings (a transferor leaving) without racing the answer.
        self.answers_at_once = True
        self._ringing: list[tuple[PhoneCall, bytes]] = []

    @property
    def port(self) -> int:
        return self._transport.port

    @property
    def contact(self) -> NameAddr:
        return NameAddr.parse(f"<sip:{self.extension}@127.0.0.1:{self.port}>")

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._transport.start("127.0.0.1", 0)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self._engine.start()
        self._loop.add_reader(self._engine.events_fd, self._engine.drain_events)

    async def close(self) -> None:
        for call in self.calls.values():
            self._finish(call, "closed")
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None:
            self._loop.remove_reader(self._engine.events_fd)
        self._engine.stop()
        await self._transport.close()

    async def until(self, condition: Callable[[], bool], what: str,
                    timeout_s: float = WAIT_S) -> None:
        """Wait until something this phone saw makes `condition` true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.extension}: timed out waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def incoming(self) -> list[PhoneCall]:
        return [c for c in self.calls.values() if isinstance(c.session, InviteServer)]

    # -- commands

    async def call(self, number: str) -> PhoneCall:
        """Dial `number` through the switch, answering its digest challenge."""
        first = self._invite(number, [])
        await self.until(lambda: first.ended, "the challenge")
        assert first.response is not None and first.response.status == 401, first.response
        challenge = first.response.headers.get("WWW-Authenticate")
        assert challenge is not None
        authorization = build_authorization(
            challenge, "INVITE", self._request_uri(number), self.extension,
            password=PASSWORDS[self.extension], cnonce=secrets.token_hex(4), nc=1)
        return self._invite(number, [("Authorization", authorization)])

    def hold(self, call: PhoneCall) -> None:
        """re-INVITE with a sendonly offer (RFC 3264 §8.4)."""
        assert call.leg is not None
        call.sdp_version += 1
        offer = build_offer("127.0.0.1", self._engine.leg_port(call.leg), session_id=1,
                            session_version=call.sdp_version, direction=Direction.SENDONLY)
        call.offer = offer
        call.session.reinvite(offer.serialize(), self._now())
        self._pump()

    def refer(self, call: PhoneCall, refer_to: ReferTo) -> None:
        call.session.send_request("REFER", self._now(), headers=[
            ("Refer-To", refer_to.serialize()),
            ("Referred-By", f"<sip:{self.extension}@127.0.0.1>")])
        self._pump()

    def hang_up(self, call: PhoneCall) -> None:
        call.session.bye(self._now())
        self._pump()

    # -- internals

    def _now(self) -> float:
        assert self._loop is not None, "start() the phone first"
        return self._loop.time()

    def _request_uri(self, number: str) -> str:
        return f"sip:{number}@127.0.0.1:{self.switch_port}"

    def _invite(self, number: str, headers: list[tuple[str, str]]) -> PhoneCall:
        leg = self._engine.open_leg()
        offer = build_offer("127.0.0.1", self._engine.leg_port(leg), session_id=1,
                            session_version=1)
        call_id = f"{secrets.token_hex(10)}@127.0.0.1"
        session = InviteClient(
            self._layer, Peer("UDP", "127.0.0.1", self.switch_port),
            request_uri=self._request_uri(number),
            from_=NameAddr.parse(f"<sip:{self.extension}@127.0.0.1>").with_tag(
                secrets.token_hex(5)),
            to=NameAddr.parse(f"<{self._request_uri(number)}>"), contact=self.contact,
            call_id=call_id, offer=offer.serialize(), via_host="127.0.0.1",
            via_port=self.port, now=self._now(), extra_headers=headers)
        call = PhoneCall(call_id, session, offer=offer, leg=leg)
        self.calls[call_id] = call
        self._pump()
        return call

    def _on_parse_error(self, error: ParseError, peer: Peer) -> None:
        raise AssertionError(f"{self.extension}: the switch sent garbage: {error}")

    def _on_message(self, message: SipMessage, peer: Peer) -> None:
        self._layer.receive(message, peer, self._now())
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        self._layer.handle_timer(now)
        for call in list(self.calls.values()):
            deadline = call.session.next_deadline()
            if not call.ended and deadline is not None and deadline <= now:
                call.session.handle_timer(now)
                self._session_events(call)
        self._pump()

    def _pump(self) -> None:
        now = self._now()
        while events := self._layer.events():
            for event in events:
                self._route(event, now)
        for outgoing in self._layer.outgoing():
            self._transport.send(outgoing)
        deadlines = [d for d in [self._layer.next_deadline(),
                                 *(c.session.next_deadline() for c in self.calls.values()
                                   if not c.ended)] if d is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines and self._loop is not None:
            self._timer = self._loop.call_at(min(deadlines), self._on_timer)
        self._changed.set()

    def _route(self, event: TransactionEvent, now: float) -> None:
        if isinstance(event, RequestReceived):
            call = self.calls.get(event.request.call_id)
            if call is None:
                self._on_new_request(event, now)
                return
        elif isinstance(event, ResponseReceived | StrayResponseReceived):
            response = event.response
            call = self.calls.get(response.call_id)
            if call is not None and response.cseq.method == "INVITE" \
                    and response.status >= 200 and call.response is None:
                call.response = response
        elif isinstance(event, AckReceived):
            call = self.calls.get(event.request.call_id)
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            call = self.calls.get(event.transaction.request.call_id)
        else:
            return
        if call is not None:
            call.session.handle(event, now)
            self._session_events(call)

    def _on_new_request(self, event: RequestReceived, now: float) -> None:
        request: Request = event.request
        tag = secrets.token_hex(5)
        if request.method == "OPTIONS":
            self._layer.send_response(event.transaction,
                                      options_response(request, to_tag=tag), now)
        elif request.method == "INVITE" and request.to.tag is None:
            self._answer(event, tag, now)
        elif request.method != "ACK":
            self._layer.send_response(event.transaction, build_response(request, 481), now)

    def _answer(self, event: RequestReceived, tag: str, now: float) -> None:
        """Every call is answered at once (180, then 200) and hears our tone."""
        server = InviteServer(self._layer, event, to_tag=tag, contact=self.contact,
                              via_host="127.0.0.1", via_port=self.port,
                              peer=event.transaction.peer)
        call = PhoneCall(event.request.call_id, server)
        self.calls[call.call_id] = call
        call.leg = self._engine.open_leg()
        negotiation = negotiate_answer(
            SessionDescription.parse(server.offer), local_address="127.0.0.1",
            local_port=self._engine.leg_port(call.leg), session_id=1, session_version=1)
        media = negotiation.media
        self._engine.set_remote(call.leg, media.remote_address, media.remote_port,
                                media.payload_type, media.dtmf_payload_type)
        server.ring(now)
        if self.answers_at_once:
            server.answer(negotiation.answer.serialize(), now)
            self._start_media(call)
        else:
            self._ringing.append((call, negotiation.answer.serialize()))
        self._session_events(call)

    def answer_ringing(self) -> None:
        """Answer the calls that ring (answers_at_once = False)."""
        now = self._now()
        for call, answer in self._ringing:
            assert isinstance(call.session, InviteServer)
            call.session.answer(answer, now)
            self._start_media(call)
            self._session_events(call)
        self._ringing.clear()
        self._pump()

    def _start_media(self, call: PhoneCall) -> None:
        assert call.leg is not None
        call.recording_path = self.recordings_dir / f"{call.call_id.split('@')[0]}.wav"
        call.recording = self._engine.record(call.leg, None, call.recording_path,
                                             stereo=False)
        self._engine.play(call.leg, [tone_pcm(self.tone_hz)], loop=True)
        call.answered = True

    def _session_events(self, call: PhoneCall) -> None:
        for event in call.session.events():
            self._on_call_event(call, event)

    def _on_call_event(self, call: PhoneCall, event: InviteEvent) -> None:
        session, now = call.session, self._now()
        if isinstance(event, Answered | ReinviteAnswered) and call.offer is not None:
            assert call.leg is not None
            media = process_answer(call.offer, SessionDescription.parse(event.sdp))
            call.offer = None
            self._engine.set_remote(call.leg, media.remote_address, media.remote_port,
                                    media.payload_type, media.dtmf_payload_type)
            if isinstance(event, Answered):
                self._start_media(call)
        elif isinstance(event, Rejected):
            call.offer = None
        elif isinstance(event, Held | Resumed):
            assert call.leg is not None
            call.sdp_version += 1
            answer = negotiate_answer(
                SessionDescription.parse(event.sdp), local_address="127.0.0.1",
                local_port=self._engine.leg_port(call.leg), session_id=1,
                session_version=call.sdp_version).answer
            session.accept_reinvite(answer.serialize(), now)
        elif isinstance(event, DialogRequest):
            request = event.request
            if request.method == "NOTIFY":
                call.notifies.append((parse_sipfrag(request.body),
                                      request.headers.get("Subscription-State") or ""))
            session.respond(event.transaction, 200, now)
        elif isinstance(event, DialogResponse):
            call.responses.append((event.method, event.status))
        elif isinstance(event, ByeReceived):
            call.bye_received = True
        elif isinstance(event, Ended):
            self._finish(call, event.cause)

    def _finish(self, call: PhoneCall, cause: str) -> None:
        if call.ended:
            return
        call.ended, call.end_cause = True, cause
        if call.recording is not None:
            self._engine.stop_recording(call.recording)
        if call.leg is not None:
            self._engine.close_leg(call.leg)


# -- the switch, the PSTN and the agents


@dataclass
class Setup:
    switch: SwitchProcess
    gateway: GatewayEmulator  # the PSTN
    tmp_path: Path

    @property
    def db_path(self) -> Path:
        return self.switch.workdir / "data" / "callcenter.sqlite3"

    def closed_cdrs(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in
                    db.execute("SELECT * FROM calls WHERE state = 'closed' ORDER BY id")]

    async def cdrs(self, count: int) -> list[dict[str, Any]]:
        """The closed CDRs, once there are `count` of them."""
        await until(lambda: len(self.closed_cdrs()) >= count, f"{count} closed CDRs")
        return self.closed_cdrs()

    def legs(self, call_id: str) -> list[tuple[int, str, int | None]]:
        """(leg_index, peer, answered) of a CDR's legs."""
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute("SELECT leg_index, peer, answered_at IS NOT NULL FROM call_legs"
                              " WHERE call_id = ? ORDER BY leg_index", (call_id,))
            return [(index, peer, answered) for index, peer, answered in rows]

    async def phone(self, extension: str, tone_hz: float) -> SoftPhone:
        phone = SoftPhone(extension, self.switch.udp_port,
                          self.tmp_path / f"phone{extension}", tone_hz)
        await phone.start()
        await asyncio.to_thread(register, self.switch, extension, phone.port)
        return phone

    async def inbound(self) -> EmulatedCall:
        """The customer calls the service number (routed to 1001) and talks (a tone)."""
        call = await self.gateway.place_call(CUSTOMER, DID, audio=("tone", CALLER_HZ))
        await wait(call.answered.wait(), "the answer of the inbound call")
        return call

    def refer_to(self, extension: str, replaces: Replaces | None = None) -> ReferTo:
        return ReferTo(parse_uri(f"sip:{extension}@127.0.0.1:{self.switch.udp_port}"),
                       replaces=replaces)


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[tuple[SwitchProcess, int]]:
    """The switch, started outside the test's event loop (adding users runs its own)."""
    gw_port = free_udp_port(GATEWAY_HOST)
    moh = write_wav(tmp_path / "moh.wav", tone_pcm(MOH_HZ))
    (tmp_path / "switch").mkdir()
    process = SwitchProcess(tmp_path / "switch", CONFIG.format(
        rtp_lo=SWITCH_RTP[0], rtp_hi=SWITCH_RTP[1], moh=moh, gw_host=GATEWAY_HOST,
        gw_port=gw_port, did=DID, agent=TRANSFEROR))
    for extension, password in PASSWORDS.items():
        process.add_user(f"agent{extension}", password, extension)
    process.start()
    yield process, gw_port
    process.stop()


@pytest.fixture
async def setup(switch: tuple[SwitchProcess, int], tmp_path: Path) -> AsyncIterator[Setup]:
    process, gw_port = switch
    gateway = GatewayEmulator(GATEWAY_HOST, gw_port, switch=("127.0.0.1", process.udp_port),
                              media_ports=GATEWAY_RTP, recordings_dir=tmp_path / "gw")
    async with gateway:
        yield Setup(process, gateway, tmp_path)


@contextlib.asynccontextmanager
async def phones(setup: Setup, *tones: tuple[str, float]) -> AsyncIterator[list[SoftPhone]]:
    started: list[SoftPhone] = []
    try:
        for extension, hz in tones:
            started.append(await setup.phone(extension, hz))
        yield started
    finally:
        for phone in started:
            await phone.close()


def sipp_agent(setup: Setup, scenario: str, target: str) -> subprocess.Popen[str]:
    """SIPp as extension 1001 answering on its own port, registered by the test. It
    echoes the RTP it gets, so a caller talking to it hears itself."""
    sipp = require_tool("sipp", "Debian package sip-tester")
    port = free_udp_port()
    register(setup.switch, TRANSFEROR, port)
    return subprocess.Popen(
        [sipp, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
         "-mp", str(free_udp_port()), "-rtp_echo", "-key", "target", target,
         "-key", "domain", f"127.0.0.1:{setup.switch.udp_port}", "-m", "1",
         "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_msg",
         "-message_file", str(setup.tmp_path / "sipp_messages.log"),
         "-trace_err", "-error_file", str(setup.tmp_path / "sipp_errors.log"),
         "-trace_logs", "-log_file", str(setup.tmp_path / "sipp_logs.log")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=setup.tmp_path)


async def sipp_result(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, err = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out[-2000:] + err[-2000:]


async def hang_up_and_wait(caller: EmulatedCall, *others: PhoneCall,
                           phone: SoftPhone | None = None) -> None:
    caller.hangup()
    await wait(caller.ended.wait(), "the caller's call to end")
    if phone is not None:
        await phone.until(lambda: all(c.ended for c in others), "the agent's call to end")


# -- 1. blind transfer


async def test_blind_transfer_by_a_sipp_agent_connects_the_caller_to_the_target(
        setup: Setup) -> None:
    async with phones(setup, (TARGET, TARGET_HZ)) as (target,):
        sipp = sipp_agent(setup, "transfer_blind_uas.xml", TARGET)
        caller = await setup.inbound()
        # SIPp answers, REFERs after 500 ms; the switch rings 1002, which answers.
        await target.until(lambda: any(c.answered for c in target.incoming()),
                           "the transfer target to answer")
        (leg,) = target.incoming()
        # The target is told who is calling: the customer, not the transferor.
        assert isinstance(leg.session, InviteServer)
        caller_uri = leg.session.invite.from_.uri
        assert isinstance(caller_uri, SipUri) and caller_uri.user == CUSTOMER_NATIONAL
        code, output = await sipp_result(sipp)  # REFER, 202, NOTIFY 100, 200, BYE
        assert code == 0, output
        await talk()
        await hang_up_and_wait(caller, leg, phone=target)

    # What the transferor's NOTIFYs said (the scenario fails on any other body).
    notified = (setup.tmp_path / "sipp_logs.log").read_text()
    assert re.findall(r"NOTIFY sipfrag: (SIP/2\.0 \d+)", notified) == \
        ["SIP/2.0 100", "SIP/2.0 200"]
    # The caller talked to 1001 (its echo), then to 1002; 1002 heard the caller.
    assert tones_heard(caller.recording_path) == ["caller", "target"]
    assert tones_heard(leg.recording_path) == ["caller"]
    (cdr,) = await setup.cdrs(1)
    assert cdr["disposition"] == "answered"
    assert setup.legs(cdr["call_id"]) == [(0, "gw1", 1), (1, TRANSFEROR, 1),
                                          (2, TARGET, 1)]
    # One recording of the whole call: the caller, and 1001 (echoing) then 1002.
    assert tones_heard(cdr["recording_path"], 0) == ["caller"]
    assert tones_heard(cdr["recording_path"], 1) == ["caller", "target"]


async def test_blind_transfer_goes_on_when_the_transferor_hangs_up_after_202(
        setup: Setup) -> None:
    async with phones(setup, (TARGET, TARGET_HZ)) as (target,):
        # The target rings until the transferor has left: the BYE after 202 is what
        # this test is about, not a race with an answer.
        target.answers_at_once = False
        sipp = sipp_agent(setup, "transfer_blind_leave_uas.xml", TARGET)
        caller = await setup.inbound()
        code, output = await sipp_result(sipp)  # REFER, 202, NOTIFY 100, BYE, 200
        assert code == 0, output
        await target.until(lambda: bool(target.incoming()), "the transfer target to ring")
        assert not caller.ended.is_set()
        target.answer_ringing()
        await target.until(lambda: any(c.answered for c in target.incoming()),
                           "the transfer target to answer")
        (leg,) = target.incoming()
        assert not caller.ended.is_set()
        await talk()
        await hang_up_and_wait(caller, leg, phone=target)

    assert tones_heard(caller.recording_path) == ["caller", "target"]
    assert tones_heard(leg.recording_path) == ["caller"]
    (cdr,) = await setup.cdrs(1)
    assert cdr["disposition"] == "answered"
    assert [peer for _, peer, _ in setup.legs(cdr["call_id"])] == ["gw1", TRANSFEROR, TARGET]


# -- 2. a transfer that cannot be carried out


# A dialog the switch does not know (RFC 3891 §3: 481 when nothing matches).
UNKNOWN_DIALOG = Replaces("no-such-call@127.0.0.1", to_tag="abc123", from_tag="def456")


@pytest.mark.parametrize(("extension", "replaces", "status"), [
    pytest.param(NOBODY, None, 480, id="blind-to-unregistered"),
    pytest.param(TARGET, UNKNOWN_DIALOG, 481, id="attended-unknown-dialog"),
])
async def test_failed_transfer_leaves_the_caller_with_the_agent(
        setup: Setup, extension: str, replaces: Replaces | None, status: int) -> None:
    async with phones(setup, (TRANSFEROR, TRANSFEROR_HZ)) as (agent,):
        caller = await setup.inbound()
        await agent.until(lambda: any(c.answered for c in agent.incoming()), "the answer")
        (leg,) = agent.incoming()
        await talk(0.5)
        agent.refer(leg, setup.refer_to(extension, replaces))
        await agent.until(lambda: len(leg.notifies) >= 2, "the NOTIFYs")
        assert leg.responses == [("REFER", 202)]
        assert leg.notifies == [(100, "active;expires=60"),
                                (status, "terminated;reason=noresource")]
        # Still connected, both ways.
        await talk()
        assert not leg.ended and not caller.ended.is_set()
        await hang_up_and_wait(caller, leg, phone=agent)

    assert tones_heard(caller.recording_path) == ["transferor"]
    assert tones_heard(leg.recording_path) == ["caller"]
    (cdr,) = await setup.cdrs(1)
    assert cdr["disposition"] == "answered"
    assert setup.legs(cdr["call_id"]) == [(0, "gw1", 1), (1, TRANSFEROR, 1)]


# -- 3. attended transfer


async def test_attended_transfer_bridges_the_caller_with_the_consulted_agent(
        setup: Setup) -> None:
    async with phones(setup, (TRANSFEROR, TRANSFEROR_HZ), (TARGET, TARGET_HZ)) \
            as (agent, target):
        caller = await setup.inbound()
        await agent.until(lambda: any(c.answered for c in agent.incoming()), "the answer")
        (first,) = agent.incoming()
        await talk(0.5)

        agent.hold(first)  # the caller hears music on hold
        await agent.until(lambda: first.offer is None, "the answer to the hold")
        consultation = await agent.call(TARGET)
        await agent.until(lambda: consultation.answered, "the consulted agent's answer")
        (consulted,) = target.incoming()
        await talk(0.5)

        dialog = consultation.session.dialog
        assert dialog is not None
        # Replaces names the consultation dialog as the switch knows it: the switch's
        # tag is the to-tag, the transferor's the from-tag (RFC 3891 §3).
        replaces = Replaces(dialog.id.call_id, to_tag=dialog.id.remote_tag or "",
                            from_tag=dialog.id.local_tag)
        agent.refer(first, setup.refer_to(TARGET, replaces))
        await agent.until(lambda: first.ended and consultation.ended,
                          "both of the transferor's calls to be released")
        assert first.responses[:1] == [("REFER", 202)]
        assert [status for status, _ in first.notifies] == [100, 200]
        assert first.bye_received and consultation.bye_received
        assert not consulted.ended and not caller.ended.is_set()
        await talk()
        await hang_up_and_wait(caller, consulted, phone=target)

    # The caller heard the agent, music while held, then the consulted agent; the
    # consulted agent heard the transferor, then the caller.
    assert tones_heard(caller.recording_path) == ["transferor", "moh", "target"]
    assert tones_heard(consulted.recording_path) == ["transferor", "caller"]
    # And the transferor heard the caller, then the consulted agent.
    assert tones_heard(first.recording_path) == ["caller"]
    assert tones_heard(consultation.recording_path) == ["target"]
    cdrs = {row["direction"]: row for row in await setup.cdrs(2)}
    first_cdr, consult_cdr = cdrs["inbound"], cdrs["internal"]
    assert (consult_cdr["caller"], consult_cdr["callee"]) == (TRANSFEROR, TARGET)
    assert first_cdr["disposition"] == consult_cdr["disposition"] == "answered"
    assert [peer for _, peer, _ in setup.legs(first_cdr["call_id"])] == \
        ["gw1", TRANSFEROR, TARGET]
    # The customer's call is one recording: the caller, the agent then the consulted
    # agent; the consultation has its own.
    assert tones_heard(first_cdr["recording_path"], 0) == ["caller"]
    assert tones_heard(first_cdr["recording_path"], 1) == ["transferor", "target"]
    assert tones_heard(consult_cdr["recording_path"], 1) == ["target"]
    assert [peer for _, peer, _ in setup.legs(consult_cdr["call_id"])] == \
        [TRANSFEROR, TARGET]
