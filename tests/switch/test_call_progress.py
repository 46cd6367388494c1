"""What a call publishes for the ACD and the wallboard (switch.calls.reports, transfers):
CallRinging, CallBridged, CallHeld/CallResumed and CallTransferred, in their exact
places among the CDR events, for a plain call, a hold and resume, and blind and
attended transfers. In memory, over the call-control harness (tests/switch/harness)."""

from __future__ import annotations

from switch.calls import (
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallHeld,
    CallResumed,
    CallRinging,
    CallStarted,
    CallTransferred,
    LegAdded,
    LegAnswered,
    LegEnded,
)
from switch.sip import Direction, InviteClient, InviteServer
from tests.switch.harness import DirectNet, Net, Party, attended_transfer, sdp, two_devices

CALL = "tok2"  # the customer's call, as DirectNet numbers it


def parties() -> tuple[DirectNet, Party, Party, Party]:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    return net, customer, net.phone("1001", "10.0.0.2"), net.phone("1002", "10.0.0.3")


def ringing_then_answered(net: Net, customer: Party,
                          agent: Party) -> tuple[InviteClient, InviteServer]:
    outgoing = net.dial(customer, agent.name)
    agent.incoming[-1].ring(net.now)
    net.pump()
    agent.incoming[-1].ring(net.now)  # a second 180: still one CallRinging
    net.pump()
    return outgoing, net.answer(agent)


def without_sip_call_ids(reports: list[CallEvent]) -> list[CallEvent]:
    return [r for r in reports if not isinstance(r, LegAdded | CallStarted)]


ANSWERED = [
    CallRinging(CALL, 1, "1001"),
    LegAnswered(CALL, 1),
    LegAnswered(CALL, 0),
    CallAnswered(CALL),
    CallBridged(CALL, (0, 1)),
]


def test_a_plain_call_rings_is_bridged_and_ends() -> None:
    net, customer, agent, _ = parties()
    outgoing, _ = ringing_then_answered(net, customer, agent)
    outgoing.bye(net.now)
    net.pump()
    assert without_sip_call_ids(net.reports) == [
        *ANSWERED,
        LegEnded(CALL, 0, None, None),
        LegEnded(CALL, 1, None, None),
        CallEnded(CALL, "answered", 16, None, "caller-bye"),
    ]


def test_hold_and_resume_are_reported_once_each_for_the_holding_leg() -> None:
    net, customer, agent, _ = parties()
    _, agent_leg = ringing_then_answered(net, customer, agent)
    del net.reports[:]
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 2, Direction.SENDONLY), net.now)
    net.pump()
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 3, Direction.SENDONLY), net.now)  # still held
    net.pump()
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 4), net.now)
    net.pump()
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 5), net.now)  # a session refresh
    net.pump()
    assert net.reports == [CallHeld(CALL, 1), CallResumed(CALL, 1)]


def test_a_blind_transfer_rings_the_target_then_reports_the_transfer_and_the_new_bridge(
) -> None:
    net, customer, agent, expert = parties()
    _, agent_leg = ringing_then_answered(net, customer, agent)
    del net.reports[:]
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", "<sip:1002@10.0.0.9>")])
    net.pump()
    expert.incoming[0].ring(net.now)
    net.pump()
    net.answer(expert)
    assert without_sip_call_ids(net.reports) == [
        CallRinging(CALL, 2, "1002"),
        LegAnswered(CALL, 2),
        CallTransferred(CALL, "blind", "1001", "1002"),
        CallBridged(CALL, (0, 2)),
        LegEnded(CALL, 1, None, None),
    ]


def test_an_attended_transfer_reports_the_consulted_party_taking_over() -> None:
    net, customer, agent, expert = parties()
    _, agent_leg = ringing_then_answered(net, customer, agent)
    del net.reports[:]
    attended_transfer(net, agent, expert, agent_leg)
    consultation = "tok6"
    assert without_sip_call_ids(net.reports) == [
        LegAnswered(consultation, 1),
        LegAnswered(consultation, 0),
        CallAnswered(consultation),
        CallBridged(consultation, (0, 1)),
        LegEnded(consultation, 1, None, None),  # the consulted party leaves it ...
        LegAnswered(CALL, 2),  # ... and joins the customer's call
        CallTransferred(CALL, "attended", "1001", "1002"),
        CallBridged(CALL, (0, 2)),
        LegEnded(CALL, 1, None, None),
        LegEnded(consultation, 0, None, 16),
        CallEnded(consultation, "answered", 16, None, "transferred"),
    ]


def test_each_ringing_device_of_a_fork_is_reported_once() -> None:
    net = Net()
    alice, desk, soft = two_devices(net)
    net.dial(alice, "1002")
    [at_desk], [at_soft] = desk.incoming, soft.incoming
    at_soft.ring(net.now)
    net.pump()
    at_desk.ring(net.now)
    at_soft.ring(net.now)
    net.pump()
    net.answer(desk)
    call_id = net.call().call_id
    assert [r for r in net.reports if isinstance(r, CallRinging | CallBridged)] == [
        CallRinging(call_id, 2, "1002"), CallRinging(call_id, 1, "1002"),
        CallBridged(call_id, (0, 1))]
