"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760), sans-I/O.

Works on header *values* (the text after "Authorization:" / "WWW-Authenticate:"), so
it needs no message object. The server side keeps no per-challenge state: a nonce
carries its own issue time and an HMAC over it, so any nonce we minted can be checked
without a table. The only state is a bounded LRU of nonce -> highest nonce-count seen,
filled only after a correct digest, which is what rejects replays.

Stored credentials are HA1 values, never passwords.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from switch.sip.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "AuthHeaderError",
    "AuthOutcome",
    "AuthResult",
    "Credentials",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestResponse",
    "build_authorization",
    "build_challenge",
    "compute_ha1",
    "compute_response",
    "parse_authorization",
    "parse_challenge",
    "select_challenge",
]


class AuthHeaderError(RemoteProtocolError):
    """An Authorization / WWW-Authenticate value that does not follow the grammar."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=400)


# RFC 7616 §3.2 / RFC 8760 §2: algorithm name -> hashlib name of its hash.
_HASH_OF_ALGORITHM = {
    "MD5": "md5",
    "MD5-sess": "md5",
    "SHA-256": "sha256",
    "SHA-256-sess": "sha256",
}
# Algorithm tokens compare case-insensitively; we always emit the registered spelling.
_CANONICAL_ALGORITHM = {name.lower(): name for name in _HASH_OF_ALGORITHM}
_SUPPORTED_QOPS = ("auth", "auth-int")  # preference order for our own requests
_NC_MAX = 0xFFFFFFFF  # RFC 7616 §3.4: nc is 8 hex digits

_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)  # RFC 3261 §25.1 token
_WSP = " \t"
_FOLD = re.compile(r"\r?\n(?=[ \t])")  # RFC 3261 §7.3.1: CRLF + WSP is one SP
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")


def _encode(text: str) -> bytes:
    # surrogateescape gives back the original octets when the message parser decoded
    # invalid UTF-8 with the same handler, so digests are computed over what was sent.
    return text.encode("utf-8", "surrogateescape")


def _hash_name(algorithm: str) -> str:
    try:
        return _HASH_OF_ALGORITHM[algorithm]
    except KeyError:
        raise LocalProtocolError(f"unsupported digest algorithm {algorithm!r}") from None


def _h(hash_name: str, data: bytes) -> str:
    return hashlib.new(hash_name, data).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """H(username:realm:password), the value we store (RFC 7616 §3.4.2).

    The "-sess" variants store the same value as their base algorithm; the session
    step needs nonce and cnonce and happens in `compute_response`.
    """
    return _h(_hash_name(algorithm), _encode(f"{username}:{realm}:{password}"))


def compute_response(
    *,
    ha1: str,
    algorithm: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes = b"",
) -> str:
    """The request-digest of RFC 7616 §3.4.1 (qop given) or RFC 2069 (qop None)."""
    hash_name = _hash_name(algorithm)
    if algorithm.endswith("-sess"):
        if cnonce is None:
            raise LocalProtocolError(f"{algorithm} needs a cnonce")
        ha1 = _h(hash_name, _encode(f"{ha1}:{nonce}:{cnonce}"))
    a2 = f"{method}:{uri}"
    if qop is not None and qop.lower() == "auth-int":
        a2 += ":" + _h(hash_name, body)
    ha2 = _h(hash_name, _encode(a2))
    if qop is None:
        return _h(hash_name, _encode(f"{ha1}:{nonce}:{ha2}"))
    return _h(hash_name, _encode(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))


@dataclass(frozen=True)
class Credentials:
    """What the user store keeps for one account: HA1 per hash, never the password."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str

    @classmethod
    def from_password(cls, username: str, realm: str, password: str) -> Credentials:
        return cls(
            username,
            realm,
            compute_ha1(username, realm, password, "MD5"),
            compute_ha1(username, realm, password, "SHA-256"),
        )

    def ha1_for(self, algorithm: str) -> str:
        return self.ha1_sha256 if _hash_name(algorithm) == "sha256" else self.ha1_md5


# ---------------------------------------------------------------------------
# Header value grammar (RFC 3261 §25.1 credentials / challenge, RFC 7616 §3.3-3.4)


