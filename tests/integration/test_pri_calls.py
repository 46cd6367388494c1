"""Calls between the PSTN side (the PRI gateway emulator on 127.0.0.2) and agent phones
through the real `callcenter serve`, over loopback: signalling, audio both ways, Q.850
causes across legs, channel accounting and the CDR rows the switch writes.

Who is where. The switch trusts a gateway by its source address, so the gateway
emulator runs on 127.0.0.2 and every phone on 127.0.0.1 (which must authenticate).
The agent phone of most tests is a second GatewayEmulator on 127.0.0.1: it answers,
rejects, holds, plays a tone and records what it hears, like a phone would; the test
registers extension 1001 on its behalf (digest, Contact naming the emulator's port,
which the registrar honours for a UDP contact on the registering host). SIPp answers
as the agent in one test here; pyVoIP does in test_pyvoip_calls.py.

Audio is checked, not assumed: each side plays its own tone and records what it
hears; the recordings are analysed with an FFT/Goertzel after the call. The only
timed waits are the lengths of those audio segments (a call has to last a moment to
carry audio); everything else waits on SIP events, log lines or CDR rows.
"""

from __future__ import annotations

import asyncio
import math
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apps import Database, UserService, upgrade_database
from switch.pri_gateway.emulator import EmulatedCall, GatewayEmulator, Outcome
from switch.sip import Response, build_authorization
from tests.conftest import require_tool
from tests.integration.peers import UdpClient
from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "sipp"
GATEWAY_HOST = "127.0.0.2"  # trusted by address; phones stay on 127.0.0.1
SWITCH_RTP = (42000, 42399)
GATEWAY_RTP = (43000, 43199)
AGENT_RTP = (43200, 43399)
WAIT_S = 10.0

AGENT, AGENT_PASSWORD = "1001", "agent-pass-1001"
PHONE, PHONE_PASSWORD = "2001", "phone-pass-2001"
NOBODY = "1009"  # an extension with an account whose phone never registers
DID_AGENT = "4008001001"  # the service number routed to extension 1001
DID_NOBODY = "4008001009"
DID_PROMPT = "4008009999"  # answered by the placeholder application
CUSTOMER = "+8613800138000"  # as the gateway presents it
CUSTOMER_NATIONAL = "13800138000"  # as the CDR keeps it

GATEWAY_TONE_HZ = 1000.0  # what the PSTN party says
AGENT_TONE_HZ = 400.0  # what the agent says
MOH_HZ = 700.0  # the music on hold configured for these tests
PROMPT_HZ = 1300.0

CONFIG = """\
[rtp]
ports = "{rtp_lo}-{rtp_hi}"
[sip.auth]
algorithms = ["MD5"]
[calls]
drain_timeout_s = 20
[media]
music_on_hold = "{moh}"
[[gateways]]
name = "gw1"
host = "{gw_host}"
port = {gw_port}
spans = {spans}
[[trunk_groups]]
name = "pstn"
gateways = ["gw1"]
[[routes]]
did = "{did_agent}"
from_trunk = "pstn"
extension = "{agent}"
[[routes]]
did = "{did_nobody}"
from_trunk = "pstn"
extension = "{nobody}"
[[routes]]
did = "{did_prompt}"
from_trunk = "pstn"
application = "prompt"
prompt = "welcome.wav"
[[routes]]
extension = true
[[routes]]
prefix = "9"
trunk_group = "pstn"
strip = 1
prepend = "{prepend}"
[[routes]]
prefix = "0"
trunk_group = "pstn"
strip = 1
"""
OUTSIDE_LINE = "9"  # the outbound prefix, stripped ...
PREPEND = "17909"  # ... and an IP long-distance access code put in front


# -- audio


def tone_pcm(frequency_hz: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * math.pi * frequency_hz * t) * amplitude).astype("<i2").tobytes()


def write_wav(path: Path, pcm: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm)
    return path


def samples_of(path: Path | None) -> np.ndarray[Any, np.dtype[np.float64]]:
    assert path is not None, "the call recorded nothing"
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data.astype(np.float64)


