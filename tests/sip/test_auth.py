"""Digest authentication: RFC vectors, header grammar, server checks, client answers."""

from __future__ import annotations

import contextlib
import hmac
import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.sip.auth import (
    AuthHeaderError,
    AuthOutcome,
    AuthResult,
    Credentials,
    DigestAuthenticator,
    DigestChallenge,
    DigestResponse,
    build_authorization,
    build_challenge,
    compute_ha1,
    compute_response,
    parse_authorization,
    parse_challenge,
    select_challenge,
)
from switch.sip.errors import LocalProtocolError, RemoteProtocolError

# RFC 7616 §3.9.1, with the header folded over lines as printed in the RFC.
RFC7616_CHALLENGE = (
    "Digest\r\n"
    '       realm="http-auth@example.org",\r\n'
    '       qop="auth, auth-int",\r\n'
    "       algorithm={algorithm},\r\n"
    '       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\r\n'
    '       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_RESPONSES = {
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
}
RFC7616_AUTHORIZATION = (
    "Digest username=\"Mufasa\",\r\n"
    '       realm="http-auth@example.org",\r\n'
    '       uri="/dir/index.html",\r\n'
    "       algorithm={algorithm},\r\n"
    '       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\r\n'
    "       nc=00000001,\r\n"
    f'       cnonce="{RFC7616_CNONCE}",\r\n'
    "       qop=auth,\r\n"
    '       response="{response}",\r\n'
    '       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)

# RFC 2617 §3.5.
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

REALM = "call.example"
SECRET = b"k" * 32
URI = "sip:call.example"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_rfc7616_example_client_response(algorithm: str) -> None:
    value = build_authorization(
        RFC7616_CHALLENGE.format(algorithm=algorithm),
        "GET",
        "/dir/index.html",
        "Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
        nc=1,
    )
    expected = RFC7616_AUTHORIZATION.format(
        algorithm=algorithm, response=RFC7616_RESPONSES[algorithm]
    )
    assert parse_authorization(value) == parse_authorization(expected)
    assert parse_authorization(value).response == RFC7616_RESPONSES[algorithm]


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_rfc7616_example_response_from_stored_ha1(algorithm: str) -> None:
    creds = parse_authorization(
        RFC7616_AUTHORIZATION.format(algorithm=algorithm, response=RFC7616_RESPONSES[algorithm])
    )
    stored = Credentials.from_password("Mufasa", "http-auth@example.org", "Circle of Life")
    assert creds.algorithm == algorithm
    assert creds.nonce_count == 1
    assert compute_response(
        ha1=stored.ha1_for(algorithm),
        algorithm=algorithm,
        method="GET",
        uri=creds.uri,
        nonce=creds.nonce,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
    ) == RFC7616_RESPONSES[algorithm]


def test_rfc2617_example() -> None:
    value = build_authorization(
        RFC2617_CHALLENGE,
        "GET",
        "/dir/index.html",
        "Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
        nc=1,
    )
    assert parse_authorization(value) == parse_authorization(RFC2617_AUTHORIZATION)
    assert parse_authorization(value).response == "6629fae49393a05397450978507c4ef1"


def test_rfc2069_example_without_qop() -> None:
    # RFC 2069 §2.4 prints the password as "Circle Of Life", but its response value
    # was computed over "CircleOfLife"; the response digits are what peers check.
    value = build_authorization(
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
        "GET",
        "/dir/index.html",
        "Mufasa",
        password="CircleOfLife",
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="1949323746fe6a43ef61f9606e7febea", algorithm=MD5, '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )


def test_compute_ha1_known_values() -> None:
    assert compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5") == (
        "939e7578ed9e3c518a452acee763bce9"
    )
    # The "-sess" variants store the same HA1 as their base algorithm.
    assert compute_ha1("a", "r", "p", "SHA-256-sess") == compute_ha1("a", "r", "p", "SHA-256")
    with pytest.raises(LocalProtocolError, match="unsupported digest algorithm 'SHA-1'"):
        compute_ha1("a", "r", "p", "SHA-1")


# --------------------------------------------------------------------------- parsing


def test_parse_is_case_insensitive_and_tolerates_odd_whitespace() -> None:
    value = (
        '  dIgEsT\tUserName = "alice" ,REALM="call.example",\r\n\t nonce = "n1"'
        ' ,  URI="sip:call.example"\t,response="ABCDEF0123",Algorithm=sha-256,'
        "QOP=auth,NC=0000000a,cnonce=c1  "
    )
    assert parse_authorization(value) == DigestResponse(
        username="alice",
        realm="call.example",
        nonce="n1",
        uri="sip:call.example",
        response="ABCDEF0123",
        algorithm="SHA-256",
        qop="auth",
        nc="0000000a",
        cnonce="c1",
    )
    assert parse_authorization(value).nonce_count == 10


def test_parse_quoted_strings_with_escapes() -> None:
    value = (
        r'Digest username="Mu\"fa\\sa \a", realm="a,b=c", nonce="x", uri="sip:u@h;p=\"q\"", '
        r'response="00", algorithm="MD5", qop="auth", nc="00000001", cnonce=""'
    )
    creds = parse_authorization(value)
    assert creds.username == 'Mu"fa\\sa a'
    assert creds.realm == "a,b=c"
    assert creds.uri == 'sip:u@h;p="q"'
    assert (creds.algorithm, creds.qop, creds.nc, creds.cnonce) == ("MD5", "auth", "00000001", "")


def test_parse_defaults_algorithm_to_md5_and_keeps_unknown_ones() -> None:
    base = 'Digest username="a", realm="r", nonce="n", uri="u", response="00"'
    assert parse_authorization(base).algorithm == "MD5"
    assert parse_authorization(base + ", algorithm=md5-SESS").algorithm == "MD5-sess"
    assert parse_authorization(base + ", algorithm=SHA-512-256").algorithm == "SHA-512-256"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "authentication scheme '' is not Digest"),
        ('Basic realm="x"', "authentication scheme 'Basic' is not Digest"),
        ("Digest", "Digest has no parameters"),
        ("Digest   ", "Digest has no parameters"),
        ('Digest username="a",', "expected a parameter name at offset 20"),
        ('Digest username "a"', "expected '=' after parameter 'username'"),
        ("Digest username=", "parameter 'username' has no value"),
        ('Digest username="a', "unterminated quoted string in parameter 'username'"),
        ('Digest username="a\\', "unterminated quoted string in parameter 'username'"),
        ('Digest username="a\rb"', "control character in parameter 'username'"),
        ('Digest username="a" realm="r"', "expected ',' after parameter 'username'"),
        ('Digest username="a", USERNAME="b"', "duplicate parameter 'username'"),
        ('Digest username="a", realm="r", nonce="n", uri="u"', "missing parameter 'response'"),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="zz"',
            "parameter 'response' is not hexadecimal",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth',
            "missing parameter 'nc'",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth, nc=1',
            "missing parameter 'cnonce'",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth,'
            ' nc=1, cnonce="c"',
            "parameter 'nc' is not 8 hex digits: '1'",
        ),
    ],
)
def test_parse_errors_are_exact_and_answer_400(value: str, message: str) -> None:
    with pytest.raises(AuthHeaderError) as info:
        parse_authorization(value)
    assert str(info.value) == message
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.status == 400


