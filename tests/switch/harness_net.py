"""The network of the call-control test harness (tests/switch/harness.py): the switch's
real CallControl and CallRouter (with Registrar, Dialplan and Trunks accounting) on one
TransactionLayer, each phone or PRI gateway (harness_phones.Party) on its own, real SIP
bytes between them, and a FakeMediaEngine for the media plane. What SipService does
before routing (authentication, gateway identity) is copied in `Net._route` in a few
lines; DirectNet leaves the router out and rings phones by name.

Time moves only when told: `now` is a manual clock and `advance(until)` fires every timer
due on the way (transactions, sessions, call control, gateway probes), in order. Media
events reach call control through `media()`, as SipService.on_media_events delivers
them; `press` and `prompt_ends` are the key presses and prompt ends the engine would
report."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
from switch.dialplan import CallDirection, Dialplan, Reject, Route, RouteQuery, ToExtension
from switch.gateway_probes import GatewayProbes
from switch.media import DtmfReceived, MediaEvent
from switch.pri_gateway import (
    CallerIdentity,
    Direction,
    Gateway,
    GatewayCameBack,
    GatewayHealth,
    GatewayWentDown,
    Seizure,
    TrunkGroup,
    Trunks,
)
from switch.routing import CallRouter, StartApplication, national_number
from switch.sip import (
    InviteClient,
    InviteServer,
    NameAddr,
    Outgoing,
    Peer,
    Registrar,
    Request,
    RequestReceived,
    SipUri,
    TransactionEvent,
    TransactionLayer,
    parse_message,
    reason_phrase,
)
from switch.sip.transport import stamp_via
from tests.switch.fake_media import FakeMediaEngine
from tests.switch.harness_phones import (
    DOMAIN,
    GW1,
    GW2,
    MOH,
    SWITCH,
    Behaviour,
    Party,
    counter,
)

# Datagrams any of these match (source, datagram) are lost on the wire.
Loss = Callable[[Peer, Outgoing], bool]


class Net:
    """The switch and its parties (a party per gateway of `groups` from the start);
    `routes` are the dialplan, or every number is an extension when there are none.
    With `probe_timeout_s` the switch probes the gateways with OPTIONS (GatewayProbes),
    and each gateway answers as `gateway_options` says (Party.options)."""

    def __init__(self, routes: Sequence[Route] = (), *, default_status: int = 404,
                 groups: Sequence[TrunkGroup] = (TrunkGroup("pstn", [GW1, GW2]),),
                 make_health: Callable[[str], GatewayHealth] = GatewayHealth,
                 settings: CallSettings | None = None,
                 start_application: StartApplication | None = None,
                 randbelow: Callable[[int], int] = lambda n: 0,
                 probe_timeout_s: float | None = None,
                 gateway_options: Mapping[str, Behaviour] | None = None) -> None:
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
            release=self.trunks.release, randbelow=randbelow)
        rules = list(routes) or [Route("extension", "", None, ToExtension)]
        self.dialplan = Dialplan(rules, Reject(default_status, reason_phrase(default_status)))
        self.router = CallRouter(self.control, self.registrar, self.dialplan, self.trunks,
                                 domain=DOMAIN, start_application=start_application)
        self.probes = None if probe_timeout_s is None else GatewayProbes(
            self.layer, self.trunks, via_host=DOMAIN, via_port=5060,
            new_token=counter("tok"), timeout_s=probe_timeout_s)
        self.health_events: list[GatewayWentDown | GatewayCameBack] = []
        self.parties: dict[Peer, Party] = {}
        self.sent: list[tuple[Peer, Outgoing]] = []  # every datagram, by its source
        self.lost: list[Outgoing] = []  # what the switch sent where nobody listens
        self.losses: list[Loss] = []
        self.vanished: set[Peer] = set()  # parties that went away: nothing reaches them
        self.unclaimed: list[TransactionEvent] = []  # events nobody on the switch took
        self.reports: list[CallEvent] = []
        self.on_pump: list[Callable[[], None]] = []  # more to do in each pump round
        for group in groups:
            for gateway in group.gateways:
                if Peer(gateway.transport, gateway.host, gateway.port) not in self.parties:
                    self.party(gateway.name, gateway.host, gateway.port,
                               options=(gateway_options or {}).get(gateway.name))

    def party(self, name: str, host: str, port: int = 5060, **options: Any) -> Party:
        """A phone or gateway at host:port; `options` as Party takes them."""
        party = Party(name, Peer("UDP", host, port), **options)
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
        request = phone.register_request(extension, contact, flow, expires_s)
        assert self.registrar.register(request, flow, self.now, to_tag="r").status == 200

    # -- acting as phones and gateways

    def dial(self, caller: Party, number: str, *, from_user: str | None = None,
             display: str | None = None, headers: Sequence[tuple[str, str]] = (),
             **options: Any) -> InviteClient:
        """`caller` sends an INVITE for `number` (Party.invite) to the switch."""
        session = caller.invite(number, self.now, from_user=from_user, display=display,
                                headers=headers, **options)
        self.pump()
        return session

    def answer(self, party: Party, index: int = -1) -> InviteServer:
        session = party.answer(self.now, index)
        self.pump()
        return session

    def call(self) -> Call:
        [call] = list(self.control.calls.values())
        return call

    # -- the media plane

    def media(self, *events: MediaEvent) -> None:
        """The engine posts `events` after what it queued itself; call control handles
        them all, as SipService.on_media_events does."""
        for event in events:
            self.engine.emit(event)
        self.control.handle_media(self.engine.drain_events(), self.now)
        self.pump()

    def press(self, engine_leg: int, digits: str) -> None:
        """The caller on `engine_leg` presses `digits` (RFC 4733 events, 100 ms each)."""
        self.media(*(DtmfReceived(engine_leg, digit, 100) for digit in digits))

    def prompt_ends(self, engine_leg: int) -> None:
        self.engine.finish_playback(engine_leg)
        self.media()

    def playing(self, engine_leg: int) -> str | None:
        return self.engine.legs[engine_leg].playing

    def peer_of(self, engine_leg: int) -> int | None:
        """The engine leg `engine_leg` is bridged to."""
        return self.engine.legs[engine_leg].peer

    # -- the wire

    def to_switch(self, data: bytes, source: Peer) -> None:
        """A datagram from `source` reaches the switch (one a test built by hand)."""
        self._deliver(data, source, self.layer)
        self.pump()

    def sent_by(self, party: Party) -> list[bytes]:
        return [out.data for source, out in self.sent if source == party.peer]

    def sent_to(self, party: Party) -> list[bytes]:
        return [out.data for _, out in self.sent if out.peer == party.peer]

    def _deliver(self, data: bytes, source: Peer, layer: TransactionLayer) -> None:
        message = parse_message(data)
        if isinstance(message, Request):
            stamp_via(message, source)
        layer.receive(message, source, self.now)

    def _is_lost(self, source: Peer, out: Outgoing) -> bool:
        self.sent.append((source, out))
        target = self.parties.get(out.peer)
        return out.peer in self.vanished or any(loss(source, out) for loss in self.losses) \
            or (target is not None and not target.hears(out.data))

    def pump(self) -> None:
        """Carry every datagram and event until nothing moves."""
        moving = True
        while moving:
            moving = False
            for party in list(self.parties.values()):
                for out in party.layer.outgoing():
                    moving = True
                    if not self._is_lost(party.peer, out):
                        self._deliver(out.data, party.peer, self.layer)
            for out in self.layer.outgoing():
                moving = True
                target = self.parties.get(out.peer)
                if target is None:
                    self.lost.append(out)
                elif not self._is_lost(SWITCH, out):
                    self._deliver(out.data, SWITCH, target.layer)
            for event in self.layer.events():
                moving = True
                if self.probes is not None and self.probes.handle(event, self.now):
                    continue
                if self.control.handle(event, self.now):
                    continue
                if isinstance(event, RequestReceived) and event.request.method == "INVITE":
                    self._route(event)
                else:
                    self.unclaimed.append(event)
            for party in list(self.parties.values()):
                for event in party.layer.events():
                    moving = True
                    party.handle(event, self.now)
                moving |= party.take_session_events(self.now)
            for hook in self.on_pump:
                hook()
            self.reports += self.control.events()
            if self.probes is not None:
                self.health_events += self.probes.events()

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

    # -- the clock

    def advance(self, until: float) -> None:
        """Move time to `until`, firing every timer due on the way, in order."""
        while True:
            timed = [*([self.probes] if self.probes is not None else []),
                     self.layer, self.control,
                     *(p.layer for p in self.parties.values()),
                     *(s for p in self.parties.values() for s in p.sessions)]
            due = [d for t in timed if (d := t.next_deadline()) is not None and d <= until]
            if not due:
                break
            self.now = max(self.now, min(due))  # a deadline passed already fires now
            for t in timed:
                t.handle_timer(self.now)
            self.pump()
        self.now = until

    # -- what happened

    def stray(self) -> list[RequestReceived]:
        """The requests call control did not claim."""
        return [e for e in self.unclaimed if isinstance(e, RequestReceived)]

    def ended(self) -> list[CallEnded]:
        return [r for r in self.reports if isinstance(r, CallEnded)]

    def causes(self) -> list[str]:
        """The causes of the calls that ended, in order."""
        return [r.cause for r in self.ended()]

    def started(self) -> list[CallStarted]:
        return [r for r in self.reports if isinstance(r, CallStarted)]

    def busy(self, gateway: Gateway, direction: Direction | None = None) -> int:
        pool = self.trunks.pools[gateway.name]
        return pool.busy if direction is None else pool.busy_in(direction)

    def fill(self, gateway: Gateway, n_channels: int | None = None) -> None:
        """Other calls take `n_channels` (all, by default) of the gateway's channels."""
        for i in range(gateway.channels if n_channels is None else n_channels):
            assert isinstance(self.trunks.seize_inbound(gateway, f"other-{i}"), Seizure)


