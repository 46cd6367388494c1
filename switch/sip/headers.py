"""Header names and the structured header values: name-addr, Via, CSeq (RFC 3261 §20, §25).

Headers are stored as text; these types are parsed on demand, so a proxy-like path
that only reads Via and CSeq never pays for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from switch.sip.errors import RemoteProtocolError
from switch.sip.uri import (
    FAST_HOST_RE,
    FAST_PORT_RE,
    FAST_SIP_URI_RE,
    FAST_URI_PARAMS_RE,
    FAST_USER_RE,
    SipUri,
    Uri,
    parse_host,
    parse_uri,
    sip_uri_from_groups,
)


class HeaderError(RemoteProtocolError):
    """A header whose value does not follow its grammar; answer 400."""


# RFC 3261 §7.3.3 and later RFCs' compact forms.
COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
    "v": "Via", "o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events",
    "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition",
    "x": "Session-Expires", "y": "Identity", "n": "Identity-Info",
}

_CANONICAL = {name.lower(): name for name in (
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "In-Reply-To",
    "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE", "Organization",
    "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Replaces", "Reply-To", "Require",
    "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires",
    "Subject", "Subscription-State", "Supported", "Timestamp", "To", "Unsupported",
    "User-Agent", "Via", "Warning", "WWW-Authenticate", *COMPACT_FORMS.values(),
)}
KNOWN_NAMES = frozenset(_CANONICAL.values())
# Exact spellings seen on the wire -> canonical name; one dict hit on the hot path.
EXACT_NAMES = {**_CANONICAL, **{name: name for name in KNOWN_NAMES}, **COMPACT_FORMS,
          **{k.upper(): v for k, v in COMPACT_FORMS.items()}}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): stored one value
# per entry. Authorization-style headers are not lists even though they contain commas.
LIST_HEADERS = frozenset({
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
    "In-Reply-To", "P-Asserted-Identity", "Path", "Privacy", "Proxy-Require", "Reason",
    "Record-Route", "Require", "Route", "Service-Route", "Supported", "Unsupported", "Via",
    "Warning",
})

TOKEN_RE = r"[A-Za-z0-9\-.!%*_+`'~]+"
# quoted-string of §25.1: qdtext or quoted-pair (backslash + any char but CR/LF).
QUOTED_RE = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
_TOKEN = re.compile(TOKEN_RE)
# gen-value of §25.1 (token / host / quoted-string); ':' lets Via received carry IPv6.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_PARAM = re.compile(rf"[ \t]*({TOKEN_RE})[ \t]*(?:=[ \t]*({QUOTED_RE}|[^;\s\"]*))?[ \t]*")
_LIST_ITEM = re.compile(r'((?:"(?:[^"\\]|\\.)*"|<[^>]*(?:>|\Z)|[^,"<])*)(,|\Z)', re.S)


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name: compact forms expanded, known names in
    their RFC spelling, unknown names as given (Headers compares them case-insensitively)."""
    known = EXACT_NAMES.get(name)
    if known is not None:
        return known
    return _CANONICAL.get(name.lower(), name)


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def split_list(value: str) -> list[str]:
    """Split a list header on commas outside quoted strings and <...>; elements are
    stripped, empty ones kept (callers decide whether they are an error)."""
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [item.strip() for item in value.split(",")]
    items: list[str] = []
    pos = 0
    while True:
        m = _LIST_ITEM.match(value, pos)
        if m is None:
            raise HeaderError(f"unterminated quoted string in {value[:80]!r}")
        items.append(m.group(1).strip())
        if not m.group(2):
            return items
        pos = m.end()


class QuotedStr(str):
    """A parameter value that arrived as a quoted-string: equal to its unquoted text,
    but serialized with quotes again (quoting can carry meaning, RFC 3840 §9)."""

    __slots__ = ()


def parse_params(text: str) -> dict[str, str | None]:
    """';name=value;flag' header parameters; names lower-cased, quoted values unquoted
    (as QuotedStr). LWS is allowed around ';' and '=' (§25.1 SEMI, EQUAL)."""
    params: dict[str, str | None] = {}
    text = text.strip(" \t")
    if not text:
        return params
    if text[0] != ";":
        raise HeaderError(f"expected ';' before header parameters in {text[:80]!r}")
    for item in _split_outside_quotes(text[1:], ";"):
        m = _PARAM.fullmatch(item)
        if m is None:
            raise HeaderError(f"bad header parameter {item.strip()[:80]!r}")
        name, value = m.group(1), m.group(2)
        if value is None:
            params[name.lower()] = None
        elif not value:
            raise HeaderError(f"empty value for header parameter {name!r}")
        elif value[0] == '"':
            params[name.lower()] = QuotedStr(unquote(value))
        elif _PLAIN_VALUE.fullmatch(value):
            params[name.lower()] = value
        else:
            raise HeaderError(f"bad value for header parameter {name!r}: {value[:40]!r}")
    return params