def test_every_truncation_of_a_valid_value_is_an_auth_header_error() -> None:
    # response comes last, so no proper prefix holds every required parameter.
    value = (
        'Digest username="alice", realm="call.example", nonce="n", uri="sip:x", qop=auth, '
        'nc=00000001, cnonce="c", response="0123456789abcdef"'
    )
    parse_authorization(value)
    for end in range(len(value) - 1):
        with pytest.raises(AuthHeaderError):
            parse_authorization(value[:end])


_header_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f") | st.just("\t"),
)


# Pieces of the grammar, so generated values get past the scheme and into the params.
_FRAGMENTS = [
    "Digest", " ", "\t", "\r\n ", "\n", ",", "=", '"', "\\", "username", "realm",
    "nonce", "uri", "response", "qop", "nc", "cnonce", "algorithm", "stale", "auth",
    "00000001", "SHA-256", "MD5-sess", "ab12", "\x00", "\udcff", "\ud800", "é",
]
_header_soup = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=3)).map("".join)


@given(st.text() | _header_soup)
def test_parsers_raise_only_their_own_error(value: str) -> None:
    for candidate in (value, "Digest " + value):
        with contextlib.suppress(AuthHeaderError):
            parse_authorization(candidate)
        with contextlib.suppress(AuthHeaderError):
            parse_challenge(candidate)


