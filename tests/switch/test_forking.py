"""Forking (switch.calls.forking): an extension registered from several devices rings them
all; the first to answer wins, the others are CANCELled as "completed elsewhere"; when
all fail the caller hears the best failure (RFC 3261 §16.7). In memory, with the real
router, registrar and call control (tests/switch/harness.Net); time stepped by hand."""

from __future__ import annotations

import pytest

from switch.calls import (
    COMPLETED_ELSEWHERE,
    CallSettings,
    Failure,
    LegAdded,
    LegAnswered,
    LegEnded,
    best_failure,
)
from switch.sip import ByeReceived, Cancelled, Ended
from tests.switch.harness import Net, Party, cause_of, sdp, two_devices


def cancels_to(net_party: Party) -> list[Cancelled]:
    return [e for _, e in net_party.events if isinstance(e, Cancelled)]


def test_every_registered_device_rings_and_the_first_to_answer_wins() -> None:
    net = Net()
    alice, desk, soft = two_devices(net)
    outgoing = net.dial(alice, "1002")
    [at_desk], [at_soft] = desk.incoming, soft.incoming
    assert str(at_desk.invite.uri) == "sip:1002@10.0.0.2:5060"
    assert str(at_soft.invite.uri) == "sip:1002@10.0.0.3:5062"
    assert at_desk.invite.call_id != at_soft.invite.call_id
    at_desk.ring(net.now)
    at_soft.ring(net.now)
    net.pump()
    net.answer(soft)
    assert alice.answered(outgoing)
    # The desk phone stops ringing, told the call was taken elsewhere (no missed call).
    assert cancels_to(desk) == [Cancelled(COMPLETED_ELSEWHERE)]
    assert at_desk.final_status == 487
    call = net.call()
    assert call.b is not None and call.b.kind.name == "1002"
    assert net.engine.legs[call.b.engine_leg].peer == call.a.engine_leg
    assert len(net.engine.legs) == 2  # the desk phone's engine leg is closed
    legs = [r for r in net.reports if isinstance(r, LegAdded | LegAnswered | LegEnded)]
    assert legs == [
        LegAdded(call.call_id, 0, "1001", "1001-call-0"),
        LegAdded(call.call_id, 1, "1002", at_desk.invite.call_id),
        LegAdded(call.call_id, 2, "1002", at_soft.invite.call_id),
        LegEnded(call.call_id, 1, 487, 26),  # non-selected user clearing
        LegAnswered(call.call_id, 2),
        LegAnswered(call.call_id, 0),
    ]


def test_a_device_answering_after_another_won_is_acked_and_byed() -> None:
    net = Net()
    alice, desk, soft = two_devices(net)
    outgoing = net.dial(alice, "1002")
    [at_desk], [at_soft] = desk.incoming, soft.incoming
    at_desk.ring(net.now)
    at_soft.ring(net.now)
    net.pump()
    # Both answer before either hears from the switch: the softphone's 200 crosses
    # the CANCEL the desk phone's answer caused.
    at_desk.answer(sdp("10.0.0.2", 6000), net.now)
    at_soft.answer(sdp("10.0.0.3", 6002), net.now)
    net.pump()
    assert alice.answered(outgoing)
    assert ByeReceived() in soft.events_of(at_soft)
    assert Ended("bye-received") in soft.events_of(at_soft)
    assert not at_desk.ended
    [call] = net.control.calls.values()
    assert call.b is not None and call.b.sip_call_id == at_desk.invite.call_id


@pytest.mark.parametrize(("desk_status", "soft_status", "caller_status", "q850"), [
    (480, 486, 486, 17),  # busy says more than not there
    (404, 480, 480, 18),
    (486, 603, 603, 21),  # a 6xx wins over everything
    (503, 486, 486, 17),  # a 4xx over a 5xx
])
def test_when_every_device_fails_the_caller_gets_the_best_failure(
        desk_status: int, soft_status: int, caller_status: int, q850: int) -> None:
    net = Net()
    alice, desk, soft = two_devices(net)
    outgoing = net.dial(alice, "1002")
    desk.incoming[0].reject(desk_status, net.now)
    net.pump()
    assert not outgoing.ended  # the softphone still rings
    soft.incoming[0].reject(soft_status, net.now)
    net.pump()
    rejected = alice.rejected(outgoing)
    assert rejected.status == caller_status
    [ended] = net.ended()
    assert (ended.sip_status, ended.q850_cause) == (soft_status if soft_status == caller_status
                                                    else desk_status, q850)
    assert net.engine.legs == {}
    assert net.control.calls == {}


def test_the_caller_hanging_up_cancels_every_device() -> None:
    net = Net()
    alice, desk, soft = two_devices(net)
    outgoing = net.dial(alice, "1002")
    for phone in (desk, soft):
        phone.incoming[0].ring(net.now)
    net.pump()
    outgoing.cancel(net.now)
    net.pump()
    assert cancels_to(desk) == [Cancelled(None)] and cancels_to(soft) == [Cancelled(None)]
    [ended] = net.ended()
    assert ended.cause == "cancelled"
    assert net.engine.legs == {}
    assert net.control.calls == {}


def test_nobody_answering_cancels_every_device_at_the_ring_timeout() -> None:
    net = Net(settings=CallSettings(ring_timeout_s=20.0, session_expires_s=None))
    alice, desk, soft = two_devices(net)
    outgoing = net.dial(alice, "1002")
    for phone in (desk, soft):
        phone.incoming[0].ring(net.now)
    net.pump()
    net.advance(19.99)
    assert cancels_to(desk) == []
    net.advance(20.0)
    for phone in (desk, soft):
        [cancelled] = cancels_to(phone)
        assert cause_of(cancelled.reason_header) == "19"
    rejected = alice.rejected(outgoing)
    assert rejected.status == 480 and cause_of(rejected.reason_header) == "19"
    [ended] = net.ended()
    assert (ended.disposition, ended.q850_cause) == ("no_answer", 19)


def test_one_registered_device_is_dialled_as_before_without_forking() -> None:
    net = Net()
    alice, bob = net.party("1001", "10.0.0.1"), net.party("1002", "10.0.0.2")
    net.register(bob)
    net.dial(alice, "1002")
    assert net.call().forking is None and net.call().b is not None


def test_best_failure_follows_rfc_3261_16_7() -> None:
    assert best_failure([Failure(404), Failure(486), Failure(480)]).status == 486
    assert best_failure([Failure(486), Failure(600)]).status == 600
    assert best_failure([Failure(500), Failure(408)]).status == 408
    assert best_failure([]) == Failure(480, 19)
