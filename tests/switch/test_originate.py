"""Originate / click-to-dial (switch.calls.originate via CallRouter.originate): the agent's
phone rings first; once it answers the agent hears ringback while the customer is
dialled; the CDR reads as the agent dialling out; a failure on either side is reported
with its cause. In memory (tests/switch/harness.Net), time stepped by hand."""

from __future__ import annotations

import pytest

from switch.calls import (
    CallAnswered,
    CallSettings,
    CallStarted,
    LegAdded,
    LegAnswered,
    OriginateError,
    OriginateFailed,
)
from switch.media import MediaError
from switch.pri_gateway import Direction, TrunkGroup
from switch.sip import ByeReceived, Cancelled, SipUri
from tests.switch.harness import (
    DOMAIN,
    EXTENSIONS,
    GW1,
    MOBILE,
    OUTSIDE_LINE,
    Net,
    Party,
    cause_of,
)


def setup(**options: object) -> tuple[Net, Party]:
    net = Net([OUTSIDE_LINE, EXTENSIONS], groups=[TrunkGroup("pstn", [GW1])],
              settings=CallSettings(ring_timeout_s=30.0, session_expires_s=None),
              **options)  # type: ignore[arg-type]
    agent = net.party("1001", "10.0.0.1")
    net.register(agent)
    return net, agent


def failures(net: Net) -> list[OriginateFailed]:
    return [r for r in net.reports if isinstance(r, OriginateFailed)]


def test_the_agent_rings_first_hears_ringback_then_talks_to_the_customer() -> None:
    net, agent = setup()
    call = net.router.originate("1001", "0" + MOBILE, net.now)
    net.pump()
    [ringing] = agent.incoming
    # The agent's phone shows the number it is about to be connected to.
    assert ringing.invite.from_.uri == SipUri(DOMAIN, user="0" + MOBILE)
    assert str(ringing.invite.uri) == "sip:1001@10.0.0.1:5060"
    gateway = net.gateway(GW1)
    assert gateway.incoming == []  # the customer is dialled only once the agent answers
    assert net.busy(GW1, Direction.OUTBOUND) == 1  # but the channel is kept already
    ringing.ring(net.now)
    net.pump()
    net.answer(agent)
    # The agent hears ringback while the customer's phone rings.
    assert net.engine.legs[call.a.engine_leg].playing == "tone"
    assert ("play_tone", call.a.engine_leg, "ringback") in net.engine.commands
    [out] = gateway.incoming
    assert out.invite.uri.user == MOBILE
    assert out.invite.from_.uri == SipUri(DOMAIN, user="1001")
    assert out.invite.headers.get("P-Asserted-Identity") == "<sip:1001@10.0.0.9>"
    out.ring(net.now)
    net.pump()
    assert net.engine.legs[call.a.engine_leg].playing == "tone"
    net.answer(gateway)
    assert call.b is not None
    assert net.engine.legs[call.a.engine_leg].playing is None
    assert net.engine.legs[call.a.engine_leg].peer == call.b.engine_leg
    events = [r for r in net.reports if isinstance(r, CallStarted | LegAdded | LegAnswered
                                                   | CallAnswered)]
    assert events == [
        CallStarted(call.call_id, "outbound", "1001", MOBILE, "pstn", "gw1"),
        LegAdded(call.call_id, 0, "1001", ringing.invite.call_id),
        LegAnswered(call.call_id, 0),
        LegAdded(call.call_id, 1, "gw1", out.invite.call_id),
        LegAnswered(call.call_id, 1),
        CallAnswered(call.call_id),
    ]
    assert failures(net) == []
    out.bye(net.now)
    net.pump()
    assert ByeReceived() in agent.events_of(ringing)
    [ended] = net.ended()
    assert (ended.disposition, ended.cause) == ("answered", "callee-bye")
    assert net.busy(GW1) == 0


