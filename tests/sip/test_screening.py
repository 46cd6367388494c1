"""Require option tags the UAS core accepts (RFC 3261 §8.2.2.3): 100rel is one of them
now that reliable provisional responses are implemented (RFC 3262)."""

from __future__ import annotations

from switch.sip.message import Request, parse_message
from switch.sip.screening import options_response, screen_request


def invite(require: str) -> Request:
    request = parse_message(
        b"INVITE sip:1001@10.0.0.9 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKgw1\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:13800138000@10.0.0.2>;tag=gw\r\n"
        b"To: <sip:1001@10.0.0.9>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:13800138000@10.0.0.2>\r\n"
        b"Require: " + require.encode() + b"\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(request, Request)
    return request


def test_require_100rel_is_let_through() -> None:
    assert screen_request(invite("100rel"), to_tag="t") is None
    assert screen_request(invite("100rel, timer"), to_tag="t") is None


def test_an_unknown_option_still_gets_420_naming_it() -> None:
    rejection = screen_request(invite("100rel, precondition"), to_tag="t")
    assert rejection is not None and rejection.status == 420
    assert rejection.headers.get("Unsupported") == "precondition"


def test_options_says_we_support_100rel() -> None:
    answer = options_response(invite("100rel"), to_tag="t")
    assert answer.headers.get("Supported") == "replaces, timer, path, outbound, 100rel"