@given(
    username=_header_text,
    realm=_header_text,
    nonce=_header_text,
    uri=_header_text,
    response=st.text("0123456789abcdefABCDEF", min_size=1),
    algorithm=st.sampled_from(["MD5", "SHA-256", "MD5-sess", "SHA-256-sess", "X-Other"]),
    counted=st.one_of(
        st.none(),
        st.tuples(st.sampled_from(["auth", "auth-int"]), st.integers(1, 0xFFFFFFFF), _header_text),
    ),
    opaque=st.none() | _header_text,
)
def test_digest_response_round_trips(
    username: str,
    realm: str,
    nonce: str,
    uri: str,
    response: str,
    algorithm: str,
    counted: tuple[str, int, str] | None,
    opaque: str | None,
) -> None:
    qop, nc, cnonce = (None, None, None) if counted is None else counted
    creds = DigestResponse(
        username,
        realm,
        nonce,
        uri,
        response,
        algorithm,
        qop,
        None if nc is None else f"{nc:08x}",
        cnonce,
        opaque,
    )
    assert DigestResponse.parse(creds.serialize()) == creds


@given(
    realm=_header_text,
    nonce=_header_text,
    qop=st.lists(st.sampled_from(["auth", "auth-int", "auth-conf"]), unique=True).map(tuple),
    opaque=st.none() | _header_text,
    stale=st.booleans(),
)
def test_digest_challenge_round_trips(
    realm: str, nonce: str, qop: tuple[str, ...], opaque: str | None, stale: bool
) -> None:
    challenge = DigestChallenge(realm, nonce, "SHA-256", qop, opaque, stale)
    assert DigestChallenge.parse(challenge.serialize()) == challenge


def test_build_challenge_exact_text() -> None:
    assert build_challenge('r"1', "n\\1", algorithm="SHA-256", opaque="o", stale=True) == (
        'Digest realm="r\\"1", nonce="n\\\\1", opaque="o", algorithm=SHA-256, qop="auth", '
        "stale=true"
    )
    with pytest.raises(LocalProtocolError, match="cannot quote a line break"):
        build_challenge("a\r\nb", "n")


# --------------------------------------------------------------------------- server


def counting_random() -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(n, "big")


ALICE = Credentials.from_password("alice", REALM, "correct horse")
USERS = {ALICE.username: ALICE}


def make_auth(**kwargs: object) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, SECRET, random_bytes=counting_random(), **kwargs)  # type: ignore[arg-type]


def answer(
    challenge: str,
    *,
    username: str = "alice",
    password: str = "correct horse",
    nc: int = 1,
    method: str = "REGISTER",
    body: bytes = b"",
) -> str:
    return build_authorization(
        challenge, method, URI, username, password=password, cnonce="c0ffee", nc=nc, body=body
    )


def verify(auth: DigestAuthenticator, value: str, now: float, **kwargs: bytes) -> AuthResult:
    return auth.verify("REGISTER", value, USERS.get, now, **kwargs)


def test_challenge_lists_sha256_first_then_md5_with_one_nonce() -> None:
    auth = make_auth()
    values = auth.challenge(now=100.0)
    nonce = parse_challenge(values[0]).nonce
    assert values == [
        f'Digest realm="call.example", nonce="{nonce}", opaque="{auth.opaque}", '
        'algorithm=SHA-256, qop="auth"',
        f'Digest realm="call.example", nonce="{nonce}", opaque="{auth.opaque}", '
        'algorithm=MD5, qop="auth"',
    ]
    stale = auth.challenge(now=100.0, stale=True)
    assert all(parse_challenge(v).stale for v in stale)
    assert parse_challenge(stale[0]).nonce != nonce  # fresh salt each time


@pytest.mark.parametrize("index", [0, 1], ids=["SHA-256", "MD5"])
def test_correct_password_is_accepted_with_either_algorithm(index: int) -> None:
    auth = make_auth()
    challenge = auth.challenge(now=0.0)[index]
    assert verify(auth, answer(challenge), now=1.0) == AuthResult(AuthOutcome.OK, "alice", "ok")


