"""Parties added to a call that is up, with real media over loopback: SipService in
process (real MediaEngine, real UDP), the PSTN a GatewayEmulator on 127.0.0.2 and the
phones of agent 1002, supervisor 1009 and colleague 1003 GatewayEmulators on 127.0.0.1,
registered with digest. Each plays its own tone and records what it hears; the switch
records the call (and plays a tone of its own as music on hold). A customer calls the
service number and the agent answers; then a supervisor listens, whispers to the agent,
barges in and is removed, or the agent brings in a colleague and leaves the customer
with them, or consults a colleague while the customer waits and then brings them in. In
one test the supervisor's phone is a real baresip instead (baresip_phone.py): it accepts
the switch's INVITE when the test tells it to, and what it heard is its own dump of the
call.

What each party hears in each segment of the call is told by tone detection: a tone
counts as heard when it carries a tenth of the energy of most 100 ms windows of the
segment (after a settling time at its start, for the mix to change and the jitter
buffers to pass it on). The segments are the only timed waits; everything else waits
on bus events (PartyJoined, PartyModeChanged, PartyLeft, CallEnded ...) or SIP events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from switch.calls import (
    CallBridged,
    CallEnded,
    CallSettings,
    CallStarted,
    LegAnswered,
    LegEnded,
    PartyJoined,
    PartyLeft,
    PartyMode,
    PartyModeChanged,
    RecordingStarted,
)
from switch.event_bus import Published, forward
from switch.pri_gateway.emulator import EmulatedCall, GatewayEmulator
from switch.signalling import SipService
from switch.sip import Credentials
from tests.conftest import require_tool
from tests.integration.baresip_phone import BaresipPhone, baresip_phone
from tests.integration.in_process_switch import in_process_switch
from tests.integration.test_pri_calls import (
    AGENT_TONE_HZ,
    GATEWAY_HOST,
    GATEWAY_TONE_HZ,
    WINDOW,
    _goertzel_power,
    free_udp_port,
    hang_up_everything,
    register,
    samples_of,
    switch_recording,
    talk,
    tone_pcm,
    until,
    wait,
    write_wav,
)
from tests.switch.harness import route

pytestmark = pytest.mark.integration

REALM = "callcenter"
AGENT, SUPERVISOR, COLLEAGUE = "1002", "1009", "1003"
DID = "4008001002"  # the service number, routed to the agent
CUSTOMER = "13800138000"
SWITCH_RTP = (45000, 45099)
GATEWAY_RTP = (45100, 45199)
PHONE_RTP = {AGENT: (45200, 45249), SUPERVISOR: (45250, 45299), COLLEAGUE: (45300, 45349)}
TONES = {"customer": GATEWAY_TONE_HZ, "agent": AGENT_TONE_HZ,  # A and B
         "supervisor": 1700.0, "colleague": 2300.0,  # C and D: no harmonic of A or B
         "music": 2900.0}  # the music on hold, a tone of its own
PHONE_TONES = {AGENT: TONES["agent"], SUPERVISOR: TONES["supervisor"],
               COLLEAGUE: TONES["colleague"]}
SEGMENT_S = 0.8  # how long each arrangement of the call lasts
SETTLE_S = 0.25  # left out at a segment's start: the engine's tick, RTP and jitter buffers
HEARD_SHARE = 0.1  # of a window's energy, for a tone to count in that window


async def lookup(username: str) -> Credentials | None:
    if username not in PHONE_TONES:
        return None
    return Credentials.from_password(username, REALM, f"pass-{username}")


@dataclass(frozen=True)
class Segment:
    """A stretch of the call in one arrangement, in loop time."""

    start: float
    end: float


async def segment() -> Segment:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await talk(SEGMENT_S)
    return Segment(start, loop.time())


def tones_in(samples: np.ndarray[Any, np.dtype[np.float64]], started_at: float,
             part: Segment) -> set[str]:
    """The TONES heard in `part` of a recording that began at `started_at`: those that
    carry HEARD_SHARE of the energy of most of its 100 ms windows (silence carries none)."""
    first = round((part.start + SETTLE_S - started_at) * 8000)
    last = round((part.end - started_at) * 8000)
    windows = [samples[k:k + WINDOW] for k in range(max(first, 0), last - WINDOW + 1, WINDOW)]
    assert len(windows) >= 4, f"the recording does not cover {part} ({len(samples)} samples)"
    silence = WINDOW * 100.0**2  # about -50 dBFS: a window below it carries no tone
    heard = set()
    for name, hz in TONES.items():
        carrying = sum(1 for window in windows
                       if _goertzel_power(window, hz) > HEARD_SHARE * max(
                           float(np.dot(window, window)), silence))
        if 2 * carrying > len(windows):
            heard.add(name)
    return heard


@dataclass(frozen=True)
class CustomerCall:
    """The customer's call to the service number, answered by the agent."""

    call_id: str  # ours
    customer: EmulatedCall  # on the PSTN emulator
    agent: EmulatedCall  # on the agent's phone
    customer_index: int  # the two legs of our call
    agent_index: int


