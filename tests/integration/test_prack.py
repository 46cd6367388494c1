"""Reliable provisional responses end to end (RFC 3262): the PRI gateway emulator,
set to require 100rel like many gateways, calls the agent through the real switch.
The agent's phone rings and answers at once, so the switch's 183 (our ringback as
early media) is sent reliably and its 200 must wait for the gateway's PRACK; the call
then carries audio both ways."""

from __future__ import annotations

import pytest

from tests.integration.test_pri_calls import (
    AGENT_TONE_HZ,
    GATEWAY_TONE_HZ,
    Pri,
    ended,
    heard,
    inbound,
    pri,  # noqa: F401 - the fixture
    wait,
)

pytestmark = pytest.mark.integration


async def test_gateway_requiring_100rel_gets_reliable_18x_pracks_them_and_talks(
        pri: Pri) -> None:  # noqa: F811
    pri.gateway.require_100rel = True
    call = await inbound(pri, hangup_after_s=1.5)
    await wait(call.answered.wait(), "the answer")
    far = pri.agent_call()
    await ended(call, far)
    assert call.invite is None and call.session is not None
    reliable = [r for r in call.provisionals if r.headers.get("RSeq") is not None]
    assert reliable, [r.status for r in call.provisionals]
    assert {r.headers.get("Require") for r in reliable} == {"100rel"}
    assert all(r.headers.get("RSeq") is not None for r in call.provisionals
               if r.status != 100)  # required: every 18x is reliable
    first = reliable[0]
    assert first.status == 183 and first.body  # our ringback, as early media
    assert call.response is not None and call.response.status == 200  # after the PRACK
    assert abs(heard(far.recording_path) - GATEWAY_TONE_HZ) < 10
    assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10
    assert pri.log_has(r"call \S+: \+?\d+ -> \d+ from gateway gw1")
