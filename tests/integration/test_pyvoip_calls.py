"""pyVoIP 1.6.8 as an agent's phone: a PSTN call to the service number reaches it
through the real switch, it answers through its callback API, both parties hear each
other, either side hangs up and the CDR says so.

pyVoIP is an independent SIP stack with its own habits, and these tests take them as
they are: it answers one second after the INVITE (its callback runs on a
threading.Timer(1, ...)), it sends its 180 and 200 to the address it registered with
rather than to the INVITE's Via, and its audio API is 8-bit unsigned linear PCM at
8 kHz (`write_audio` queues it, `read_audio` reads what arrived, 0x80 being silence).
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.phone_calls import Pstn, pstn_setup
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
    free_udp_port,
    heard,
    talk,
    until,
    wait,
)

pytestmark = pytest.mark.integration

AGENT_TONE_HZ = 400.0
AGENT_RTP_LOW = 44000  # pyVoIP picks its RTP port at random in [low, low + 20]
TALK_S = 1.5
PYVOIP_SILENCE = 0x80  # unsigned 8-bit zero


def tone_u8(frequency_hz: float, seconds: float) -> bytes:
    """A tone in pyVoIP's audio format: unsigned 8-bit linear PCM at 8 kHz."""
    t = np.arange(int(8000 * seconds)) / 8000
    return (128 + 40 * np.sin(2 * math.pi * frequency_hz * t)).astype(np.uint8).tobytes()


@contextmanager
def pyvoip_quiet() -> Iterator[None]:
    """pyVoIP's own deprecations and debugging warnings are not ours to fail on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class PyVoipAgent:
    """Extension 1001 on pyVoIP: answers every call and says its tone."""

    def __init__(self, switch_port: int, loop: asyncio.AbstractEventLoop) -> None:
        from pyVoIP.VoIP import VoIPPhone

        self._loop = loop
        self.answered = asyncio.Event()
        self.call: Any = None  # pyVoIP's VoIPCall once answered
        self.failure: BaseException | None = None
        self.phone = VoIPPhone("127.0.0.1", switch_port, AGENT, AGENT_PASSWORD,
                               myIP="127.0.0.1", callCallback=self._on_call,
                               sipPort=free_udp_port("127.0.0.1"),
                               rtpPortLow=AGENT_RTP_LOW, rtpPortHigh=AGENT_RTP_LOW + 20)

    def _on_call(self, call: Any) -> None:
        # On pyVoIP's timer thread. An exception here would only be printed there, so it
        # is kept for the test to raise.
        try:
            call.answer()
            call.write_audio(tone_u8(AGENT_TONE_HZ, 10.0))
            self.call = call
        except BaseException as exc:
            self.failure = exc
        self._loop.call_soon_threadsafe(self.answered.set)

    async def wait_answered(self) -> Any:
        await wait(self.answered.wait(), "pyVoIP to answer")
        if self.failure is not None:
            raise self.failure
        return self.call

    def heard(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Everything pyVoIP received on the call, as signed samples (after the call:
        pyVoIP keeps the received audio, indexed by RTP timestamp, until read)."""
        data = self.call.read_audio(8000 * 30, blocking=False)
        samples = np.frombuffer(data, dtype=np.uint8).astype(np.float64) - PYVOIP_SILENCE
        nonzero = np.flatnonzero(samples)
        assert len(nonzero), "pyVoIP heard nothing"
        return samples[: nonzero[-1] + 1]  # read_audio pads the end with silence


@pytest.fixture
async def pstn(tmp_path: Path) -> AsyncIterator[Pstn]:
    async with pstn_setup(tmp_path) as setup:
        yield setup


@pytest.fixture
async def agent(pstn: Pstn) -> AsyncIterator[PyVoipAgent]:
    with pyvoip_quiet():
        from pyVoIP.VoIP import PhoneStatus

        phone = PyVoipAgent(pstn.switch.udp_port, asyncio.get_running_loop())
        # start() registers synchronously (digest) and raises if the switch refuses.
        await asyncio.to_thread(phone.phone.start)
        try:
            assert phone.phone.get_status() == PhoneStatus.REGISTERED
            yield phone
        finally:
            await asyncio.to_thread(phone.phone.stop)


