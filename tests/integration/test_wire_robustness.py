"""The running switch answers bad input with 400 (or drops it) and keeps serving;
it answers the requests every UAS core must handle (OPTIONS, unknown schemes,
unsupported extensions, loops)."""

from __future__ import annotations

import os
import random
import socket
import tomllib
import uuid
from pathlib import Path

import pytest

from switch.sip import Response
from tests.integration.peers import UdpClient
from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration
RFC4475 = Path(__file__).parent.parent / "sip" / "fixtures" / "rfc4475"


def options(client: UdpClient, *, uri: str = "sip:127.0.0.1", extra: str = "",
            method: str = "OPTIONS", max_forwards: int = 70) -> bytes:
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.port};branch=z9hG4bK{uuid.uuid4().hex};rport",
        f"Max-Forwards: {max_forwards}",
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}",
        "To: <sip:127.0.0.1>",
        f"Call-ID: {uuid.uuid4().hex}",
        f"CSeq: 1 {method}",
    ]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.fixture
def client():
    udp = UdpClient()
    yield udp
    udp.close()


def test_options_is_answered_with_capabilities(switch: SwitchProcess, client: UdpClient):
    response = client.request(options(client), switch.udp_port)
    assert response is not None and response.status == 200
    assert "REGISTER" in response.headers.get_all("Allow")
    assert response.headers.get("Accept") == "application/sdp"


def test_rport_is_honoured(switch: SwitchProcess, client: UdpClient):
    response = client.request(options(client), switch.udp_port)
    assert response is not None
    assert response.top_via.params["rport"] == str(client.port)
    assert response.top_via.params["received"] == "127.0.0.1"


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"uri": "xmpp:alice@example.com"}, 416),
    ({"extra": "Require: nonsense-extension"}, 420),
    ({"method": "INFO", "max_forwards": 0}, 483),
    ({"method": "FOOBAR"}, 501),
    ({"method": "SUBSCRIBE"}, 405),
])
def test_core_rejections(switch: SwitchProcess, client: UdpClient, kwargs, status):
    response = client.request(options(client, **kwargs), switch.udp_port)
    assert response is not None and response.status == status
    if status == 420:
        assert response.headers.get("Unsupported") == "nonsense-extension"


def test_malformed_request_gets_400_and_switch_keeps_serving(switch: SwitchProcess,
                                                             client: UdpClient):
    good = options(client)
    broken = good.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
    response = client.request(broken, switch.udp_port)
    assert response is not None and response.status == 400
    rng = random.Random(4475)
    for round_ in range(300):  # garbage and mutated messages: no answer needed, no crash
        data = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        client.send(bytes(data), switch.udp_port)
        client.send(os.urandom(rng.randint(1, 1500)), switch.udp_port)
        if round_ % 20 == 19:
            # Pace by the switch's own answers so no datagram is lost to a full buffer.
            probe_after(client, switch.udp_port)
    assert switch.alive()


def test_tcp_framing_and_oversize(switch: SwitchProcess, client: UdpClient):
    with socket.create_connection(("127.0.0.1", switch.tcp_port), timeout=5) as sock:
        one = options(client).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        two = options(client).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        sock.sendall(b"\r\n\r\n" + one + two)  # keepalive ping, then two messages at once
        received = b""
        while received.count(b"SIP/2.0 200") < 2:
            chunk = sock.recv(65535)
            assert chunk, received
            received += chunk
        assert received.startswith(b"\r\n")  # RFC 5626 pong
    assert switch.alive()


def rfc4475_cases():
    expected = RFC4475 / "expected.toml"
    if not expected.exists():
        return []
    table = tomllib.loads(expected.read_text())
    return [pytest.param(name, case, id=name) for name, case in table.items()
            if isinstance(case, dict)]


def probe_after(client: UdpClient, port: int) -> list[Response]:
    """Send a good OPTIONS and read until its answer arrives: every response read on
    the way is returned. The switch answers parse errors synchronously, so a 400 for
    an earlier datagram arrives before the probe's 200."""
    probe = options(client)
    call_id = next(line for line in probe.split(b"\r\n") if line.startswith(b"Call-ID"))
    wanted = call_id.split(b": ", 1)[1].decode()
    client.send(probe, port)
    seen: list[Response] = []
    while True:
        message = client.receive()
        assert message is not None, "the switch stopped answering"
        if isinstance(message, Response):
            if message.headers.get("Call-ID") == wanted:
                assert message.status == 200
                return seen
            seen.append(message)


@pytest.mark.parametrize(("name", "case"), rfc4475_cases())
def test_rfc4475_over_the_wire(switch: SwitchProcess, client: UdpClient, name, case):
    data = (RFC4475 / f"{name}.dat").read_bytes()
    client.send(data, switch.udp_port)
    answers = probe_after(client, switch.udp_port)
    statuses = [r.status for r in answers]
    if not case["valid"] and case.get("response") in (400, 505) \
            and not case.get("may_accept"):
        assert statuses == [case["response"]], (name, statuses)
    if case.get("dropped"):
        assert statuses == [], (name, statuses)
    assert switch.alive()
