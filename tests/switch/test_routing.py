"""Routing (switch.routing.CallRouter): dialplan decisions turned into call legs, with
phones, PRI gateways and the switch wired in memory. The switch side is the real
CallRouter, CallControl, Registrar and Trunks accounting; what SipService does before
routing (authentication, gateway identity) is copied in `Net._route` in a few lines.
Real SIP bytes cross between transaction layers; time moves only when told."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.calls import (
    Call,
    CallControl,
    CallEnded,
    CallEvent,
    CallOrigin,
    CallSettings,
    CallStarted,
    DialTarget,
    LegKind,
)
from switch.config import RouteConfig
from switch.dialplan import CallDirection, Dialplan, Reject, Route, RouteQuery, ToExtension
from switch.pri_gateway import (
    CallerIdentity,
    Direction,
    Gateway,
    GatewayHealth,
    Seizure,
    TrunkGroup,
    Trunks,
)
from switch.routing import CallRouter, StartApplication, national_number
from switch.sip import (
    AckReceived,
    Answered,
    InviteClient,
    InviteEvent,
    InviteServer,
    NameAddr,
    Outgoing,
    Peer,
    Registrar,
    Rejected,
    Request,
    RequestReceived,
    ResponseReceived,
    SipUri,
    StrayResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    build_offer,
    parse_message,
    reason_phrase,
)
from switch.sip.offer_answer import PCMU, TELEPHONE_EVENT
from switch.sip.transport import stamp_via
from tests.switch.fake_media import FakeMediaEngine

DOMAIN = "10.0.0.9"
SWITCH = Peer("UDP", DOMAIN, 5060)
GW1 = Gateway("gw1", "10.0.0.51", spans=1)
GW2 = Gateway("gw2", "10.0.0.52", spans=1)
DID = "4008123456"  # our service number, as the PSTN dials it
MOBILE = "13800138000"


def counter(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def sdp(host: str, port: int) -> bytes:
    return build_offer(host, port, session_id=port, session_version=1,
                       codecs=(PCMU, TELEPHONE_EVENT)).serialize()


def route(*, did: str | None = None, prefix: str | None = None,
          extension: bool | str | None = None, from_trunk: str | None = None,
          application: str | None = None, prompt: str | None = None,
          trunk_group: str | None = None, strip: int = 0, prepend: str = "",
          recording: str | None = None) -> Route:
    """One [[routes]] entry, as switch.config would hand it over."""
    return Route.from_config(RouteConfig(did, prefix, extension, from_trunk, application,
                                         prompt, trunk_group, strip, prepend,
                                         recording=recording))


class Party:
    """A phone or a PRI gateway: a transaction layer at one address."""

    def __init__(self, name: str, peer: Peer) -> None:
        self.name = name
        self.peer = peer
        self.layer = TransactionLayer(new_branch=counter(f"z9hG4bK{name}x"))
        self.sessions: list[InviteClient | InviteServer] = []
        self.incoming: list[InviteServer] = []
        self.events: list[tuple[InviteClient | InviteServer, InviteEvent]] = []

    def __repr__(self) -> str:
        return f"<Party {self.name} {self.peer.host}:{self.peer.port}>"

    def events_of(self, session: InviteClient | InviteServer) -> list[InviteEvent]:
        return [e for s, e in self.events if s is session]

    def rejected(self, session: InviteClient) -> Rejected:
        [rejected] = [e for e in self.events_of(session) if isinstance(e, Rejected)]
        return rejected

    def answered(self, session: InviteClient) -> bool:
        return any(isinstance(e, Answered) for e in self.events_of(session))


class Net:
    def __init__(self, routes: Sequence[Route] = (), *, default_status: int = 404,
                 groups: Sequence[TrunkGroup] = (TrunkGroup("pstn", [GW1, GW2]),),
                 make_health: Callable[[str], GatewayHealth] = GatewayHealth,
                 settings: CallSettings | None = None,
                 start_application: StartApplication | None = None) -> None:
        self.now = 0.0
        self.engine = FakeMediaEngine(workers=1, port_range=(30000, 30199))
        self.engine.start()
        self.layer = TransactionLayer(new_branch=counter("z9hG4bKsw"))
        self.trunks = Trunks(groups, make_health=make_health)
        self.registrar = Registrar()
        session_ids = itertools.count(1000)
        self.control = CallControl(
            self.layer, self.engine, via_host=DOMAIN, via_port=5060, media_address=DOMAIN,
            new_token=counter("tok"), new_session_id=lambda: next(session_ids),
            settings=settings or CallSettings(session_expires_s=None),
            release=self.trunks.release)
        rules = list(routes) or [Route("extension", "", None, ToExtension)]
        self.dialplan = Dialplan(rules, Reject(default_status, reason_phrase(default_status)))
        self.router = CallRouter(self.control, self.registrar, self.dialplan, self.trunks,
                                 domain=DOMAIN, start_application=start_application)
        self.parties: dict[Peer, Party] = {}
        self.lost: list[Outgoing] = []  # what the switch sent where nobody listens
        self.reports: list[CallEvent] = []
        self.on_pump: list[Callable[[], None]] = []  # more to do in each pump round
        for group in groups:
            for gateway in group.gateways:
                if Peer(gateway.transport, gateway.host, gateway.port) not in self.parties:
                    self.party(gateway.name, gateway.host, gateway.port)

    def party(self, name: str, host: str, port: int = 5060) -> Party:
        party = Party(name, Peer("UDP", host, port))
        self.parties[party.peer] = party
        return party

    def gateway(self, gateway: Gateway) -> Party:
        return self.parties[Peer(gateway.transport, gateway.host, gateway.port)]

    def register(self, phone: Party, extension: str | None = None, *,
                 contact: str | None = None, flow: Peer | None = None,
                 expires_s: int = 3600) -> None:
        """What SipService does after a phone authenticated its REGISTER."""
        extension = extension or phone.name
        flow = flow or phone.peer
        contact = contact or f"sip:{extension}@{phone.peer.host}:{phone.peer.port}"
        text = (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {flow.host}:{flow.port};branch=z9hG4bKreg{extension}\r\n"
                f"From: <sip:{extension}@{DOMAIN}>;tag=reg\r\n"
                f"To: <sip:{extension}@{DOMAIN}>\r\n"
                f"Call-ID: reg-{extension}-{phone.name}\r\nCSeq: 1 REGISTER\r\n"
                f"Contact: <{contact}>\r\nExpires: {expires_s}\r\n"
                "Content-Length: 0\r\n\r\n")
        request = parse_message(text.encode())
        assert isinstance(request, Request)
        assert self.registrar.register(request, flow, self.now, to_tag="r").status == 200

    # -- acting as phones and gateways

    def dial(self, caller: Party, number: str, *, from_user: str | None = None,
             display: str | None = None,
             headers: Sequence[tuple[str, str]] = ()) -> InviteClient:
        user = from_user or caller.name
        name = f'"{display}" ' if display else ""
        session = InviteClient(
            caller.layer, SWITCH, request_uri=f"sip:{number}@{DOMAIN}",
            from_=NameAddr.parse(f"{name}<sip:{user}@{caller.peer.host}>;tag={caller.name}t"),
            to=NameAddr.parse(f"<sip:{number}@{DOMAIN}>"),
            contact=NameAddr.parse(f"<sip:{user}@{caller.peer.host}:{caller.peer.port}>"),
            call_id=f"{caller.name}-call-{len(caller.sessions)}",
            offer=sdp(caller.peer.host, 4000 + 2 * len(caller.sessions)),
            via_host=caller.peer.host, via_port=caller.peer.port, now=self.now,
            extra_headers=list(headers))
        caller.sessions.append(session)
        self.pump()
        return session

    def answer(self, party: Party, index: int = -1) -> InviteServer:
        session = party.incoming[index]
        session.answer(sdp(party.peer.host, 6000 + 2 * len(party.sessions)), self.now)
        self.pump()
        return session

    def call(self) -> Call:
        [call] = list(self.control.calls.values())
        return call

    # -- the wire

    def _deliver(self, data: bytes, source: Peer, layer: TransactionLayer) -> None:
        message = parse_message(data)
        if isinstance(message, Request):
            stamp_via(message, source)
        layer.receive(message, source, self.now)

    def pump(self) -> None:
        moving = True
        while moving:
            moving = False
            for party in list(self.parties.values()):
                for out in party.layer.outgoing():
                    self._deliver(out.data, party.peer, self.layer)
                    moving = True
            for out in self.layer.outgoing():
                moving = True
                target = self.parties.get(out.peer)
                if target is None:
                    self.lost.append(out)
                else:
                    self._deliver(out.data, SWITCH, target.layer)
            for event in self.layer.events():
                moving = True
                if self.control.handle(event, self.now):
                    continue
                if isinstance(event, RequestReceived) and event.request.method == "INVITE":
                    self._route(event)
            for party in list(self.parties.values()):
                for event in party.layer.events():
                    moving = True
                    self._party_event(party, event)
                for session in party.sessions:
                    for ev in session.events():
                        moving = True
                        party.events.append((session, ev))
            for hook in self.on_pump:
                hook()
            self.reports += self.control.events()

    def _route(self, event: RequestReceived) -> None:
        """SipService._route_invite (a phone) or _route_from_gateway (by source)."""
        source = event.transaction.peer
        request = event.request
        dialled = request.uri.user if isinstance(request.uri, SipUri) else None
        gateway = self.trunks.gateway_for_source(source.host, source.port)
        if gateway is None:
            username = self.parties[source].name
            origin = CallOrigin("internal", username, dialled or "",
                                LegKind(trunk=False, name=username),
                                display=request.from_.display_name)
            query = RouteQuery(CallDirection.INTERNAL, None, dialled or "", username)
            self.router.route(event, source, origin, query, self.now)
            return
        identity = CallerIdentity.from_headers(
            request.headers.get("P-Asserted-Identity"), request.headers.get("Privacy"),
            request.headers.get("From") or "")
        seizure = self.trunks.seize_inbound(gateway, request.call_id)
        assert isinstance(seizure, Seizure)
        callee, caller = national_number(dialled or ""), national_number(identity.number)
        trunk = next((name for name, group in self.trunks.groups.items()
                      if gateway in group.gateways), None)
        origin = CallOrigin("inbound", caller, callee, LegKind(trunk=True, name=gateway.name),
                            trunk=trunk, gateway=gateway.name, seizure=seizure,
                            display=identity.display, restricted=identity.restricted)
        query = RouteQuery(CallDirection.INBOUND, trunk, callee, caller)
        if self.router.route(event, source, origin, query, self.now) is None:
            self.trunks.release(seizure)

    def _party_event(self, party: Party, event: TransactionEvent) -> None:
        if isinstance(event, RequestReceived | AckReceived):
            call_id = event.request.call_id
        elif isinstance(event, ResponseReceived | StrayResponseReceived):
            call_id = event.response.call_id
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            call_id = event.transaction.request.call_id
        else:
            return  # terminated transactions and merged requests: nothing to tell
        for session in party.sessions:
            if session.invite.call_id == call_id:
                session.handle(event, self.now)
                return
        assert isinstance(event, RequestReceived) and event.request.method == "INVITE"
        server = InviteServer(party.layer, event, to_tag=f"{party.name}tag{len(party.sessions)}",
                              contact=NameAddr.parse(
                                  f"<sip:{party.name}@{party.peer.host}:{party.peer.port}>"),
                              via_host=party.peer.host, via_port=party.peer.port, peer=SWITCH)
        party.sessions.append(server)
        party.incoming.append(server)

    def advance(self, until: float) -> None:
        """Move time to `until`, firing every timer due on the way, in order."""
        while True:
            timed = [self.layer, self.control,
                     *(p.layer for p in self.parties.values()),
                     *(s for p in self.parties.values() for s in p.sessions)]
            due = [d for t in timed if (d := t.next_deadline()) is not None and d <= until]
            if not due:
                break
            self.now = min(due)
            for t in timed:
                t.handle_timer(self.now)
            self.pump()
        self.now = until

    # -- what happened

    def ended(self) -> list[CallEnded]:
        return [r for r in self.reports if isinstance(r, CallEnded)]

    def started(self) -> list[CallStarted]:
        return [r for r in self.reports if isinstance(r, CallStarted)]

    def busy(self, gateway: Gateway, direction: Direction | None = None) -> int:
        pool = self.trunks.pools[gateway.name]
        return pool.busy if direction is None else pool.busy_in(direction)

    def fill(self, gateway: Gateway, n_channels: int | None = None) -> None:
        """Other calls take `n_channels` (all, by default) of the gateway's channels."""
        for i in range(gateway.channels if n_channels is None else n_channels):
            assert isinstance(self.trunks.seize_inbound(gateway, f"other-{i}"), Seizure)


def cause_of(reason_header: str | None) -> str:
    assert reason_header is not None
    return reason_header.split("cause=")[1].split(";")[0]


OUTSIDE_LINE = route(prefix="0", trunk_group="pstn", strip=1)
SERVICE_DID = route(did=DID, extension="1002")
EXTENSIONS = route(extension=True)


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