class DirectNet(Net):
    """Call control without the router's dialplan: a number rings the phone of that
    name in `extensions` (no registration), and a call from a trunk phone comes in as
    from the PSTN. Phones answer re-INVITEs and in-dialog requests themselves; music
    on hold is MOH unless `settings` say otherwise."""

    def __init__(self, settings: CallSettings | None = None,
                 randbelow: Callable[[int], int] = lambda n: 0) -> None:
        super().__init__(groups=(), randbelow=randbelow, settings=settings or CallSettings(
            session_expires_s=None, music_on_hold=MOH))
        self.control.resolve = self.resolve
        self.extensions: dict[str, Party] = {}

    def phone(self, name: str, host: str, *, trunk: bool = False,
              session_expires_s: int | None = None) -> Party:
        phone = self.party(name, host, trunk=trunk, session_expires_s=session_expires_s,
                           answers_requests=True)
        if not trunk:
            self.extensions[name] = phone
        return phone

    def resolve(self, call: Call, number: str, now: float) -> DialTarget | int:
        phone = self.extensions.get(number)
        if phone is None:
            return 480
        return DialTarget(phone.peer, f"sip:{number}@{phone.peer.host}:{phone.peer.port}",
                          NameAddr.parse(f"<sip:{number}@{DOMAIN}>"),
                          NameAddr.parse(f"<sip:{call.origin.caller}@{DOMAIN}>"),
                          LegKind(phone.trunk, number))

    def _route(self, event: RequestReceived) -> None:
        source = event.transaction.peer
        caller = self.parties[source]
        uri = event.request.uri
        number = uri.user if isinstance(uri, SipUri) and uri.user else ""
        origin = CallOrigin("inbound" if caller.trunk else "internal", caller.name, number,
                            LegKind(caller.trunk, caller.name))
        call = self.control.accept(event, source, origin, self.now)
        if call is None:
            return  # answered with an error: nothing to dial
        target = self.resolve(call, number, self.now)
        assert not isinstance(target, int)
        call.dial(target, self.now)
        self.control.drain(call, self.now)
