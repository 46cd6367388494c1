"""SIP messages: parsing real phone traffic, round trips, exact errors, responses."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.sip.headers import CSeq
from switch.sip.message import (
    Headers,
    ParseError,
    Request,
    Response,
    build_error_response,
    build_response,
    parse_message,
)
from switch.sip.status import reason_phrase
from switch.sip.uri import SipUri

FIXTURES = Path(__file__).parent / "fixtures" / "messages"
ALL = sorted(p.name for p in FIXTURES.glob("*.sip"))


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def test_fixtures_are_crlf_files() -> None:
    for name in ALL:
        data = load(name)
        assert b"\r\n\r\n" in data, name
        assert data.count(b"\n") == data.count(b"\r\n"), name
    assert {"invite_sdp.sip", "ok_sdp.sip", "register_auth.sip", "bye.sip"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_round_trip(name: str) -> None:
    first = parse_message(load(name))
    again = parse_message(first.serialize())
    assert again == first
    assert again.serialize() == first.serialize()


def test_yealink_invite_with_sdp() -> None:
    msg = request(load("invite_sdp.sip"))
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("192.168.10.5", "4001", port=5060)
    assert msg.top_via.branch == "z9hG4bK1652471871"
    assert msg.top_via.params["rport"] is None
    assert msg.from_.display_name == "Agent 1001"
    assert msg.from_.tag == "2040960463"
    assert msg.to.tag is None
    assert msg.call_id == "1394915370@192.168.10.51"
    assert msg.cseq == CSeq(1, "INVITE")
    assert msg.max_forwards == 70
    assert msg.content_type == "application/sdp"
    assert msg.body.startswith(b"v=0\r\no=- 20012 20012 IN IP4 192.168.10.51\r\n")
    assert msg.body.endswith(b"a=sendrecv\r\n")
    assert msg.headers.get_all("Allow")[:3] == ["INVITE", "INFO", "PRACK"]
    assert msg.headers.get_all("Allow-Events") == ["talk", "hold", "conference", "refer",
                                                  "check-sync"]
    assert msg.headers.get("user-agent") == "Yealink SIP-T46S 66.86.0.15"


def test_polycom_200_ok_with_sdp() -> None:
    msg = response(load("ok_sdp.sip"))
    assert (msg.status, msg.reason) == (200, "OK")
    assert msg.to.tag == "as5e3c1a7b"
    assert msg.top_via.params["received"] == "192.168.10.51"
    assert msg.record_routes[0].sip_uri.params == {"lr": None, "ftag": "2040960463"}
    assert msg.contacts[0].sip_uri.transport == "udp"
    assert msg.headers.get("Session-Expires") == "1800;refresher=uac"
    assert msg.headers.get_all("Supported") == ["replaces", "timer"]
    assert len(msg.body) == int(msg.headers.get("Content-Length") or -1)


def test_cisco_register_with_authorization() -> None:
    msg = request(load("register_auth.sip"))
    assert msg.expires == 3600
    contact = msg.contacts[0]
    assert contact.params["expires"] == "3600"
    assert contact.params["+sip.instance"] == "<urn:uuid:00000000-0000-1000-8000-00a3d1e5f6b7>"
    auth = msg.headers.get("Authorization")
    assert auth is not None and auth.startswith('Digest username="1002",realm="callcenter"')
    assert auth.endswith("qop=auth,nc=00000001")  # not split: not a list header


def test_bye_and_options() -> None:
    bye = request(load("bye.sip"))
    assert bye.routes[0].serialize() == "<sip:192.168.10.5;lr;ftag=2040960463>"
    assert bye.body == b""
    options = request(load("options.sip"))
    assert options.headers.get_all("Accept") == ["application/sdp",
                                                "application/simple-message-summary",
                                                "message/sipfrag"]


def test_401_with_two_challenges() -> None:
    msg = response(load("unauthorized_two_challenges.sip"))
    challenges = msg.headers.get_all("WWW-Authenticate")
    assert len(challenges) == 2
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    assert 'qop="auth,auth-int"' in challenges[1]


def test_response_with_comma_joined_and_separate_vias() -> None:
    msg = response(load("ringing_multi_via.sip"))
    assert [(v.transport, v.host, v.port) for v in msg.vias] == [
        ("UDP", "192.168.10.5", 5060), ("TCP", "[2001:db8::10]", 5061),
        ("UDP", "192.168.10.51", 5060)]
    assert [r.sip_uri.host for r in msg.record_routes] == ["192.168.10.5", "[2001:db8::10]"]
    msg.headers.remove_first("Via")  # a proxy strips its own Via: one element
    assert [v.host for v in parse_message(msg.serialize()).vias] == [
        "[2001:db8::10]", "192.168.10.51"]
    last = msg.vias[1]
    msg.headers.replace_first("Via", "SIP/2.0/TCP [2001:db8::10]:5061;received=2001:db8::99")
    vias = parse_message(msg.serialize()).vias
    assert vias[0].params == {"received": "2001:db8::99"}
    assert vias[1] == last  # only the top value changes, in place


def test_compact_forms_folding_and_escaped_display_name() -> None:
    msg = request(load("invite_compact_folded.sip"))
    assert msg.top_via.branch == "z9hG4bK0b8c6a1e4f2d9c7e"
    assert msg.from_.display_name == 'Li "Desk" 4001'
    assert msg.call_id == "8e1a3c5f-7b9d2e4a-1c6f8b0d@192.168.10.60"
    assert msg.headers.get_all("k") == ["100rel", "replaces", "timer"]
    assert msg.content_type == "application/sdp"
    assert len(msg.body) == 249
    wire = msg.serialize()
    assert b"\r\nSupported: 100rel\r\n" in wire and b"\r\nContent-Length: 249\r\n" in wire


BASE = ("OPTIONS sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP pc.example.com;branch=z9hG4bK1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: abc@pc\r\n"
        "CSeq: 1 OPTIONS\r\n")


def make(extra: str = "", body: str = "", base: str = BASE) -> bytes:
    return (base + extra + "\r\n" + body).encode()


def test_header_names_case_insensitive_methods_case_sensitive() -> None:
    msg = request(make("X-Agent-Id: 42\r\nmAx-FoRwArDs: 0068\r\n"))
    assert msg.headers.get("x-agent-id") == msg.headers.get("X-AGENT-ID") == "42"
    assert "x-agent-ID" in msg.headers
    assert msg.max_forwards == 68
    msg.headers.set("x-agent-id", "43")
    assert msg.headers.get_all("X-Agent-Id") == ["43"]
    msg.headers.remove("X-AGENT-ID")
    assert "X-Agent-Id" not in msg.headers
    with pytest.raises(ParseError, match=r"^CSeq method OPTIONS does not match options$"):
        parse_message(make(base=BASE.replace("OPTIONS sip", "options sip")))


def test_lws_around_colon_and_folded_values() -> None:
    msg = request(make("Subject :\r\n  folded\r\n\tvalue \r\nContent-Length   : 0\r\n"))
    assert msg.headers.get("Subject") == "folded value"


def test_comma_joined_contacts_with_commas_inside() -> None:
    msg = request(make('Contact: "Doe, J" <sip:j@x.com;a=1>;q=0.5, <sip:k,2@y.com>\r\n'))
    assert [c.display_name for c in msg.contacts] == ["Doe, J", None]
    assert msg.contacts[1].sip_uri.user == "k,2"


def test_route_list_and_wildcard_contact() -> None:
    msg = request(make("Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\n"
                       "Contact: *\r\nExpires: 0\r\n"))
    assert [r.sip_uri.host for r in msg.routes] == ["p1.example.com", "p2.example.com"]
    assert msg.is_wildcard_contact and msg.contacts == []


def test_udp_body_truncated_to_content_length() -> None:
    msg = request(make("Content-Length: 3\r\n", "abcdef"))
    assert msg.body == b"abc"
    assert request(make("", "rest of datagram")).body == b"rest of datagram"


def test_leading_crlf_and_bare_lf_tolerated() -> None:
    lf = make("Content-Length: 2\r\n", "hi").replace(b"\r\n", b"\n")
    assert request(b"\r\n\r\n" + lf).body == b"hi"


@pytest.mark.parametrize(("data", "error", "status"), [
    (make("Content-Length: 10\r\n", "short"),
     "Content-Length 10 exceeds the 5 bytes received", 400),
    (make("Content-Length: 99999999999999999999999\r\n"),
     "Content-Length 99999999999999999999999 exceeds the 0 bytes received", 400),
    (make()[:-2], "truncated message: no empty line after the header section", 400),
    (make().replace(b"\r\nCSeq: 1 OPTIONS", b""), "missing CSeq header", 400),
    (make("Call-ID: x\r\n"), "more than one Call-ID header", 400),
    (make("Max-Forwards: 256\r\n"), "bad Max-Forwards value '256'", 400),
    (make("Expires: 4294967296\r\n"), "bad Expires value '4294967296'", 400),
    (make("Contact: *, <sip:a@b>\r\n"), "Contact '*' must be the only Contact value", 400),
    (make("Route: <sip:a@b>,,<sip:c@d>\r\n"), "empty element in Route header", 400),
    (make("Bad Header: x\r\n"), "bad header name 'Bad Header'", 400),
    (make("NoColon\r\n"), "bad header line 'NoColon'", 400),
    (make("X: a\rb\r\n"), "bare CR in the header section", 400),
    (make(base=BASE.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1)),
     "unsupported SIP version 'SIP/3.0'", 505),
    (make(base=BASE.replace("Call-ID: abc@pc", "Call-ID: a b")), "bad Call-ID 'a b'", 400),
    (b"", "empty message", 400),
    (b"\r\n\r\n", "empty message", 400),
])
def test_exact_errors(data: bytes, error: str, status: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert str(info.value) == error
    assert info.value.status == status
    if data.startswith(b"OPTIONS"):
        assert info.value.raw_headers is not None
        assert ("Call-ID", "abc@pc") in info.value.raw_headers or "Call-ID" in error


def test_stream_requires_content_length() -> None:
    with pytest.raises(ParseError, match=r"^missing Content-Length on a stream transport$"):
        parse_message(make(), stream=True)


def test_response_errors_have_no_raw_headers() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a\r\n\r\n")
    assert info.value.raw_headers is None
    assert str(info.value) == "missing From header"


def test_build_response_echoes_and_tags() -> None:
    req = request(make("Timestamp: 54\r\n"))
    ok = build_response(req, 200, to_tag="srv1")
    assert ok.to.tag == "srv1" and ok.from_.tag == "1"
    assert ok.headers.get("Call-ID") == "abc@pc" and ok.cseq == CSeq(1, "OPTIONS")
    assert ok.reason == "OK"
    trying = build_response(req, 100, to_tag="srv1")
    assert trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54"
    assert parse_message(ok.serialize()) == ok


def test_build_error_response_from_a_failed_parse() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(make("Max-Forwards: 999\r\nTo: <sip:dup@x>\r\n"))
    answer = build_error_response(info.value.raw_headers or [], info.value.status,
                                  to_tag="e1")
    assert answer is not None
    assert answer.serialize() == (
        b"SIP/2.0 400 Bad Request\r\n"
        b"Via: SIP/2.0/UDP pc.example.com;branch=z9hG4bK1\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"To: <sip:bob@example.com>;tag=e1\r\n"
        b"Call-ID: abc@pc\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert build_error_response([("Call-ID", "x")], 400) is None
    assert build_error_response([("Via", "garbage")], 400) is None


def test_serialize_keeps_content_length_in_place() -> None:
    msg = request(make("Content-Length: 2\r\nX-After: 1\r\n", "hi"))
    msg.body = b"hello"
    wire = msg.serialize()
    assert b"\r\nContent-Length: 5\r\nX-After: 1\r\n\r\nhello" in wire


def test_headers_api() -> None:
    headers = Headers()
    headers.add("v", "SIP/2.0/UDP a")
    headers.prepend("Via", "SIP/2.0/UDP b")
    headers.add("x-y", "1")
    assert headers.items() == [("Via", "SIP/2.0/UDP b"), ("Via", "SIP/2.0/UDP a"),
                               ("x-y", "1")]
    headers.remove_first("VIA")
    assert headers.get_all("via") == ["SIP/2.0/UDP a"]
    assert len(headers) == 2 and headers == headers.copy()
    assert headers.get("missing", "d") == "d"
    assert repr(headers) == "Headers([('Via', 'SIP/2.0/UDP a'), ('x-y', '1')])"


def test_structured_views_follow_header_changes() -> None:
    msg = request(make())
    assert msg.to.tag is None
    msg.headers.set("To", "<sip:bob@example.com>;tag=new")
    assert msg.to.tag == "new"


def test_request_uri_can_be_replaced() -> None:
    msg = request(make())
    msg.uri = SipUri("other.example.com", "carol")
    assert msg.serialize().startswith(b"OPTIONS sip:carol@other.example.com SIP/2.0\r\n")


def test_repr_and_reason_phrases() -> None:
    assert repr(request(make())) == "<Request OPTIONS sip:bob@example.com call-id=abc@pc>"
    assert repr(Response(486)) == "<Response 486 Busy Here call-id=None>"
    assert reason_phrase(499) == "Client Error"
    assert reason_phrase(199) == "Early Dialog Terminated"
    assert reason_phrase(999) == "Unknown"