def format_params(params: dict[str, str | None]) -> str:
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif not isinstance(value, QuotedStr) and _PLAIN_VALUE.fullmatch(value):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote(value)}")
    return "".join(out)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    parts, start, in_quotes, escaped = [], 0, False, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and in_quotes:
            escaped = True
        elif ch == '"':
            in_quotes = not in_quotes
        elif ch == sep and not in_quotes:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if in_quotes:
        raise HeaderError(f"unterminated quoted string in {text[:80]!r}")
    return parts


def unquote(text: str) -> str:
    """Decode a quoted-string (RFC 3261 §25.1: quoted-pair is backslash + any char)."""
    if len(text) < 2 or not text.startswith('"') or not text.endswith('"'):
        raise HeaderError(f"bad quoted string {text[:80]!r}")
    body = text[1:-1]
    if "\\" not in body and '"' not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 == len(body):
                raise HeaderError(f"bad quoted string {text[:80]!r}")
            out.append(body[i + 1])
            i += 2
        elif ch == '"':
            raise HeaderError(f"bad quoted string {text[:80]!r}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Fast validators: a value matching one of these is known to parse with the full
# parser below, so parse_message can validate without building objects (they are
# built lazily on first use). Anything else goes through the full parser. The
# possessive quantifiers keep them linear and quick; they accept a strict subset of
# the grammar (no escapes, ports below 60000), which tests/sip/test_headers.py checks.
_F_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]++"
_F_QUOTED = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*+"'
_F_HPARAMS = rf"(?:;{_F_TOKEN}(?:=(?:{_F_TOKEN}|{_F_QUOTED}))?+)*+"
SIP_URI_FAST = (rf"sips?:(?:{FAST_USER_RE}@)?+{FAST_HOST_RE}(?::{FAST_PORT_RE})?+"
                rf"{FAST_URI_PARAMS_RE}")
_F_DISPLAY = rf"(?:({_F_QUOTED}) ?+|([A-Za-z0-9\-.!%*_+`'~ ]*+))"
NAME_ADDR_FAST = re.compile(
    rf"(?:{_F_QUOTED} ?+|[A-Za-z0-9\-.!%*_+`'~ ]*+)<{SIP_URI_FAST}>{_F_HPARAMS}"
    rf"|sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$/]++@)?+{FAST_HOST_RE}(?::{FAST_PORT_RE})?+"
    rf"{_F_HPARAMS}")
_NAME_ADDR_GROUPS = re.compile(rf"{_F_DISPLAY}<{FAST_SIP_URI_RE}>({_F_HPARAMS})")
_VIA_PARAMS_FAST = rf"(?:;{_F_TOKEN}(?:={_F_TOKEN})?+)*+"
VIA_FAST = re.compile(
    rf"SIP/2\.0/{_F_TOKEN} {FAST_HOST_RE}(?::{FAST_PORT_RE})?+{_VIA_PARAMS_FAST}")
_VIA_GROUPS = re.compile(
    rf"SIP/2\.0/({_F_TOKEN}) ({FAST_HOST_RE})(?::({FAST_PORT_RE}))?+({_VIA_PARAMS_FAST})")


def _fast_params(text: str) -> dict[str, str | None]:
    """Parameters already matched by _F_HPARAMS: tokens, or quoted without escapes."""
    params: dict[str, str | None] = {}
    if text:
        for item in (text[1:].split(";") if '"' not in text
                     else _split_outside_quotes(text[1:], ";")):
            name, sep, value = item.partition("=")
            if not sep:
                params[name.lower()] = None
            elif value[:1] == '"':
                params[name.lower()] = QuotedStr(value[1:-1])
            else:
                params[name.lower()] = value
    return params


