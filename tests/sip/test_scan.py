"""The C message scanner (switch/sip/_scan.pyx) against its pure-Python twin and the
full parser: same results on arbitrary bytes and mutated real messages; whatever the
scanner accepts parses to the same message through the full parser; serialize reuses
the received header lines only while the headers are unmodified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import switch.sip.message as message_module
from switch.sip import _scan, _scan_py
from switch.sip.message import Headers, ParseError, SipMessage, parse_message

HERE = Path(__file__).parent / "fixtures"
FIXTURES = {p.stem: p.read_bytes() for p in sorted((HERE / "messages").glob("*.sip"))}
SEEDS = list(FIXTURES.values()) + [
    p.read_bytes() for p in sorted((HERE / "rfc4475").glob("*.dat"))]
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
INTERESTING = [*b'\r\n \t:;,<>"\\%@=?&[]/.-+~!*\'()$`0159aAsS', 0x00, 0x7F, 0x80, 0xFF]


def full_parse(data: bytes, stream: bool = False) -> SipMessage:
    """parse_message with the scanner switched off: the reference."""
    saved = message_module.scan_message
    message_module.scan_message = lambda data, stream: None
    try:
        return parse_message(data, stream=stream)
    finally:
        message_module.scan_message = saved


def outcome(parse: Callable[..., SipMessage], data: bytes, stream: bool) -> tuple[str, object]:
    try:
        message = parse(data, stream=stream)
    except ParseError as exc:
        return "error", (str(exc), exc.status, exc.raw_headers)
    # Wire bytes may differ (list headers stay on their received line), not content.
    return "ok", (message, parse_message(message.serialize()))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = draw(st.sampled_from(INTERESTING))
        if action == "flip":
            data[at] = byte
        elif action == "insert":
            data.insert(at, byte)
        else:
            del data[at]
    return bytes(data)


def check_same(data: bytes) -> None:
    for stream in (False, True):
        fast = _scan.scan_message(data, stream)
        assert fast == _scan_py.scan_message(data, stream)
        if fast is not None:
            assert _scan.header_lines(data) == _scan_py.header_lines(data)
            # The scanner only takes what the full parser accepts, and builds the same.
            message = parse_message(data, stream=stream)
            reference = full_parse(data, stream=stream)
            assert message == reference
            assert parse_message(message.serialize()) == reference


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixtures_scan_alike(name: str) -> None:
    check_same(FIXTURES[name])


def test_clean_fixtures_take_the_scanner() -> None:
    for name in ("bye", "invite_sdp", "ok_sdp", "register_auth",
                 "unauthorized_two_challenges"):
        assert _scan.scan_message(FIXTURES[name], False) is not None, name


@SETTINGS
@given(mutated())
def test_mutated_messages_scan_alike(data: bytes) -> None:
    check_same(data)


@SETTINGS
@given(st.binary(max_size=300))
@example(b"BYE sip:a@b SIP/2.0\r\n\r\n")
@example(b"SIP/2.0 200\r\n\r\n")
def test_arbitrary_bytes_scan_alike(data: bytes) -> None:
    check_same(data)


def test_parse_results_unchanged_by_the_scanner() -> None:
    for data in SEEDS:
        for stream in (False, True):
            assert outcome(parse_message, data, stream) == outcome(full_parse, data, stream)


VIA_ALPHABET = st.sampled_from(list("SIP/2.0UDPtcp :;=branch-z9hG4bK.159[]\"%_!~,"))
ADDR_ALPHABET = st.sampled_from(list("sip:1001@<>\" ;tag=a.b-5060,()&$?/%\\'~[]\t"))
VIAS = [b"SIP/2.0/UDP 192.168.10.5:5060;branch=z9hG4bK-5;rport",
        b"SIP/2.0/TLS a-b.c:1;received=10.0.0.1"]
ADDRS = [b'"Agent 1001" <sip:1001@192.168.10.5:5060>;tag=2040960463',
         b"sips:alice@example.com:59999;tag=x", b"Bob <sip:b;lr;x=[::1]>;q=\"a;b\""]


@SETTINGS
@given(st.text(VIA_ALPHABET, max_size=40), st.sampled_from(VIAS), st.integers(0, 60))
def test_via_validator_matches_the_regex(noise: str, seed: bytes, at: int) -> None:
    for value in (noise.encode(), seed[:at] + noise.encode() + seed[at:], seed[:at]):
        assert _scan.via_fast(value) == _scan_py.via_fast(value), value


@SETTINGS
@given(st.text(ADDR_ALPHABET, max_size=40), st.sampled_from(ADDRS), st.integers(0, 60))
def test_name_addr_and_uri_validators_match_the_regexes(noise: str, seed: bytes,
                                                        at: int) -> None:
    for value in (noise.encode(), seed[:at] + noise.encode() + seed[at:], seed[:at]):
        assert _scan.name_addr_fast(value) == _scan_py.name_addr_fast(value), value
        assert _scan.request_uri_fast(value) == _scan_py.request_uri_fast(value), value


@pytest.mark.parametrize("value", [b"sip:a@b:1", b"sip:a@b:5", b"sip:a@b:6", b"sip:a@b:65535",
                                   b"sip:a@b:59999", b"sip:a@b.", b"sip:a-@b", b"sip:b-c--d",
                                   b"sip:a@b\xc3\xa9"])
def test_uri_validator_edge_cases(value: bytes) -> None:
    assert _scan.request_uri_fast(value) == _scan_py.request_uri_fast(value)


def test_unmodified_message_serializes_as_received() -> None:
    data = FIXTURES["bye"]
    assert parse_message(data).serialize() == data


def test_list_headers_stay_on_their_received_line_until_modified() -> None:
    message = parse_message(FIXTURES["invite_sdp"])
    assert b"\r\nAllow: INVITE, INFO, PRACK," in message.serialize()
    message.headers.add("Subject", "x")
    wire = message.serialize()
    assert b"\r\nAllow: INVITE\r\nAllow: INFO\r\n" in wire
    assert wire.endswith(b"\r\nSubject: x\r\n\r\n" + message.body)


MUTATIONS: dict[str, Callable[[Headers], None]] = {
    "add": lambda h: h.add("Subject", "added"),
    "prepend": lambda h: h.prepend("Subject", "added"),
    "set": lambda h: h.set("User-Agent", "added"),
    "remove": lambda h: h.remove("User-Agent"),
    "remove_first": lambda h: h.remove_first("Max-Forwards"),
    "replace_first": lambda h: h.replace_first("Via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_every_header_mutation_shows_in_serialize(mutation: str) -> None:
    message = parse_message(FIXTURES["bye"])
    message.serialize()
    MUTATIONS[mutation](message.headers)
    wire = message.serialize()
    assert wire != FIXTURES["bye"]
    assert parse_message(wire).headers == message.headers


def test_scanned_header_lines_are_read_on_first_use() -> None:
    message = parse_message(FIXTURES["bye"])
    assert message.headers.get("CSeq") == "2 BYE"
    assert message.headers.get_all("Via") == [
        "SIP/2.0/UDP 192.168.10.5:5060;branch=z9hG4bK-524287-1---a3f5e2c1d0b9"]
    assert message.headers == full_parse(FIXTURES["bye"]).headers


def test_reading_headers_keeps_the_received_lines() -> None:
    message = parse_message(FIXTURES["bye"])
    assert message.top_via.branch == "z9hG4bK-524287-1---a3f5e2c1d0b9"
    assert message.headers.get_all("Route") and len(message.headers) == 9
    assert message.serialize() == FIXTURES["bye"]


def test_new_body_gets_its_content_length() -> None:
    message = parse_message(FIXTURES["bye"])
    message.body = b"hello"
    assert message.serialize().endswith(b"\r\nContent-Length: 5\r\n\r\nhello")


def test_start_line_changes_show_in_serialize() -> None:
    message = parse_message(FIXTURES["unauthorized_two_challenges"])
    assert message.serialize() == FIXTURES["unauthorized_two_challenges"]
    message.reason = "Go Away"  # type: ignore[union-attr]
    assert message.serialize().startswith(b"SIP/2.0 401 Go Away\r\nVia: ")
