"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), parsed and serialized.

Values are kept unescaped in memory and escaped again on output, so comparisons
follow RFC 3261 §19.1.4 (escapes equal their characters) without special cases.
Escapes decode to octets; octets that are not UTF-8 survive as surrogate escapes,
so `%E9` round-trips as `%E9`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from switch.sip.errors import RemoteProtocolError


class UriError(RemoteProtocolError):
    """A URI that does not follow the grammar; answer 400 (or 416 for the scheme)."""


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = _ALNUM + "-_.!~*'()"
# RFC 3261 §25.1: user-unreserved, password chars, param-unreserved, hnv-unreserved.
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")

# Regular-expression building blocks. Every repetition is unambiguous so that no
# input makes them backtrack quadratically.
HEX2 = r"%[0-9A-Fa-f]{2}"
USER_RE = rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{HEX2})+"
PASSWORD_RE = rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{HEX2})*"
PARAMCHAR_RE = rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{HEX2})"
HNVCHAR_RE = rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{HEX2})"
_LABEL = r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*"
HOSTNAME_RE = rf"(?:{_LABEL}\.)*{_LABEL}\.?"
PORT_RE = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"

_HOSTNAME = re.compile(HOSTNAME_RE)
_USER = re.compile(USER_RE)
_PASSWORD = re.compile(PASSWORD_RE)
_PARAM_TEXT = re.compile(rf"{PARAMCHAR_RE}*")
_HNV_TEXT = re.compile(rf"{HNVCHAR_RE}*")
_PORT = re.compile(PORT_RE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# absoluteURI characters (RFC 3261 §25.1 uric, plus '#' and brackets seen in URNs).
_ABSOLUTE = re.compile(r"[A-Za-z0-9\-_.!~*'();/?:@&=+$,%\[\]#]+")
_TEL_NUMBER = re.compile(r"[0-9A-Fa-f*#+\-.()pwPW]+")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SIP_PARTS = re.compile(r"(?:([^:@]*)(?::([^@]*))?@)?(\[[^\]]*\]|[^:;?]*)(?::([^;?]*))?"
                        r"(;[^?]*)?(?:\?(.*))?", re.S)


def unescape(text: str) -> str:
    """Decode %HH escapes; a '%' not followed by two hex digits is an error."""
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise UriError(f"bad escape in {text!r}")
    raw = _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)),
                      text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    if all(ch in safe for ch in text):
        return text
    out = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _checked(text: str, pattern: re.Pattern[str], what: str) -> str:
    if pattern.fullmatch(text) is None:
        if _BAD_ESCAPE.search(text):
            raise UriError(f"bad escape in URI {what} {text!r}")
        raise UriError(f"invalid character in URI {what} {text!r}")
    return unescape(text)