CSEQ_FAST = re.compile(rf"([0-9]{{1,10}})[ \t]+({TOKEN_RE})")


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route, Refer-To ...: [display] <uri> ;params."""

    uri: Uri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri, self.display_name, {**self.params, "tag": tag})

    @property
    def sip_uri(self) -> SipUri:
        if not isinstance(self.uri, SipUri):
            raise HeaderError(f"expected a SIP URI, got {self.uri.scheme}:")
        return self.uri

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        m = _NAME_ADDR_GROUPS.fullmatch(text)
        if m is None:
            return cls.parse_full(text)
        quoted, tokens, scheme, user, host, port, uri_params, param_text = m.groups()
        if quoted is not None:
            display: str | None = quoted[1:-1]  # the fast form has no quoted-pairs
        else:
            display = " ".join(tokens.split()) or None
        return cls(sip_uri_from_groups(scheme, user, host, port, uri_params), display,
                   _fast_params(param_text))

    @classmethod
    def parse_full(cls, text: str) -> NameAddr:
        """parse without the fast path (the reference the fast path is tested against)."""
        text = text.strip(" \t")
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            display = unquote(text[: end + 1])
            text = text[end + 1 :].lstrip(" \t")
            if not text.startswith("<"):
                raise HeaderError("display name must be followed by <URI>")
        elif "<" in text:
            lt = text.index("<")
            words = text[:lt].split()
            if not all(is_token(w) for w in words):
                raise HeaderError(f"bad display name {text[:lt].strip()[:80]!r}")
            display = " ".join(words) or None
            text = text[lt:]
        if text.startswith("<"):
            gt = text.find(">")
            if gt < 0:
                raise HeaderError("missing '>' after URI")
            inner = text[1:gt]
            if inner != inner.strip(" \t"):
                # §25.1: LAQUOT and RAQUOT allow no whitespace inside the brackets.
                raise HeaderError(f"whitespace inside <> in {text[:80]!r}")
            uri = parse_uri(inner)
            params = parse_params(text[gt + 1 :])
        else:
            # addr-spec without brackets: parameters belong to the header (§20.10).
            uri_text, sep, param_text = text.partition(";")
            uri_text = uri_text.rstrip(" \t")
            if "?" in uri_text or "," in uri_text:
                raise HeaderError(f"URI with '?' or ',' must be enclosed in <>: {text[:80]!r}")
            uri = parse_uri(uri_text)
            params = parse_params(sep + param_text)
        return cls(uri, display, params)

    def serialize(self) -> str:
        name = ""
        if self.display_name:
            name = (self.display_name if all(is_token(w) for w in self.display_name.split())
                    else quote(self.display_name)) + " "
        return f"{name}<{self.uri.serialize()}>{format_params(self.params)}"

    def __str__(self) -> str:
        return self.serialize()


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise HeaderError(f"unterminated quoted string in {text!r}")


# sent-protocol / sent-by ;params with the LWS §25.1 allows around '/' and ':'.
_VIA = re.compile(rf"[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*({TOKEN_RE})[ \t]+"
                  rf"(\[[0-9A-Fa-f:.]*\]|[^;:\s\[\]]+)(?:[ \t]*:[ \t]*([0-9]+))?"
                  r"([ \t]*;.*)?[ \t]*", re.S | re.I)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: SIP/2.0/transport sent-by ;params (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_params(self, **changes: str | None) -> Via:
        return Via(self.transport, self.host, self.port, {**self.params, **changes})

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _VIA_GROUPS.fullmatch(text)
        if m is None:
            return cls.parse_full(text)
        transport, host, port, param_text = m.groups()
        return cls(transport.upper(), host, None if port is None else int(port),
                   _fast_params(param_text))

    @classmethod
    def parse_full(cls, text: str) -> Via:
        """parse without the fast path (the reference the fast path is tested against)."""
        m = _VIA.fullmatch(text)
        if m is None:
            raise HeaderError(f"bad Via value {text.strip()[:80]!r}")
        host, port = parse_host(m.group(2) + ("" if m.group(3) is None else ":" + m.group(3)))
        return cls(m.group(1).upper(), host, port, parse_params(m.group(4) or ""))

    def serialize(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"

    def __str__(self) -> str:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = CSEQ_FAST.fullmatch(text.strip(" \t"))
        if m is None:
            raise HeaderError(f"bad CSeq {text.strip()[:80]!r}")
        seq = int(m.group(1))
        if seq >= 2**31:  # RFC 3261 §8.1.1.5: less than 2**31
            raise HeaderError(f"CSeq number out of range: {m.group(1)}")
        return cls(seq, m.group(2))

    def serialize(self) -> str:
        return f"{self.seq} {self.method}"

    def __str__(self) -> str:
        return self.serialize()