def switch_recording(cdr: dict[str, Any]) -> tuple[np.ndarray[Any, np.dtype[np.float64]],
                                                   np.ndarray[Any, np.dtype[np.float64]]]:
    """The switch's own recording of a call, as its CDR names it: (left, right), the
    caller and whoever answered."""
    assert cdr["recording_path"] is not None, "the switch recorded nothing"
    with wave.open(cdr["recording_path"]) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data[0::2].astype(np.float64), data[1::2].astype(np.float64)


def dominant_hz(samples: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    assert len(samples) >= 2000, f"only {len(samples)} samples recorded"
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


def heard(path: Path | None) -> float:
    """The dominant frequency of what a call recorded."""
    return dominant_hz(samples_of(path))


WINDOW = 800  # 100 ms


def window_labels(path: Path | None, candidates: dict[str, float]) -> list[str]:
    """What each 100 ms of a recording is: the name of the candidate tone carrying most
    of its energy (Goertzel), "silence", or "other"."""
    samples = samples_of(path)
    labels: list[str] = []
    for start in range(0, len(samples) - WINDOW + 1, WINDOW):
        window = samples[start:start + WINDOW]
        energy = float(np.sum(window * window))
        if energy < WINDOW * 100.0**2:  # below about -50 dBFS: nothing there
            label = "silence"
        else:
            label = "other"
            for name, hz in candidates.items():
                if _goertzel_power(window, hz) > 0.5 * energy:
                    label = name
        labels.append(label)
    return labels


def _goertzel_power(window: np.ndarray[Any, np.dtype[np.float64]], hz: float) -> float:
    """Energy of `window` at `hz` (Goertzel, normalised so a pure tone gives its total)."""
    coeff = 2 * math.cos(2 * math.pi * hz / 8000)
    s1 = s2 = 0.0
    for x in window:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2 / len(window)


# -- the switch and its peers


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def register(switch: SwitchProcess, extension: str, password: str, contact_port: int,
             expires_s: int = 3600) -> None:
    """REGISTER `extension` with digest auth from a scratch socket on 127.0.0.1, its
    Contact naming the phone's own port (so INVITEs go there)."""
    udp = UdpClient()
    try:
        call_id, uri = uuid.uuid4().hex, "sip:127.0.0.1"

        def request(cseq: int, extra: str = "") -> bytes:
            return (f"REGISTER {uri} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{udp.port};branch=z9hG4bK{uuid.uuid4().hex}"
                    ";rport\r\nMax-Forwards: 70\r\n"
                    f"From: <sip:{extension}@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
                    f"To: <sip:{extension}@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
                    f"CSeq: {cseq} REGISTER\r\n"
                    f"Contact: <sip:{extension}@127.0.0.1:{contact_port}>\r\n"
                    f"Expires: {expires_s}\r\n{extra}Content-Length: 0\r\n\r\n").encode()

        challenge = udp.request(request(1), switch.udp_port)
        assert challenge is not None and challenge.status == 401, challenge
        value = challenge.headers.get("WWW-Authenticate")
        assert value is not None
        authorization = build_authorization(value, "REGISTER", uri, extension,
                                            password=password, cnonce="c0ffee", nc=1)
        ok = udp.request(request(2, f"Authorization: {authorization}\r\n"), switch.udp_port)
        assert ok is not None and ok.status == 200, ok
    finally:
        udp.close()


async def wait(awaitable: Awaitable[object], what: str, timeout_s: float = WAIT_S) -> None:
    try:
        await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait for a condition outside our loop (a file, a database row, a log line)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def talk(seconds: float) -> None:
    """Let audio flow for a while: a segment of the call, not a wait for an event."""
    await asyncio.sleep(seconds)


@dataclass
class Pri:
    switch: SwitchProcess
    gateway: GatewayEmulator  # the PSTN
    agent: GatewayEmulator  # extension 1001's phone
    tmp_path: Path
    abandon_calls: bool = False  # the switch died: close the emulators without BYEs

    @property
    def db_path(self) -> Path:
        return self.switch.workdir / "data" / "callcenter.sqlite3"

    def cdrs(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM calls ORDER BY id")]

    def closed_cdrs(self) -> list[dict[str, Any]]:
        return [row for row in self.cdrs() if row["state"] == "closed"]

    async def cdr(self, count: int = 1) -> dict[str, Any]:
        """The newest CDR once `count` calls are closed."""
        await until(lambda: len(self.closed_cdrs()) >= count, f"{count} closed CDRs")
        return self.closed_cdrs()[-1]

    def log_has(self, pattern: str) -> bool:
        return re.search(pattern, self.switch.log()) is not None

    def agent_call(self, index: int = -1) -> EmulatedCall:
        calls = [c for c in self.agent.calls.values() if not c.placed]
        assert calls, "the agent's phone never rang"
        return calls[index]

    def agent_calls_any(self) -> bool:
        return any(not c.placed for c in self.agent.calls.values())

    def gateway_call(self, index: int = -1) -> EmulatedCall:
        calls = [c for c in self.gateway.calls.values() if not c.placed]
        assert calls, "the gateway received no call"
        return calls[index]

    async def dial(self, number: str, **script: Any) -> EmulatedCall:
        """Extension 2001 (the agent emulator posing as that phone) dials `number`,
        answering the digest challenge as a phone does."""
        phone = self.agent
        first = await phone.place_call(PHONE, number)
        await wait(first.ended.wait(), "the challenge")
        assert first.response is not None and first.response.status == 401, first.response
        challenge = first.response.headers.get("WWW-Authenticate")
        assert challenge is not None and phone.switch is not None
        host, port = phone.switch
        authorization = build_authorization(challenge, "INVITE", f"sip:{number}@{host}:{port}",
                                            PHONE, password=PHONE_PASSWORD,
                                            cnonce=uuid.uuid4().hex[:8], nc=1)
        return await phone.place_call(PHONE, number, headers=[("Authorization", authorization)],
                                      **script)


def make_switch(tmp_path: Path, *, spans: int = 1, gw_port: int,
                extra_config: str = "") -> SwitchProcess:
    """The switch of these tests; `extra_config` (more [[routes]], [[ring_groups]])
    goes after CONFIG."""
    moh = write_wav(tmp_path / "moh.wav", tone_pcm(MOH_HZ, 1.0, 6000.0))
    config = CONFIG.format(
        rtp_lo=SWITCH_RTP[0], rtp_hi=SWITCH_RTP[1], moh=moh, gw_host=GATEWAY_HOST,
        gw_port=gw_port, spans=spans, did_agent=DID_AGENT, agent=AGENT,
        did_nobody=DID_NOBODY, nobody=NOBODY, did_prompt=DID_PROMPT, prepend=PREPEND
    ) + extra_config
    switch = SwitchProcess(tmp_path / "switch", config)
    (tmp_path / "switch").mkdir()
    asyncio.run(_add_users(switch, [(AGENT, AGENT_PASSWORD), (PHONE, PHONE_PASSWORD),
                                    (NOBODY, "nobody-pass-1009")]))
    write_wav(switch.workdir / "data" / "prompts" / "welcome.wav",
              tone_pcm(PROMPT_HZ, 1.5))
    return switch


async def _add_users(switch: SwitchProcess, users: list[tuple[str, str]]) -> None:
    """SwitchProcess.add_user for several users with one migration run (faster)."""
    url = f"sqlite+aiosqlite:///{switch.workdir / 'data' / 'callcenter.sqlite3'}"
    await upgrade_database(url)
    db = await Database.connect(url)
    try:
        service = UserService(db, switch.realm)
        for extension, password in users:
            await service.add_user(f"user{extension}", password, extension, "agent")
    finally:
        await db.close()


@asynccontextmanager
async def pri_setup(tmp_path: Path, *, spans: int = 1, gateway_spans: int | None = None,
                    extra_config: str = "") -> AsyncIterator[Pri]:
    """The switch (configured with `spans` for gw1, and `extra_config`), the gateway
    emulator (with `gateway_spans`, by default the same) and the agent's phone,
    registered."""
    gw_port = free_udp_port(GATEWAY_HOST)
    # add_user runs its own event loop: not on ours.
    switch = await asyncio.to_thread(make_switch, tmp_path, spans=spans, gw_port=gw_port,
                                     extra_config=extra_config)
    await asyncio.to_thread(switch.start)
    try:
        address = ("127.0.0.1", switch.udp_port)
        gateway = GatewayEmulator(GATEWAY_HOST, gw_port, switch=address,
                                  spans=gateway_spans or spans,
                                  media_ports=GATEWAY_RTP, recordings_dir=tmp_path / "gw",
                                  answer_audio=("tone", GATEWAY_TONE_HZ))
        agent = GatewayEmulator("127.0.0.1", 0, switch=address, spans=2,
                                media_ports=AGENT_RTP, recordings_dir=tmp_path / "agent",
                                answer_audio=("tone", AGENT_TONE_HZ))
        async with gateway, agent:
            await asyncio.to_thread(register, switch, AGENT, AGENT_PASSWORD,
                                    agent.address[1])
            pri = Pri(switch, gateway, agent, tmp_path)
            try:
                yield pri
            finally:
                if not pri.abandon_calls:
                    await hang_up_everything(gateway, agent)
    finally:
        # Also after a kill or an exit of its own: stop() reaps it and closes its pipe.
        await asyncio.to_thread(switch.stop)


async def hang_up_everything(*emulators: GatewayEmulator) -> None:
    """End what a test left up, so the switch stops at once instead of draining."""
    up = [c for e in emulators for c in e.calls.values() if not c.ended.is_set()]
    for call in up:
        if call.answered.is_set() or call.placed:
            call.hangup()
    await asyncio.wait([asyncio.ensure_future(c.ended.wait()) for c in up] or
                       [asyncio.ensure_future(asyncio.sleep(0))], timeout=WAIT_S)


@pytest.fixture
async def pri(tmp_path: Path) -> AsyncIterator[Pri]:
    async with pri_setup(tmp_path) as setup:
        yield setup


async def inbound(pri: Pri, did: str = DID_AGENT, **script: Any) -> EmulatedCall:
    return await pri.gateway.place_call(CUSTOMER, did, audio=("tone", GATEWAY_TONE_HZ),
                                        **script)


async def answered_inbound(pri: Pri) -> tuple[EmulatedCall, EmulatedCall]:
    """A PSTN call to the service number, answered by the agent: (gateway's, agent's)."""
    call = await inbound(pri)
    await wait(call.answered.wait(), "the answer")
    far = pri.agent_call()
    await wait(far.answered.wait(), "the agent's answer")
    return call, far


async def ended(*calls: EmulatedCall) -> None:
    await wait(asyncio.gather(*(c.ended.wait() for c in calls)), "the calls to end")


def reason_of(message: Response | None) -> str | None:
    return None if message is None else message.headers.get("Reason")


# -- 1. inbound, answered by the agent


async def test_inbound_call_is_answered_by_the_agent_with_audio_both_ways_and_a_cdr(
        pri: Pri) -> None:
    call = await inbound(pri, hangup_after_s=1.5)
    await wait(call.answered.wait(), "the answer")
    far = pri.agent_call()
    # The agent's phone is told who calls, as a national number, and what was dialled.
    assert far.caller == CUSTOMER_NATIONAL and far.called == AGENT
    await ended(call, far)
    assert (call.end_cause, far.end_cause) == ("bye-sent", "bye-received")
    assert far.remote_reason == 16  # the gateway's normal clearing, passed on
    assert abs(heard(far.recording_path) - GATEWAY_TONE_HZ) < 10  # the customer reached the agent
    assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10  # the agent reached the customer

    cdr = await pri.cdr()
    assert {k: cdr[k] for k in ("direction", "caller", "callee", "trunk", "gateway",
                                "disposition", "q850_cause")} == {
        "direction": "inbound", "caller": CUSTOMER_NATIONAL, "callee": DID_AGENT,
        "trunk": "pstn", "gateway": "gw1", "disposition": "answered", "q850_cause": 16}
    assert cdr["answered_at"] is not None and cdr["answered_at"] >= cdr["started_at"]
    assert cdr["ended_at"] >= cdr["answered_at"]
    assert 2 <= cdr["billable_s"] <= 3  # 1.5 s talked; a started second is billed whole
    assert cdr["duration_s"] >= cdr["billable_s"]
    with sqlite3.connect(pri.db_path) as db:
        legs = db.execute("SELECT leg_index, peer FROM call_legs WHERE call_id = ? "
                          "ORDER BY leg_index", (cdr["call_id"],)).fetchall()
    assert legs == [(0, "gw1"), (1, AGENT)]
    assert pri.gateway.busy_channels == 0
    # The switch recorded the call from the answer: the customer left, the agent right.
    customer, agent = switch_recording(cdr)
    assert abs(dominant_hz(customer) - GATEWAY_TONE_HZ) < 10
    assert abs(dominant_hz(agent) - AGENT_TONE_HZ) < 10
    assert len(customer) >= 0.9 * 1.5 * 8000


# -- 2. BYE with a Q.850 Reason, from either side


@pytest.mark.parametrize("side", ["customer", "agent"])
async def test_bye_reason_reaches_the_other_side_unchanged_and_the_cdr(
        pri: Pri, side: str) -> None:
    call, far = await answered_inbound(pri)
    hanging, other, cause = (call, far, 31) if side == "customer" else (far, call, 21)
    hanging.hangup(cause)
    await ended(call, far)
    assert other.end_cause == "bye-received"
    assert other.bye is not None
    assert other.bye.headers.get("Reason") == f'Q.850;cause={cause};text="' + {
        31: "Normal, unspecified", 21: "Call rejected"}[cause] + '"'
    cdr = await pri.cdr()
    assert (cdr["disposition"], cdr["q850_cause"]) == ("answered", cause)


# -- 3. CANCEL before the answer


async def test_customer_hangs_up_while_the_agent_rings(pri: Pri) -> None:
    pri.agent.set_outcome("", Outcome.NO_ANSWER)
    call = await inbound(pri)
    await until(lambda: bool(pri.agent.calls), "the agent's phone to ring")
    far = pri.agent_call()
    call.hangup()
    await ended(call, far)
    assert (far.final_status, far.end_cause) == (487, "cancelled")  # the agent got CANCEL
    assert call.final_status == 487 and not call.answered.is_set()
    assert not far.answered.is_set()
    cdr = await pri.cdr()
    assert (cdr["disposition"], cdr["answered_at"], cdr["billable_s"]) == ("cancelled", None, 0)


# -- 4. the agent is busy


async def test_busy_agent_gives_the_gateway_486_with_cause_17(pri: Pri) -> None:
    pri.agent.set_outcome("", Outcome.BUSY)
    call = await inbound(pri)
    await ended(call)
    assert call.response is not None and call.response.status == 486
    assert call.remote_reason == 17
    cdr = await pri.cdr()
    assert (cdr["disposition"], cdr["q850_cause"], cdr["sip_status"]) == ("busy", 17, 486)
    assert pri.gateway.busy_channels == 0


# -- 5. the extension's phone is not registered


async def test_unregistered_extension_gives_480_with_cause_20(pri: Pri) -> None:
    call = await inbound(pri, DID_NOBODY)
    await ended(call)
    assert call.response is not None and call.response.status == 480
    assert call.remote_reason == 20  # subscriber absent
    cdr = await pri.cdr()
    assert (cdr["q850_cause"], cdr["sip_status"], cdr["answered_at"]) == (20, 480, None)
    assert not pri.agent.calls  # nobody else rang instead


# -- 6. outbound through the trunk group


async def test_phone_dials_out_through_the_trunk_with_audio_both_ways(pri: Pri) -> None:
    call = await pri.dial(OUTSIDE_LINE + CUSTOMER_NATIONAL, audio=("tone", AGENT_TONE_HZ),
                          hangup_after_s=1.5)
    await wait(call.answered.wait(), "the PSTN to answer")
    far = pri.gateway_call()
    # The route stripped the 9 and put the access code in front; the gateway is told
    # who calls, the authenticated extension, in P-Asserted-Identity.
    assert far.called == PREPEND + CUSTOMER_NATIONAL
    assert far.invite is not None
    pai = far.invite.headers.get("P-Asserted-Identity")
    assert pai is not None and re.fullmatch(rf"<sip:{PHONE}@127\.0\.0\.1(:\d+)?>", pai), pai
    assert far.caller == PHONE
    await ended(call, far)
    assert far.end_cause == "bye-received" and far.remote_reason == 16
    assert abs(heard(far.recording_path) - AGENT_TONE_HZ) < 10  # the phone reached the PSTN
    assert abs(heard(call.recording_path) - GATEWAY_TONE_HZ) < 10  # and back
    cdr = await pri.cdr()
    assert {k: cdr[k] for k in ("direction", "caller", "trunk", "gateway",
                                "disposition")} == {
        "direction": "outbound", "caller": PHONE, "trunk": "pstn", "gateway": "gw1",
        "disposition": "answered"}
    assert cdr["callee"] == PREPEND + CUSTOMER_NATIONAL  # what went out to the PSTN
    assert 2 <= cdr["billable_s"] <= 3


# What the phone gets for each scripted PSTN outcome: (status, Q.850 cause in the
# Reason, CDR disposition), and what the gateway itself answered.
PSTN_FAILURES = {
    Outcome.BUSY: (486, 17, "busy", 486),
    Outcome.UNALLOCATED: (404, 1, "failed", 404),
    # A B2BUA does not pass a 503 on (the phone's proxy would try elsewhere, RFC 3261
    # §16.7): 500, with the gateway's cause 34 in the Reason.
    Outcome.CONGESTION: (500, 34, "congestion", 503),
}


async def test_pstn_failures_map_back_to_the_phone(pri: Pri) -> None:
    for n, (outcome, (status, cause, disposition, gateway_status)) in enumerate(
            PSTN_FAILURES.items(), start=1):
        number = f"1390013900{n}"
        pri.gateway.set_outcome(PREPEND + number, outcome)
        call = await pri.dial(OUTSIDE_LINE + number)
        await ended(call)
        assert call.response is not None
        assert (outcome, call.response.status, call.remote_reason) == (outcome, status, cause)
        assert pri.gateway_call().final_status == gateway_status
        cdr = await pri.cdr(n)  # (the challenged first INVITEs never became calls)
        assert (cdr["direction"], cdr["gateway"], cdr["disposition"], cdr["q850_cause"]) == (
            "outbound", "gw1", disposition, cause)


# -- 7. a full trunk


async def test_full_trunk_gives_503_cause_34_both_ways(tmp_path: Path) -> None:
    # The switch is told gw1 has one span (30 channels); the emulator has room for more,
    # like a gateway that miscounts, so it can offer the switch a 31st call.
    async with pri_setup(tmp_path, spans=1, gateway_spans=2) as pri:
        calls = [await inbound(pri) for _ in range(20)]
        calls += [await pri.dial(f"{OUTSIDE_LINE}1380013{n:04d}") for n in range(10)]
        await wait(asyncio.gather(*(c.answered.wait() for c in calls)), "30 answers")

        refused = await pri.dial(OUTSIDE_LINE + CUSTOMER_NATIONAL)
        await ended(refused)
        assert refused.response is not None
        assert (refused.response.status, reason_of(refused.response)) == (
            503, 'Q.850;cause=34;text="No circuit/channel available"')
        assert len([c for c in pri.gateway.calls.values() if not c.placed]) == 10
        # (nothing more was sent out)

        extra = await inbound(pri)
        await ended(extra)
        assert extra.response is not None
        assert (extra.response.status, extra.remote_reason) == (503, 34)
        assert len([c for c in pri.agent.calls.values() if not c.placed]) == 20

        # One channel freed: the next outbound call goes through.
        calls[0].hangup()
        await ended(calls[0])
        again = await pri.dial(OUTSIDE_LINE + CUSTOMER_NATIONAL)
        await wait(again.answered.wait(), "a call on the freed channel")


async def test_documented_zero_prefix_reaches_the_trunk(pri: Pri) -> None:
    """The example config's outside line: 0 must reach the dialplan, not be taken for
    the national trunk prefix and normalised away."""
    call = await pri.dial("0" + CUSTOMER_NATIONAL, hangup_after_s=0.2)
    await ended(call)
    assert call.response is not None and call.response.status == 200
    assert pri.gateway_call().called == CUSTOMER_NATIONAL  # 0 stripped, nothing prepended
    cdr = await pri.cdr()
    assert (cdr["direction"], cdr["gateway"], cdr["callee"]) == ("outbound", "gw1",
                                                                CUSTOMER_NATIONAL)


# -- 8. hold and resume


HOLD_CANDIDATES = {"customer": GATEWAY_TONE_HZ, "agent": AGENT_TONE_HZ, "moh": MOH_HZ}


def runs(path: Path | None) -> list[str]:
    """The recording as runs of at least 300 ms (shorter ones are the switch-overs)."""
    labels = window_labels(path, HOLD_CANDIDATES)
    collapsed: list[tuple[str, int]] = []
    for label in labels:
        if collapsed and collapsed[-1][0] == label:
            collapsed[-1] = (label, collapsed[-1][1] + 1)
        else:
            collapsed.append((label, 1))
    long_runs = [label for label, n in collapsed if n >= 3]
    return [label for i, label in enumerate(long_runs) if i == 0 or long_runs[i - 1] != label]


@pytest.mark.parametrize("holder", ["agent", "customer"])
async def test_held_party_hears_music_on_hold_then_the_other_party_again(
        pri: Pri, holder: str) -> None:
    call, far = await answered_inbound(pri)
    holding, listening, talker = ((far, call, "agent") if holder == "agent"
                                  else (call, far, "customer"))
    await talk(0.8)
    holding.hold()
    await talk(1.2)
    holding.resume()
    await talk(0.8)
    call.hangup()
    await ended(call, far)
    # Not silence, not the holder's own audio: the configured music, and the holder
    # again after resuming.
    assert runs(listening.recording_path) == [talker, "moh", talker]
    cdr = await pri.cdr()
    assert cdr["disposition"] == "answered"


# -- 9. the placeholder application


async def test_prompt_application_answers_plays_and_hangs_up(pri: Pri) -> None:
    call = await inbound(pri, DID_PROMPT)
    await wait(call.answered.wait(), "the application to answer")
    await ended(call)
    assert call.end_cause == "bye-received"  # the switch hung up after the prompt
    assert call.remote_reason == 16
    samples = samples_of(call.recording_path)
    assert abs(dominant_hz(samples) - PROMPT_HZ) < 10
    assert len(samples) >= 0.9 * 1.5 * 8000  # the whole prompt, not a blip
    assert not pri.agent.calls
    cdr = await pri.cdr()
    assert (cdr["direction"], cdr["callee"], cdr["disposition"]) == (
        "inbound", DID_PROMPT, "answered")
    # The application's answer started the recording: the customer heard from then on.
    customer, nobody = switch_recording(cdr)
    assert abs(dominant_hz(customer) - GATEWAY_TONE_HZ) < 10
    assert len(customer) >= 0.9 * 1.5 * 8000 and not nobody.any()
    assert cdr["recording_started_at"] is not None and cdr["recording_pauses"] is None


# -- 10. a crash with calls up


async def test_kill_9_with_calls_up_loses_no_cdr(tmp_path: Path) -> None:
    async with pri_setup(tmp_path) as pri:
        for _ in range(2):
            done = await inbound(pri, hangup_after_s=0.2)
            await ended(done)
        await pri.cdr(2)
        up = [await inbound(pri) for _ in range(3)]
        await wait(asyncio.gather(*(c.answered.wait() for c in up)), "3 answers")

        def three_answered_open() -> bool:
            rows = [r for r in pri.cdrs() if r["state"] == "open"]
            return len(rows) == 3 and all(r["answered_at"] is not None for r in rows)

        await until(three_answered_open, "the 3 calls up to be written as answered")
        before = {row["call_id"]: row for row in pri.cdrs()}
        assert pri.switch.process is not None
        pri.switch.process.kill()
        await asyncio.to_thread(pri.switch.process.wait)

        restarted = SwitchProcess(pri.switch.workdir, pri.switch.config_text)
        await asyncio.to_thread(restarted.start)
        try:
            await until(lambda: "closed as interrupted: 3" in restarted.log(),
                        "recovery at start")
            after = {row["call_id"]: row for row in pri.cdrs()}
        finally:
            # The dialogs died with the first process (the new one listens elsewhere).
            pri.abandon_calls = True
            await asyncio.to_thread(restarted.stop)
    assert after.keys() == before.keys() and len(after) == 5
    finished = [cid for cid, row in before.items() if row["state"] == "closed"]
    assert len(finished) == 2
    for call_id in finished:
        assert after[call_id] == before[call_id]  # untouched
    for call_id in before.keys() - set(finished):
        row = after[call_id]
        assert (row["state"], row["disposition"]) == ("closed", "interrupted")
        assert row["answered_at"] == before[call_id]["answered_at"]
        assert row["ended_at"] is not None and row["ended_at"] >= row["answered_at"]
        assert row["billable_s"] is not None and row["billable_s"] >= 0


# -- 11. graceful drain


async def test_sigterm_refuses_new_calls_and_waits_for_the_call_up(pri: Pri) -> None:
    call, far = await answered_inbound(pri)
    process, reader = pri.switch.process, pri.switch.reader
    assert process is not None and reader is not None
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(reader.wait_for, "Shutting down")
    await until(lambda: pri.log_has(r"draining: 1 calls up"), "the drain to start")

    refused = await inbound(pri)
    await ended(refused)
    assert refused.response is not None and refused.response.status == 503
    assert refused.response.headers.get("Retry-After") == "30"
    assert process.poll() is None  # still serving the call up
    await talk(1.0)
    assert process.poll() is None
    call.hangup()
    await ended(call, far)
    assert await asyncio.to_thread(process.wait, WAIT_S) == 0  # by itself, once idle
    # Audio flowed to the end, through the drain: the customer's tone fills the
    # agent's recording from the answer to the hang-up, in both directions.
    for recording, tone in ((far.recording_path, "customer"), (call.recording_path, "agent")):
        labels = window_labels(recording, HOLD_CANDIDATES)
        assert labels.count(tone) >= 0.8 * len(labels) and len(labels) >= 10, labels
        assert labels[-3:] == [tone] * 3, labels  # up to the hang-up
    cdr = await pri.cdr()
    assert cdr["disposition"] == "answered" and cdr["billable_s"] >= 1


# -- 1b. SIPp as the agent's phone


async def test_sipp_agent_answers_and_echoes_the_customer_back(pri: Pri) -> None:
    sipp = require_tool("sipp", "Debian package sip-tester")
    sip_port = free_udp_port("127.0.0.1")
    media_port = free_udp_port("127.0.0.1") // 2 * 2
    trace = pri.tmp_path / "sipp_messages.log"
    process = subprocess.Popen(
        [sipp, "-sf", str(SCENARIOS / "pri_uas_answer.xml"), "-i", "127.0.0.1",
         "-p", str(sip_port), "-mp", str(media_port), "-rtp_echo", "-m", "1",
         "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_msg",
         "-message_file", str(trace)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=pri.tmp_path)
    try:
        # Extension 1001 now rings SIPp only: every registered device would ring, so
        # the emulated phone's registration is removed (Expires: 0).
        await asyncio.to_thread(register, pri.switch, AGENT, AGENT_PASSWORD, sip_port)
        await asyncio.to_thread(register, pri.switch, AGENT, AGENT_PASSWORD,
                                pri.agent.address[1], expires_s=0)
        call = await inbound(pri, hangup_after_s=1.5, q850_cause=31)
        await wait(call.answered.wait(), "SIPp to answer")
        await ended(call)
        out, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out[-2000:] + err[-2000:]
    # SIPp echoed what it received from the switch: the customer's tone went there and
    # came back, through the switch both ways.
    assert abs(heard(call.recording_path) - GATEWAY_TONE_HZ) < 10
    messages = trace.read_text()
    offered = re.search(r"m=audio (\d+)", messages)  # the INVITE came first
    assert offered is not None and SWITCH_RTP[0] <= int(offered.group(1)) <= SWITCH_RTP[1]
    assert 'Reason: Q.850;cause=31;text="Normal, unspecified"' in messages  # on the BYE
    assert not pri.agent_calls_any()
    cdr = await pri.cdr()
    assert (cdr["disposition"], cdr["q850_cause"]) == ("answered", 31)