def _skip_wsp(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WSP:
        pos += 1
    return pos


def _scan_token(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _TOKEN_CHARS:
        pos += 1
    return pos


def _scan_quoted(text: str, pos: int, name: str) -> tuple[str, int]:
    """`text[pos]` is the opening quote; return the unescaped value and the end."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\\" and pos + 1 < len(text):
            ch = text[pos + 1]
            pos += 1
        if ch in "\r\n" or ch == "\x7f" or (ch < " " and ch != "\t"):
            raise AuthHeaderError(f"control character in parameter {name!r}")
        out.append(ch)
        pos += 1
    raise AuthHeaderError(f"unterminated quoted string in parameter {name!r}")


def _parse_digest(value: str) -> dict[str, str]:
    """'Digest a=b, c="d"' -> {"a": "b", "c": "d"}; names lower-cased."""
    text = _FOLD.sub("", value)
    pos = _skip_wsp(text, 0)
    end = _scan_token(text, pos)
    scheme = text[pos:end]
    if scheme.lower() != "digest":
        raise AuthHeaderError(f"authentication scheme {scheme!r} is not Digest")
    pos = _skip_wsp(text, end)
    if pos == end or pos == len(text):
        raise AuthHeaderError("Digest has no parameters")
    params: dict[str, str] = {}
    while True:
        end = _scan_token(text, pos)
        if end == pos:
            raise AuthHeaderError(f"expected a parameter name at offset {pos}")
        name = text[pos:end].lower()
        pos = _skip_wsp(text, end)
        if pos == len(text) or text[pos] != "=":
            raise AuthHeaderError(f"expected '=' after parameter {name!r}")
        pos = _skip_wsp(text, pos + 1)
        if pos < len(text) and text[pos] == '"':
            param_value, pos = _scan_quoted(text, pos, name)
        else:
            end = _scan_token(text, pos)
            if end == pos:
                raise AuthHeaderError(f"parameter {name!r} has no value")
            param_value, pos = text[pos:end], end
        if name in params:
            raise AuthHeaderError(f"duplicate parameter {name!r}")
        try:
            _encode(param_value)
        except UnicodeEncodeError:
            raise AuthHeaderError(f"parameter {name!r} is not UTF-8") from None
        params[name] = param_value
        pos = _skip_wsp(text, pos)
        if pos == len(text):
            return params
        if text[pos] != ",":
            raise AuthHeaderError(f"expected ',' after parameter {name!r}")
        pos = _skip_wsp(text, pos + 1)


def _require(params: dict[str, str], name: str) -> str:
    try:
        return params[name]
    except KeyError:
        raise AuthHeaderError(f"missing parameter {name!r}") from None


def _canonical_algorithm(params: dict[str, str]) -> str:
    # Absent means MD5 (RFC 3261 §22.4); unknown names are kept so the caller can
    # answer with a fresh challenge instead of a 400.
    raw = params.get("algorithm", "MD5")
    return _CANONICAL_ALGORITHM.get(raw.lower(), raw)


def _quote(text: str) -> str:
    if "\r" in text or "\n" in text:
        raise LocalProtocolError(f"cannot quote a line break: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class DigestResponse:
    """The credentials of an Authorization / Proxy-Authorization value."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    # qop and nc are kept as sent: the digest covers their exact spelling.
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestResponse:
        params = _parse_digest(value)
        fields = {
            name: _require(params, name)
            for name in ("username", "realm", "nonce", "uri", "response")
        }
        if not _HEX_RE.fullmatch(fields["response"]):
            raise AuthHeaderError("parameter 'response' is not hexadecimal")
        qop = params.get("qop")
        nc = params.get("nc")
        cnonce = params.get("cnonce")
        if qop is not None:
            nc = _require(params, "nc")
            cnonce = _require(params, "cnonce")
        if nc is not None and not _NC_RE.fullmatch(nc):
            raise AuthHeaderError(f"parameter 'nc' is not 8 hex digits: {nc!r}")
        return cls(
            **fields,
            algorithm=_canonical_algorithm(params),
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=params.get("opaque"),
        )

    @property
    def nonce_count(self) -> int | None:
        return None if self.nc is None else int(self.nc, 16)

    def serialize(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)

    def __repr__(self) -> str:
        return f"<DigestResponse {self.username}@{self.realm} {self.algorithm} nc={self.nc}>"


@dataclass(frozen=True)
class DigestChallenge:
    """One WWW-Authenticate / Proxy-Authenticate Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()  # empty: RFC 2069 style, no qop offered
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        params = _parse_digest(value)
        qop = tuple(
            option.strip().lower()
            for option in params.get("qop", "").split(",")
            if option.strip()
        )
        return cls(
            realm=_require(params, "realm"),
            nonce=_require(params, "nonce"),
            algorithm=_canonical_algorithm(params),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )

    def serialize(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)

    def __repr__(self) -> str:
        return f"<DigestChallenge {self.realm} {self.algorithm} stale={self.stale}>"


def parse_authorization(value: str) -> DigestResponse:
    return DigestResponse.parse(value)


def parse_challenge(value: str) -> DigestChallenge:
    return DigestChallenge.parse(value)


def build_challenge(
    realm: str,
    nonce: str,
    *,
    algorithm: str = "MD5",
    opaque: str | None = None,
    qop: tuple[str, ...] = ("auth",),
    stale: bool = False,
) -> str:
    """A WWW-Authenticate value."""
    return DigestChallenge(realm, nonce, algorithm, qop, opaque, stale).serialize()


# ---------------------------------------------------------------------------
# Client side: answering a challenge (our own registrations to gateways, tests)


def select_challenge(
    values: Iterable[str], supported: tuple[str, ...] = ("SHA-256", "MD5")
) -> DigestChallenge:
    """The first challenge we can answer: RFC 8760 §2.4 lists the preferred first."""
    for value in values:
        try:
            challenge = DigestChallenge.parse(value)
        except AuthHeaderError:
            continue  # another scheme, or a header we cannot read: try the next one
        if challenge.algorithm in supported:
            return challenge
    raise AuthHeaderError("no Digest challenge with a supported algorithm")


def build_authorization(
    challenge_value: str,
    method: str,
    uri: str,
    username: str,
    *,
    password: str | None = None,
    ha1: str | None = None,
    cnonce: str = "",
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """An Authorization value answering `challenge_value` (give password or HA1)."""
    challenge = DigestChallenge.parse(challenge_value)
    if challenge.algorithm not in _HASH_OF_ALGORITHM:
        raise AuthHeaderError(f"unsupported digest algorithm {challenge.algorithm!r}")
    if (password is None) == (ha1 is None):
        raise LocalProtocolError("give exactly one of password and ha1")
    if ha1 is None:
        assert password is not None
        ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    qop: str | None = None
    if challenge.qop:
        qop = next((q for q in _SUPPORTED_QOPS if q in challenge.qop), None)
        if qop is None:
            raise AuthHeaderError(f"no supported qop in {','.join(challenge.qop)!r}")
    uses_cnonce = qop is not None or challenge.algorithm.endswith("-sess")
    if uses_cnonce and not cnonce:
        raise LocalProtocolError("this challenge needs a cnonce")
    if not 1 <= nc <= _NC_MAX:
        raise LocalProtocolError(f"nonce count out of range: {nc}")
    nc_value = f"{nc:08x}" if qop is not None else None
    cnonce_value = cnonce if uses_cnonce else None
    response = compute_response(
        ha1=ha1,
        algorithm=challenge.algorithm,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_value,
        cnonce=cnonce_value,
        body=body,
    )
    return DigestResponse(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_value,
        cnonce=cnonce_value,
        opaque=challenge.opaque,
    ).serialize()


# ---------------------------------------------------------------------------
# Server side


class AuthOutcome(enum.Enum):
    OK = "ok"
    STALE = "stale"  # right password, old nonce: challenge again with stale=true
    FAILED = "failed"  # challenge again without stale; counts toward a ban


@dataclass(frozen=True)
class AuthResult:
    outcome: AuthOutcome
    username: str
    reason: str  # for logs only; never sent to the peer

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK

    def __repr__(self) -> str:
        return f"<AuthResult {self.outcome.value} {self.username!r}: {self.reason}>"


_TIMESTAMP = struct.Struct(">d")
_SALT_LEN = 8
_MAC_LEN = 16
_NONCE_LEN = _TIMESTAMP.size + _SALT_LEN + _MAC_LEN
_NONCE_CHARS = -(-_NONCE_LEN * 4 // 3)  # unpadded base64 length
_NONCE_RE = re.compile(rf"[A-Za-z0-9_-]{{{_NONCE_CHARS}}}")


class DigestAuthenticator:
    """Challenges and checks Digest credentials for one realm.

    `now` is monotonic seconds. `random_bytes` salts nonces; pass a fake in tests.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        nonce_ttl_s: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_tracked_nonces: int = 10_000,
        allow_rfc2069: bool = True,
    ) -> None:
        for algorithm in algorithms:
            _hash_name(algorithm)
        if not algorithms:
            raise LocalProtocolError("no digest algorithm configured")
        self.realm = realm
        self.nonce_ttl_s = nonce_ttl_s
        self.algorithms = algorithms
        self.allow_rfc2069 = allow_rfc2069
        self._secret = secret
        self._random_bytes = random_bytes
        self._max_tracked_nonces = max_tracked_nonces
        self._mac_prefix = _encode(realm) + b"\0"
        self.opaque = self._mac(b"opaque").hex()
        # Unknown users are checked against these so they cost the same as a wrong
        # password; derived from the secret, so nobody knows a password that fits.
        self._dummy_ha1 = {
            name: hmac.new(secret, b"dummy-ha1\0" + name.encode(), name).hexdigest()
            for name in set(_HASH_OF_ALGORITHM.values())
        }
        # nonce -> (issued_at, highest nc seen); insertion order is recency of use.
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        # Nonces issued no later than this may have been evicted from _seen.
        self._forgotten_until = float("-inf")

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._secret, self._mac_prefix + data, hashlib.sha256).digest()[:_MAC_LEN]

    def make_nonce(self, now: float) -> str:
        salt = self._random_bytes(_SALT_LEN)
        if len(salt) != _SALT_LEN:
            raise LocalProtocolError(f"random_bytes returned {len(salt)} bytes")
        body = _TIMESTAMP.pack(now) + salt
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode()

    def _nonce_issued_at(self, nonce: str) -> float | None:
        """When we minted `nonce`, or None if we did not."""
        if not _NONCE_RE.fullmatch(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        body, mac = raw[: -_MAC_LEN], raw[-_MAC_LEN:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != nonce:
            return None  # same bytes, other spelling: one nonce, one LRU key
        issued_at: float = _TIMESTAMP.unpack_from(body)[0]
        return issued_at

    def challenge(self, now: float, stale: bool = False) -> list[str]:
        """WWW-Authenticate values, most preferred algorithm first (RFC 8760 §2.4)."""
        nonce = self.make_nonce(now)
        return [
            build_challenge(
                self.realm, nonce, algorithm=algorithm, opaque=self.opaque, stale=stale
            )
            for algorithm in self.algorithms
        ]

    def verify(
        self,
        method: str,
        authorization_value: str,
        lookup: Callable[[str], Credentials | None],
        now: float,
        body: bytes = b"",
    ) -> AuthResult:
        """Check one Authorization value. Raises AuthHeaderError (answer 400) if
        unreadable; otherwise FAILED/STALE mean "answer 401 with challenge(now, stale)".
        """
        creds = DigestResponse.parse(authorization_value)

        def result(outcome: AuthOutcome, reason: str) -> AuthResult:
            return AuthResult(outcome, creds.username, reason)

        failed = AuthOutcome.FAILED
        if creds.realm != self.realm:
            return result(failed, f"realm {creds.realm!r} is not ours")
        if creds.algorithm not in self.algorithms:
            return result(failed, f"algorithm {creds.algorithm!r} not offered")
        qop = None if creds.qop is None else creds.qop.lower()
        if qop is None:
            # RFC 2069 phones send no qop; only ever with MD5.
            if not (self.allow_rfc2069 and creds.algorithm == "MD5"):
                return result(failed, "qop missing")
        elif qop not in _SUPPORTED_QOPS:
            return result(failed, f"qop {creds.qop!r} not supported")
        if creds.opaque is not None and creds.opaque != self.opaque:
            return result(failed, "opaque mismatch")
        issued_at = self._nonce_issued_at(creds.nonce)
        if issued_at is None:
            return result(failed, "nonce not issued by us")
        if creds.algorithm.endswith("-sess") and creds.cnonce is None:
            return result(failed, "cnonce missing")

        account = lookup(creds.username)
        hash_name = _hash_name(creds.algorithm)
        ha1 = self._dummy_ha1[hash_name] if account is None else account.ha1_for(creds.algorithm)
        expected = compute_response(
            ha1=ha1,
            algorithm=creds.algorithm,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            qop=creds.qop,
            nc=creds.nc,
            cnonce=creds.cnonce,
            body=body,
        )
        matches = hmac.compare_digest(expected.encode(), creds.response.lower().encode())
        if not matches or account is None:
            # Same reason for an unknown user: logs and peers cannot enumerate accounts.
            return result(failed, "wrong credentials")

        # The peer knows the password; anything wrong from here on is a stale nonce,
        # answered with stale=true so the phone retries without prompting its user.
        stale = AuthOutcome.STALE
        if issued_at > now or now - issued_at > self.nonce_ttl_s:
            return result(stale, "nonce expired")
        seen = self._seen.get(creds.nonce)
        if seen is None and issued_at <= self._forgotten_until:
            return result(stale, "nonce forgotten")
        # Without qop the digest does not cover nc, so a peer-supplied nc means nothing:
        # such a nonce is good for one request.
        nc = creds.nonce_count if qop is not None else None
        if seen is not None and (nc is None or nc <= seen[1]):
            return result(stale, "nonce count replayed")
        if nc is None:
            nc = _NC_MAX
        self._remember(creds.nonce, issued_at, nc)
        return result(AuthOutcome.OK, "ok")

    def _remember(self, nonce: str, issued_at: float, nc: int) -> None:
        self._seen[nonce] = (issued_at, nc)
        self._seen.move_to_end(nonce)
        while len(self._seen) > self._max_tracked_nonces:
            _, (evicted_at, _) = self._seen.popitem(last=False)
            self._forgotten_until = max(self._forgotten_until, evicted_at)
