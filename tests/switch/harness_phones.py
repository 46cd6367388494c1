"""The parties of the call-control test harness (tests/switch/harness.py) and the numbers
they dial: a Party is a phone or a PRI gateway, one sans-I/O transaction layer at one
address with the INVITE sessions it made or was offered, acting as a phone's SIP stack
would; the constants name the switch, the gateways and the service numbers; `route`
builds a [[routes]] entry. Tests import all of it through tests.switch.harness."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from switch.config import RouteConfig
from switch.dialplan import Route
from switch.pri_gateway import Gateway
from switch.sip import (
    AckReceived,
    Answered,
    DialogRequest,
    Held,
    InviteClient,
    InviteEvent,
    InviteServer,
    NameAddr,
    Peer,
    Rejected,
    Request,
    RequestReceived,
    ResponseReceived,
    Resumed,
    StrayResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    build_offer,
    build_response,
    options_response,
    parse_message,
)
from switch.sip.offer_answer import PCMU, TELEPHONE_EVENT, Codec, Direction
from switch.sip.refer import parse_sipfrag

DOMAIN = "10.0.0.9"  # the switch's address, and the host of the From it presents
SWITCH = Peer("UDP", DOMAIN, 5060)
GW1 = Gateway("gw1", "10.0.0.51", spans=1)
GW2 = Gateway("gw2", "10.0.0.52", spans=1)
DID = "4008123456"  # our service number, as the PSTN dials it
MOBILE = "13800138000"
MOH = "/prompts/music_on_hold.wav"

# How a gateway answers an OPTIONS keepalive: with a status, or None: it never hears it.
Behaviour = Callable[[Request], int | None]


def counter(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def sdp(host: str, port: int, version: int = 1, direction: Direction = Direction.SENDRECV,
        codecs: tuple[Codec, ...] = (PCMU, TELEPHONE_EVENT)) -> bytes:
    """A phone's offer or answer: audio at host:port, session id `port`."""
    return build_offer(host, port, session_id=port, session_version=version,
                       codecs=codecs, direction=direction).serialize()


def route(*, did: str | None = None, prefix: str | None = None,
          extension: bool | str | None = None, from_trunk: str | None = None,
          application: str | None = None, prompt: str | None = None,
          trunk_group: str | None = None, strip: int = 0, prepend: str = "",
          recording: str | None = None) -> Route:
    """One [[routes]] entry, as switch.config would hand it over."""
    return Route.from_config(RouteConfig(did, prefix, extension, from_trunk, application,
                                         prompt, trunk_group, strip, prepend,
                                         recording=recording))


OUTSIDE_LINE = route(prefix="0", trunk_group="pstn", strip=1)
SERVICE_DID = route(did=DID, extension="1002")
EXTENSIONS = route(extension=True)


def cause_of(reason_header: str | None) -> str:
    """The Q.850 cause of a Reason header."""
    assert reason_header is not None
    return reason_header.split("cause=")[1].split(";")[0]


