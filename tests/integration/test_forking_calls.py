"""Forking and ring groups through the real `callcenter serve` over loopback: two emulated
phones registered as one extension (different contacts) both ring, the first to answer
gets the call with audio both ways, the other a CANCEL saying "Call completed elsewhere";
ring groups ring extensions and a PSTN number at once or in turn. The phones are
GatewayEmulators on 127.0.0.1, as in test_pri_calls; the PSTN is the one on 127.0.0.2.
Audio is checked from recordings; the only timed waits are audio segments."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from switch.pri_gateway.emulator import EmulatedCall, GatewayEmulator, Outcome
from tests.integration.test_pri_calls import (
    AGENT,
    AGENT_PASSWORD,
    AGENT_TONE_HZ,
    CUSTOMER,
    CUSTOMER_NATIONAL,
    DID_AGENT,
    GATEWAY_TONE_HZ,
    NOBODY,
    PREPEND,
    Pri,
    ended,
    heard,
    pri_setup,
    register,
    until,
    wait,
)

pytestmark = pytest.mark.integration

DESK_RTP = (43600, 43699)
DESK_TONE_HZ = 600.0
DESK, DESK_PASSWORD = NOBODY, "nobody-pass-1009"  # a second extension's phone
DID_SIMULTANEOUS = "4008007001"
DID_SEQUENTIAL = "4008007002"
MOBILE = "13900139000"
RING_GROUPS = f"""\
[[routes]]
did = "{DID_SIMULTANEOUS}"
from_trunk = "pstn"
ring_group = "together"
[[routes]]
did = "{DID_SEQUENTIAL}"
from_trunk = "pstn"
ring_group = "in-turn"
[[routes]]
prefix = "*7"
ring_group = "together"
[[ring_groups]]
name = "together"
targets = ["{DESK}", "9{MOBILE}"]
[[ring_groups]]
name = "in-turn"
strategy = "sequential"
targets = ["{DESK}", "{AGENT}"]
ring_timeout_s = 1.5
"""
COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


@asynccontextmanager
async def with_desk(tmp_path: Path, extension: str,
                    password: str) -> AsyncIterator[tuple[Pri, GatewayEmulator]]:
    """pri_setup with the ring groups, and a second phone (600 Hz) registered as
    `extension` from its own port."""
    async with pri_setup(tmp_path, extra_config=RING_GROUPS) as pri:
        desk = GatewayEmulator("127.0.0.1", 0, switch=("127.0.0.1", pri.switch.udp_port),
                               media_ports=DESK_RTP, recordings_dir=tmp_path / "desk",
                               answer_audio=("tone", DESK_TONE_HZ))
        async with desk:
            await asyncio.to_thread(register, pri.switch, extension, password,
                                    desk.address[1])
            try:
                yield pri, desk
            finally:
                for call in desk.calls.values():
                    if call.answered.is_set() and not call.ended.is_set():
                        call.hangup()


def only_call(phone: GatewayEmulator) -> EmulatedCall:
    [call] = [c for c in phone.calls.values() if not c.placed]
    return call


async def test_both_devices_of_an_extension_ring_and_the_first_answer_takes_the_call(
        tmp_path: Path) -> None:
    async with with_desk(tmp_path, AGENT, AGENT_PASSWORD) as (pri, desk):
        desk.set_outcome("", Outcome.NO_ANSWER)  # rings until cancelled
        desk.set_no_answer_timeout(30.0)
        call = await pri.gateway.place_call(CUSTOMER, DID_AGENT,
                                            audio=("tone", GATEWAY_TONE_HZ),
                                            hangup_after_s=1.5)
        await wait(call.answered.wait(), "the answer")
        ringing = only_call(desk)
        await wait(ringing.ended.wait(), "the desk phone to stop ringing")
        assert ringing.final_status == 487
        assert ringing.cancel is not None
        assert ringing.cancel.headers.get("Reason") == COMPLETED_ELSEWHERE
        answered = pri.agent_call()
        await ended(call, answered)
        assert abs(heard(answered.recording_path) - GATEWAY_TONE_HZ) < 10
        assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10
        cdr = await pri.cdr()
        assert (cdr["caller"], cdr["disposition"]) == (CUSTOMER_NATIONAL, "answered")
        # One CDR leg per device rung: the one that answered ended normally, the
        # other as "non-selected user clearing" (Q.850 26).
        legs = pri_legs(pri, cdr["call_id"])
        assert legs[0] == (0, "gw1", None, 16)
        answered_leg = 1 if legs[1][2] is None else 2
        assert {legs[answered_leg], legs[3 - answered_leg]} == {
            (answered_leg, AGENT, None, 16), (3 - answered_leg, AGENT, 487, 26)}


async def test_every_device_failing_gives_the_pstn_the_best_failure(tmp_path: Path) -> None:
    async with with_desk(tmp_path, AGENT, AGENT_PASSWORD) as (pri, desk):
        desk.set_outcome("", Outcome.BUSY)  # 486, cause 17
        pri.agent.set_outcome("", Outcome.NO_ANSWER)  # 480, cause 19, a moment later
        pri.agent.set_no_answer_timeout(0.3)
        call = await pri.gateway.place_call(CUSTOMER, DID_AGENT)
        await wait(call.ended.wait(), "the call to fail")
        assert call.final_status == 486
        assert call.remote_reason == 17
        cdr = await pri.cdr()
        assert (cdr["disposition"], cdr["q850_cause"]) == ("busy", 17)


async def test_a_simultaneous_group_rings_a_phone_and_a_mobile_and_the_mobile_answers(
        tmp_path: Path) -> None:
    async with with_desk(tmp_path, DESK, DESK_PASSWORD) as (pri, desk):
        desk.set_outcome("", Outcome.NO_ANSWER)
        desk.set_no_answer_timeout(30.0)
        caller = await pri.dial("*70", audio=("tone", AGENT_TONE_HZ), hangup_after_s=1.5)
        await wait(caller.answered.wait(), "the answer")
        ringing = only_call(desk)
        await wait(ringing.ended.wait(), "the desk phone to stop ringing")
        assert ringing.cancel is not None
        assert ringing.cancel.headers.get("Reason") == COMPLETED_ELSEWHERE
        mobile = pri.gateway_call()
        assert mobile.called == PREPEND + MOBILE
        await ended(caller, mobile)
        assert abs(heard(mobile.recording_path) - AGENT_TONE_HZ) < 10
        assert abs(heard(caller.recording_path) - GATEWAY_TONE_HZ) < 10


async def test_a_sequential_group_rings_the_next_phone_after_the_ring_timeout(
        tmp_path: Path) -> None:
    async with with_desk(tmp_path, DESK, DESK_PASSWORD) as (pri, desk):
        desk.set_outcome("", Outcome.NO_ANSWER)
        desk.set_no_answer_timeout(30.0)
        call = await pri.gateway.place_call(CUSTOMER, DID_SEQUENTIAL,
                                            audio=("tone", GATEWAY_TONE_HZ),
                                            hangup_after_s=1.5)
        await until(lambda: bool(desk.calls), "the desk phone to ring")
        first = only_call(desk)
        assert not pri.agent_calls_any()  # one after another, not together
        await wait(first.ended.wait(), "the ring timeout")
        assert first.remote_reason == 19  # cancelled: no answer
        await wait(call.answered.wait(), "the agent's answer")
        answered = pri.agent_call()
        await ended(call, answered)
        assert abs(heard(answered.recording_path) - GATEWAY_TONE_HZ) < 10
        assert abs(heard(call.recording_path) - AGENT_TONE_HZ) < 10


def pri_legs(pri: Pri, call_id: str) -> list[tuple[int, str, int | None, int | None]]:
    with sqlite3.connect(pri.db_path) as db:
        return db.execute("SELECT leg_index, peer, sip_status, q850_cause FROM call_legs "
                          "WHERE call_id = ? ORDER BY leg_index", (call_id,)).fetchall()
