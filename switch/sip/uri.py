"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), parsed and serialized.

Values are kept unescaped in memory and escaped again on output, so comparisons
follow RFC 3261 §19.1.4 (escapes equal their characters) without special cases.
"""

from __future__ import annotations

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

_HOSTNAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$")
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def unescape(text: str) -> str:
    """Decode %HH escapes; a '%' not followed by two hex digits is an error."""
    if "%" not in text:
        return text
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise UriError(f"bad escape in {text!r}")
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    # Escapes denote octets; reassemble multi-byte UTF-8 sequences.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


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


def _check_chars(text: str, safe: frozenset[str], what: str) -> None:
    for ch in text:
        if ch not in safe and ch != "%":
            raise UriError(f"invalid character {ch!r} in URI {what}")


def parse_host(text: str) -> tuple[str, int | None]:
    """Split 'host[:port]'; hosts are hostnames, IPv4 or bracketed IPv6 references."""
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not _IPV6_CHARS.match(text[1:end]):
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
    if not host or not _HOSTNAME.match(host):
        raise UriError(f"bad host {host!r}")
    return host, port


def _parse_port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 5 or int(text) > 65535:
        raise UriError(f"bad port {text!r}")
    return int(text)


def _parse_params(text: str, safe: frozenset[str]) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        if not item:
            raise UriError("empty URI parameter")
        name, sep, value = item.partition("=")
        _check_chars(name, safe, "parameter")
        if not name:
            raise UriError("empty URI parameter name")
        if sep:
            _check_chars(value, safe, "parameter")
        params[unescape(name).lower()] = unescape(value) if sep else None
    return params


def _format_params(params: dict[str, str | None], safe: frozenset[str]) -> str:
    return "".join(
        f";{escape(k, safe)}" if v is None else f";{escape(k, safe)}={escape(v, safe)}"
        for k, v in params.items()
    )


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

    def matches(self, other: SipUri) -> bool:
        """URI equality of RFC 3261 §19.1.4 (the common cases)."""
        if (self.secure, self.user, self.password) != (other.secure, other.user, other.password):
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        for name in ("user", "ttl", "method", "maddr", "transport"):
            a, b = self.params.get(name), other.params.get(name)
            if (a is None) != (b is None) or (a and b and a.lower() != b.lower()):
                return False
        for name in set(self.params) & set(other.params):
            a, b = self.params[name], other.params[name]
            if (a or "").lower() != (b or "").lower():
                return False
        return self.headers == other.headers


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


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme: kept opaque (RFC 3261 §19.1.1 allows them in To/From)."""

    scheme: str
    opaque: str

    def serialize(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __str__(self) -> str:
        return self.serialize()


Uri = SipUri | TelUri | AbsoluteUri

_TEL_CHARS = frozenset("0123456789ABCDEFabcdef*#+-.()pwPW")


def parse_uri(text: str) -> Uri:
    """Parse an absolute URI. Raises UriError (400) on bad syntax."""
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME.match(scheme):
        raise UriError(f"not a URI: {text!r}")
    lowered = scheme.lower()
    if any(ch in " \t\r\n<>\"" for ch in rest):
        raise UriError(f"invalid character in URI {text!r}")
    if lowered in ("sip", "sips"):
        return _parse_sip(rest, secure=lowered == "sips")
    if lowered == "tel":
        number, _, params = rest.partition(";")
        if not number or any(ch not in _TEL_CHARS for ch in number):
            raise UriError(f"bad telephone number {number!r}")
        return TelUri(number, _parse_params(params, _PARAM_SAFE))
    if not rest:
        raise UriError(f"empty URI after scheme {scheme!r}")
    return AbsoluteUri(lowered, rest)


def _parse_sip(rest: str, *, secure: bool) -> SipUri:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_text, sep, password_text = userinfo.partition(":")
        _check_chars(user_text, _USER_SAFE, "user")
        if not user_text:
            raise UriError("empty user part in SIP URI")
        user = unescape(user_text)
        if sep:
            _check_chars(password_text, _PASSWORD_SAFE, "password")
            password = unescape(password_text)
    rest, qsep, header_text = rest.partition("?")
    hostport, _, param_text = rest.partition(";")
    host, port = parse_host(hostport)
    headers: dict[str, str] = {}
    if qsep:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise UriError(f"bad URI header {item!r}")
            _check_chars(name + value, _HEADER_SAFE, "header")
            headers[unescape(name)] = unescape(value)
    return SipUri(host=host, user=user, password=password, port=port,
                  params=_parse_params(param_text, _PARAM_SAFE), headers=headers,
                  secure=secure)
