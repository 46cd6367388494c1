"""OPTIONS keepalive of the PRI gateways: the switch's real TransactionLayer and
GatewayProbes against in-memory gateways (each a real TransactionLayer of its own), on
the call-control harness (tests/switch/harness.Net with probe_timeout_s). Real bytes
cross the wire; time moves only when the test says so."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.gateway_probes import GatewayProbes
from switch.pri_gateway import (
    ALL_GATEWAYS_DOWN,
    Gateway,
    GatewayCameBack,
    GatewayHealth,
    GatewayWentDown,
    HealthState,
    TrunkGroup,
    Trunks,
)
from switch.sip import Peer, Request, ResponseReceived, TransactionLayer, parse_message
from tests.switch.harness import SWITCH, Behaviour, Net, counter

GW1 = Gateway("gw1", "10.0.1.1")
GW2 = Gateway("gw2", "10.0.1.2")
TIMER_F_S = 32.0  # RFC 3261 §17.1.2.2: 64*T1, T1 = 0.5 s


def answers(status: int) -> Behaviour:
    return lambda request: status


def silent(request: Request) -> int | None:
    return None


def network(behaviours: dict[str, Behaviour], *,
            make_health: Callable[[str], GatewayHealth] | None = None,
            timeout_s: float = 60.0) -> Net:
    """The harness's Net probing GW1 and GW2, which answer OPTIONS per `behaviours`."""
    return Net(groups=[TrunkGroup("pstn", [GW1, GW2])], make_health=make_health or (
        lambda name: GatewayHealth(name, interval_s=30.0, failures_to_down=3,
                                   successes_to_up=2, down_interval_s=10.0)),
        probe_timeout_s=timeout_s, gateway_options=behaviours)


def probes_sent_to(net: Net, name: str) -> list[str]:
    """Call-IDs of the distinct OPTIONS sent to a gateway (not retransmissions)."""
    host = net.trunks.gateways[name].host
    call_ids: list[str] = []
    for source, out in net.sent:
        request = parse_message(out.data)
        if source == SWITCH and isinstance(request, Request) \
                and f"sip:{host}:" in str(request.uri) and request.call_id not in call_ids:
            call_ids.append(request.call_id)
    return call_ids


