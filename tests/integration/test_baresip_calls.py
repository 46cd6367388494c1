"""baresip, a real softphone, as an agent's phone through the real switch: it receives a
PSTN call (the gateway emulator on 127.0.0.2 dials the service number routed to
extension 1001) and places one to an outside number (prefix 9 through the trunk group);
each side hears the other's tone; either side hangs up; the CDR says what happened.

baresip is driven over ctrl_tcp (see baresip_phone.py): the test accepts the incoming
call itself on CALL_INCOMING and waits on baresip's events and the emulator's, never on
time, except for the few seconds of conversation that carry the audio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.baresip_phone import BaresipPhone, baresip_phone
from tests.integration.phone_calls import Pstn, pstn_setup, wav_samples
from tests.integration.test_pri_calls import (
    AGENT,
    AGENT_PASSWORD,
    CUSTOMER,
    CUSTOMER_NATIONAL,
    DID_AGENT,
    GATEWAY_TONE_HZ,
    OUTSIDE_LINE,
    PREPEND,
    dominant_hz,
    ended,
    heard,
    talk,
    wait,
)

pytestmark = pytest.mark.integration

AGENT_TONE_HZ = 400.0
TALK_S = 1.5


@pytest.fixture
async def pstn(tmp_path: Path) -> AsyncIterator[Pstn]:
    async with pstn_setup(tmp_path) as setup:
        yield setup


@pytest.fixture
def executable() -> str:
    return require_tool("baresip", "Debian package baresip")


@pytest.fixture
async def phone(executable: str, pstn: Pstn, tmp_path: Path) -> AsyncIterator[BaresipPhone]:
    # (`executable` first: without baresip the test stops before a switch is started.)
    async with baresip_phone(executable, tmp_path / "baresip", AGENT, AGENT_PASSWORD,
                             pstn.switch.udp_port, AGENT_TONE_HZ) as phone:
        yield phone


async def baresip_heard(phone: BaresipPhone, direction: str = "dec") -> float:
    """The dominant frequency of baresip's dump, once finished."""
    return dominant_hz(wav_samples(await phone.finished_dump(direction)))


@pytest.mark.parametrize("hanging_up", ["agent", "customer"])
async def test_baresip_agent_receives_a_pstn_call_with_audio_both_ways(
        pstn: Pstn, phone: BaresipPhone, hanging_up: str) -> None:
    call = await pstn.gateway.place_call(CUSTOMER, DID_AGENT, audio=("tone", GATEWAY_TONE_HZ))
    incoming = await phone.event("CALL_INCOMING")
    # The PSTN caller is presented to the agent as a national number.
    assert incoming["peeruri"].startswith(f"sip:{CUSTOMER_NATIONAL}@"), incoming
    assert incoming["direction"] == "incoming"
    await phone.command("accept")
    await phone.event("CALL_ESTABLISHED")
    await wait(call.answered.wait(), "the PSTN caller to be connected")
    await talk(TALK_S)

    if hanging_up == "agent":
        await phone.command("hangup")
        await ended(call)
        assert (call.end_cause, call.remote_reason) == ("bye-received", 16)
        await phone.event("CALL_CLOSED")
    else:
        call.hangup(31)  # normal, unspecified
        closed = await phone.event("CALL_CLOSED")
        await ended(call)
        assert call.end_cause == "bye-sent"
        # baresip shows the agent why the call ended: the far end's BYE.
        assert closed["param"] == "Connection reset by peer", closed

    assert abs(await baresip_heard(phone) - GATEWAY_TONE_HZ) < 10  # the customer, heard
    assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10  # the agent, heard
    cdr = await pstn.cdr()
    assert {k: cdr[k] for k in ("direction", "caller", "callee", "trunk", "gateway",
                                "disposition")} == {
        "direction": "inbound", "caller": CUSTOMER_NATIONAL, "callee": DID_AGENT,
        "trunk": "pstn", "gateway": "gw1", "disposition": "answered"}
    if hanging_up == "customer":
        assert cdr["q850_cause"] == 31  # the gateway's cause, kept
    assert 1 <= cdr["billable_s"] <= 4  # about TALK_S; a started second is billed whole
    assert pstn.legs(cdr["call_id"]) == [(0, "gw1"), (1, AGENT)]
    assert pstn.gateway.busy_channels == 0


async def test_baresip_agent_dials_out_through_the_trunk_with_audio_both_ways(
        pstn: Pstn, phone: BaresipPhone) -> None:
    number = OUTSIDE_LINE + CUSTOMER_NATIONAL
    # baresip answers the switch's digest challenge to the INVITE by itself.
    await phone.command("dial", f"sip:{number}@127.0.0.1:{pstn.switch.udp_port}")
    established = await phone.event("CALL_ESTABLISHED")
    assert established["direction"] == "outgoing"
    far = pstn.gateway_call()
    await wait(far.answered.wait(), "the PSTN to answer")
    # The route stripped the outside-line 9 and put the access code in front; the PSTN
    # sees the agent's extension as the caller.
    assert (far.caller, far.called) == (AGENT, PREPEND + CUSTOMER_NATIONAL)
    await talk(TALK_S)
    far.hangup()
    closed = await phone.event("CALL_CLOSED")
    assert closed["param"] == "Connection reset by peer", closed
    await ended(far)

    assert abs(await baresip_heard(phone) - GATEWAY_TONE_HZ) < 10  # the PSTN, heard
    assert abs(heard(far.recording_path) - AGENT_TONE_HZ) < 10  # the agent, heard
    cdr = await pstn.cdr()
    assert {k: cdr[k] for k in ("direction", "caller", "trunk", "gateway", "disposition",
                                "q850_cause")} == {
        "direction": "outbound", "caller": AGENT, "trunk": "pstn", "gateway": "gw1",
        "disposition": "answered", "q850_cause": 16}
    assert cdr["callee"].endswith(CUSTOMER_NATIONAL)
    assert 1 <= cdr["billable_s"] <= 4
    assert pstn.legs(cdr["call_id"]) == [(0, AGENT), (1, "gw1")]
    assert pstn.gateway.busy_channels == 0


async def test_cdr_keeps_the_normal_clearing_cause_sent_for_an_agents_plain_bye(
        pstn: Pstn, phone: BaresipPhone) -> None:
    call = await pstn.gateway.place_call(CUSTOMER, DID_AGENT)
    await phone.event("CALL_INCOMING")
    await phone.command("accept")
    await phone.event("CALL_ESTABLISHED")
    await wait(call.answered.wait(), "the PSTN caller to be connected")
    await phone.command("hangup")
    await ended(call)
    assert call.remote_reason == 16  # what the PSTN was told ...
    cdr = await pstn.cdr()
    assert cdr["q850_cause"] == 16  # ... and what the CDR should keep
