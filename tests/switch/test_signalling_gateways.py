"""SipService and PRI gateways over real loopback UDP, in process: a gateway is trusted
by its source address (its INVITE is routed without a digest challenge, the same INVITE
from another address is challenged), a draining service refuses new calls with 503 and
Retry-After, and configured gateways get OPTIONS keepalives. The gateway is a UDP socket
on 127.0.0.2, phones use 127.0.0.1 (Linux routes all of 127/8 to lo). Every wait is on a
datagram, with a timeout."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from switch.dialplan import Dialplan, Reject
from switch.pri_gateway import Gateway, TrunkGroup, Trunks
from switch.signalling import DRAIN_RETRY_AFTER_S, SipService, SipSettings
from switch.sip import (
    Credentials,
    Request,
    Response,
    SipMessage,
    build_authorization,
    build_offer,
    parse_message,
    reason_phrase,
)
from switch.sip.offer_answer import PCMU, TELEPHONE_EVENT
from tests.switch.fake_media import FakeMediaEngine
from tests.switch.harness import route

pytestmark = pytest.mark.integration

PHONE_HOST = "127.0.0.1"
GATEWAY_HOST = "127.0.0.2"
REALM = "callcenter"
DID = "4008123456"
PASSWORD = "s3cret-1002"
WAIT_S = 5.0  # for one datagram; on loopback they take microseconds

_branches = itertools.count(1)


class Endpoint(asyncio.DatagramProtocol):
    """A UDP socket whose datagrams queue up, parsed."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[SipMessage] = asyncio.Queue()
        # Set by `endpoint`: uvloop calls connection_made late, with a transport that
        # is no asyncio.DatagramTransport subclass.
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if data.strip():
            self.received.put_nowait(parse_message(data))

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def send(self, text: str, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), to)

    async def next(self, want: Callable[[SipMessage], bool]) -> SipMessage:
        """The next datagram `want` accepts (others, such as keepalives, are skipped)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                message = await self.received.get()
                if want(message):
                    return message

    async def final_response(self, call_id: str) -> Response:
        message = await self.next(lambda m: isinstance(m, Response) and m.status >= 200
                                  and m.call_id == call_id)
        assert isinstance(message, Response)
        return message

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def endpoint(host: str) -> Endpoint:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Endpoint, local_addr=(host, 0))
    protocol.transport = transport
    return protocol


def invite(endpoint: Endpoint, host: str, switch: tuple[str, int], called: str,
           call_id: str) -> str:
    body = build_offer(host, 40000, session_id=1, session_version=1,
                       codecs=(PCMU, TELEPHONE_EVENT)).serialize().decode()
    return (f"INVITE sip:{called}@{switch[0]}:{switch[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{endpoint.port};branch=z9hG4bKgw{next(_branches)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:13800138000@{host}>;tag=pstn{call_id}\r\n"
            f"To: <sip:{called}@{switch[0]}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:13800138000@{host}:{endpoint.port}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")


def register(endpoint: Endpoint, switch: tuple[str, int], extension: str, cseq: int,
             authorization: str | None = None) -> str:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    branch = f"z9hG4bKreg{next(_branches)}"
    return (f"REGISTER sip:{switch[0]}:{switch[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PHONE_HOST}:{endpoint.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{extension}@{switch[0]}>;tag=reg{extension}\r\n"
            f"To: <sip:{extension}@{switch[0]}>\r\n"
            f"Call-ID: reg-{extension}@{PHONE_HOST}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{extension}@{PHONE_HOST}:{endpoint.port}>\r\nExpires: 600\r\n"
            f"{auth}Content-Length: 0\r\n\r\n")


async def lookup(username: str) -> Credentials | None:
    if username == "1002":
        return Credentials.from_password("1002", REALM, PASSWORD)
    return None


@asynccontextmanager
async def switch_with_gateway(gateway: Endpoint) -> AsyncIterator[SipService]:
    trunks = Trunks([TrunkGroup("pstn", [Gateway("gw1", GATEWAY_HOST, gateway.port)])])
    engine = FakeMediaEngine(workers=1, port_range=(31000, 31099))
    engine.start()
    service = SipService(
        SipSettings(listen=((PHONE_HOST, 0),), realm=REALM), lookup, engine=engine,
        trunks=trunks, dialplan=Dialplan([route(did=DID, extension="1002")],
                                         Reject(404, reason_phrase(404))))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
        engine.close()


def address(service: SipService) -> tuple[str, int]:
    return PHONE_HOST, service.transports[0].port


@pytest.fixture
async def gateway() -> AsyncIterator[Endpoint]:
    socket = await endpoint(GATEWAY_HOST)
    yield socket
    socket.close()


@pytest.fixture
async def phone() -> AsyncIterator[Endpoint]:
    socket = await endpoint(PHONE_HOST)
    yield socket
    socket.close()


async def test_a_gateway_invite_is_routed_without_a_challenge(gateway: Endpoint) -> None:
    async with switch_with_gateway(gateway) as service:
        gateway.send(invite(gateway, GATEWAY_HOST, address(service), DID, "gw-1"),
                     address(service))
        response = await gateway.final_response("gw-1")
    # It reached the route: extension 1002 is not registered.
    assert response.status == 480
    assert response.headers.get("WWW-Authenticate") is None
    reason = response.headers.get("Reason") or ""
    assert reason.startswith("Q.850;cause=20")
    assert service.trunks is not None and service.trunks.pools["gw1"].busy == 0


async def test_the_same_invite_from_another_loopback_address_is_challenged(
        gateway: Endpoint, phone: Endpoint) -> None:
    async with switch_with_gateway(gateway) as service:
        phone.send(invite(phone, PHONE_HOST, address(service), DID, "not-gw-1"),
                   address(service))
        response = await phone.final_response("not-gw-1")
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") is not None
    assert service.counters.calls == 0


async def register_1002(phone: Endpoint, switch: tuple[str, int]) -> None:
    """Extension 1002 registers from `phone`, answering the digest challenge."""
    phone.send(register(phone, switch, "1002", 1), switch)
    challenge = await phone.final_response(f"reg-1002@{PHONE_HOST}")
    assert challenge.status == 401
    value = challenge.headers.get("WWW-Authenticate")
    assert value is not None
    authorization = build_authorization(
        value, "REGISTER", f"sip:{switch[0]}:{switch[1]}", "1002", password=PASSWORD,
        cnonce="c0ffee")
    phone.send(register(phone, switch, "1002", 2, authorization), switch)
    assert (await phone.final_response(f"reg-1002@{PHONE_HOST}")).status == 200


async def test_a_gateway_invite_rings_a_registered_agent(gateway: Endpoint,
                                                         phone: Endpoint) -> None:
    async with switch_with_gateway(gateway) as service:
        switch = address(service)
        await register_1002(phone, switch)

        gateway.send(invite(gateway, GATEWAY_HOST, switch, DID, "gw-2"), switch)
        offered = await phone.next(lambda m: isinstance(m, Request) and m.method == "INVITE")
        assert isinstance(offered, Request)
        assert str(offered.uri) == f"sip:1002@{PHONE_HOST}:{phone.port}"
        assert offered.from_.uri.user == "13800138000"  # type: ignore[union-attr]
        assert service.counters.calls == 1
        assert service.trunks is not None and service.trunks.pools["gw1"].busy == 1


async def test_a_draining_service_refuses_new_calls_with_503_and_retry_after(
        gateway: Endpoint, phone: Endpoint) -> None:
    async with switch_with_gateway(gateway) as service:
        switch = address(service)
        assert await service.drain(1.0, asyncio.Event()) == 0  # no call was up
        gateway.send(invite(gateway, GATEWAY_HOST, switch, DID, "late-1"), switch)
        from_gateway = await gateway.final_response("late-1")
        phone.send(invite(phone, PHONE_HOST, switch, "1002", "late-2"), switch)
        from_phone = await phone.final_response("late-2")
    for response in (from_gateway, from_phone):
        assert response.status == 503
        assert response.headers.get("Retry-After") == str(DRAIN_RETRY_AFTER_S)
    assert service.counters.calls == 0


async def test_a_configured_gateway_gets_options_keepalives(gateway: Endpoint) -> None:
    async with switch_with_gateway(gateway) as service:
        probe = await gateway.next(lambda m: isinstance(m, Request))
        assert isinstance(probe, Request)
        assert probe.method == "OPTIONS"
        assert probe.uri.host == GATEWAY_HOST  # type: ignore[union-attr]
        assert probe.top_via.port == service.transports[0].port
