"""SIP, SIPS and tel URIs: parsing, escaping, IPv6, and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from switch.sip.uri import AbsoluteUri, SipUri, TelUri, UriError, parse_uri, parse_uri_full


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_full_sip_uri() -> None:
    uri = sip("sips:alice:secret@atlanta.com:5061;transport=tcp;lr;Maddr=239.255.255.1"
              "?subject=project%20x&priority=urgent")
    assert uri.secure and uri.scheme == "sips"
    assert (uri.user, uri.password, uri.host, uri.port) == ("alice", "secret", "atlanta.com",
                                                            5061)
    assert uri.params == {"transport": "tcp", "lr": None, "maddr": "239.255.255.1"}
    assert uri.headers == {"subject": "project x", "priority": "urgent"}
    assert uri.transport == "tcp"
    assert uri.serialize() == ("sips:alice:secret@atlanta.com:5061;transport=tcp;lr;"
                               "maddr=239.255.255.1?subject=project%20x&priority=urgent")


def test_defaults() -> None:
    uri = sip("sip:example.com")
    assert (uri.user, uri.port, uri.params, uri.headers) == (None, None, {}, {})
    assert uri.transport == "udp"
    assert sip("sips:example.com").transport == "tls"
    assert uri.hostport == "example.com"


def test_user_may_hold_reserved_characters() -> None:
    # RFC 4475 §3.1.1.9: the ';' belongs to the user part.
    uri = sip("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.serialize() == "sip:user;par=u%40example.net@example.com"


def test_escapes_decode_once_and_reencode() -> None:
    uri = sip("sip:%61lice@example.com;n%61me=v%61lue%25%34%31")
    assert uri.user == "alice"
    assert uri.params == {"name": "value%41"}
    assert uri.serialize() == "sip:alice@example.com;name=value%2541"
    assert parse_uri(uri.serialize()) == uri


def test_non_utf8_escape_round_trips() -> None:
    uri = sip("sip:%E9t%C3%A9@example.com")
    assert uri.user == "\udce9t\u00e9"
    assert uri.serialize() == "sip:%E9t%C3%A9@example.com"


def test_escaped_nul() -> None:
    assert sip("sip:null-%00-null@example.com").user == "null-\x00-null"


@pytest.mark.parametrize(("text", "host", "port"), [
    ("sip:[2001:db8::10]", "[2001:db8::10]", None),
    ("sip:alice@[2001:db8::10]:5070;transport=tcp", "[2001:db8::10]", 5070),
    ("sip:[::ffff:192.0.2.1]:5060", "[::ffff:192.0.2.1]", 5060),
    ("sip:192.0.2.4:65535", "192.0.2.4", 65535),
    ("sip:host.example.com.", "host.example.com.", None),
])
def test_hosts(text: str, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.host, uri.port) == (host, port)
    assert uri.serialize() == text


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123"
    assert uri.params == {"phone-context": "example.com"}
    assert uri.serialize() == "tel:+1-201-555-0123;phone-context=example.com"


@pytest.mark.parametrize("text", ["nobodyKnowsThisScheme:totallyopaquecontent",
                                  "soap.beep://192.0.2.103:3002", "urn:uuid:f81d4fae-7dec"])
def test_other_schemes_are_opaque(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    assert uri.serialize().lower() == text.lower()


@pytest.mark.parametrize(("text", "error"), [
    ("<sip:user@example.com>", "not a URI: '<sip:user@example.com>'"),
    ("sip:user@example.com; lr", "invalid character in URI parameter ' lr'"),
    ("sip:user@exa mple.com", "bad host 'exa mple.com'"),
    ("sip:@example.com", "empty user part in SIP URI"),
    ("sip:us%zzer@example.com", "bad escape in URI user 'us%zzer'"),
    ("sip:user@example.com:70000", "bad port '70000'"),
    ("sip:user@example.com:", "bad port ''"),
    ("sip:[2001:db8::g]", "bad IPv6 reference '[2001:db8::g]'"),
    ("sip:[fe80::1%eth0]", "bad IPv6 reference '[fe80::1%eth0]'"),
    ("sip:[2001:db8::1", "bad IPv6 reference '[2001:db8::1'"),
    ("sip:a@b@example.com", "bad host 'b@example.com'"),
    ("sip:example.com;;lr", "empty URI parameter"),
    ("sip:example.com;=x", "empty URI parameter name"),
    ("sip:example.com?subject", "bad URI header 'subject'"),
    ("sip:-bad-.example.com", "bad host '-bad-.example.com'"),
    ("tel:", "bad telephone number ''"),
    ("tel:+1 555", "bad telephone number '+1 555'"),
    ("mailto:", "empty URI after scheme 'mailto'"),
    ("http://x y", "invalid character in URI 'http://x y'"),
    ("1sip:x", "not a URI: '1sip:x'"),
])
def test_bad_uris_exact_errors(text: str, error: str) -> None:
    with pytest.raises(UriError) as info:
        parse_uri(text)
    assert str(info.value) == error
    assert info.value.status == 400


# RFC 3261 §19.1.4: the RFC's own examples.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    # RFC 5118 §4.4 spirit: IPv6 addresses compare as addresses.
    ("sip:[2001:db8:0:0::1]", "sip:[2001:DB8::1]"),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:a@atlanta.com", "sip:alice:b@atlanta.com"),
    ("sip:example.com;lr", "sip:example.com;maddr=x"),
    ("sip:example.com;transport", "sip:example.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris(a: str, b: str) -> None:
    assert sip(a).matches(sip(b))
    assert sip(b).matches(sip(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_different_uris(a: str, b: str) -> None:
    assert not sip(a).matches(sip(b))
    assert not sip(b).matches(sip(a))


def test_equivalence_is_not_transitive() -> None:
    # §19.1.4: both match sip:carol@chicago.com, but not each other.
    on, off = sip("sip:carol@chicago.com;security=on"), sip("sip:carol@chicago.com;security=off")
    plain = sip("sip:carol@chicago.com")
    assert on.matches(plain) and plain.matches(off) and not on.matches(off)


def test_with_params_and_without_headers() -> None:
    uri = sip("sip:a@b.com;lr?x=y").with_params(transport="tcp", lr=None)
    assert uri.serialize() == "sip:a@b.com;lr;transport=tcp?x=y"
    assert uri.without_headers().serialize() == "sip:a@b.com;lr;transport=tcp"


def test_repr_is_one_line() -> None:
    assert repr(sip("sip:a@b.com")) == "SipUri('sip:a@b.com')"


# Any text survives escape -> serialize -> parse in every component.
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
HOSTS = st.sampled_from(["example.com", "192.0.2.1", "[2001:db8::1]", "a-b.c-d.example.", "x"])


@given(user=st.none() | TEXT.filter(bool), password=st.none() | TEXT, host=HOSTS,
       port=st.none() | st.integers(0, 65535),
       params=st.dictionaries(TEXT.filter(bool).map(str.lower), st.none() | TEXT.filter(bool),
                              max_size=3),
       headers=st.dictionaries(TEXT.filter(bool), TEXT, max_size=3), secure=st.booleans())
def test_serialize_parse_round_trip(user: str | None, password: str | None, host: str,
                                    port: int | None, params: dict[str, str | None],
                                    headers: dict[str, str], secure: bool) -> None:
    if user is None:
        password = None
    uri = SipUri(host, user, password, port, params, headers, secure)
    parsed = parse_uri(uri.serialize())
    assert parsed == uri
    assert isinstance(parsed, SipUri) and parsed.matches(uri)


@given(st.text(max_size=60))
def test_parse_uri_raises_only_uri_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except UriError:
        return
    assert parse_uri(uri.serialize()) == uri


URI_ALPHABET = st.sampled_from(["sip:", "sips:", "SIP:", "a", "Z", "1", "0060", "65535", "99999",
                                ".", "-", "@", ":", ";", "=", "?", "&", "%41", "%", "[", "]",
                                "::1", "lr", "transport=TCP", "/", "+", ",", " "])


@given(st.lists(URI_ALPHABET, max_size=16).map("".join))
@example("sip:user;x=1?y@host.example.com:0060;Lr;Transport=TCP")
def test_fast_path_equals_full_parser(text: str) -> None:
    try:
        full = parse_uri_full(text)
    except UriError:
        full = None
    try:
        fast = parse_uri(text)
    except UriError:
        fast = None
    assert fast == full
