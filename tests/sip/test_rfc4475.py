"""RFC 4475 torture tests at parser level.

Every well-formed message parses, and re-parsing its serialization gives an equal
message; every malformed one raises ParseError with the status the RFC expects, and
where the RFC expects an answer, build_error_response can route one back. Where the
RFC's expectation is about what a server then does (416, 420, 483, 501 ...), the
parser accepts the message and these tests assert the detail the server will use.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from switch.sip.framing import StreamFramer
from switch.sip.message import (
    ParseError,
    Request,
    Response,
    SipMessage,
    build_error_response,
    parse_message,
)
from switch.sip.uri import AbsoluteUri, SipUri

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads(
    (FIXTURES / "expected.toml").read_text("utf-8"))

# Malformed per the RFC, but it lets a liberal element accept them (`may_accept`);
# we accept these and record the choice here. Date is never used by the switch.
ACCEPTED_LIBERALLY = {"baddate"}


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.dat").read_bytes()


def names(predicate: Any) -> list[str]:
    return [name for name, case in EXPECTED.items() if predicate(case)]


def parses(case: dict[str, Any]) -> bool:
    return bool(case["valid"]) or case["name"] in ACCEPTED_LIBERALLY


def test_every_fixture_has_an_expectation() -> None:
    stems = {path.stem for path in FIXTURES.glob("*.dat")}
    assert stems == set(EXPECTED)
    assert len(stems) == 49


@pytest.mark.parametrize("name", names(parses))
def test_valid_message_parses_and_round_trips(name: str) -> None:
    case = EXPECTED[name]
    message = parse_message(load(name))
    assert isinstance(message, Request if case["kind"] == "request" else Response)
    again = parse_message(message.serialize())
    assert again == message
    assert again.serialize() == message.serialize()
    if "content_length" in case:
        assert len(message.body) == case["content_length"]


@pytest.mark.parametrize("name", names(lambda c: not parses(c)))
def test_invalid_message_raises_expected_status(name: str) -> None:
    case = EXPECTED[name]
    with pytest.raises(ParseError) as info:
        parse_message(load(name))
    error = info.value
    allowed = {case.get("response", 400), *case.get("acceptable_responses", [])}
    assert error.status in allowed
    if case["kind"] == "response":
        # Nothing answers a response: it is dropped.
        assert error.raw_headers is None
    elif "response" in case:
        answer = build_error_response(error.raw_headers or [], error.status, to_tag="t1")
        assert answer is not None, f"{name}: no routable error response"
        assert answer.status == error.status
        assert answer.serialize().startswith(f"SIP/2.0 {error.status} ".encode())
        # Routable: the top Via parses (the echoed From/To may be as broken as sent).
        assert answer.top_via.host


def test_stream_framing_matches_datagram_parsing() -> None:
    """Every valid message not tied to UDP frames the same over a stream, fed one
    byte at a time."""
    for name in names(parses):
        data = load(name)
        if EXPECTED[name].get("transport") == "udp":
            continue  # no Content-Length (inv2543) or trailing noise (dblreq)
        one_shot = parse_message(data)
        framer = StreamFramer()
        got: list[SipMessage] = []
        for i in range(len(data)):
            got.extend(framer.feed(data[i : i + 1]))
        assert got == [one_shot], name
        assert framer.buffered == 0


# --- details the parser must get right -------------------------------------------


def request(name: str) -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


def test_wsinv_whitespace_folding_and_compact_forms() -> None:
    case = EXPECTED["wsinv"]
    msg = request("wsinv")
    assert msg.method == case["method"]
    assert msg.uri.serialize() == case["request_uri"]
    assert msg.call_id == case["call_id"]
    assert (msg.cseq.seq, msg.cseq.method) == (case["cseq"], case["cseq_method"])
    assert msg.max_forwards == case["max_forwards"]
    assert len(msg.vias) == case["via_count"]
    assert msg.headers.get("Subject") == case["subject"]
    assert msg.headers.get("unknownheaderwithunusualvalue") == case["unknown_header_value"]
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.to.tag == "1918181833n"
    assert [v.branch for v in msg.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert msg.vias[1].transport == "TCP"
    assert msg.contacts[0].display_name == 'Quoted string ""'
    assert msg.contacts[0].params == {"newparam": "newvalue", "secondparam": None,
                                      "q": "0.33"}


def test_intmeth_unusual_characters() -> None:
    case = EXPECTED["intmeth"]
    msg = request("intmeth")
    assert msg.method == case["method"]
    assert msg.cseq.method == case["cseq_method"]
    assert msg.call_id == case["call_id"]
    assert msg.max_forwards == case["max_forwards"]
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    # Server: unknown method -> 501 with Allow (a proxy forwards or answers 404).


def test_esc01_escapes_decode_once() -> None:
    case = EXPECTED["esc01"]
    msg = request("esc01")
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "sips:user@example.com"
    assert uri.host == "example.net"
    assert msg.to.sip_uri.user == case["to_user_unescaped"]
    assert msg.from_.sip_uri.user == case["from_user_unescaped"]
    contact = msg.contacts[0].sip_uri
    assert contact.params == {"lr": None, "name": case["contact_param_name_unescaped"]}


def test_escnull_keeps_the_nul() -> None:
    case = EXPECTED["escnull"]
    msg = request("escnull")
    assert msg.to.sip_uri.user == case["to_user_unescaped"]
    assert len(msg.contacts) == case["contact_count"]
    assert msg.contacts[0].sip_uri.user != msg.contacts[1].sip_uri.user


def test_esc02_percent_is_not_an_escape_in_tokens() -> None:
    case = EXPECTED["esc02"]
    msg = request("esc02")
    assert msg.method == case["method"] == msg.cseq.method
    assert len(msg.contacts) == case["contact_count"]
    assert msg.headers.get(case["unknown_header_name"]) is not None
    # Server: RE%47IST%45R is an unknown method -> 501 at a UAS.


def test_lwsdisp_display_name_without_space() -> None:
    msg = request("lwsdisp")
    assert msg.from_.display_name == EXPECTED["lwsdisp"]["from_display_name"]
    assert msg.from_.uri.serialize() == EXPECTED["lwsdisp"]["from_uri"]


def test_longreq_long_values() -> None:
    msg = request("longreq")
    assert len(msg.vias) == EXPECTED["longreq"]["via_count"]
    assert msg.call_id == EXPECTED["longreq"]["call_id"]


def test_dblreq_ignores_trailing_datagram_octets() -> None:
    msg = request("dblreq")
    assert msg.method == "REGISTER"
    assert msg.body == b""


def test_semiuri_semicolon_belongs_to_user() -> None:
    case = EXPECTED["semiuri"]
    uri = request("semiuri").uri
    assert isinstance(uri, SipUri)
    assert uri.user == case["request_uri_user_unescaped"]
    assert uri.host == case["request_uri_host"]
    assert uri.params == {}


def test_transports_all_parse() -> None:
    msg = request("transports")
    assert [v.transport for v in msg.vias] == EXPECTED["transports"]["via_transports"]


def test_mpart01_binary_body_framed_by_content_length() -> None:
    msg = request("mpart01")
    assert len(msg.body) == EXPECTED["mpart01"]["content_length"]
    assert b"\x00" in msg.body
    assert msg.body.count(b"--" + EXPECTED["mpart01"]["boundary"].encode()) == 3


@pytest.mark.parametrize("name", ["unreason", "noreason"])
def test_reason_phrases(name: str) -> None:
    message = parse_message(load(name))
    assert isinstance(message, Response)
    assert message.status == EXPECTED[name]["status"]
    assert message.reason == EXPECTED[name]["reason_phrase"]


def test_badbranch_parses_with_bare_cookie() -> None:
    # Server: may answer 400 statelessly or fall back to RFC 2543 matching.
    assert request("badbranch").top_via.branch == EXPECTED["badbranch"]["branch"]


@pytest.mark.parametrize("name", ["unkscm", "novelsc"])
def test_unknown_request_uri_scheme_parses_as_absolute_uri(name: str) -> None:
    # The parser accepts it; the server answers 416 Unsupported URI Scheme.
    uri = request(name).uri
    assert isinstance(uri, AbsoluteUri)
    assert uri.serialize().lower() == EXPECTED[name]["request_uri"].lower()


def test_unksm2_non_sip_uris_in_headers() -> None:
    # Server: a registrar answers 400 (To must be a SIP or SIPS AOR).
    msg = request("unksm2")
    assert isinstance(msg.to.uri, AbsoluteUri)
    assert msg.to.uri.serialize() == EXPECTED["unksm2"]["to_uri"]
    assert msg.from_.uri.serialize() == EXPECTED["unksm2"]["from_uri"]
    assert msg.contacts[0].uri.serialize() == EXPECTED["unksm2"]["contact_uri"]


def test_bext01_require_values_for_420() -> None:
    msg = request("bext01")
    assert msg.headers.get_all("Require") == EXPECTED["bext01"]["require"]
    assert msg.headers.get_all("Proxy-Require") == EXPECTED["bext01"]["proxy_require"]


def test_invut_content_type_for_415() -> None:
    msg = request("invut")
    assert msg.content_type == EXPECTED["invut"]["content_type"]
    assert len(msg.body) == EXPECTED["invut"]["content_length"]


def test_regaut01_unknown_authorization_scheme_kept() -> None:
    # Server: a registrar challenges with 401 in a scheme it knows.
    value = request("regaut01").headers.get("Authorization")
    assert value is not None and value.startswith("NoOneKnowsThisScheme")


def test_zeromf_max_forwards_zero_for_483() -> None:
    assert request("zeromf").max_forwards == 0


def test_cparam01_contact_param_is_a_header_param() -> None:
    contact = request("cparam01").contacts[0]
    assert contact.uri.serialize() == EXPECTED["cparam01"]["contact_uri"]
    assert EXPECTED["cparam01"]["contact_param"] in contact.params


def test_cparam02_contact_param_is_a_uri_param() -> None:
    contact = request("cparam02").contacts[0]
    assert contact.uri.serialize() == EXPECTED["cparam02"]["contact_uri"]


def test_regescrt_escaped_route_in_contact() -> None:
    contact = request("regescrt").contacts[0]
    assert contact.sip_uri.headers == {"Route": "<sip:sip.example.com>"}
    assert contact.uri.serialize() == EXPECTED["regescrt"]["contact_uri"]


def test_sdp01_accept_for_406() -> None:
    assert request("sdp01").headers.get("Accept") == EXPECTED["sdp01"]["accept"]


def test_bcast_response_parses_for_the_drop_decision() -> None:
    message = parse_message(load("bcast"))
    assert isinstance(message, Response)
    assert len(message.vias) == EXPECTED["bcast"]["via_count"]
    assert message.vias[1].host == "255.255.255.255"


def test_inv2543_body_is_rest_of_datagram() -> None:
    msg = request("inv2543")
    assert msg.headers.get("Content-Length") is None
    assert len(msg.body) == EXPECTED["inv2543"]["body_length"]
    assert msg.top_via.branch is None
    assert msg.from_.tag is None
    assert msg.max_forwards is None


def test_inv2543_over_a_stream_needs_content_length() -> None:
    with pytest.raises(ParseError, match=r"^missing Content-Length on a stream transport$"):
        StreamFramer().feed(load("inv2543"))


def test_baddate_accepted_with_its_date() -> None:
    assert request("baddate").headers.get("Date") == EXPECTED["baddate"]["date"]


# --- exact errors for the malformed ones ------------------------------------------

ERRORS = {
    "badinv01": "bad Via header: bad header parameter ''",
    "clerr": "Content-Length 9999 exceeds the 154 bytes received",
    "ncl": "bad Content-Length '-999'",
    "scalar02": "bad CSeq header: bad CSeq '36893488147419103232 REGISTER'",
    "scalarlg": "bad CSeq header: bad CSeq '9292394834772304023312 OPTIONS'",
    "ltgtruri": "bad Request-URI: not a URI: '<sip:user@example.com>'",
    "lwsruri": "bad request line 'INVITE sip:user@example.com; lr SIP/2.0'",
    "lwsstart": "bad request line 'INVITE  sip:user@example.com  SIP/2.0'",
    "trws": "bad request line 'OPTIONS sip:remote-target@example.com SIP/2.0  '",
    "escruri": "bad Request-URI: URI headers are not allowed here (§19.1.1)",
    "badvers": "unsupported SIP version 'SIP/7.0'",
    "mismatch01": "CSeq method INVITE does not match OPTIONS",
    "mismatch02": "CSeq method INVITE does not match NEWMETHOD",
    "bigcode": "bad status line 'SIP/2.0 4294967301 better not break the receiver'",
    "insuf": "missing To header",
    "quotbal": "bad To header: unterminated quoted string in "
               "'\"Mr. J. User <sip:j.user@example.com>'",
    "badaspec": "bad To header: whitespace inside <> in '< sip:t.watson@example.org >'",
    "regbadct": "bad Contact header: URI with '?' or ',' must be enclosed in <>: "
                "'sip:user@example.com?Route=%3Csip:sip.example.com%3E'",
    "baddn": "truncated message: no empty line after the header section",
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_exact_error_messages(name: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load(name))
    assert str(info.value) == ERRORS[name]


def test_multi01_names_a_repeated_header() -> None:
    with pytest.raises(ParseError, match=r"^more than one "):
        parse_message(load("multi01"))


def test_mcl01_two_content_lengths() -> None:
    with pytest.raises(ParseError, match=r"^more than one Content-Length header$"):
        parse_message(load("mcl01"))


def test_badinv01_answer_routes_on_the_top_via_sent_by() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("badinv01"))
    answer = build_error_response(info.value.raw_headers or [], 400)
    assert answer is not None
    assert answer.headers.get_all("Via") == ["SIP/2.0/UDP 192.0.2.15"]
    assert answer.headers.get("Call-ID") == "badinv01.0ha0isndaksdjasdf3234nas"


def test_badvers_505_routes_back_through_a_sip_7_via() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("badvers"))
    answer = build_error_response(info.value.raw_headers or [], info.value.status)
    assert answer is not None and answer.status == 505
    assert answer.headers.get_all("Via") == ["SIP/2.0/UDP c.example.com"]
