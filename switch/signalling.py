"""The switch's SIP service: transport, transactions, authentication, bans, registrar,
and the door to call control (switch.calls) for INVITE dialogs.

This is the asyncio adapter around the sans-I/O stack (STYLE.md §4): it feeds input
with `now=loop.time()`, drains events, transmits, and re-arms one timer. The only
awaits are credential lookups, which go to the user store given at startup.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from switch.calls import (
    Call,
    CallControl,
    CallEnded,
    CallOrigin,
    CallSettings,
    ChannelEvent,
    LegKind,
    MediaControl,
    OriginateError,
    PartyError,
    PartyMode,
)
from switch.dialplan import CallDirection, Dialplan, RingGroup, RouteQuery
from switch.event_bus import EventBus
from switch.gateway_probes import PROBE_TIMEOUT_S, GatewayProbes
from switch.media import MediaEvent
from switch.pri_gateway import (
    CallerIdentity,
    Gateway,
    GatewayCameBack,
    Rejection,
    Trunks,
)
from switch.routing import CallRouter, StartApplication, national_number
from switch.sip import (
    AuthHeaderError,
    AuthOutcome,
    Credentials,
    DigestAuthenticator,
    DigestResponse,
    FailureBanList,
    Outgoing,
    ParseError,
    Peer,
    Registrar,
    Request,
    RequestReceived,
    Response,
    ServerTransaction,
    SipMessage,
    SipTransport,
    SipUri,
    TransactionLayer,
    TransportLimits,
    aor_key,
    build_error_response,
    build_response,
    describe_ban,
    options_response,
    screen_request,
)

log = logging.getLogger("callcenter.sip")

CredentialLookup = Callable[[str], Awaitable[Credentials | None]]
DRAIN_RETRY_AFTER_S = 30  # what a caller is told while we drain for shutdown


@dataclass(frozen=True)
class SipSettings:
    """What the SIP service needs from the [sip] config section."""

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 5060),)
    realm: str = "callcenter"
    user_agent: str = "callcenter"
    max_message_bytes: int = 65535
    max_tcp_connections: int = 1024
    min_expires_s: int = 60
    max_expires_s: int = 3600
    default_expires_s: int = 3600
    auth_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_ttl_s: float = 300.0
    ban_max_failures: int = 5
    ban_window_s: float = 60.0
    ban_s: float = 600.0
    ban_whitelist: tuple[str, ...] = ()
    credential_cache_s: float = 2.0


@dataclass
class SipCounters:
    received: int = 0
    malformed: int = 0
    dropped_banned: int = 0
    auth_failures: int = 0
    registrations: int = 0
    calls: int = 0


class SipService:
    def __init__(self, settings: SipSettings, lookup_credentials: CredentialLookup, *,
                 secret: bytes | None = None, engine: MediaControl | None = None,
                 dialplan: Dialplan | None = None, media_address: str = "127.0.0.1",
                 trunks: Trunks | None = None, call_settings: CallSettings | None = None,
                 start_application: StartApplication | None = None,
                 on_channel_events: Callable[[list[ChannelEvent]], None] | None = None,
                 bus: EventBus | None = None) -> None:
        """`bus`: where call events, registration changes, gateway up/down and media
        events are published (CDRs and the call center subscribe); one of its own
        with the UTC wall clock when not given."""
        self.settings = settings
        self._lookup = lookup_credentials
        self.transactions = TransactionLayer(new_branch=lambda: "z9hG4bK" + secrets.token_hex(8))
        self.authenticator = DigestAuthenticator(
            settings.realm, secret or os.urandom(32), settings.nonce_ttl_s,
            settings.auth_algorithms)
        self.bans = FailureBanList(settings.ban_max_failures, settings.ban_window_s,
                                   settings.ban_s, whitelist=settings.ban_whitelist)
        self.registrar = Registrar(min_expires_s=settings.min_expires_s,
                                   max_expires_s=settings.max_expires_s,
                                   default_expires_s=settings.default_expires_s)
        self.counters = SipCounters()
        self.transports: list[SipTransport] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._cache: dict[str, tuple[float, Credentials | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._registrar_sweep: asyncio.TimerHandle | None = None
        # Without a media engine there is no call control: INVITEs get 480 as before.
        self._engine = engine
        self.dialplan = dialplan or Dialplan.extensions_only()
        self.media_address = media_address
        self.trunks = trunks
        self.call_settings = call_settings or CallSettings()
        self._start_application = start_application
        self.bus = bus if bus is not None else EventBus(lambda: datetime.now(UTC))
        self._on_channel_events = on_channel_events
        self.calls: CallControl | None = None
        self.router: CallRouter | None = None
        self.probes: GatewayProbes | None = None  # OPTIONS keepalive of PRI gateways
        self.draining = False  # shutting down: no new calls, current ones finish
        self._idle = asyncio.Event()  # set when draining and no call is left

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        limits = TransportLimits(self.settings.max_message_bytes,
                                 self.settings.max_tcp_connections)
        for host, port in self.settings.listen:
            transport = SipTransport(self._on_message, self._on_parse_error, limits)
            await transport.start(host, port)
            self.transports.append(transport)
        if self._engine is not None and self.transports:
            # Our Via and Contact: the first listening address (a wildcard bind needs an
            # advertised address, which config does not have yet).
            _, host, port = self.transports[0].addresses[0]
            session_ids = iter(range(secrets.randbelow(2**31), 2**62))
            trunks = self.trunks
            self.calls = CallControl(
                self.transactions, self._engine, via_host=host, via_port=port,
                media_address=self.media_address, new_token=lambda: secrets.token_hex(8),
                new_session_id=lambda: next(session_ids), settings=self.call_settings,
                release=trunks.release if trunks is not None else lambda seizure: None)
            if trunks is not None and trunks.gateways:
                # A probe may take up to 5 s, never longer than the shortest keepalive.
                timeout_s = min([PROBE_TIMEOUT_S,
                                 *(h.interval_s for h in trunks.health.values())])
                self.probes = GatewayProbes(self.transactions, trunks, via_host=host,
                                            via_port=port,
                                            new_token=lambda: secrets.token_hex(8),
                                            timeout_s=timeout_s)
                self.probes.handle_timer(self.now)
            self.router = CallRouter(self.calls, self.registrar, self.dialplan, trunks,
                                     domain=host, start_application=self._start_application)
        self._registrar_sweep = self._loop.call_later(5.0, self._sweep_registrar)
        self._flush()  # the first keepalives, and the timer for the next ones

    def listening(self) -> list[str]:
        return [f"{proto} {host}:{port}" if ":" not in host else f"{proto} [{host}]:{port}"
                for transport in self.transports for proto, host, port in transport.addresses]

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._registrar_sweep is not None:
            self._registrar_sweep.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for transport in self.transports:
            await transport.close()
        c = self.counters
        oversize = sum(transport.dropped_oversize for transport in self.transports)
        log.info("SIP totals: %d received, %d malformed, %d oversize dropped, %d dropped "
                 "from banned sources, %d failed authentications, %d registrations, "
                 "%d calls", c.received, c.malformed, oversize, c.dropped_banned,
                 c.auth_failures, c.registrations, c.calls)

    @property
    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # -- input -----------------------------------------------------------------------

    def _on_message(self, message: SipMessage, peer: Peer) -> None:
        self.counters.received += 1
        if isinstance(message, Request) and self.bans.is_banned(peer.host, self.now):
            self.counters.dropped_banned += 1  # banned: not even a response
            return
        self.transactions.receive(message, peer, self.now)
        self._pump()

    def _on_parse_error(self, error: ParseError, peer: Peer) -> None:
        self.counters.malformed += 1
        if self.bans.is_banned(peer.host, self.now):
            return
        log.info("malformed message from %s:%s: %s", peer.host, peer.port, error)
        if error.raw_headers is None:
            return  # a bad response, or no request line: nothing can be answered
        response = build_error_response(error.raw_headers, error.status)
        if response is None:
            return
        # No transaction exists for a message we could not parse: answer statelessly,
        # back to where it came from (§18.2.2 with RFC 3581 for UDP).
        self._send(Outgoing(response.serialize(), peer))

    def _pump(self) -> None:
        calls = self.calls
        probes = self.probes
        for event in self.transactions.events():
            if probes is not None and probes.handle(event, self.now):
                continue  # the answer (or silence) of a gateway keepalive
            if calls is not None and calls.handle(event, self.now):
                continue  # an event of a call's dialog (BYE, CANCEL, ACK, responses)
            if isinstance(event, RequestReceived):
                self._on_request(event.transaction, event.request)
        self._report_calls()
        if probes is not None:
            changes = probes.events()
            for change in changes:
                log.warning("gateway %s is %s", change.name,
                            "back in service" if isinstance(change, GatewayCameBack)
                            else "out of service: no answer to OPTIONS")
            self.bus.publish_all(changes, self.now)
        self._flush()

    def on_media_events(self) -> None:
        """The engine's events_fd is readable: hand what it posted to call control."""
        if self._engine is None or self.calls is None:
            return
        events: list[MediaEvent] = self._engine.drain_events()
        self.bus.publish_all(events, self.now)
        self.calls.handle_media(events, self.now)
        self._pump()

    def _report_calls(self) -> None:
        calls = self.calls
        if calls is None:
            return
        reports = calls.events()
        if reports:
            for report in reports:
                if isinstance(report, CallEnded):
                    log.info("call %s ended: %s (%s)", report.call_id, report.cause,
                             report.disposition)
            self.bus.publish_all(reports, self.now)
        if self.draining and not calls.calls:
            self._idle.set()
        channel_events = calls.channel_events()
        if channel_events and self._on_channel_events is not None:
            self._on_channel_events(channel_events)

    def pump(self) -> None:
        """Send what call control queued (after an application's command)."""
        self._pump()

    def dial_number(self, call: Call, number: str) -> bool:
        """An application rings `number` for `call` (switch.applications)."""
        assert self.router is not None
        return self.router.dial_number(call, number, self.now)

    def originate(self, agent_extension: str, number: str, *,
                  ring_timeout_s: float | None = None) -> str:
        """Click-to-dial: ring the agent's phone, then `number` once the agent answers
        (switch.calls.originate). Returns our call id; what becomes of the call is published
        on the bus (CallStarted ... CallEnded, OriginateFailed). Raises OriginateError
        when it cannot start (the agent is not registered, no route, no free channel)."""
        if self.router is None:
            raise OriginateError("agent", 503, 41, "no media engine: calls are off")
        call = self.router.originate(agent_extension, number, self.now,
                                     ring_timeout_s=ring_timeout_s)
        self.counters.calls += 1
        log.info("call %s: originated from extension %s to %r", call.call_id,
                 agent_extension, number)
        self._pump()
        return call.call_id

    # -- parties added to a call that is up: a conference, a supervisor (switch.calls.parties)

    def add_party(self, call_id: str, number: str, *, mode: PartyMode = "conference",
                  coached_index: int | None = None,
                  ring_timeout_s: float | None = None) -> int:
        """Ring `number` and put it on call `call_id` in `mode` ("conference", "listen",
        "whisper" to the leg `coached_index`, "barge") once it answers; returns its leg
        index. PartyJoined / PartyLeft follow on the bus. PartyError when it cannot."""
        control = self._call_control()
        index = control.add_party(call_id, number, self.now, mode=mode,
                                  coached_index=coached_index, ring_timeout_s=ring_timeout_s)
        log.info("call %s: party %d ringing %r as %s", call_id, index, number, mode)
        self._pump()
        return index

    def set_party_mode(self, call_id: str, leg_index: int, mode: PartyMode, *,
                       coached_index: int | None = None) -> None:
        self._call_control().set_party_mode(call_id, leg_index, mode, self.now,
                                            coached_index=coached_index)
        self._pump()

    def remove_party(self, call_id: str, leg_index: int) -> None:
        self._call_control().remove_party(call_id, leg_index, self.now)
        self._pump()

    def take_over(self, call_id: str, leg_index: int, replaced_index: int) -> None:
        self._call_control().take_over(call_id, leg_index, replaced_index, self.now)
        self._pump()

    def _call_control(self) -> CallControl:
        if self.calls is None:
            raise PartyError("no media engine: calls are off")
        return self.calls

    def dial_numbers(self, call: Call, numbers: Sequence[str], *, sequential: bool,
                     ring_timeout_s: float | None) -> bool:
        """An application rings several numbers for `call`, at once or in turn."""
        assert self.router is not None
        group = RingGroup("", "sequential" if sequential else "simultaneous",
                          tuple(numbers), ring_timeout_s)
        return self.router.ring(call, group, self.now)

    async def drain(self, timeout_s: float, interrupt: asyncio.Event) -> int:
        """Graceful shutdown: refuse new calls (503 with Retry-After) and wait until
        the calls up have ended, `timeout_s` has passed or `interrupt` is set; then hang
        up what is left. Returns how many calls had to be hung up."""
        self.draining = True
        self._idle.clear()
        if self.active_calls:
            log.info("draining: %d calls up, waiting up to %.0f s (signal again to hang "
                     "up now)", self.active_calls, timeout_s)
            idle = asyncio.ensure_future(self._idle.wait())
            interrupted = asyncio.ensure_future(interrupt.wait())
            await asyncio.wait({idle, interrupted}, timeout=timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            interrupted.cancel()
        left = self.active_calls
        if left:
            log.warning("hanging up %d calls still up", left)
            self.hang_up_all()
        return left

    def registered_extensions(self) -> frozenset[str]:
        """The extensions (AORs) whose phones are registered now: a read-only view of the
        registrar for the web's user list (nothing before the service starts)."""
        if self._loop is None:
            return frozenset()
        return self.registrar.registered_aors(self.now)

    @property
    def active_calls(self) -> int:
        return len(self.calls.calls) if self.calls is not None else 0

    def hang_up_all(self) -> None:
        """Graceful shutdown, last step: end every call still up (Q.850 cause 16)."""
        if self.calls is None:
            return
        for call in list(self.calls.calls.values()):
            call.hang_up(self.now, cause="shutdown")
            self.calls.drain(call, self.now)
        self._pump()

    def _flush(self) -> None:
        for outgoing in self.transactions.outgoing():
            self._send(outgoing)
        self._arm_timer()

    def _send(self, outgoing: Outgoing) -> None:
        # With several listen addresses, send from one of the peer's address family.
        ipv6 = ":" in outgoing.peer.host
        for transport in self.transports:
            if (":" in transport.addresses[0][1]) == ipv6:
                transport.send(outgoing)
                return
        if self.transports:
            self.transports[0].send(outgoing)

    def _arm_timer(self) -> None:
        deadlines = [self.transactions.next_deadline(),
                     self.calls.next_deadline() if self.calls is not None else None,
                     self.probes.next_deadline() if self.probes is not None else None]
        deadline = min((d for d in deadlines if d is not None), default=None)
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.transactions.handle_timer(self.now)
        if self.calls is not None:
            self.calls.handle_timer(self.now)
        if self.probes is not None:
            self.probes.handle_timer(self.now)
        self._pump()

    def _sweep_registrar(self) -> None:
        assert self._loop is not None
        self.registrar.expire(self.now)
        self._log_registrar_changes()
        self._registrar_sweep = self._loop.call_later(5.0, self._sweep_registrar)

    def _log_registrar_changes(self, where: str = "") -> None:
        changes = self.registrar.changes()
        for change in changes:
            log.info("extension %s %s%s", change.aor, change.cause, where)
        self.bus.publish_all(changes, self.now)

    # -- requests --------------------------------------------------------------------

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        response.headers.add("Server", self.settings.user_agent)
        self.transactions.send_response(transaction, response, self.now)

    def _on_request(self, transaction: ServerTransaction, request: Request) -> None:
        to_tag = secrets.token_hex(6)
        rejection = screen_request(request, to_tag=to_tag)
        if rejection is not None:
            self.respond(transaction, rejection)
            return
        method = request.method
        if method == "OPTIONS":
            self.respond(transaction, options_response(request, to_tag=to_tag))
        elif method == "CANCEL":
            self._on_cancel(transaction, request)
        elif method == "INVITE" and request.to.tag is not None:
            # A re-INVITE for a dialog no call knows (call control claimed the rest).
            self.respond(transaction, build_response(request, 481))
        elif method == "INVITE" and self.draining:
            response = build_response(request, 503, to_tag=to_tag)
            response.headers.add("Retry-After", str(DRAIN_RETRY_AFTER_S))
            self.respond(transaction, response)
        elif method == "INVITE" and (gateway := self._gateway_of(transaction.peer)):
            # A PRI gateway is trusted by its source address: no digest challenge.
            self._route_from_gateway(transaction, request, gateway, to_tag)
        elif method in ("REGISTER", "INVITE"):
            self._spawn(self._authenticate_then(transaction, request, to_tag))
        else:
            # In-dialog requests of calls went to call control; these match no dialog
            # (§12.2.2).
            self.respond(transaction, build_response(request, 481, to_tag=to_tag))

    def _on_cancel(self, transaction: ServerTransaction, cancel: Request) -> None:
        invite_tx = self.transactions.find_server_transaction_for_cancel(cancel)
        if invite_tx is None:
            self.respond(transaction, build_response(cancel, 481))
            return
        self.respond(transaction, build_response(cancel, 200))
        if invite_tx.last_response is None or invite_tx.last_response.status < 200:
            self.respond(invite_tx, build_response(invite_tx.request, 487,
                                                   to_tag=secrets.token_hex(6)))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _credentials(self, username: str) -> Credentials | None:
        cached = self._cache.get(username)
        if cached is not None and cached[0] > self.now:
            return cached[1]
        credentials = await self._lookup(username)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[username] = (self.now + self.settings.credential_cache_s, credentials)
        return credentials

    async def _authenticate_then(self, transaction: ServerTransaction, request: Request,
                                 to_tag: str) -> None:
        source = transaction.peer.host  # the packet's source, never a header's claim
        value = request.headers.get("Authorization")
        if value is None:
            self._challenge(transaction, request, to_tag, stale=False)
            return
        try:
            username = DigestResponse.parse(value).username
        except AuthHeaderError:
            self.respond(transaction, build_response(request, 400, "Bad Authorization",
                                                     to_tag=to_tag))
            self._flush()
            return
        credentials = await self._credentials(username)
        result = self.authenticator.verify(
            request.method, value,
            lambda name: credentials if name == username else None, self.now, request.body)
        if result.outcome is AuthOutcome.STALE:
            self._challenge(transaction, request, to_tag, stale=True)
            return
        if not result.ok:
            self.counters.auth_failures += 1
            log.info("authentication failed for %r from %s: %s", username, source,
                     result.reason)
            if self.bans.record_failure(source, self.now):
                log.warning(describe_ban(source, self.settings.ban_s,
                                         self.settings.ban_max_failures))
            self._challenge(transaction, request, to_tag, stale=False)
            return
        self.bans.record_success(source)
        if request.method == "REGISTER":
            self._register(transaction, request, username, to_tag)
        else:
            self._route_invite(transaction, request, username, to_tag)
        self._flush()

    def _route_invite(self, transaction: ServerTransaction, request: Request, username: str,
                      to_tag: str) -> None:
        """An authenticated phone's INVITE."""
        last = transaction.last_response
        if transaction.terminated or (last is not None and last.status >= 200):
            return  # CANCELled (487) while the credentials were looked up
        if self.calls is None or self.router is None:
            # No media engine, no calls: an authenticated caller reaches nobody.
            self.respond(transaction, build_response(request, 480, to_tag=to_tag))
            return
        # What the phone dialled, as dialled: prefix routes ("0" or "9" for an outside
        # line) must see the digits the user pressed, not a normalised number.
        callee = request.uri.user if isinstance(request.uri, SipUri) and request.uri.user \
            else ""
        display = request.from_.display_name
        origin = CallOrigin("internal", username, callee,
                            LegKind(trunk=False, name=username), display=display)
        query = RouteQuery(CallDirection.INTERNAL, None, callee, username)
        call = self.router.route(RequestReceived(transaction, request), transaction.peer,
                                 origin, query, self.now)
        if call is not None:
            self.counters.calls += 1
            log.info("call %s: extension %s dialled %r", call.call_id, username, callee)

    def _gateway_of(self, peer: Peer) -> Gateway | None:
        if self.trunks is None:
            return None
        return self.trunks.gateway_for_source(peer.host, peer.port)

    def _route_from_gateway(self, transaction: ServerTransaction, request: Request,
                            gateway: Gateway, to_tag: str) -> None:
        """An INVITE from a PRI gateway: the PSTN calls one of our numbers."""
        trunks = self.trunks
        assert trunks is not None
        if self.calls is None or self.router is None:
            self.respond(transaction, build_response(request, 503, to_tag=to_tag))
            return
        try:
            identity = CallerIdentity.from_headers(
                request.headers.get("P-Asserted-Identity"), request.headers.get("Privacy"),
                request.headers.get("From") or "")
        except ValueError:  # HeaderError/UriError: a PAI we cannot read
            self.respond(transaction, build_response(request, 400, "Bad Identity",
                                                     to_tag=to_tag))
            return
        seizure = trunks.seize_inbound(gateway, request.call_id)
        if isinstance(seizure, Rejection):
            # More calls than the spans have channels: the gateway miscounted.
            response = build_response(request, seizure.status, to_tag=to_tag)
            response.headers.add("Reason", seizure.reason_header_value())
            self.respond(transaction, response)
            return
        called = request.uri.user if isinstance(request.uri, SipUri) else None
        callee = national_number(called or "")
        caller = national_number(identity.number)
        trunk = next((name for name, group in trunks.groups.items()
                      if any(g.name == gateway.name for g in group.gateways)), None)
        origin = CallOrigin("inbound", caller, callee, LegKind(trunk=True, name=gateway.name),
                            trunk=trunk, gateway=gateway.name, seizure=seizure,
                            display=identity.display, restricted=identity.restricted)
        query = RouteQuery(CallDirection.INBOUND, trunk, callee, caller)
        call = self.router.route(RequestReceived(transaction, request), transaction.peer,
                                 origin, query, self.now)
        if call is None:
            trunks.release(seizure)
            return
        self.counters.calls += 1
        log.info("call %s: %s -> %s from gateway %s", call.call_id, caller, callee,
                 gateway.name)

    def _challenge(self, transaction: ServerTransaction, request: Request, to_tag: str, *,
                   stale: bool) -> None:
        # 401 + WWW-Authenticate, not 407: we are the UAS for our phones (§22.2).
        response = build_response(request, 401, to_tag=to_tag)
        for value in self.authenticator.challenge(self.now, stale=stale):
            response.headers.add("WWW-Authenticate", value)
        self.respond(transaction, response)
        self._flush()

    def _register(self, transaction: ServerTransaction, request: Request, username: str,
                  to_tag: str) -> None:
        if aor_key(request.to.uri) != username:
            # Authenticated, but for somebody else's extension.
            self.respond(transaction, build_response(request, 403, to_tag=to_tag))
            return
        flow = transaction.peer
        response = self.registrar.register(request, flow, self.now, to_tag=to_tag)
        if response.status == 200:
            self.counters.registrations += 1
        self._log_registrar_changes(f" from {flow.host}:{flow.port}")
        self.respond(transaction, response)
