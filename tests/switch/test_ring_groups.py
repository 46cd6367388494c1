"""Ring groups (switch.dialplan.RingGroup rung by switch.routing and switch.calls.forking):
targets rung at once (the first to answer wins, the others are CANCELled as "completed
elsewhere") or one after another, each for its own ring timeout; the dialplan checks the
targets at start; applications ring several numbers through Channel.dial_all. In memory
(tests/switch/harness.Net, FakeMediaEngine), time stepped by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.applications import Channel, DialResult
from switch.calls import COMPLETED_ELSEWHERE, CallSettings, LegAdded, LegEnded
from switch.config import ConfigError, RouteConfig, load_config
from switch.dialplan import Dialplan, Reject, RingGroup, Route
from switch.pri_gateway import TrunkGroup
from switch.sip import Cancelled, Ringing
from tests.switch.harness import (
    EXTENSIONS,
    GW1,
    MOBILE,
    OUTSIDE_LINE,
    Desk,
    Net,
    Party,
    cause_of,
    settle,
)

SALES = "4008009999"


def group_net(strategy: str, targets: tuple[str, ...], ring_timeout_s: float | None = None,
              **options: object) -> Net:
    group = RingGroup("sales", strategy, targets, ring_timeout_s)
    # The group's number, from the PSTN (a DID) and from our phones (a prefix).
    to_group = [Route.from_config(
        RouteConfig(did, prefix, None, None, None, None, None, 0, "", ring_group="sales"),
        {"sales": group}) for did, prefix in ((SALES, None), (None, SALES))]
    return Net([*to_group, OUTSIDE_LINE, EXTENSIONS],
               settings=CallSettings(ring_timeout_s=60.0, session_expires_s=None),
               **options)  # type: ignore[arg-type]


def agents(net: Net, *extensions: str) -> list[Party]:
    parties = [net.party(ext, f"10.0.0.{2 + i}") for i, ext in enumerate(extensions)]
    for party in parties:
        net.register(party)
    return parties


def cancels(party: Party) -> list[Cancelled]:
    return [e for _, e in party.events if isinstance(e, Cancelled)]


def test_simultaneous_group_rings_an_agent_and_a_mobile_and_the_first_answer_wins() -> None:
    net = group_net("simultaneous", ("1002", "0" + MOBILE), groups=[TrunkGroup("pstn", [GW1])])
    [agent] = agents(net, "1002")
    gateway = net.gateway(GW1)
    customer = net.dial(net.gateway(GW1), SALES, from_user="01088886666")
    assert len(agent.incoming) == 1
    [out] = gateway.incoming
    assert out.invite.uri.user == MOBILE
    assert net.busy(GW1) == 2  # the caller's channel and the mobile's
    agent.incoming[0].ring(net.now)
    out.ring(net.now)  # a CANCEL waits for a provisional response (RFC 3261 §9.1)
    net.pump()
    call = net.call()
    # A PSTN caller hears our ringback in-band.
    assert net.engine.legs[call.a.engine_leg].playing == "tone"
    net.answer(agent)
    assert gateway.answered(customer)
    assert cancels(gateway) == [Cancelled(COMPLETED_ELSEWHERE)]
    assert net.busy(GW1) == 1  # the mobile's channel is back
    ended = [r for r in net.reports if isinstance(r, LegEnded)]
    assert ended == [LegEnded(call.call_id, 2, 487, 26)]


def test_sequential_group_rings_each_target_for_its_ring_timeout_then_the_next() -> None:
    net = group_net("sequential", ("1002", "1003"), ring_timeout_s=15.0)
    alice = net.party("1001", "10.0.0.1")
    first, second = agents(net, "1002", "1003")
    outgoing = net.dial(alice, SALES)
    assert len(first.incoming) == 1 and second.incoming == []
    first.incoming[0].ring(net.now)
    net.pump()
    net.advance(14.99)
    assert second.incoming == [] and cancels(first) == []
    net.advance(15.0)
    [cancelled] = cancels(first)
    assert cause_of(cancelled.reason_header) == "19"  # no answer
    assert len(second.incoming) == 1
    second.incoming[0].ring(net.now)
    net.pump()
    assert [e for e in alice.events_of(outgoing) if isinstance(e, Ringing)] == [Ringing(180)]
    net.advance(25.0)
    net.answer(second)
    assert alice.answered(outgoing)
    call = net.call()
    legs = [(r.leg_index, r.peer) for r in net.reports if isinstance(r, LegAdded)]
    assert legs == [(0, "1001"), (1, "1002"), (2, "1003")]
    assert [r for r in net.reports if isinstance(r, LegEnded)] == [
        LegEnded(call.call_id, 1, 480, 19)]


def test_sequential_group_skips_a_target_that_cannot_ring() -> None:
    net = group_net("sequential", ("1002", "1003"), ring_timeout_s=15.0)
    alice = net.party("1001", "10.0.0.1")
    [second] = agents(net, "1003")  # 1002 is not registered
    net.dial(alice, SALES)
    assert len(second.incoming) == 1


def test_a_group_where_everyone_fails_gives_the_best_failure() -> None:
    net = group_net("simultaneous", ("1002", "1003", "0" + MOBILE),
                    groups=[TrunkGroup("pstn", [GW1])])
    alice = net.party("1001", "10.0.0.1")
    [busy] = agents(net, "1002")  # 1003 is not registered: 480
    net.fill(GW1)  # no free channel: 503, cause 34
    outgoing = net.dial(alice, SALES)
    busy.incoming[0].reject(486, net.now)
    net.pump()
    rejected = alice.rejected(outgoing)
    assert rejected.status == 486
    [ended] = net.ended()
    assert (ended.disposition, ended.sip_status, ended.q850_cause) == ("busy", 486, 17)


def test_a_sequential_group_failing_everywhere_ends_after_the_last_timeout() -> None:
    net = group_net("sequential", ("1002", "1003"), ring_timeout_s=10.0)
    alice = net.party("1001", "10.0.0.1")
    _, second = agents(net, "1002", "1003")
    outgoing = net.dial(alice, SALES)
    net.advance(10.0)
    assert len(second.incoming) == 1
    net.advance(19.99)
    assert not outgoing.ended
    net.advance(20.0)
    assert alice.rejected(outgoing).status == 480
    assert net.control.calls == {} and net.engine.legs == {}


def test_the_dialplan_refuses_a_group_target_that_leads_nowhere() -> None:
    dialplan = Dialplan([EXTENSIONS, OUTSIDE_LINE], Reject(404, "Not Found"))
    dialplan.check_ring_groups([RingGroup("sales", "simultaneous", ("1002", "013800138000"))])
    with pytest.raises(ConfigError) as error:
        dialplan.check_ring_groups([RingGroup("sales", "sequential", ("1002", "*99"))])
    assert str(error.value) == ("[[ring_groups]] 'sales': target '*99' reaches no extension"
                                " or trunk group through [[routes]]")


def test_a_configured_group_whose_target_leads_nowhere_is_refused_at_start(
        tmp_path: Path) -> None:
    path = tmp_path / "callcenter.toml"
    path.write_text('[[routes]]\nextension = true\n'
                    '[[routes]]\ndid = "4008009999"\nring_group = "sales"\n'
                    '[[ring_groups]]\nname = "sales"\ntargets = ["1002", "013800138000"]\n')
    config = load_config(str(path), environ={})
    with pytest.raises(ConfigError) as error:
        Dialplan.from_config(config)
    assert str(error.value) == ("[[ring_groups]] 'sales': target '013800138000' reaches no"
                                " extension or trunk group through [[routes]]")


async def test_an_application_rings_several_numbers_and_the_first_answer_is_bridged() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial_all(["1002", "1003"]))

    desk = Desk({"desk": app})
    other = desk.net.party("1003", "10.0.0.3")
    desk.net.register(other)
    outgoing = desk.call_in()
    await settle(lambda: desk.customer.answered(outgoing) and len(other.incoming) == 1)
    desk.agent.incoming[0].ring(desk.net.now)
    desk.net.answer(other)
    await settle(lambda: len(results) == 1)
    assert results == [DialResult(True)]
    assert cancels(desk.agent) == [Cancelled(COMPLETED_ELSEWHERE)]
    call = desk.call
    assert call.b is not None and call.b.kind.name == "1003"
    assert desk.net.engine.legs[call.a.engine_leg].peer == call.b.engine_leg


async def test_an_application_hears_the_best_failure_of_a_sequential_dial() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial_all(["1003", "1002"], sequential=True,
                                              ring_timeout_s=5.0))

    desk = Desk({"desk": app})
    desk.call_in()  # 1003 is not registered: 1002 rings at once
    await settle(lambda: len(desk.agent.incoming) == 1)
    call = desk.call
    desk.agent.incoming[0].reject(486, desk.net.now)
    desk.net.pump()
    await settle(lambda: len(results) == 1)
    assert results == [DialResult(False, 486, 17)]
    assert call.b is None and call.forking is None