@dataclass
class Floor:
    """The switch, the PSTN, the three phones and what the bus published."""

    service: SipService
    pstn: GatewayEmulator
    phones: dict[str, GatewayEmulator]
    published: list[Published]
    arrived: asyncio.Event

    def on_published(self, items: list[Published]) -> None:
        self.published.extend(items)
        self.arrived.set()

    def events(self, kind: type) -> list[Any]:
        return [item.event for item in self.published if isinstance(item.event, kind)]

    def _find(self, kind: type, fields: dict[str, object]) -> Published | None:
        return next((item for item in self.published if isinstance(item.event, kind)
                     and all(getattr(item.event, k) == v for k, v in fields.items())), None)

    async def _arrival(self, kind: type, fields: dict[str, object]) -> None:
        while self._find(kind, fields) is None:
            self.arrived.clear()
            await self.arrived.wait()

    async def event(self, kind: type, **fields: object) -> Published:
        """The first `kind` published with these fields, waiting for it."""
        await wait(self._arrival(kind, fields), f"{kind.__name__} {fields}")
        found = self._find(kind, fields)
        assert found is not None
        return found

    async def heard(self, call: EmulatedCall, leg_index: int,
                    *parts: Segment) -> list[set[str]]:
        """The tones the phone on leg `leg_index` heard in each of `parts`; its recording
        began when the leg answered."""
        started_at = (await self.event(LegAnswered, leg_index=leg_index)).at
        samples = samples_of(call.recording_path)
        return [tones_in(samples, started_at, part) for part in parts]

    async def recorded(self, call_id: str, *parts: Segment) -> list[tuple[set[str], set[str]]]:
        """The tones of the switch's own recording of the call in each of `parts`: (the
        customer's side, the other party's side)."""
        started = await self.event(RecordingStarted, call_id=call_id)
        left, right = switch_recording({"recording_path": started.event.path})
        return [(tones_in(left, started.at, part), tones_in(right, started.at, part))
                for part in parts]

    def phone_call(self, extension: str) -> EmulatedCall:
        [call] = self.phones[extension].calls.values()
        return call

    async def customer_calls(self) -> CustomerCall:
        """The customer calls the service number and the agent answers."""
        customer = await self.pstn.place_call(CUSTOMER, DID,
                                              audio=("tone", TONES["customer"]))
        await wait(customer.answered.wait(), "the agent to answer")
        call_id = (await self.event(CallStarted)).event.call_id
        bridged: CallBridged = (await self.event(CallBridged, call_id=call_id)).event
        return CustomerCall(call_id, customer, self.phone_call(AGENT), *bridged.leg_indexes)

    async def goes_on_without(self, call: CustomerCall, removed_index: int) -> Segment:
        """Once the party on leg `removed_index` is removed: the customer and the agent
        stay on the call for a segment (returned), then the customer hangs up."""
        await self.event(PartyLeft, leg_index=removed_index, why="removed")
        after = await segment()
        assert not call.customer.ended.is_set() and not call.agent.ended.is_set()
        assert self.service.active_calls == 1 and self.events(CallEnded) == []

        call.customer.hangup()
        await wait(call.agent.ended.wait(), "the agent's phone to be hung up")
        await self.event(CallEnded, call_id=call.call_id, cause="caller-bye")
        return after

    async def add_party(self, call_id: str, extension: str, mode: PartyMode,
                        coached_index: int | None = None) -> tuple[int, EmulatedCall]:
        """Ring `extension` onto the call in `mode`: its leg index and its phone's call,
        once it answered and is on the call."""
        index = self.service.add_party(call_id, extension, mode=mode,
                                       coached_index=coached_index)
        await self.event(PartyJoined, call_id=call_id, leg_index=index, mode=mode)
        return index, self.phone_call(extension)