class Party:
    """A phone or a PRI gateway: a transaction layer at one address.

    `trunk`: its calls come in as from the PSTN (DirectNet only; Net tells a gateway by
    its address). `session_expires_s`: it supports RFC 4028 session timers when offered
    a call. `answers_requests`: like a phone's stack it accepts re-INVITEs (hold,
    resume, refresh) and answers in-dialog requests 200 itself, keeping NOTIFY
    sipfrag statuses in `notifies`; otherwise the test answers them. `options`: a
    gateway's answer to OPTIONS (a 100 Trying first if `trying_first`)."""

    def __init__(self, name: str, peer: Peer, *, trunk: bool = False,
                 session_expires_s: int | None = None, answers_requests: bool = False,
                 options: Behaviour | None = None) -> None:
        self.name = name
        self.peer = peer
        self.trunk = trunk
        self.session_expires_s = session_expires_s
        self.answers_requests = answers_requests
        self.layer = TransactionLayer(new_branch=counter(f"z9hG4bK{name}x"))
        self.sessions: list[InviteClient | InviteServer] = []
        self.incoming: list[InviteServer] = []
        self.events: list[tuple[InviteClient | InviteServer, InviteEvent]] = []
        self.notifies: list[int] = []  # sipfrag statuses received
        self.options = options
        self.trying_first = False
        self._tags = counter(f"{name}-tag")

    def __repr__(self) -> str:
        return f"<Party {self.name} {self.peer.host}:{self.peer.port}>"

    def events_of(self, session: InviteClient | InviteServer) -> list[InviteEvent]:
        return [e for s, e in self.events if s is session]

    def rejected(self, session: InviteClient) -> Rejected:
        [rejected] = [e for e in self.events_of(session) if isinstance(e, Rejected)]
        return rejected

    def answered(self, session: InviteClient) -> bool:
        return any(isinstance(e, Answered) for e in self.events_of(session))

    # -- what the phone does

    def invite(self, number: str, now: float, *, from_user: str | None = None,
               display: str | None = None, headers: Sequence[tuple[str, str]] = (),
               **options: Any) -> InviteClient:
        """An INVITE for `number` to the switch; `options` go to InviteClient (offer,
        call_id, reliable_provisional, extra_headers ...)."""
        user = from_user or self.name
        name = f'"{display}" ' if display else ""
        host, port = self.peer.host, self.peer.port
        session = InviteClient(
            self.layer, SWITCH, request_uri=f"sip:{number}@{DOMAIN}",
            from_=NameAddr.parse(f"{name}<sip:{user}@{host}>;tag={self.name}t"),
            to=NameAddr.parse(f"<sip:{number}@{DOMAIN}>"),
            contact=NameAddr.parse(f"<sip:{user}@{host}:{port}>"),
            via_host=host, via_port=port, now=now,
            **{"call_id": f"{self.name}-call-{len(self.sessions)}",
               "offer": sdp(host, 4000 + 2 * len(self.sessions)),
               "extra_headers": list(headers), **options})
        self.sessions.append(session)
        return session

    def answer(self, now: float, index: int = -1) -> InviteServer:
        session = self.incoming[index]
        session.answer(sdp(self.peer.host, 6000 + 2 * len(self.sessions)), now)
        return session

    def register_request(self, extension: str, contact: str, flow: Peer,
                         expires_s: int) -> Request:
        text = (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {flow.host}:{flow.port};branch=z9hG4bKreg{extension}\r\n"
                f"From: <sip:{extension}@{DOMAIN}>;tag=reg\r\n"
                f"To: <sip:{extension}@{DOMAIN}>\r\n"
                f"Call-ID: reg-{extension}-{self.name}\r\nCSeq: 1 REGISTER\r\n"
                f"Contact: <{contact}>\r\nExpires: {expires_s}\r\n"
                "Content-Length: 0\r\n\r\n")
        request = parse_message(text.encode())
        assert isinstance(request, Request)
        return request

    def hears(self, data: bytes) -> bool:
        """Whether a datagram reaches the party's stack: not an OPTIONS its `options`
        behaviour ignores (a dead gateway)."""
        if self.options is None or not data.startswith(b"OPTIONS "):
            return True
        request = parse_message(data)
        return isinstance(request, Request) and self.options(request) is not None

    def handle(self, event: TransactionEvent, now: float) -> None:
        """An event of the party's transaction layer, to the session it belongs to; a
        new INVITE makes a new incoming session, an OPTIONS is answered."""
        if isinstance(event, RequestReceived) and event.request.method == "OPTIONS" \
                and self.options is not None:
            self._answer_options(event, now)
            return
        if isinstance(event, RequestReceived | AckReceived):
            call_id = event.request.call_id
        elif isinstance(event, ResponseReceived | StrayResponseReceived):
            call_id = event.response.call_id
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            call_id = event.transaction.request.call_id
        else:
            return  # terminated transactions and merged requests: nothing to tell
        for session in self.sessions:
            if session.invite.call_id == call_id:
                session.handle(event, now)
                return
        assert isinstance(event, RequestReceived) and event.request.method == "INVITE"
        host, port = self.peer.host, self.peer.port
        server = InviteServer(self.layer, event, to_tag=f"{self.name}tag{len(self.sessions)}",
                              contact=NameAddr.parse(f"<sip:{self.name}@{host}:{port}>"),
                              via_host=host, via_port=port, peer=SWITCH,
                              session_expires_s=self.session_expires_s)
        self.sessions.append(server)
        self.incoming.append(server)

    def _answer_options(self, event: RequestReceived, now: float) -> None:
        assert self.options is not None
        status = self.options(event.request)
        assert status is not None
        if self.trying_first:
            self.layer.send_response(event.transaction, build_response(event.request, 100), now)
        response = (options_response(event.request, to_tag=self._tags()) if status == 200
                    else build_response(event.request, status, to_tag=self._tags()))
        self.layer.send_response(event.transaction, response, now)

    def take_session_events(self, now: float) -> bool:
        """Keep what the sessions report (and answer it if `answers_requests`); whether
        there was anything."""
        moved = False
        for session in self.sessions:
            for event in session.events():
                moved = True
                self.events.append((session, event))
                if not self.answers_requests:
                    continue
                if isinstance(event, Held | Resumed):
                    session.accept_reinvite(sdp(self.peer.host, 6000, 1 + len(self.events)), now)
                if isinstance(event, DialogRequest):
                    if event.request.method == "NOTIFY":
                        self.notifies.append(parse_sipfrag(event.request.body))
                    session.respond(event.transaction, 200, now)
        return moved
