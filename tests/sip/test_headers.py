"""Header names and structured values: name-addr, Via, CSeq, lists and parameters."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from switch.sip.errors import RemoteProtocolError
from switch.sip.headers import (
    NAME_ADDR_FAST,
    VIA_FAST,
    CSeq,
    HeaderError,
    NameAddr,
    QuotedStr,
    Via,
    canonical_name,
    format_params,
    parse_params,
    quote,
    split_list,
    unquote,
)
from switch.sip.uri import AbsoluteUri, SipUri


@pytest.mark.parametrize(("name", "canonical"), [
    ("v", "Via"), ("V", "Via"), ("i", "Call-ID"), ("m", "Contact"), ("l", "Content-Length"),
    ("f", "From"), ("t", "To"), ("k", "Supported"), ("c", "Content-Type"), ("s", "Subject"),
    ("call-id", "Call-ID"), ("CALL-ID", "Call-ID"), ("cseq", "CSeq"), ("www-authenticate",
    "WWW-Authenticate"), ("X-Custom", "X-Custom"), ("z", "z"),
])
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


@pytest.mark.parametrize(("value", "items"), [
    ("a", ["a"]),
    ("a, b ,c", ["a", "b", "c"]),
    ('"Doe, John" <sip:j@x.com>, <sip:k@y.com>', ['"Doe, John" <sip:j@x.com>', "<sip:k@y.com>"]),
    ('<sip:a,b@x.com>;p="1,2", sip:c@d', ['<sip:a,b@x.com>;p="1,2"', "sip:c@d"]),
    (r'"a \" , b" <sip:x@y>, <sip:z@w>', [r'"a \" , b" <sip:x@y>', "<sip:z@w>"]),
    ("SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b", ["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]),
    (",a,", ["", "a", ""]),
])
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items


def test_split_list_unterminated_quote() -> None:
    with pytest.raises(HeaderError, match=r"^unterminated quoted string in '\"a, b'$"):
        split_list('"a, b')


def test_quoted_strings() -> None:
    assert unquote(r'"J Rosenberg \\\""') == 'J Rosenberg \\"'
    assert quote('a "b" \\c') == r'"a \"b\" \\c"'
    assert unquote(quote('a "b" \\c')) == 'a "b" \\c'
    for bad in ['"abc', 'abc"', '"a"b"', '"abc\\"']:
        with pytest.raises(HeaderError):
            unquote(bad)


def test_params_with_lws_quotes_and_flags() -> None:
    params = parse_params(' ; tag = 1918181833n ;\tlr; +sip.instance="<urn:uuid:1>"; q=0.5')
    assert params == {"tag": "1918181833n", "lr": None, "+sip.instance": "<urn:uuid:1>",
                      "q": "0.5"}
    assert isinstance(params["+sip.instance"], QuotedStr)
    assert format_params(params) == ';tag=1918181833n;lr;+sip.instance="<urn:uuid:1>";q=0.5'


def test_quoted_token_stays_quoted() -> None:
    # RFC 3840: a quoted feature value is a string, unquoted a token; keep the form.
    assert format_params(parse_params(';+sip.device="phone"')) == ';+sip.device="phone"'


@pytest.mark.parametrize(("text", "error"), [
    ("tag=1", "expected ';' before header parameters in 'tag=1'"),
    (";tag=", "empty value for header parameter 'tag'"),
    (";=x", "bad header parameter '=x'"),
    (";", "bad header parameter ''"),
    (";a=b c", "bad header parameter 'a=b c'"),
    (';a="x', "unterminated quoted string in 'a=\"x'"),
])
def test_bad_params(text: str, error: str) -> None:
    with pytest.raises(HeaderError) as info:
        parse_params(text)
    assert str(info.value) == error


def test_name_addr_forms() -> None:
    a = NameAddr.parse('"Agent \\"1001\\"" <sip:1001@pbx.example.com;transport=tcp>;tag=x1')
    assert a.display_name == 'Agent "1001"'
    assert isinstance(a.uri, SipUri) and a.uri.params == {"transport": "tcp"}
    assert a.tag == "x1"
    assert a.serialize() == '"Agent \\"1001\\"" <sip:1001@pbx.example.com;transport=tcp>;tag=x1'

    b = NameAddr.parse("Bob  Smith<sip:bob@example.com>")
    assert b.display_name == "Bob Smith"
    assert b.serialize() == "Bob Smith <sip:bob@example.com>"

    # addr-spec: the parameters belong to the header, not the URI (§20.10).
    c = NameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam;tag=9")
    assert c.uri == SipUri("gw1.example.net", "+19725552222")
    assert c.params == {"unknownparam": None, "tag": "9"}

    d = NameAddr.parse("<urn:uuid:f81d4fae>")
    assert isinstance(d.uri, AbsoluteUri)

    e = NameAddr.parse('"" <sip:x@y>')
    assert e.display_name == ""
    assert NameAddr.parse(e.serialize()).uri == e.uri


def test_name_addr_with_tag_and_sip_uri() -> None:
    a = NameAddr.parse("<sip:a@b>")
    assert a.with_tag("t9").serialize() == "<sip:a@b>;tag=t9"
    with pytest.raises(HeaderError, match=r"^expected a SIP URI, got tel:$"):
        NameAddr.parse("<tel:+123>").sip_uri  # noqa: B018


@pytest.mark.parametrize(("text", "error"), [
    ('"Mr. J. User <sip:j.user@example.com>', "unterminated quoted string in "
     "'\"Mr. J. User <sip:j.user@example.com>'"),
    ('"Watson, Thomas" < sip:t.watson@example.org >', "whitespace inside <> in "
     "'< sip:t.watson@example.org >'"),
    ("Bell, Alexander <sip:a.g.bell@example.com>", "bad display name 'Bell, Alexander'"),
    ("sip:user@example.com?Route=%3Csip:sip.example.com%3E", "URI with '?' or ',' must be "
     "enclosed in <>: 'sip:user@example.com?Route=%3Csip:sip.example.com%3E'"),
    ('"Joe" sip:joe@example.org', "display name must be followed by <URI>"),
    ("<sip:joe@example.org", "missing '>' after URI"),
    ("<sip:joe@example.org> junk", "expected ';' before header parameters in 'junk'"),
])
def test_bad_name_addr(text: str, error: str) -> None:
    with pytest.raises(HeaderError) as info:
        NameAddr.parse(text)
    assert str(info.value) == error


def test_via_with_lws_everywhere() -> None:
    via = Via.parse("SIP  /    2.0   / udp  192.168.255.111 : 5060  ; branch=\t z9hG4bK30239"
                    " ; rport ; received=2001:db8::9:255")
    assert (via.transport, via.host, via.port) == ("UDP", "192.168.255.111", 5060)
    assert via.params == {"branch": "z9hG4bK30239", "rport": None,
                          "received": "2001:db8::9:255"}
    assert via.serialize() == ("SIP/2.0/UDP 192.168.255.111:5060;branch=z9hG4bK30239;rport;"
                               "received=2001:db8::9:255")
    assert via.sent_by == "192.168.255.111:5060"


def test_via_ipv6_sent_by() -> None:
    via = Via.parse("SIP/2.0/TLS [2001:db8::10]:5061;branch=z9hG4bK1")
    assert (via.host, via.port, via.branch) == ("[2001:db8::10]", 5061, "z9hG4bK1")
    assert via.with_params(received="192.0.2.1").serialize() == (
        "SIP/2.0/TLS [2001:db8::10]:5061;branch=z9hG4bK1;received=192.0.2.1")


@pytest.mark.parametrize("text", ["SIP/3.0/UDP a", "SIP/2.0 UDP a", "SIP/2.0/UDP",
                                  "SIP/2.0/UDP a;;", "SIP/2.0/UDP a:99999",
                                  "SIP/2.0/UDP a b", "SIP/2.0/UDP [::1"])
def test_bad_via(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse(" 0009  INVITE ") == CSeq(9, "INVITE")
    assert CSeq.parse("2147483647 BYE").serialize() == "2147483647 BYE"
    for bad, error in [("2147483648 BYE", "CSeq number out of range: 2147483648"),
                       ("1", "bad CSeq '1'"), ("x INVITE", "bad CSeq 'x INVITE'"),
                       ("1 IN VITE", "bad CSeq '1 IN VITE'")]:
        with pytest.raises(HeaderError) as info:
            CSeq.parse(bad)
        assert str(info.value) == error


# The fast validators must accept only what the full parsers accept: a value they
# let through is parsed lazily later, and must not fail then.
NAME_ADDR_ALPHABET = st.sampled_from(
    ['"', "\\", "<", ">", ";", "=", ":", "@", " ", "\t", ",", "?", "%", "[", "]", ".", "-",
     "sip:", "sips:", "tag", "a", "B", "1", "9", "65535", "99999", "example.com", "\x00",
     "é", "+", "~", "_", "/", "&", "$"])


@given(st.lists(NAME_ADDR_ALPHABET, max_size=30).map("".join))
@example('"a" <sip:b@c.d:5060;lr>;tag=1')
@example("sip:user;x=y@host;tag=1")
@example('<sip:x@y>;p="\x00"')
def test_fast_name_addr_is_a_subset_of_the_parser(text: str) -> None:
    if NAME_ADDR_FAST.fullmatch(text):
        NameAddr.parse(text)


@given(st.lists(st.sampled_from(["SIP/2.0/", "UDP", "TCP", " ", ";", "=", ":", "a", ".", "-",
                                 "1", "0", "65535", "99999", "branch", "[", "]", "\t"]),
                max_size=20).map("".join))
def test_fast_via_is_a_subset_of_the_parser(text: str) -> None:
    if VIA_FAST.fullmatch(text):
        Via.parse(text)


@given(st.text(max_size=80))
def test_name_addr_raises_only_its_errors(text: str) -> None:
    try:
        parsed = NameAddr.parse(text)
    except RemoteProtocolError:
        return
    assert NameAddr.parse(parsed.serialize()) == parsed


@given(st.lists(NAME_ADDR_ALPHABET, max_size=30).map("".join))
@example('"Agent 1001" <sip:1001@192.168.10.5:5060;lr;Transport=TCP>;tag=x;+q="a;b"')
@example("Bob  Smith <sip:b;x=1?y@host.example.com>;Tag=1")
@example('"" <sip:host>')
def test_name_addr_fast_path_equals_full_parser(text: str) -> None:
    try:
        full = NameAddr.parse_full(text)
    except RemoteProtocolError:
        full = None
    try:
        fast = NameAddr.parse(text)
    except RemoteProtocolError:
        fast = None
    assert fast == full
    if fast is not None and full is not None:
        assert fast.serialize() == full.serialize()


@given(st.lists(st.sampled_from(["SIP/2.0/", "UDP", "tcp", " ", ";", "=", ":", "a", ".", "-",
                                 "1", "0", "0060", "65535", "99999", "branch", "Rport", "\t"]),
                max_size=20).map("".join))
@example("SIP/2.0/tls a.b:0060;Branch=z9;rport")
def test_via_fast_path_equals_full_parser(text: str) -> None:
    try:
        full = Via.parse_full(text)
    except RemoteProtocolError:
        full = None
    try:
        fast = Via.parse(text)
    except RemoteProtocolError:
        fast = None
    assert fast == full