def test_an_agent_who_does_not_answer_is_cancelled_and_the_channel_given_back() -> None:
    net, agent = setup()
    call = net.router.originate("1001", "0" + MOBILE, net.now, ring_timeout_s=15.0)
    net.pump()
    agent.incoming[0].ring(net.now)
    net.pump()
    net.advance(14.99)
    assert failures(net) == []
    net.advance(15.0)
    [cancelled] = [e for _, e in agent.events if isinstance(e, Cancelled)]
    assert cause_of(cancelled.reason_header) == "19"
    assert failures(net) == [OriginateFailed(call.call_id, "agent", 480, 19,
                                             "agent-no-answer")]
    assert net.gateway(GW1).incoming == []
    assert net.busy(GW1) == 0
    [ended] = net.ended()
    assert ended.disposition == "no_answer"
    assert net.control.calls == {} and net.engine.legs == {}


def test_an_agent_rejecting_fails_on_the_agent_side() -> None:
    net, agent = setup()
    call = net.router.originate("1001", "0" + MOBILE, net.now)
    net.pump()
    agent.incoming[0].reject(486, net.now)
    net.pump()
    assert failures(net) == [OriginateFailed(call.call_id, "agent", 486, 17,
                                             "agent-rejected-486")]
    assert net.busy(GW1) == 0
    assert net.control.calls == {}


def test_a_busy_customer_fails_on_the_customer_side_and_the_agent_is_told() -> None:
    net, agent = setup()
    call = net.router.originate("1001", "0" + MOBILE, net.now)
    net.pump()
    net.answer(agent)
    out = net.gateway(GW1).incoming[0]
    out.reject(486, net.now, headers=[("Reason", "Q.850;cause=17")])
    net.pump()
    assert failures(net) == [OriginateFailed(call.call_id, "customer", 486, 17,
                                             "rejected-486")]
    # The agent's phone is released with the customer's cause.
    assert ByeReceived("Q.850;cause=17") in agent.events_of(agent.incoming[0])
    [ended] = net.ended()
    assert (ended.disposition, ended.q850_cause) == ("busy", 17)
    assert net.busy(GW1) == 0 and net.engine.legs == {}


def test_the_agent_hanging_up_while_the_customer_rings_cancels_the_customer() -> None:
    net, agent = setup()
    call = net.router.originate("1001", "0" + MOBILE, net.now)
    net.pump()
    answered = net.answer(agent)
    out = net.gateway(GW1).incoming[0]
    out.ring(net.now)
    net.pump()
    answered.bye(net.now)
    net.pump()
    assert out.final_status == 487
    [failed] = failures(net)
    assert (failed.call_id, failed.side, failed.cause) == (call.call_id, "agent", "caller-bye")


def test_an_extension_can_be_the_customer() -> None:
    net, agent = setup()
    colleague = net.party("1002", "10.0.0.2")
    net.register(colleague)
    call = net.router.originate("1001", "1002", net.now)
    net.pump()
    net.answer(agent)
    net.answer(colleague)
    assert call.b is not None and call.b.kind.name == "1002"
    [started] = net.started()
    assert (started.direction, started.caller, started.callee) == ("internal", "1001", "1002")


@pytest.mark.parametrize(("agent", "number", "side", "status", "cause"), [
    ("1009", "0" + MOBILE, "agent", 480, 20),  # the agent's phone is not registered
    ("1001", "*99", "customer", 404, 3),  # no route
])
def test_what_cannot_start_raises_and_rings_nobody(agent: str, number: str, side: str,
                                                   status: int, cause: int) -> None:
    net, phone = setup()
    with pytest.raises(OriginateError) as error:
        net.router.originate(agent, number, net.now)
    assert (error.value.side, error.value.status, error.value.q850_cause) == (
        side, status, cause)
    net.pump()
    assert phone.incoming == [] and net.control.calls == {} and net.reports == []


def test_a_full_trunk_raises_before_the_agent_rings() -> None:
    net, phone = setup()
    net.fill(GW1)
    with pytest.raises(OriginateError) as error:
        net.router.originate("1001", "0" + MOBILE, net.now)
    assert (error.value.side, error.value.status, error.value.q850_cause) == (
        "customer", 503, 34)
    assert phone.incoming == []


def test_no_rtp_port_for_the_customer_gives_the_channel_back() -> None:
    net, agent = setup()
    net.router.originate("1001", "0" + MOBILE, net.now)
    net.pump()
    while True:  # other calls take every port left
        try:
            net.engine.open_leg()
        except MediaError:
            break
    net.answer(agent)
    [failed] = failures(net)
    assert (failed.side, failed.sip_status) == ("customer", 503)
    assert net.busy(GW1) == 0
