"""Routing (switch.routing.CallRouter): dialplan decisions turned into call legs, with
phones, PRI gateways and the switch wired in memory by the call-control harness
(tests/switch/harness.Net: the real CallRouter, CallControl, Registrar and Trunks
accounting; what SipService does before routing is copied in `Net._route`).
Real SIP bytes cross between transaction layers; time moves only when told."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.calls import Call, DialTarget, LegKind
from switch.dialplan import Route
from switch.pri_gateway import Direction, GatewayHealth, TrunkGroup
from switch.sip import Peer, SipUri
from tests.switch.harness import (
    DID,
    DOMAIN,
    EXTENSIONS,
    GW1,
    GW2,
    MOBILE,
    OUTSIDE_LINE,
    SERVICE_DID,
    Net,
    cause_of,
    route,
)

# -- extensions


def test_an_extension_rings_the_phone_where_it_registered() -> None:
    net = Net()
    alice, bob = net.party("1001", "10.0.0.1"), net.party("1002", "10.0.0.2")
    net.register(bob)
    outgoing = net.dial(alice, "1002", display="Alice")
    [incoming] = bob.incoming
    invite = incoming.invite
    assert str(invite.uri) == "sip:1002@10.0.0.2:5060"  # the registered Contact
    assert invite.to.uri == SipUri(DOMAIN, user="1002")
    assert invite.from_.uri == SipUri(DOMAIN, user="1001")
    assert invite.from_.display_name == "Alice"
    net.answer(bob)
    assert alice.answered(outgoing)
    [started] = net.started()
    assert (started.direction, started.caller, started.callee) == ("internal", "1001", "1002")


def test_a_contact_on_another_port_of_the_registering_host_gets_the_invite() -> None:
    # A harness registering on behalf of a UA listening on another port (SIPp).
    net = Net()
    alice = net.party("1001", "10.0.0.1")
    uas = net.party("1002", "10.0.0.2", 5070)
    net.register(uas, flow=Peer("UDP", "10.0.0.2", 5060))
    net.dial(alice, "1002")
    assert len(uas.incoming) == 1
    assert net.lost == []


def test_a_contact_on_another_host_is_reached_through_the_registration_flow() -> None:
    # Behind NAT the Contact names a private address: only the REGISTER's flow works.
    net = Net()
    alice, bob = net.party("1001", "10.0.0.1"), net.party("1002", "10.0.0.2")
    net.register(bob, contact="sip:1002@192.168.1.20:5070")
    net.dial(alice, "1002")
    [incoming] = bob.incoming
    assert str(incoming.invite.uri) == "sip:1002@192.168.1.20:5070"
    assert net.lost == []


@pytest.mark.parametrize("registered", [False, True], ids=["never", "expired"])
def test_an_unregistered_extension_gets_480_with_cause_20(registered: bool) -> None:
    net = Net()
    alice, bob = net.party("1001", "10.0.0.1"), net.party("1002", "10.0.0.2")
    if registered:
        net.register(bob, expires_s=600)
        net.now = 601.0
    outgoing = net.dial(alice, "1002")
    rejected = alice.rejected(outgoing)
    assert rejected.status == 480 and cause_of(rejected.reason_header) == "20"
    assert bob.incoming == []
    [ended] = net.ended()
    assert (ended.sip_status, ended.q850_cause, ended.cause) == (480, 20, "not-registered")
    assert net.control.calls == {}


# -- trunk groups


def test_outside_line_goes_to_the_gateway_with_the_number_and_our_identity() -> None:
    net = Net([OUTSIDE_LINE, EXTENSIONS])
    alice = net.party("1001", "10.0.0.1")
    outgoing = net.dial(alice, "0" + MOBILE)
    gateway = net.gateway(GW1)
    [incoming] = gateway.incoming
    invite = incoming.invite
    assert str(invite.uri) == f"sip:{MOBILE}@10.0.0.51:5060"
    assert invite.from_.uri == SipUri(DOMAIN, user="1001")
    assert invite.headers.get("P-Asserted-Identity") == "<sip:1001@10.0.0.9>"
    assert net.busy(GW1, Direction.OUTBOUND) == 1
    [started] = net.started()
    assert (started.direction, started.trunk, started.gateway) == ("outbound", "pstn", "gw1")
    net.answer(gateway)
    assert alice.answered(outgoing)
    assert net.busy(GW1) == 1
    outgoing.bye(net.now)
    net.pump()
    assert net.busy(GW1) == 0  # the E1 channel is free again
    [ended] = net.ended()
    assert ended.disposition == "answered"


@pytest.mark.parametrize(("rule", "dialled", "sent"), [
    (route(prefix="0", trunk_group="pstn", strip=1), "013800138000", "13800138000"),
    (route(prefix="9", trunk_group="pstn", strip=1, prepend="0"), "913800138000",
     "013800138000"),
    (route(prefix="00", trunk_group="pstn", prepend="17951"), "0085212345678",
     "179510085212345678"),
])
def test_strip_and_prepend_shape_the_request_uri_user(rule: Route, dialled: str,
                                                       sent: str) -> None:
    net = Net([rule])
    alice = net.party("1001", "10.0.0.1")
    net.dial(alice, dialled)
    [incoming] = net.gateway(GW1).incoming
    assert isinstance(incoming.invite.uri, SipUri)
    assert incoming.invite.uri.user == sent


def test_the_least_busy_live_gateway_is_seized() -> None:
    net = Net([OUTSIDE_LINE])
    net.fill(GW1, 1)
    alice = net.party("1001", "10.0.0.1")
    net.dial(alice, "0" + MOBILE)
    assert net.gateway(GW1).incoming == []
    assert len(net.gateway(GW2).incoming) == 1
    assert net.busy(GW2, Direction.OUTBOUND) == 1


def test_an_unanswered_outside_call_gives_the_channel_back() -> None:
    net = Net([OUTSIDE_LINE])
    alice = net.party("1001", "10.0.0.1")
    outgoing = net.dial(alice, "0" + MOBILE)
    net.gateway(GW1).incoming[0].reject(486, net.now, headers=[
        ("Reason", 'Q.850;cause=17;text="User busy"')])
    net.pump()
    assert alice.rejected(outgoing).status == 486
    assert net.busy(GW1) == 0
    [ended] = net.ended()
    assert (ended.disposition, ended.q850_cause) == ("busy", 17)


def test_a_full_trunk_gives_503_with_cause_34_and_a_congestion_cdr() -> None:
    net = Net([OUTSIDE_LINE], groups=[TrunkGroup("pstn", [GW1])])
    net.fill(GW1)
    alice = net.party("1001", "10.0.0.1")
    outgoing = net.dial(alice, "0" + MOBILE)
    rejected = alice.rejected(outgoing)
    assert rejected.status == 503 and cause_of(rejected.reason_header) == "34"
    assert net.gateway(GW1).incoming == []
    assert net.busy(GW1) == GW1.channels  # nothing taken, nothing given back twice
    [ended] = net.ended()
    assert (ended.disposition, ended.sip_status, ended.q850_cause) == ("congestion", 503, 34)


def test_all_gateways_down_gives_503_with_cause_38() -> None:
    net = Net([OUTSIDE_LINE],
              make_health=lambda name: GatewayHealth(name, failures_to_down=1))
    for health in net.trunks.health.values():  # every keepalive went unanswered
        health.probe_sent(0.0)
        health.probe_timed_out(0.0)
    alice = net.party("1001", "10.0.0.1")
    outgoing = net.dial(alice, "0" + MOBILE)
    rejected = alice.rejected(outgoing)
    assert rejected.status == 503 and cause_of(rejected.reason_header) == "38"
    assert net.gateway(GW1).incoming == [] and net.gateway(GW2).incoming == []
    [ended] = net.ended()
    assert (ended.disposition, ended.q850_cause) == ("congestion", 38)


def test_a_down_gateway_is_skipped() -> None:
    net = Net([OUTSIDE_LINE],
              make_health=lambda name: GatewayHealth(name, failures_to_down=1))
    net.trunks.health["gw1"].probe_sent(0.0)
    net.trunks.health["gw1"].probe_timed_out(0.0)
    alice = net.party("1001", "10.0.0.1")
    net.dial(alice, "0" + MOBILE)
    assert net.gateway(GW1).incoming == []
    assert len(net.gateway(GW2).incoming) == 1


# -- calls from the PSTN


def test_an_inbound_call_rings_the_agent_with_the_callers_number() -> None:
    net = Net([SERVICE_DID])
    agent = net.party("1002", "10.0.0.2")
    net.register(agent)
    customer = net.gateway(GW1)
    outgoing = net.dial(customer, DID, from_user="8613800138000", headers=[
        ("P-Asserted-Identity", '"Zhang San" <sip:+8613800138000@10.0.0.51>')])
    [incoming] = agent.incoming
    assert incoming.invite.from_.uri == SipUri(DOMAIN, user=MOBILE)  # national form
    assert incoming.invite.from_.display_name == "Zhang San"
    assert net.busy(GW1, Direction.INBOUND) == 1
    net.answer(agent)
    assert customer.answered(outgoing)
    outgoing.bye(net.now)
    net.pump()
    assert net.busy(GW1) == 0
    [started] = net.started()
    assert (started.direction, started.caller, started.callee, started.trunk,
            started.gateway) == ("inbound", MOBILE, DID, "pstn", "gw1")


def test_a_restricted_caller_is_anonymous_to_the_agent() -> None:
    net = Net([SERVICE_DID])
    agent = net.party("1002", "10.0.0.2")
    net.register(agent)
    net.dial(net.gateway(GW1), DID, from_user=MOBILE, headers=[
        ("P-Asserted-Identity", f'"Zhang San" <sip:{MOBILE}@10.0.0.51>'),
        ("Privacy", "id")])
    [incoming] = agent.incoming
    from_ = incoming.invite.from_
    assert from_.uri == SipUri(DOMAIN, user="anonymous")
    assert from_.display_name == "Anonymous"
    assert MOBILE not in incoming.invite.serialize().decode()
    # The CDR still knows who called.
    [started] = net.started()
    assert started.caller == MOBILE


def test_an_inbound_call_to_an_unregistered_agent_gets_480_and_frees_the_channel() -> None:
    net = Net([SERVICE_DID])
    customer = net.gateway(GW1)
    outgoing = net.dial(customer, DID, from_user=MOBILE)
    rejected = customer.rejected(outgoing)
    assert rejected.status == 480 and cause_of(rejected.reason_header) == "20"
    assert net.busy(GW1) == 0


@pytest.mark.parametrize("dialled", ["9" + MOBILE, "0" + MOBILE, "1002"])
def test_a_pstn_caller_cannot_use_our_prefixes_or_extensions(dialled: str) -> None:
    # Toll fraud: a caller dialling our outside-line prefix would hairpin onto our trunks.
    net = Net([SERVICE_DID, route(prefix="9", trunk_group="pstn", strip=1),
               OUTSIDE_LINE, EXTENSIONS])
    net.register(net.party("1002", "10.0.0.2"))
    customer = net.gateway(GW1)
    outgoing = net.dial(customer, dialled, from_user=MOBILE)
    assert customer.rejected(outgoing).status == 404
    assert net.gateway(GW2).incoming == [] and len(customer.incoming) == 0
    assert net.busy(GW1) == net.busy(GW2) == 0
    [ended] = net.ended()
    assert ended.cause == "no-route"


def test_a_from_trunk_route_lets_an_inbound_call_out_again() -> None:
    net = Net([route(prefix="9", trunk_group="pstn", strip=1, from_trunk="pstn")])
    customer = net.gateway(GW1)
    net.dial(customer, "9" + MOBILE, from_user="13900139000")
    # gw1 holds the inbound channel, so gw2 is the least busy.
    [incoming] = net.gateway(GW2).incoming
    assert isinstance(incoming.invite.uri, SipUri) and incoming.invite.uri.user == MOBILE
    assert net.busy(GW1, Direction.INBOUND) == 1 and net.busy(GW2, Direction.OUTBOUND) == 1


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="0123456789*+", min_size=1, max_size=16))
def test_no_number_dialled_from_the_pstn_reaches_a_trunk_without_from_trunk(
        dialled: str) -> None:
    net = Net([route(prefix="", trunk_group="pstn"), OUTSIDE_LINE, EXTENSIONS])
    customer = net.gateway(GW1)
    net.dial(customer, dialled, from_user=MOBILE)
    assert net.gateway(GW2).incoming == [] and customer.incoming == []
    assert net.busy(GW1, Direction.OUTBOUND) == net.busy(GW2, Direction.OUTBOUND) == 0


# -- rejections from the dialplan


def test_the_dialplan_default_answers_with_its_status() -> None:
    net = Net([OUTSIDE_LINE], default_status=403)
    alice = net.party("1001", "10.0.0.1")
    outgoing = net.dial(alice, "1002")  # no extension route: only the outside line
    assert alice.rejected(outgoing).status == 403
    [ended] = net.ended()
    assert (ended.sip_status, ended.cause) == (403, "no-route")


def test_nothing_left_after_strip_is_address_incomplete() -> None:
    net = Net([route(prefix="9", trunk_group="pstn", strip=1)])
    alice = net.party("1001", "10.0.0.1")
    outgoing = net.dial(alice, "9")
    assert alice.rejected(outgoing).status == 484
    assert net.busy(GW1) == net.busy(GW2) == 0


def test_a_missing_application_is_503_cause_41() -> None:
    net = Net([route(did=DID, application="ivr")])  # no application runner at all
    customer = net.gateway(GW1)
    outgoing = net.dial(customer, DID, from_user=MOBILE)
    rejected = customer.rejected(outgoing)
    assert rejected.status == 503 and cause_of(rejected.reason_header) == "41"
    assert net.busy(GW1) == 0


# -- resolve_number (transfers)


def connected(net: Net) -> Call:
    alice, bob = net.party("1001", "10.0.0.1"), net.party("1002", "10.0.0.2")
    net.register(bob)
    outgoing = net.dial(alice, "1002")
    net.answer(bob)
    assert alice.answered(outgoing)
    return net.call()


def test_resolve_number_finds_a_registered_extension() -> None:
    net = Net([OUTSIDE_LINE, route(prefix="8", application="ivr"), EXTENSIONS])
    call = connected(net)
    carol = net.party("1003", "10.0.0.3", 5062)
    net.register(carol)
    target = net.router.resolve_number(call, "1003", net.now)
    assert isinstance(target, DialTarget)
    assert target.peer == carol.peer
    assert target.request_uri == "sip:1003@10.0.0.3:5062"
    assert target.to.uri == SipUri(DOMAIN, user="1003")
    assert target.from_.uri == SipUri(DOMAIN, user="1001")
    assert target.kind == LegKind(trunk=False, name="1003")


@pytest.mark.parametrize(("number", "status"), [
    ("1009", 480),  # nobody registered
    ("8000", 404),  # an application: a transfer reaches people, not applications
    ("*99", 404),  # no route at all: the default
])
def test_resolve_number_says_why_not(number: str, status: int) -> None:
    net = Net([OUTSIDE_LINE, route(prefix="8", application="ivr"), EXTENSIONS])
    call = connected(net)
    assert net.router.resolve_number(call, number, net.now) == status


def test_resolve_number_seizes_a_channel_for_an_outside_number() -> None:
    net = Net([OUTSIDE_LINE, EXTENSIONS])
    call = connected(net)
    target = net.router.resolve_number(call, "0" + MOBILE, net.now)
    assert isinstance(target, DialTarget)
    assert target.peer == Peer("UDP", GW1.host, GW1.port)
    assert target.request_uri == f"sip:{MOBILE}@10.0.0.51:5060"
    assert target.headers == (("P-Asserted-Identity", "<sip:1001@10.0.0.9>"),)
    assert target.seizure is not None and target.seizure.gateway == GW1
    assert net.busy(GW1, Direction.OUTBOUND) == 1


def test_resolve_number_to_a_full_trunk_is_503() -> None:
    net = Net([OUTSIDE_LINE, EXTENSIONS], groups=[TrunkGroup("pstn", [GW1])])
    call = connected(net)
    net.fill(GW1)
    assert net.router.resolve_number(call, "0" + MOBILE, net.now) == 503


def test_two_outside_legs_of_one_call_hold_two_channels() -> None:
    def start(call: Call, decision: object, now: float) -> bool:
        call.application = "ivr"  # a minimal application: answer and keep the call
        call.answer(now)
        return True

    net = Net([OUTSIDE_LINE, route(prefix="8", application="ivr"), EXTENSIONS],
              groups=[TrunkGroup("pstn", [GW1])], start_application=start)
    alice = net.party("1001", "10.0.0.1")
    net.dial(alice, "8000")
    call = net.call()
    assert net.router.dial_number(call, "0" + MOBILE, net.now)
    net.pump()
    net.answer(net.gateway(GW1))
    assert net.busy(GW1, Direction.OUTBOUND) == 1
    # The caller blind-transfers to a second outside number: call control resolves it.
    target = net.router.resolve_number(call, "013900139000", net.now)
    assert isinstance(target, DialTarget)
    assert net.busy(GW1, Direction.OUTBOUND) == 2
