"""The transport writes the packet's real source into the top Via (RFC 3261 §18.2.1,
RFC 3581) and never trusts `received`/`rport` values the sender wrote there."""

from __future__ import annotations

import pytest

from switch.sip.message import Request, parse_message
from switch.sip.peer import Peer, response_peer
from switch.sip.transport import stamp_via

SOURCE = Peer("UDP", "127.0.0.20", 40000)


def options(via: str) -> Request:
    message = parse_message(
        f"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via}\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKlower\r\n"
        "From: <sip:a@x>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c1\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n".encode())
    assert isinstance(message, Request)
    return message


@pytest.mark.parametrize(("via", "received", "rport", "goes_to"), [
    # The sender's claims are replaced by what the packet says.
    ("127.0.0.20:5060;branch=z9hG4bK1;received=127.0.0.101", "127.0.0.20", None,
     Peer("UDP", "127.0.0.20", 5060)),
    ("127.0.0.30:40000;branch=z9hG4bK1;received=127.0.0.30", "127.0.0.20", None,
     Peer("UDP", "127.0.0.20", 40000)),
    ("127.0.0.20:5060;branch=z9hG4bK1;rport=9", "127.0.0.20", "40000", SOURCE),
    ("127.0.0.30;branch=z9hG4bK1;received=127.0.0.30;rport=7", "127.0.0.20", "40000",
     SOURCE),
    ("127.0.0.20;branch=z9hG4bK1;Received=127.0.0.55;RPORT", "127.0.0.20", "40000",
     SOURCE),
    # Honest requests: RFC 3581 fills the empty rport; §18.2.1 adds received only when
    # sent-by differs from the source.
    ("192.168.1.20:5062;branch=z9hG4bK1;rport", "127.0.0.20", "40000", SOURCE),
    ("192.168.1.20:5062;branch=z9hG4bK1", "127.0.0.20", None,
     Peer("UDP", "127.0.0.20", 5062)),
    ("127.0.0.20:40000;branch=z9hG4bK1", None, None, SOURCE),
    # maddr names a third host: not followed (no multicast here; reflection).
    ("127.0.0.20:40000;branch=z9hG4bK1;maddr=127.0.0.99", None, None, SOURCE),
])
def test_stamped_via_names_the_real_source(via: str, received: str | None,
                                           rport: str | None, goes_to: Peer) -> None:
    request = options(via)
    stamp_via(request, SOURCE)
    top = request.top_via
    assert top.params.get("received") == received
    assert top.params.get("rport") == rport
    assert response_peer(top, "UDP") == goes_to
    # Only the top Via is ours to stamp; the branch and the rest stay as sent.
    assert top.branch == "z9hG4bK1"
    assert request.headers.get_all("Via")[1] == "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKlower"


def test_an_honest_via_keeps_its_bytes() -> None:
    data = options("127.0.0.20:40000;branch=z9hG4bK1").serialize()
    request = options("127.0.0.20:40000;branch=z9hG4bK1")
    stamp_via(request, SOURCE)
    assert request.serialize() == data