async def _answered_call(pstn: Pstn, agent: PyVoipAgent) -> tuple[Any, Any]:
    call = await pstn.gateway.place_call(CUSTOMER, DID_AGENT, audio=("tone", GATEWAY_TONE_HZ))
    answered = await agent.wait_answered()
    await wait(call.answered.wait(), "the PSTN caller to be connected")
    return call, answered


async def _check_cdr(pstn: Pstn) -> dict[str, Any]:
    cdr = await pstn.cdr()
    assert {k: cdr[k] for k in ("direction", "caller", "callee", "trunk", "gateway",
                                "disposition")} == {
        "direction": "inbound", "caller": CUSTOMER_NATIONAL, "callee": DID_AGENT,
        "trunk": "pstn", "gateway": "gw1", "disposition": "answered"}
    assert cdr["answered_at"] is not None and cdr["ended_at"] >= cdr["answered_at"]
    assert 1 <= cdr["billable_s"] <= 4  # about TALK_S; a started second is billed whole
    assert pstn.legs(cdr["call_id"]) == [(0, "gw1"), (1, AGENT)]
    assert pstn.gateway.busy_channels == 0
    return cdr


async def test_pyvoip_agent_answers_talks_both_ways_and_hangs_up(
        pstn: Pstn, agent: PyVoipAgent) -> None:
    with pyvoip_quiet():
        call, pyvoip_call = await _answered_call(pstn, agent)
        # The PSTN caller is presented to the agent's phone as a national number.
        assert pyvoip_call.request.headers["From"]["number"] == CUSTOMER_NATIONAL
        await talk(TALK_S)
        await asyncio.to_thread(pyvoip_call.hangup)
        await ended(call)
        assert call.end_cause == "bye-received"  # the agent's BYE reached the PSTN
        assert call.remote_reason == 16  # as normal clearing
        assert abs(dominant_hz(agent.heard()) - GATEWAY_TONE_HZ) < 10
        assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10
        await _check_cdr(pstn)
        # (The CDR's Q.850 cause for a phone's plain BYE: see test_baresip_calls' xfail.)


async def test_pstn_caller_hangs_up_on_the_pyvoip_agent(
        pstn: Pstn, agent: PyVoipAgent) -> None:
    with pyvoip_quiet():
        from pyVoIP.VoIP import CallState

        call, pyvoip_call = await _answered_call(pstn, agent)
        await talk(TALK_S)
        call.hangup(31)  # normal, unspecified
        await ended(call)
        assert call.end_cause == "bye-sent"
        await until(lambda: pyvoip_call.state == CallState.ENDED, "pyVoIP to see the BYE")
        assert abs(dominant_hz(agent.heard()) - GATEWAY_TONE_HZ) < 10
        assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10
        cdr = await _check_cdr(pstn)
        assert cdr["q850_cause"] == 31  # the gateway's cause, kept


async def test_pyvoip_places_a_call_to_the_pstn(pstn: Pstn, agent: PyVoipAgent) -> None:
    """pyVoIP as the caller: after the 401 it resends its INVITE with the same Via branch
    and the next CSeq, which the switch takes as the new request it is."""
    with pyvoip_quiet():
        from pyVoIP.VoIP import CallState

        pyvoip_call = await asyncio.to_thread(agent.phone.call,
                                              OUTSIDE_LINE + CUSTOMER_NATIONAL)
        await until(lambda: pyvoip_call.state == CallState.ANSWERED,
                    "the PSTN to answer pyVoIP's call")
        pyvoip_call.write_audio(tone_u8(AGENT_TONE_HZ, 10.0))
        agent.call = pyvoip_call
        far = pstn.gateway_call()
        assert far.called == PREPEND + CUSTOMER_NATIONAL
        await talk(TALK_S)
        await asyncio.to_thread(pyvoip_call.hangup)
        await ended(far)
        assert far.end_cause == "bye-received"
        assert abs(heard(far.recording_path) - AGENT_TONE_HZ) < 10  # pyVoIP reached the PSTN
        assert abs(dominant_hz(agent.heard()) - GATEWAY_TONE_HZ) < 10  # and back
        cdr = await pstn.cdr()
        assert (cdr["direction"], cdr["caller"], cdr["disposition"]) == (
            "outbound", AGENT, "answered")