def test_credentials_hold_only_ha1() -> None:
    # A user store that never saw the password still authenticates.
    stored = Credentials("alice", REALM, ALICE.ha1_md5, ALICE.ha1_sha256)
    auth = make_auth()
    for index in (0, 1):
        challenge = auth.challenge(now=0.0)[index]
        ha1 = stored.ha1_for(parse_challenge(challenge).algorithm)
        value = build_authorization(challenge, "REGISTER", URI, "alice", ha1=ha1, cnonce="c")
        assert auth.verify("REGISTER", value, {"alice": stored}.get, 1.0).ok


def test_wrong_password_fails() -> None:
    auth = make_auth()
    value = answer(auth.challenge(now=0.0)[0], password="wrong")
    assert verify(auth, value, now=1.0) == AuthResult(
        AuthOutcome.FAILED, "alice", "wrong credentials"
    )


def test_unknown_user_looks_exactly_like_a_wrong_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    comparisons: list[bytes] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        comparisons.append(a)
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth = make_auth()
    challenge = auth.challenge(now=0.0)[0]
    mallory = Credentials.from_password("mallory", REALM, "secret")
    value = answer(challenge, username="mallory", password="guess")

    comparisons.clear()
    unknown = auth.verify("REGISTER", value, lambda name: None, 1.0)
    n_unknown = len(comparisons)
    comparisons.clear()
    wrong = auth.verify("REGISTER", value, {"mallory": mallory}.get, 1.0)

    assert unknown == wrong == AuthResult(AuthOutcome.FAILED, "mallory", "wrong credentials")
    # The digest of an unknown user is computed and compared like any other.
    assert n_unknown == len(comparisons) == 2  # nonce MAC, then response
    assert len(comparisons[-1]) == 64  # a SHA-256 digest in hex


def test_expired_nonce_with_right_password_is_stale() -> None:
    auth = make_auth(nonce_ttl_s=300.0)
    value = answer(auth.challenge(now=1000.0)[0])
    assert verify(auth, value, now=1300.0).ok
    value = answer(auth.challenge(now=1000.0)[0])
    assert verify(auth, value, now=1300.5) == AuthResult(
        AuthOutcome.STALE, "alice", "nonce expired"
    )
    # Only a client that knows the password learns the nonce was merely old.
    wrong = answer(auth.challenge(now=1000.0)[0], password="wrong")
    assert verify(auth, wrong, now=1300.5).outcome is AuthOutcome.FAILED


def test_nonce_from_the_future_is_stale() -> None:
    # A monotonic clock restarts with the process; its old nonces may look "future".
    auth = make_auth()
    value = answer(auth.challenge(now=5000.0)[0])
    assert verify(auth, value, now=10.0).outcome is AuthOutcome.STALE


def test_tampered_nonce_fails() -> None:
    auth = make_auth()
    challenge = parse_challenge(auth.challenge(now=0.0)[0])
    for nonce in (
        challenge.nonce[:-2] + ("AA" if challenge.nonce[-2:] != "AA" else "BA"),
        challenge.nonce[:-1],
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        DigestAuthenticator(REALM, b"other secret").make_nonce(0.0),
        DigestAuthenticator("other.realm", SECRET).make_nonce(0.0),
    ):
        forged = build_challenge(REALM, nonce, algorithm="SHA-256", opaque=auth.opaque)
        assert verify(auth, answer(forged), now=1.0) == AuthResult(
            AuthOutcome.FAILED, "alice", "nonce not issued by us"
        )


def test_nonce_count_must_increase() -> None:
    auth = make_auth()
    challenge = auth.challenge(now=0.0)[0]
    outcomes = [verify(auth, answer(challenge, nc=nc), now=1.0) for nc in (1, 1, 2, 5, 3, 5, 6)]
    assert [r.outcome.value for r in outcomes] == [
        "ok", "stale", "ok", "ok", "stale", "stale", "ok"
    ]
    assert outcomes[1].reason == "nonce count replayed"


def test_exact_replay_is_rejected() -> None:
    auth = make_auth()
    value = answer(auth.challenge(now=0.0)[0])
    assert verify(auth, value, now=1.0).ok
    assert verify(auth, value, now=2.0).outcome is AuthOutcome.STALE


def test_wrong_realm_fails() -> None:
    auth = make_auth()
    nonce = parse_challenge(auth.challenge(now=0.0)[0]).nonce
    other = build_challenge("elsewhere", nonce, algorithm="SHA-256", opaque=auth.opaque)
    assert verify(auth, answer(other), now=1.0) == AuthResult(
        AuthOutcome.FAILED, "alice", "realm 'elsewhere' is not ours"
    )