def test_the_probe_on_the_wire() -> None:
    net = network({"gw1": answers(200), "gw2": answers(200)})
    assert net.probes.next_deadline() == 0.0  # configured gateways are probed at once
    net.probes.handle_timer(0.0)
    first, second = net.layer.outgoing()
    assert first.peer == Peer("UDP", "10.0.1.1", 5060)
    assert first.data == (
        b"OPTIONS sip:10.0.1.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKsw1;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:10.0.0.9:5060>;tag=tok1\r\n"
        b"To: <sip:10.0.1.1:5060>\r\n"
        b"Call-ID: tok2\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Accept: application/sdp\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert second.peer == Peer("UDP", "10.0.1.2", 5060)
    assert second.data.startswith(b"OPTIONS sip:10.0.1.2:5060 SIP/2.0\r\n")
    assert net.probes.next_deadline() == 60.0  # both await their outcome (or timeout)


@pytest.mark.parametrize(("gateway", "request_line", "peer"), [
    (Gateway("v6", "2001:db8::1", 5070), b"OPTIONS sip:[2001:db8::1]:5070 SIP/2.0",
     Peer("UDP", "2001:db8::1", 5070)),
    (Gateway("tcp", "10.0.1.3", transport="TCP"),
     b"OPTIONS sip:10.0.1.3:5060;transport=tcp SIP/2.0", Peer("TCP", "10.0.1.3", 5060)),
    (Gateway("tls", "gw.example.net", 5061, transport="TLS"),
     b"OPTIONS sips:gw.example.net:5061 SIP/2.0", Peer("TLS", "gw.example.net", 5061)),
])
def test_request_uri_and_peer_follow_the_gateway(gateway: Gateway, request_line: bytes,
                                                 peer: Peer) -> None:
    layer = TransactionLayer(new_branch=counter("z9hG4bKp"))
    probes = GatewayProbes(layer, Trunks([TrunkGroup("g", [gateway])]),
                           via_host="10.0.0.9", via_port=5060, new_token=counter("tok"))
    probes.handle_timer(0.0)
    (out,) = layer.outgoing()
    assert out.peer == peer
    assert out.data.split(b"\r\n")[0] == request_line
    via = out.data.split(b"\r\n")[1]
    assert via.startswith(f"Via: SIP/2.0/{gateway.transport} 10.0.0.9:5060;".encode())


def test_an_answering_gateway_stays_live_and_is_probed_every_interval() -> None:
    net = network({"gw1": answers(200), "gw2": answers(200)})
    net.advance(300.0)
    assert len(probes_sent_to(net, "gw1")) == 11  # at 0, 30, ..., 300
    assert net.trunks.health["gw1"].state is HealthState.UP
    assert net.health_events == []
    assert net.unclaimed == []  # responses and terminations were all the probes'
    assert net.trunks.select_outbound("pstn") == GW1


def test_a_silent_gateway_goes_down_and_out_of_the_rotation() -> None:
    net = network({"gw1": silent, "gw2": answers(200)})
    net.advance(95.9)
    # Each probe waits out timer F (32 s): probes at 0, 32 and 64, never two at once.
    assert len(probes_sent_to(net, "gw1")) == 3
    assert net.trunks.health["gw1"].state is HealthState.SUSPECT
    assert net.trunks.select_outbound("pstn") == GW1  # still in the rotation
    assert net.health_events == []
    net.advance(96.0)
    assert net.health_events == [GatewayWentDown("gw1", 96.0)]
    assert net.trunks.select_outbound("pstn") == GW2
    assert net.unclaimed == []


def test_a_probe_unanswered_within_the_timeout_is_a_miss() -> None:
    # Timer F would take 32 s per probe; a 5 s probe timeout finds a dead gateway
    # within three probe intervals: misses at 5, 35 and 65 s.
    net = network({"gw1": silent, "gw2": answers(200)}, timeout_s=5.0)
    net.advance(64.9)
    assert net.health_events == []
    net.advance(65.0)
    assert net.health_events == [GatewayWentDown("gw1", 65.0)]
    assert net.trunks.select_outbound("pstn") == GW2


def test_both_gateways_down_is_a_rejection() -> None:
    net = network({"gw1": silent, "gw2": silent})
    net.advance(96.0)
    assert net.health_events == [GatewayWentDown("gw1", 96.0), GatewayWentDown("gw2", 96.0)]
    assert net.trunks.select_outbound("pstn") is ALL_GATEWAYS_DOWN


def test_a_gateway_that_answers_again_comes_back() -> None:
    alive = False
    net = network({"gw1": lambda request: 200 if alive else None, "gw2": answers(200)})
    net.advance(96.0)
    assert net.health_events == [GatewayWentDown("gw1", 96.0)]
    # Down: probed every 10 s. The probe of 96 s is still being retransmitted (timer E:
    # 96.5, 97.5, 99.5, 103.5) when the gateway wakes up at 100 s, so the 103.5 s copy
    # is answered; the next probe, at 106 s, is the second success in a row.
    net.advance(100.0)
    alive = True
    net.advance(105.9)
    assert net.trunks.health["gw1"].state is HealthState.RECOVERING
    assert net.trunks.select_outbound("pstn") == GW2  # one answer is not enough
    net.advance(106.0)
    assert net.health_events == [GatewayWentDown("gw1", 96.0), GatewayCameBack("gw1", 106.0)]
    assert net.trunks.select_outbound("pstn") == GW1
    net.advance(200.0)
    assert net.unclaimed == []


def test_503_answers_are_failures() -> None:
    net = network({"gw1": answers(503), "gw2": answers(200)})
    net.advance(60.0)
    # Answered at once, so the 30 s cadence holds: misses at 0, 30 and 60.
    assert net.health_events == [GatewayWentDown("gw1", 60.0)]
    assert net.trunks.select_outbound("pstn") == GW2


@pytest.mark.parametrize(("status", "events"), [
    (200, []), (503, [GatewayWentDown("gw1", 60.0)])])
def test_a_provisional_answer_does_not_settle_the_probe(
        status: int, events: list[GatewayWentDown]) -> None:
    net = network({"gw1": answers(status), "gw2": answers(200)})
    net.gateway(GW1).trying_first = True
    net.advance(60.0)
    assert len(probes_sent_to(net, "gw1")) == 3  # the final answer decided each probe
    assert net.health_events == events


@pytest.mark.parametrize("status", [404, 405, 481, 501, 603])
def test_other_final_answers_prove_the_gateway_is_up(status: int) -> None:
    # health.py: only 503 says "cannot serve"; a gateway that dislikes OPTIONS is alive.
    net = network({"gw1": answers(status), "gw2": answers(200)})
    net.advance(300.0)
    assert net.health_events == []
    assert net.trunks.health["gw1"].state is HealthState.UP


def test_a_transport_failure_is_a_missed_probe() -> None:
    net = network({"gw1": silent, "gw2": answers(200)}, make_health=lambda name: (
        GatewayHealth(name, failures_to_down=1)))
    net.advance(1.0)
    net.layer.transport_failed(Peer("UDP", "10.0.1.1", 5060), net.now)
    net.pump()
    assert net.health_events == [GatewayWentDown("gw1", 1.0)]
    assert net.trunks.health["gw2"].is_live
    assert net.unclaimed == []


def test_events_of_other_transactions_are_not_claimed() -> None:
    net = network({"gw1": answers(200), "gw2": answers(200)})
    net.advance(0.0)
    # Someone else's OPTIONS on the same layer: its events are not the probes'.
    other = parse_message(
        b"OPTIONS sip:10.0.1.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKx\r\n"
        b"From: <sip:x@10.0.0.9>;tag=x\r\nTo: <sip:10.0.1.1>\r\nCall-ID: other\r\n"
        b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(other, Request)
    net.layer.send_request(other, Peer("UDP", "10.0.1.1", 5060), net.now)
    net.pump()
    assert [type(e) for e in net.unclaimed] == [ResponseReceived]
    assert net.health_events == []
    assert net.probes.events() == []


# A gateway that answers, refuses (503) or ignores each probe as a script says.
_BEHAVIOURS = st.sampled_from([200, 503, None])


@settings(max_examples=60, deadline=None)
@given(st.lists(_BEHAVIOURS, min_size=1, max_size=25))
def test_any_behaviour_keeps_the_driver_consistent(script: list[int | None]) -> None:
    replies: dict[str, int | None] = {}
    answers_left = iter(script)

    def scripted(request: Request) -> int | None:
        # Decided once per probe (its Call-ID), so retransmissions get the same fate.
        if request.call_id not in replies:
            replies[request.call_id] = next(answers_left, 200)
        return replies[request.call_id]

    net = network({"gw1": scripted, "gw2": answers(200)})
    net.advance(40.0 * len(script))
    health = net.trunks.health["gw1"]
    # Down and back alternate, starting with down, and agree with the final liveness.
    kinds = [type(e) for e in net.health_events]
    assert kinds == [GatewayWentDown, GatewayCameBack] * (len(kinds) // 2) + (
        [GatewayWentDown] if len(kinds) % 2 else [])
    assert health.is_live == (len(kinds) % 2 == 0)
    assert (net.trunks.select_outbound("pstn") == GW1) == health.is_live
    assert net.unclaimed == []
    assert len(probes_sent_to(net, "gw1")) >= len(script)