def parse_host(text: str) -> tuple[str, int | None]:
    """Split 'host[:port]'; hosts are hostnames, IPv4 or bracketed IPv6 references."""
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not _is_ipv6(text[1:end]):
            raise UriError(f"bad IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UriError(f"bad host {text!r}")
            port = _parse_port(rest[1:])
        return host, port
    host, sep, port_text = text.partition(":")
    if sep:
        port = _parse_port(port_text)
    if not _HOSTNAME.fullmatch(host):
        raise UriError(f"bad host {host!r}")
    return host, port


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return "%" not in text  # zone ids are not allowed in SIP (RFC 5118 §4.2)


def _parse_port(text: str) -> int:
    if not _PORT.fullmatch(text):
        raise UriError(f"bad port {text!r}")
    return int(text)


def _parse_params(text: str) -> dict[str, str | None]:
    """';name=value;flag' URI parameters (text starts after the first ';')."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if not name:
            raise UriError("empty URI parameter name" if sep else "empty URI parameter")
        key = _checked(name, _PARAM_TEXT, "parameter").lower()
        params[key] = _checked(value, _PARAM_TEXT, "parameter") if sep else None
    return params


def _format_params(params: dict[str, str | None], safe: frozenset[str]) -> str:
    return "".join(
        f";{escape(k, safe)}" if v is None else f";{escape(k, safe)}={escape(v, safe)}"
        for k, v in params.items()
    )


# §19.1.4: these parameters must be in both URIs or neither; other parameters are
# compared only when both URIs carry them.
_MUST_MATCH_PARAMS = ("user", "ttl", "method", "maddr", "transport")


@dataclass(frozen=True, slots=True)
class SipUri:
    """sip: or sips: URI. `params` keys are lower-case; values unescaped."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    secure: bool = False

    @property
    def scheme(self) -> str:
        return "sips" if self.secure else "sip"

    @property
    def transport(self) -> str:
        value = self.params.get("transport")
        return (value or ("tls" if self.secure else "udp")).lower()

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_params(self, **changes: str | None) -> SipUri:
        return SipUri(self.host, self.user, self.password, self.port,
                      {**self.params, **changes}, self.headers, self.secure)

    def without_headers(self) -> SipUri:
        return SipUri(self.host, self.user, self.password, self.port, self.params, {},
                      self.secure)

    def serialize(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                parts.append(":" + escape(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(self.hostport)
        parts.append(_format_params(self.params, _PARAM_SAFE))
        if self.headers:
            parts.append("?" + "&".join(f"{escape(k, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}"
                                        for k, v in self.headers.items()))
        return "".join(parts)

    def __str__(self) -> str:
        return self.serialize()

    def __repr__(self) -> str:
        return f"SipUri({self.serialize()!r})"

    def matches(self, other: SipUri) -> bool:
        """URI equivalence of RFC 3261 §19.1.4: userinfo case-sensitive, host and
        parameters case-insensitive, IP addresses compared as addresses, URI headers
        never ignored. Not transitive, as the RFC warns."""
        if (self.secure, self.user, self.password) != (other.secure, other.user, other.password):
            return False
        if _host_key(self.host) != _host_key(other.host) or self.port != other.port:
            return False
        for name in _MUST_MATCH_PARAMS:
            if (name in self.params) != (name in other.params):
                return False
        for name in self.params.keys() & other.params.keys():
            a, b = self.params[name], other.params[name]
            if (a or "").lower() != (b or "").lower():
                return False
        return _header_key(self.headers) == _header_key(other.headers)


def _host_key(host: str) -> str:
    if host.startswith("["):
        return str(ipaddress.IPv6Address(host[1:-1]))
    return host.lower().rstrip(".")


def _header_key(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@dataclass(frozen=True, slots=True)
class TelUri:
    """tel: URI (RFC 3966): a global (+...) or local number with parameters."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    scheme = "tel"

    def serialize(self) -> str:
        return f"tel:{self.number}" + _format_params(self.params, _PARAM_SAFE)

    def __str__(self) -> str:
        return self.serialize()

    def __repr__(self) -> str:
        return f"TelUri({self.serialize()!r})"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme: kept opaque (RFC 3261 §19.1.1 allows them in To/From). In a
    Request-URI the server answers 416 Unsupported URI Scheme."""

    scheme: str
    opaque: str

    def serialize(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __str__(self) -> str:
        return self.serialize()

    def __repr__(self) -> str:
        return f"AbsoluteUri({self.serialize()!r})"


Uri = SipUri | TelUri | AbsoluteUri


# The common SIP URI (no escapes, no password, no URI headers) as capture groups, so
# the usual case builds a SipUri without the general parser. Possessive quantifiers
# keep it linear; tests/sip/test_uri.py checks it agrees with the general parser.
_FAST_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
FAST_HOST_RE = rf"(?:{_FAST_LABEL}\.)*+{_FAST_LABEL}"
FAST_PORT_RE = r"[1-5]?+[0-9]{1,4}+"  # below 60000: never out of range
_FAST_PCHAR = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++"
FAST_URI_PARAMS_RE = rf"(?:;{_FAST_PCHAR}(?:={_FAST_PCHAR})?+)*+"
FAST_USER_RE = r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]++"
FAST_SIP_URI_RE = (rf"(sips?):(?:({FAST_USER_RE})@)?+({FAST_HOST_RE})(?::({FAST_PORT_RE}))?+"
                   rf"({FAST_URI_PARAMS_RE})")
_FAST_SIP_URI = re.compile(FAST_SIP_URI_RE)


def sip_uri_from_groups(scheme: str, user: str | None, host: str, port: str | None,
                        param_text: str) -> SipUri:
    """A SipUri from FAST_SIP_URI_RE's groups (nothing to unescape or check)."""
    params: dict[str, str | None] = {}
    if param_text:
        for item in param_text[1:].split(";"):
            name, sep, value = item.partition("=")
            params[name.lower()] = value if sep else None
    return SipUri(host, user, None, None if port is None else int(port), params, {},
                  scheme == "sips")


def parse_uri(text: str) -> Uri:
    """Parse an absolute URI. Raises UriError (400) on bad syntax."""
    m = _FAST_SIP_URI.fullmatch(text)
    if m is not None:
        return sip_uri_from_groups(*m.groups())
    return parse_uri_full(text)


def parse_uri_full(text: str) -> Uri:
    """parse_uri without the fast path (the reference the fast path is tested against)."""
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise UriError(f"not a URI: {text[:80]!r}")
    lowered = scheme.lower()
    if lowered == "sip" or lowered == "sips":
        return _parse_sip(rest, secure=lowered == "sips")
    if lowered == "tel":
        number, _, params = rest.partition(";")
        if not _TEL_NUMBER.fullmatch(number):
            raise UriError(f"bad telephone number {number[:40]!r}")
        return TelUri(number, _parse_params(params))
    if not _ABSOLUTE.fullmatch(rest):
        if not rest:
            raise UriError(f"empty URI after scheme {scheme!r}")
        raise UriError(f"invalid character in URI {text[:80]!r}")
    return AbsoluteUri(lowered, rest)


def _parse_sip(rest: str, *, secure: bool) -> SipUri:
    m = _SIP_PARTS.fullmatch(rest)
    if m is None:  # only reachable with an unterminated '[' host
        raise UriError(f"bad SIP URI {rest[:80]!r}")
    user_text, password_text, host, port_text, param_text, header_text = m.groups()
    user = password = None
    if user_text is not None:
        if not user_text:
            raise UriError("empty user part in SIP URI")
        user = _checked(user_text, _USER, "user")
        if password_text is not None:
            password = _checked(password_text, _PASSWORD, "password")
    if host.startswith("["):
        if not host.endswith("]"):
            raise UriError(f"bad IPv6 reference {rest[rest.index('[') :][:80]!r}")
        if not _is_ipv6(host[1:-1]):
            raise UriError(f"bad IPv6 reference {host!r}")
    elif not _HOSTNAME.fullmatch(host):
        raise UriError(f"bad host {host[:80]!r}")
    port = None if port_text is None else _parse_port(port_text)
    headers: dict[str, str] = {}
    if header_text is not None:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise UriError(f"bad URI header {item[:40]!r}")
            headers[_checked(name, _HNV_TEXT, "header")] = _checked(value, _HNV_TEXT, "header")
    params = _parse_params(param_text[1:]) if param_text else {}
    return SipUri(host, user, password, port, params, headers, secure)