def test_opaque_must_be_echoed_unchanged_when_present() -> None:
    auth = make_auth()
    nonce = parse_challenge(auth.challenge(now=0.0)[0]).nonce
    changed = build_challenge(REALM, nonce, algorithm="MD5", opaque="x")
    assert verify(auth, answer(changed), now=1.0).reason == "opaque mismatch"
    dropped = build_challenge(REALM, nonce, algorithm="MD5")
    assert verify(auth, answer(dropped), now=1.0).ok


def test_algorithm_not_offered_fails() -> None:
    auth = make_auth(algorithms=("SHA-256",))
    nonce = parse_challenge(auth.challenge(now=0.0)[0]).nonce
    md5 = build_challenge(REALM, nonce, algorithm="MD5", opaque=auth.opaque)
    assert verify(auth, answer(md5), now=1.0) == AuthResult(
        AuthOutcome.FAILED, "alice", "algorithm 'MD5' not offered"
    )


def test_rfc2069_response_accepted_for_md5_once() -> None:
    auth = make_auth()
    nonce = parse_challenge(auth.challenge(now=0.0)[0]).nonce
    old_phone = build_challenge(REALM, nonce, algorithm="MD5", qop=())
    value = answer(old_phone)
    assert "qop" not in value and "nc=" not in value
    assert verify(auth, value, now=1.0).ok
    assert verify(auth, value, now=2.0).reason == "nonce count replayed"
    # nc is not covered by an RFC 2069 digest, so adding one must not reopen the nonce.
    assert verify(auth, value + ", nc=00000009", now=3.0).reason == "nonce count replayed"


def test_response_without_qop_is_refused_for_sha256_or_when_disabled() -> None:
    auth = make_auth()
    nonce = parse_challenge(auth.challenge(now=0.0)[0]).nonce
    sha = build_challenge(REALM, nonce, algorithm="SHA-256", qop=())
    assert verify(auth, answer(sha), now=1.0).reason == "qop missing"
    strict = make_auth(allow_rfc2069=False)
    nonce = parse_challenge(strict.challenge(now=0.0)[0]).nonce
    md5 = build_challenge(REALM, nonce, algorithm="MD5", qop=())
    assert verify(strict, answer(md5), now=1.0).reason == "qop missing"


def test_auth_int_covers_the_body() -> None:
    auth = make_auth()
    nonce = parse_challenge(auth.challenge(now=0.0)[0]).nonce
    challenge = build_challenge(REALM, nonce, algorithm="SHA-256", qop=("auth-int",))
    value = answer(challenge, body=b"v=0\r\n")
    assert "qop=auth-int" in value
    assert verify(auth, value, now=1.0, body=b"v=0\r\n").ok
    value = answer(challenge, body=b"v=0\r\n", nc=2)
    assert verify(auth, value, now=1.0, body=b"v=1\r\n").reason == "wrong credentials"


def test_unknown_qop_fails() -> None:
    auth = make_auth()
    value = answer(auth.challenge(now=0.0)[0]).replace("qop=auth", "qop=auth-conf")
    assert verify(auth, value, now=1.0).reason == "qop 'auth-conf' not supported"


def test_method_is_covered_by_the_digest() -> None:
    auth = make_auth()
    value = answer(auth.challenge(now=0.0)[0], method="INVITE")
    assert auth.verify("INVITE", value, USERS.get, 1.0).ok
    value = answer(auth.challenge(now=0.0)[0], method="INVITE")
    assert auth.verify("BYE", value, USERS.get, 1.0).outcome is AuthOutcome.FAILED


def test_uppercase_response_digits_are_accepted() -> None:
    auth = make_auth()
    creds = parse_authorization(answer(auth.challenge(now=0.0)[0]))
    upper = DigestResponse(**{**creds.__dict__, "response": creds.response.upper()})
    assert verify(auth, upper.serialize(), now=1.0).ok


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess"])
def test_session_algorithms(algorithm: str) -> None:
    auth = make_auth(algorithms=(algorithm,))
    challenge = auth.challenge(now=0.0)[0]
    assert f"algorithm={algorithm}," in challenge
    value = answer(challenge)
    assert verify(auth, value, now=1.0).ok
    plain = algorithm.removesuffix("-sess")
    assert parse_authorization(value).response != parse_authorization(
        answer(challenge.replace(algorithm, plain))
    ).response