@asynccontextmanager
async def floor_setup(tmp_path: Path, extensions: Iterable[str]) -> AsyncIterator[Floor]:
    """The switch, the PSTN and an emulated phone registered for each of `extensions`."""
    gw_port = free_udp_port(GATEWAY_HOST)
    music = write_wav(tmp_path / "music_on_hold.wav", tone_pcm(TONES["music"], 5.0))
    settings = CallSettings(ring_timeout_s=5.0, session_expires_s=None,
                            recording_path=lambda call_id: str(tmp_path / f"{call_id}.wav"),
                            music_on_hold=str(music))
    async with in_process_switch(
            lookup, realm=REALM, rtp_ports=SWITCH_RTP, gateway_port=gw_port,
            routes=[route(did=DID, extension=AGENT), route(extension=True)],
            call_settings=settings) as service:
        switch = ("127.0.0.1", service.transports[0].port)
        floor = Floor(
            service,
            GatewayEmulator(GATEWAY_HOST, gw_port, switch=switch, media_ports=GATEWAY_RTP,
                            recordings_dir=tmp_path / "pstn"),
            {extension: GatewayEmulator("127.0.0.1", 0, switch=switch,
                                        media_ports=PHONE_RTP[extension],
                                        recordings_dir=tmp_path / extension,
                                        answer_audio=("tone", PHONE_TONES[extension]))
             for extension in extensions},
            [], asyncio.Event())
        forward(service.bus.subscribe("test", CallStarted, CallBridged, CallEnded,
                                      LegAnswered, LegEnded, PartyJoined,
                                      PartyModeChanged, PartyLeft, RecordingStarted),
                floor.on_published)
        emulators = [floor.pstn, *floor.phones.values()]
        async with AsyncExitStack() as started:
            for emulator in emulators:
                await started.enter_async_context(emulator)
            for extension, phone in floor.phones.items():
                await asyncio.to_thread(register, SimpleNamespace(udp_port=switch[1]),
                                        extension, f"pass-{extension}", phone.address[1])
            yield floor
            await hang_up_everything(*emulators)
            await until(lambda: not service.active_calls, "the calls to end")


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[Floor]:
    async with floor_setup(tmp_path, PHONE_TONES) as floor:
        yield floor


@pytest.fixture
def executable() -> str:
    return require_tool("baresip", "Debian package baresip")


@dataclass(frozen=True)
class Supervised:
    """The floor with a real baresip as the supervisor's phone (no emulator for it)."""

    floor: Floor
    supervisor: BaresipPhone


@pytest.fixture
async def supervised(executable: str, tmp_path: Path) -> AsyncIterator[Supervised]:
    # (`executable` first: without baresip the test stops before a switch is started.)
    async with floor_setup(tmp_path, [AGENT]) as floor, baresip_phone(
            executable, tmp_path / "baresip", SUPERVISOR, f"pass-{SUPERVISOR}",
            floor.service.transports[0].port, TONES["supervisor"]) as supervisor:
        yield Supervised(floor, supervisor)


async def test_a_supervisor_listens_whispers_to_the_agent_barges_in_and_leaves(
        floor: Floor) -> None:
    call = await floor.customer_calls()

    supervisor_index, supervisor = await floor.add_party(call.call_id, SUPERVISOR, "listen")
    listening = await segment()

    floor.service.set_party_mode(call.call_id, supervisor_index, "whisper",
                                 coached_index=call.agent_index)
    await floor.event(PartyModeChanged, leg_index=supervisor_index, mode="whisper",
                      coached_index=call.agent_index)
    whispering = await segment()

    floor.service.set_party_mode(call.call_id, supervisor_index, "barge")
    await floor.event(PartyModeChanged, leg_index=supervisor_index, mode="barge")
    barging = await segment()

    floor.service.remove_party(call.call_id, supervisor_index)
    await wait(supervisor.ended.wait(), "the supervisor's phone to be hung up")
    assert supervisor.bye is not None  # the switch sent the BYE
    after = await floor.goes_on_without(call, supervisor_index)
    assert len(floor.events(CallEnded)) == 1
    assert len(floor.phones[SUPERVISOR].calls) == 1  # one INVITE for every mode

    parts = (listening, whispering, barging, after)
    assert await floor.heard(call.customer, call.customer_index, *parts) == [
        {"agent"}, {"agent"}, {"agent", "supervisor"}, {"agent"}]
    assert await floor.heard(call.agent, call.agent_index, *parts) == [
        {"customer"}, {"customer", "supervisor"}, {"customer", "supervisor"}, {"customer"}]
    # The supervisor hears both parties whatever the mode, and never itself.
    assert await floor.heard(supervisor, supervisor_index, *parts[:3]) == [
        {"customer", "agent"}] * 3
    # The call's recording: a listener and a whisper do not reach it, a barge-in does
    # (on the agent's side), and once removed the supervisor is not in it.
    assert await floor.recorded(call.call_id, *parts) == [
        ({"customer"}, {"agent"}), ({"customer"}, {"agent"}),
        ({"customer"}, {"agent", "supervisor"}), ({"customer"}, {"agent"})]


