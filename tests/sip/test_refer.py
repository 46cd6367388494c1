"""Transfer wire types: Refer-To, Replaces, Referred-By, Refer-Sub, sipfrag NOTIFY bodies."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from switch.sip.errors import LocalProtocolError, RemoteProtocolError
from switch.sip.headers import QuotedStr
from switch.sip.refer import (
    ReferError,
    ReferredBy,
    ReferTo,
    Replaces,
    notify_headers,
    parse_sipfrag,
    refer_sub_wanted,
    sipfrag,
)
from switch.sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri

# --- RFC examples ------------------------------------------------------------------

# RFC 3891 §6.1.
RFC3891_REPLACES = [
    ("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff",
     Replaces("98732@sip.example.com", "ff87ff", "r33th4x0r")),
    ("12adf2f34456gs5;to-tag=12345;from-tag=54321;early-only",
     Replaces("12adf2f34456gs5", "12345", "54321", early_only=True)),
    ("87134@171.161.34.23;to-tag=24796;from-tag=0",
     Replaces("87134@171.161.34.23", "24796", "0")),
]


@pytest.mark.parametrize(("text", "expected"), RFC3891_REPLACES)
def test_rfc3891_replaces_examples(text: str, expected: Replaces) -> None:
    assert Replaces.parse(text) == expected
    assert Replaces.parse(expected.serialize()) == expected


def test_replaces_serializes_in_canonical_order() -> None:
    replaces = Replaces.parse("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff")
    assert replaces.serialize() == "98732@sip.example.com;to-tag=ff87ff;from-tag=r33th4x0r"
    assert repr(replaces) == "Replaces('98732@sip.example.com;to-tag=ff87ff;from-tag=r33th4x0r')"


def test_replaces_tolerates_lws_and_keeps_unknown_params() -> None:
    replaces = Replaces.parse(' abc@h ; TO-TAG = 1 ;from-tag=2; x-foo="a b" ;Flag ')
    assert replaces == Replaces("abc@h", "1", "2", params={"x-foo": "a b", "flag": None})
    assert replaces.serialize() == 'abc@h;to-tag=1;from-tag=2;x-foo="a b";flag'


def test_rfc3515_refer_to_with_replaces() -> None:
    # RFC 3515 §2.1 (line-wrap removed).
    text = ("<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3B"
            "to-tag%3D12345%3Bfrom-tag%3D5FFE-3994>")
    refer_to = ReferTo.parse(text)
    assert refer_to.replaces == Replaces("12345@192.168.118.3", "12345", "5FFE-3994")
    assert refer_to.uri == parse_uri("sip:dave@denver.example.org")
    assert refer_to.target == parse_uri("sip:dave@denver.example.org")
    assert refer_to.embedded_headers == {}
    assert refer_to.method == "INVITE"
    assert refer_to.serialize() == text


def test_rfc3515_plain_examples() -> None:
    plain = ReferTo.parse("sip:alice@atlanta.example.com")
    assert plain == ReferTo(parse_uri("sip:alice@atlanta.example.com"))
    assert plain.serialize() == "<sip:alice@atlanta.example.com>"

    subscribe = ReferTo.parse("<sip:carol@cleveland.example.org;method=SUBSCRIBE>")
    assert subscribe.method == "SUBSCRIBE"
    assert subscribe.replaces is None

    web = ReferTo.parse("http://www.ietf.org")
    assert web.uri == AbsoluteUri("http", "//www.ietf.org")
    assert web.target == web.uri and web.embedded_headers == {} and web.method == "INVITE"


def test_other_embedded_headers_stay_accessible() -> None:
    # RFC 3515 §2.1's Accept-Contact example, with the '=' its erratum restores.
    text = ("<sip:bob@biloxi.example.net?Accept-Contact=sip:bobsdesk.biloxi.example.net"
            "&Call-ID=55432%40alicepc.atlanta.example.com>")
    refer_to = ReferTo.parse(text)
    assert refer_to.replaces is None
    assert refer_to.embedded_headers == {
        "Accept-Contact": "sip:bobsdesk.biloxi.example.net",
        "Call-ID": "55432@alicepc.atlanta.example.com",
    }
    assert refer_to.target == parse_uri("sip:bob@biloxi.example.net")
    assert refer_to.serialize() == text


def test_replaces_next_to_other_headers_any_case() -> None:
    refer_to = ReferTo.parse('"Carol Desk" <sips:carol@chicago.example.com;transport=tls'
                             "?Subject=hi%20there&replaces=090459%3Bto-tag%3D7553452"
                             "%3Bfrom-tag%3D31431%3Bearly-only>;x=1")
    assert refer_to.replaces == Replaces("090459", "7553452", "31431", early_only=True)
    assert refer_to.embedded_headers == {"Subject": "hi there"}
    assert refer_to.display_name == "Carol Desk"
    assert refer_to.params == {"x": "1"}
    assert isinstance(refer_to.target, SipUri) and refer_to.target.headers == {}
    assert refer_to.serialize() == (
        "Carol Desk <sips:carol@chicago.example.com;transport=tls?Subject=hi%20there"
        "&Replaces=090459%3Bto-tag%3D7553452%3Bfrom-tag%3D31431%3Bearly-only>;x=1")


def test_as_uri_header_percent_encodes() -> None:
    replaces = Replaces("12345@192.168.118.3", "12345", "5FFE-3994")
    assert replaces.as_uri_header() == (
        "Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994")
    built = ReferTo.parse(f"<sip:dave@denver.example.org?{replaces.as_uri_header()}>")
    assert built == ReferTo(parse_uri("sip:dave@denver.example.org"), replaces)


def test_tel_refer_to() -> None:
    refer_to = ReferTo.parse("<tel:+8610012345678>")
    assert refer_to.uri == TelUri("+8610012345678")
    assert refer_to.target == refer_to.uri


# --- matching a dialog ---------------------------------------------------------------

def test_replaces_matches_dialog_from_the_receivers_side() -> None:
    replaces = Replaces("c1", to_tag="mine", from_tag="theirs")
    assert replaces.matches("c1", "mine", "theirs")
    assert not replaces.matches("c1", "theirs", "mine")
    assert not replaces.matches("c2", "mine", "theirs")
    assert not replaces.matches("c1", "mine", None)


def test_zero_tag_matches_null_tag() -> None:
    # RFC 3891 §6.1: "0" stands for the missing tag of an RFC 2543 peer.
    replaces = Replaces("c1", to_tag="mine", from_tag="0")
    assert replaces.matches("c1", "mine", None)
    assert replaces.matches("c1", "mine", "0")
    assert not replaces.matches("c1", "mine", "x")


# --- errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("abc;to-tag=1", "Replaces needs exactly one from-tag, got 0"),
    ("abc;from-tag=1", "Replaces needs exactly one to-tag, got 0"),
    ("abc;to-tag=1;from-tag=2;to-tag=3", "Replaces needs exactly one to-tag, got 2"),
    ("abc;to-tag;from-tag=2", "Replaces to-tag must be a token"),
    ('abc;to-tag="1";from-tag=2', "Replaces to-tag must be a token"),
    ("abc;to-tag=1;from-tag=2;early-only=yes", "Replaces early-only takes no value"),
    (";to-tag=1;from-tag=2", "bad Call-ID in Replaces: ''"),
    ("a b;to-tag=1;from-tag=2", "bad Call-ID in Replaces: 'a b'"),
    ("a@b@c;to-tag=1;from-tag=2", "bad Call-ID in Replaces: 'a@b@c'"),
    ("abc;to-tag=1;from-tag=2;=x", "bad parameter in Replaces: ';=x'"),
])
def test_bad_replaces(text: str, message: str) -> None:
    with pytest.raises(ReferError) as info:
        Replaces.parse(text)
    assert str(info.value) == message
    assert info.value.status == 400


@pytest.mark.parametrize(("text", "message"), [
    ("", "bad Refer-To: not a URI: ''"),
    ("sip:bob@example.com?Replaces=abc", "bad Refer-To: URI with '?' or ',' must be "
     "enclosed in <>: 'sip:bob@example.com?Replaces=abc'"),
    ("<sip:bob@example.com?Replaces=abc>", "Replaces needs exactly one to-tag, got 0"),
    ("<sip:bob@example.com?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&REPLACES=b>",
     "Refer-To URI carries Replaces more than once"),
    ("<sip:bob@example.com?Replaces=a%zz>", "bad Refer-To: bad escape in URI header 'a%zz'"),
])
def test_bad_refer_to_is_a_400(text: str, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        ReferTo.parse(text)
    assert isinstance(info.value, ReferError)
    assert str(info.value) == message
    assert info.value.status == 400


def test_building_bad_values_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError, match="bad to-tag for Replaces"):
        Replaces("c", "a b", "x")
    with pytest.raises(LocalProtocolError, match="bad Call-ID for Replaces"):
        Replaces("", "a", "b")
    with pytest.raises(LocalProtocolError, match="not in the URI"):
        ReferTo(parse_uri("sip:a@b?Replaces=x"))
    with pytest.raises(LocalProtocolError, match="tel: URI cannot carry Replaces"):
        ReferTo(parse_uri("tel:+1234"), Replaces("c", "a", "b"))


# --- Referred-By and Refer-Sub ---------------------------------------------------------

def test_referred_by_rfc3892_example() -> None:
    # RFC 3892 §3.
    text = '<sip:referrer@referrer.example>;cid="20398823.2UWQFN309shb3@referrer.example"'
    referred_by = ReferredBy.parse(text)
    assert referred_by.uri == parse_uri("sip:referrer@referrer.example")
    assert referred_by.cid == "20398823.2UWQFN309shb3@referrer.example"
    assert referred_by.serialize() == text
    assert ReferredBy.parse("Agent 7 <sip:7@cc.example>") == ReferredBy(
        parse_uri("sip:7@cc.example"), "Agent 7")


def test_referred_by_errors() -> None:
    with pytest.raises(ReferError, match=r"^Referred-By cid must be a quoted msg-id$"):
        ReferredBy.parse("<sip:a@b>;cid=x")
    with pytest.raises(ReferError, match=r"^bad Referred-By: "):
        ReferredBy.parse("<sip:a@b")


@pytest.mark.parametrize(("value", "wanted"), [
    (None, True), ("true", True), ("false", False), (" FALSE ", False),
    ("false;x=1", False),
])
def test_refer_sub(value: str | None, wanted: bool) -> None:
    assert refer_sub_wanted(value) is wanted


def test_bad_refer_sub() -> None:
    with pytest.raises(ReferError, match=r"^Refer-Sub must be true or false, got 'no'$"):
        refer_sub_wanted("no")


# --- sipfrag and NOTIFY headers ----------------------------------------------------------

@pytest.mark.parametrize(("status", "reason", "body"), [
    (100, None, b"SIP/2.0 100 Trying\r\n"),
    (200, None, b"SIP/2.0 200 OK\r\n"),
    (180, None, b"SIP/2.0 180 Ringing\r\n"),
    (503, None, b"SIP/2.0 503 Service Unavailable\r\n"),
    (603, "Declined", b"SIP/2.0 603 Declined\r\n"),
    (486, "\u5fd9", "SIP/2.0 486 \u5fd9\r\n".encode()),
])
def test_sipfrag_bodies(status: int, reason: str | None, body: bytes) -> None:
    assert sipfrag(status, reason) == body
    assert parse_sipfrag(body) == status


@pytest.mark.parametrize(("body", "status"), [
    (b"SIP/2.0 200 OK", 200),  # no final CRLF
    (b"SIP/2.0 180 Ringing\n", 180),
    (b"SIP/2.0 603 Declined\r\nContent-Length: 0\r\n\r\n", 603),
    (b"SIP/2.0 202 \r\n", 202),
])
def test_parse_sipfrag_leniency(body: bytes, status: int) -> None:
    assert parse_sipfrag(body) == status


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty sipfrag body"),
    (b"SIP/2.0 2000 OK\r\n", "sipfrag body does not start with a SIP status line: "
     "b'SIP/2.0 2000 OK\\r'"),
    (b"SIP/2.0 099 Odd\r\n", "sipfrag body does not start with a SIP status line: "
     "b'SIP/2.0 099 Odd\\r'"),
    (b"INVITE sip:a@b SIP/2.0\r\n", "sipfrag body does not start with a SIP status line: "
     "b'INVITE sip:a@b SIP/2.0\\r'"),
    (b"SIP/2.0 200\r\n", "sipfrag body does not start with a SIP status line: "
     "b'SIP/2.0 200\\r'"),
])
def test_parse_sipfrag_garbage(body: bytes, message: str) -> None:
    with pytest.raises(ReferError) as info:
        parse_sipfrag(body)
    assert str(info.value) == message


def test_sipfrag_refuses_bad_input() -> None:
    with pytest.raises(LocalProtocolError, match=r"^status 99 is not a SIP status$"):
        sipfrag(99)
    with pytest.raises(LocalProtocolError, match="line break"):
        sipfrag(200, "OK\r\nX: y")


def test_notify_headers() -> None:
    assert notify_headers(93809824, terminated=False) == [
        ("Event", "refer;id=93809824"),
        ("Subscription-State", "active;expires=60"),
        ("Content-Type", "message/sipfrag;version=2.0"),
    ]
    assert notify_headers(2, terminated=True, expires_s=30) == [
        ("Event", "refer;id=2"),
        ("Subscription-State", "terminated;reason=noresource"),
        ("Content-Type", "message/sipfrag;version=2.0"),
    ]
    assert notify_headers(7, terminated=False, expires_s=120)[1] == (
        "Subscription-State", "active;expires=120")
    with pytest.raises(LocalProtocolError):
        notify_headers(2**31, terminated=True)
    with pytest.raises(LocalProtocolError):
        notify_headers(1, terminated=False, expires_s=-1)


# --- Hypothesis: round trips, and only our error on junk -------------------------------

_TOKEN = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,12}", fullmatch=True)
_WORD = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]{1,12}", fullmatch=True)
_CALL_IDS = st.one_of(_WORD, st.builds(lambda a, b: f"{a}@{b}", _WORD, _WORD))
_RESERVED_NAMES = {"to-tag", "from-tag", "early-only"}
_EXTRA_PARAMS = st.dictionaries(
    _TOKEN.map(str.lower).filter(lambda n: n not in _RESERVED_NAMES),
    st.none() | _TOKEN | st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                 max_size=8).map(QuotedStr),
    max_size=2)
REPLACES = st.builds(Replaces, _CALL_IDS, _TOKEN, _TOKEN, st.booleans(), _EXTRA_PARAMS)

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_HOSTS = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=10)
_URI_PARAMS = st.dictionaries(_TOKEN.map(str.lower), st.none() | _TOKEN, max_size=2)
_URI_HEADERS = st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True).filter(
        lambda n: n.lower() != "replaces"),
    _TEXT, max_size=2)
_SIP_URIS = st.builds(
    SipUri, _HOSTS, st.none() | _TEXT.filter(bool), st.none(),
    st.none() | st.integers(1, 65535), _URI_PARAMS, _URI_HEADERS, st.booleans())
_DISPLAY = st.none() | st.from_regex(r"[A-Za-z0-9]{1,8}( [A-Za-z0-9]{1,8}){0,2}",
                                     fullmatch=True) | st.sampled_from(
    ['Smith, John', 'Say "hi"', "back\\slash", "\u73ed\u957f"])
_HEADER_PARAMS = st.dictionaries(_TOKEN.map(str.lower).filter(lambda n: n != "tag"),
                                 st.none() | _TOKEN, max_size=2)
REFER_TOS = st.one_of(
    st.builds(ReferTo, _SIP_URIS, st.none() | REPLACES, _DISPLAY, _HEADER_PARAMS),
    st.builds(ReferTo, st.just(parse_uri("tel:+8610012345678")), st.none(), _DISPLAY,
              _HEADER_PARAMS),
)


@given(REPLACES)
def test_replaces_round_trip(replaces: Replaces) -> None:
    assert Replaces.parse(replaces.serialize()) == replaces


@given(REFER_TOS)
@example(ReferTo(SipUri("h", headers={"a": "@;=&?%"}),
                 Replaces("x@y", "1", "2", early_only=True)))
def test_refer_to_round_trip(refer_to: ReferTo) -> None:
    text = refer_to.serialize()
    assert ReferTo.parse(text) == refer_to
    if refer_to.replaces is not None:
        assert refer_to.replaces.as_uri_header() in text


_JUNK = st.text(max_size=60)
# Junk behind a plausible prefix, so the fuzzing reaches the Replaces and URI parsers.
_PREFIXED_JUNK = st.one_of(
    _JUNK,
    _JUNK.map(lambda s: f"<sip:bob@example.com?Replaces={s}>"),
    _JUNK.map(lambda s: f"<sip:bob@example.com?{s}"),
    _JUNK.map(lambda s: f"c@h;to-tag=1;from-tag=2{s}"),
)


@given(_PREFIXED_JUNK)
@example("<sip:a@b?Replaces=%00>")
@example("<sip:a@b?replaces=c%3Bto-tag%3D%22")
def test_refer_to_raises_only_refer_error(text: str) -> None:
    with contextlib.suppress(ReferError):
        ReferTo.parse(text)


@given(_PREFIXED_JUNK)
@example('c;to-tag=1;from-tag=2;x="unterminated')
def test_replaces_raises_only_refer_error(text: str) -> None:
    with contextlib.suppress(ReferError):
        Replaces.parse(text)


@given(st.binary(max_size=40))
def test_parse_sipfrag_raises_only_refer_error(body: bytes) -> None:
    try:
        status = parse_sipfrag(body)
    except ReferError:
        return
    assert 100 <= status <= 699


@given(st.integers(100, 699), st.text(st.characters(codec="utf-8", exclude_characters="\r\n")))
def test_sipfrag_round_trip(status: int, reason: str) -> None:
    assert parse_sipfrag(sipfrag(status, reason)) == status