def test_forgotten_nonces_are_stale_not_reusable() -> None:
    auth = make_auth(max_tracked_nonces=2)
    oldest, first, second, third = (auth.challenge(now=float(t))[0] for t in range(4))
    for challenge in (first, second, third):
        assert verify(auth, answer(challenge), now=10.0).ok
    # first was evicted: its nc history is gone, so no nc can be trusted with it,
    # nor with any nonce issued before it that we never saw.
    assert verify(auth, answer(first, nc=2), now=11.0).reason == "nonce forgotten"
    assert verify(auth, answer(oldest), now=11.0).reason == "nonce forgotten"
    assert verify(auth, answer(third, nc=2), now=11.0).ok
    assert verify(auth, answer(auth.challenge(now=12.0)[0]), now=13.0).ok


def test_unreadable_authorization_raises_for_a_400() -> None:
    with pytest.raises(AuthHeaderError, match="missing parameter 'uri'"):
        verify(make_auth(), 'Digest username="a", realm="r", nonce="n"', now=0.0)


def test_constructor_rejects_unknown_algorithms_and_short_randomness() -> None:
    with pytest.raises(LocalProtocolError, match="unsupported digest algorithm 'SHA-1'"):
        DigestAuthenticator(REALM, SECRET, algorithms=("SHA-1",))
    with pytest.raises(LocalProtocolError, match="random_bytes returned 4 bytes"):
        DigestAuthenticator(REALM, SECRET, random_bytes=lambda n: b"1234").challenge(0.0)


# --------------------------------------------------------------------------- client


def test_select_challenge_takes_the_first_supported() -> None:
    values = [
        'Basic realm="x"',
        'Digest realm="r", nonce="1", algorithm=SHA-512-256, qop="auth"',
        "Digest realm=",
        'Digest realm="r", nonce="2", algorithm=MD5, qop="auth"',
        'Digest realm="r", nonce="3", algorithm=SHA-256, qop="auth"',
    ]
    assert select_challenge(values).nonce == "2"
    assert select_challenge(values, supported=("SHA-256",)).nonce == "3"
    with pytest.raises(AuthHeaderError, match="no Digest challenge with a supported algorithm"):
        select_challenge(values[:3])


def test_build_authorization_with_ha1_equals_with_password() -> None:
    challenge = RFC7616_CHALLENGE.format(algorithm="SHA-256")
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256")
    args = (challenge, "GET", "/dir/index.html", "Mufasa")
    with_ha1 = build_authorization(*args, ha1=ha1, cnonce=RFC7616_CNONCE)
    with_password = build_authorization(*args, password="Circle of Life", cnonce=RFC7616_CNONCE)
    assert with_ha1 == with_password
    assert f'response="{RFC7616_RESPONSES["SHA-256"]}"' in with_ha1


def _client_errors() -> Iterator[tuple[Callable[[], str], type[Exception], str]]:
    challenge = 'Digest realm="r", nonce="n", qop="auth"'
    yield (
        lambda: build_authorization(challenge, "GET", "/", "u", cnonce="c"),
        LocalProtocolError,
        "give exactly one of password and ha1",
    )
    yield (
        lambda: build_authorization(challenge, "GET", "/", "u", password="p", ha1="h"),
        LocalProtocolError,
        "give exactly one of password and ha1",
    )
    yield (
        lambda: build_authorization(challenge, "GET", "/", "u", password="p"),
        LocalProtocolError,
        "this challenge needs a cnonce",
    )
    yield (
        lambda: build_authorization(challenge, "GET", "/", "u", password="p", cnonce="c", nc=0),
        LocalProtocolError,
        "nonce count out of range: 0",
    )
    yield (
        lambda: build_authorization(
            'Digest realm="r", nonce="n", qop="auth-conf"', "GET", "/", "u", password="p"
        ),
        AuthHeaderError,
        "no supported qop in 'auth-conf'",
    )
    yield (
        lambda: build_authorization(
            'Digest realm="r", nonce="n", algorithm=SHA-512-256', "GET", "/", "u", password="p"
        ),
        AuthHeaderError,
        "unsupported digest algorithm 'SHA-512-256'",
    )


@pytest.mark.parametrize(("call", "error", "message"), list(_client_errors()))
def test_build_authorization_errors(
    call: Callable[[], str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message