async def test_the_agent_leaves_the_customer_with_a_conferenced_colleague(
        floor: Floor) -> None:
    call = await floor.customer_calls()

    colleague_index, colleague = await floor.add_party(call.call_id, COLLEAGUE, "conference")
    three_way = await segment()

    call.agent.hangup()
    await floor.event(PartyLeft, leg_index=colleague_index, why="took-over")
    await wait(call.agent.ended.wait(), "the agent's call to end")
    await floor.event(LegEnded, leg_index=call.agent_index)
    assert floor.service.active_calls == 1 and floor.events(CallEnded) == []
    two_way = await segment()

    colleague.hangup()
    await wait(call.customer.ended.wait(), "the customer's call to end")
    assert call.customer.bye is not None  # released by the switch, normally
    await floor.event(CallEnded, call_id=call.call_id)

    assert await floor.heard(call.customer, call.customer_index, three_way, two_way) == [
        {"agent", "colleague"}, {"colleague"}]
    assert await floor.heard(colleague, colleague_index, three_way, two_way) == [
        {"customer", "agent"}, {"customer"}]
    assert await floor.heard(call.agent, call.agent_index, three_way) == [{"customer", "colleague"}]
    # The call's recording has all three in the conference (the colleague on the
    # agent's side), then the colleague's side instead of the agent's.
    assert await floor.recorded(call.call_id, three_way, two_way) == [
        ({"customer"}, {"agent", "colleague"}), ({"customer"}, {"colleague"})]

    # What the CDR is made of: one call, answered, ended once, every leg ended once.
    assert floor.events(PartyLeft) == [PartyLeft(call.call_id, colleague_index, "took-over")]
    assert floor.events(CallEnded) == [CallEnded(call.call_id, "answered", 16, None,
                                                 "callee-bye")]
    assert sorted(e.leg_index for e in floor.events(LegEnded)) == sorted(
        [call.customer_index, call.agent_index, colleague_index])
    assert len(floor.events(CallStarted)) == 1


async def test_the_agent_consults_a_colleague_then_brings_the_customer_in(
        floor: Floor) -> None:
    call = await floor.customer_calls()

    colleague_index, colleague = await floor.add_party(
        call.call_id, COLLEAGUE, "consult", coached_index=call.agent_index)
    consulting = await segment()

    floor.service.set_party_mode(call.call_id, colleague_index, "conference")
    await floor.event(PartyModeChanged, leg_index=colleague_index, mode="conference")
    together = await segment()
    # The customer leaves the conference: the agent and the colleague talk on.
    call.customer.hangup()
    await floor.event(PartyLeft, leg_index=colleague_index, why="took-over")
    assert floor.events(CallEnded) == []
    call.agent.hangup()
    await floor.event(CallEnded, call_id=call.call_id)
    await wait(colleague.ended.wait(), "the colleague's phone to be hung up")

    # While they consult, the customer hears the music on hold and nobody hears them.
    assert await floor.heard(call.customer, call.customer_index, consulting, together) == [
        {"music"}, {"agent", "colleague"}]
    assert await floor.heard(call.agent, call.agent_index, consulting, together) == [
        {"colleague"}, {"customer", "colleague"}]
    assert await floor.heard(colleague, colleague_index, consulting, together) == [
        {"agent"}, {"customer", "agent"}]


async def test_a_real_baresip_supervisor_listens_barges_in_and_is_removed(
        supervised: Supervised) -> None:
    floor, baresip = supervised.floor, supervised.supervisor
    call = await floor.customer_calls()

    supervisor_index = floor.service.add_party(call.call_id, SUPERVISOR, mode="listen")
    await baresip.event("CALL_INCOMING")
    await baresip.command("accept")
    await floor.event(PartyJoined, call_id=call.call_id, leg_index=supervisor_index,
                      mode="listen")
    listening = await segment()

    floor.service.set_party_mode(call.call_id, supervisor_index, "barge")
    await floor.event(PartyModeChanged, leg_index=supervisor_index, mode="barge")
    barging = await segment()

    floor.service.remove_party(call.call_id, supervisor_index)
    closed = await baresip.event("CALL_CLOSED")
    # baresip shows the supervisor why the call ended: the switch's BYE.
    assert closed["param"] == "Connection reset by peer", closed
    after = await floor.goes_on_without(call, supervisor_index)

    parts = (listening, barging, after)
    assert await floor.heard(call.customer, call.customer_index, *parts) == [
        {"agent"}, {"agent", "supervisor"}, {"agent"}]
    assert await floor.heard(call.agent, call.agent_index, *parts) == [
        {"customer"}, {"customer", "supervisor"}, {"customer"}]
    # baresip heard both parties, listening and barging, and never itself (its dump
    # runs from its answer to the switch's BYE).
    heard = samples_of(await baresip.finished_dump("dec"))
    assert tones_in(heard, 0.0, Segment(0.0, len(heard) / 8000)) == {"customer", "agent"}
