"""Click-to-dial over loopback with real media: SipService in process (real MediaEngine,
real UDP), the agent's phone a GatewayEmulator on 127.0.0.1 (registered with digest,
answers at once, plays 400 Hz and records what it hears), the PSTN a GatewayEmulator on
127.0.0.2 (rings a moment, then answers with 1000 Hz). `SipService.originate` rings the
agent; the agent's recording must show ringback (450 Hz) before the customer's tone,
and the customer must hear the agent. Failures come back as OriginateFailed on the bus.
The only timed waits are audio segments; everything else waits on SIP events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from switch.calls import CallEnded, CallSettings, CallStarted, OriginateFailed
from switch.event_bus import Subscription
from switch.pri_gateway.emulator import GatewayEmulator, Outcome
from switch.signalling import SipService
from switch.sip import Credentials
from tests.integration.in_process_switch import in_process_switch
from tests.integration.test_pri_calls import (
    AGENT_TONE_HZ,
    GATEWAY_HOST,
    GATEWAY_TONE_HZ,
    free_udp_port,
    heard,
    register,
    samples_of,
    until,
    wait,
    window_labels,
)
from tests.switch.harness import route

pytestmark = pytest.mark.integration

AGENT, PASSWORD = "1001", "agent-pass-1001"
REALM = "callcenter"
SWITCH_RTP = (44000, 44099)
AGENT_RTP = (44100, 44199)
GATEWAY_RTP = (44200, 44299)
MOBILE = "13800138000"
RINGBACK_HZ = 450.0  # switch/media/tones.pyx
RING_S = 1.2  # the customer's phone rings this long before answering


async def lookup(username: str) -> Credentials | None:
    return Credentials.from_password(AGENT, REALM, PASSWORD) if username == AGENT else None


@dataclass
class ClickToDial:
    service: SipService
    agent: GatewayEmulator
    pstn: GatewayEmulator
    events: Subscription

    def published(self, kind: type) -> list[object]:
        return [p.event for p in self.events.take() if isinstance(p.event, kind)]


@asynccontextmanager
async def click_to_dial(tmp_path: Path) -> AsyncIterator[ClickToDial]:
    gw_port = free_udp_port(GATEWAY_HOST)
    async with in_process_switch(
            lookup, realm=REALM, rtp_ports=SWITCH_RTP, gateway_port=gw_port,
            routes=[route(extension=True), route(prefix="0", trunk_group="pstn", strip=1)],
            call_settings=CallSettings(ring_timeout_s=5.0)) as service:
        events = service.bus.subscribe("test", CallStarted, CallEnded, OriginateFailed)
        switch = ("127.0.0.1", service.transports[0].port)
        agent = GatewayEmulator("127.0.0.1", 0, switch=switch, media_ports=AGENT_RTP,
                                recordings_dir=tmp_path / "agent",
                                answer_audio=("tone", AGENT_TONE_HZ))
        pstn = GatewayEmulator(GATEWAY_HOST, gw_port, switch=switch,
                               media_ports=GATEWAY_RTP, recordings_dir=tmp_path / "pstn",
                               answer_audio=("tone", GATEWAY_TONE_HZ))
        pstn.set_answer_delay(RING_S)
        async with agent, pstn:
            await asyncio.to_thread(register, SimpleNamespace(udp_port=switch[1]), AGENT,
                                    PASSWORD, agent.address[1])
            yield ClickToDial(service, agent, pstn, events)
            for emulator in (agent, pstn):
                for call in emulator.calls.values():
                    if call.answered.is_set() and not call.ended.is_set():
                        call.hangup()
            await until(lambda: not service.active_calls, "the calls to end")


async def test_click_to_dial_rings_the_agent_who_hears_ringback_then_the_customer(
        tmp_path: Path) -> None:
    async with click_to_dial(tmp_path) as setup:
        call_id = setup.service.originate(AGENT, "0" + MOBILE)
        await until(lambda: bool(setup.agent.calls), "the agent's phone to ring")
        [agent] = setup.agent.calls.values()
        assert agent.caller == "0" + MOBILE  # the phone shows whom it will reach
        await wait(agent.answered.wait(), "the agent to answer")
        await until(lambda: bool(setup.pstn.calls), "the customer's phone to ring")
        [customer] = setup.pstn.calls.values()
        assert customer.called == MOBILE and customer.caller == AGENT
        await wait(customer.answered.wait(), "the customer to answer")
        await asyncio.sleep(1.0)  # a second of conversation
        customer.hangup()
        await wait(asyncio.gather(agent.ended.wait(), customer.ended.wait()), "the end")
        # Before the customer answered the agent heard our ringback; then the customer.
        labels = window_labels(agent.recording_path,
                               {"ringback": RINGBACK_HZ, "customer": GATEWAY_TONE_HZ})
        talking = labels.index("customer")
        assert talking >= 5 and labels[:talking].count("ringback") >= 3, labels
        assert "ringback" not in labels[talking:], labels
        assert abs(heard(customer.recording_path) - AGENT_TONE_HZ) < 10
        assert len(samples_of(customer.recording_path)) >= 4000
        [started] = setup.published(CallStarted)
        assert started == CallStarted(call_id, "outbound", AGENT, MOBILE, "pstn", "gw1")
        await until(lambda: not setup.service.active_calls, "the call to be forgotten")


async def test_a_busy_customer_is_reported_with_its_cause(tmp_path: Path) -> None:
    async with click_to_dial(tmp_path) as setup:
        setup.pstn.set_outcome("", Outcome.BUSY)
        call_id = setup.service.originate(AGENT, "0" + MOBILE)
        await until(lambda: bool(setup.agent.calls), "the agent's phone to ring")
        [agent] = setup.agent.calls.values()
        await wait(agent.ended.wait(), "the agent's phone to be released")
        assert agent.remote_reason == 17  # the BYE tells the agent's phone why
        failed: list[object] = []
        await until(lambda: _take(setup, failed), "OriginateFailed")
        assert failed == [OriginateFailed(call_id, "customer", 486, 17, "rejected-486")]


def _take(setup: ClickToDial, into: list[object]) -> bool:
    into.extend(setup.published(OriginateFailed))
    return bool(into)
