"""Header names and the structured header values: name-addr, Via, CSeq (RFC 3261 §20, §25).

Headers are stored as text; these types are parsed on demand, so a proxy-like path
that only reads Via and CSeq never pays for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from switch.sip.errors import RemoteProtocolError
from switch.sip.uri import SipUri, Uri, parse_host, parse_uri


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
    "User-Agent", "Via", "Warning", "WWW-Authenticate",
)}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): stored one value
# per entry. Authorization-style headers are not lists even though they contain commas.
LIST_HEADERS = frozenset({
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
    "In-Reply-To", "P-Asserted-Identity", "Path", "Privacy", "Proxy-Require", "Reason",
    "Record-Route", "Require", "Route", "Service-Route", "Supported", "Unsupported", "Via",
    "Warning",
})

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")


def canonical_name(name: str) -> str:
    lowered = name.lower()
    if len(lowered) == 1 and lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    return _CANONICAL.get(lowered, name)


def is_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


def split_list(value: str) -> list[str]:
    """Split a list header on commas outside quoted strings and <...>."""
    if "," not in value:
        return [value.strip()]
    items: list[str] = []
    start = 0
    in_quotes = in_angle = escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    if in_quotes:
        raise HeaderError(f"unterminated quoted string in {value!r}")
    return items


def parse_params(text: str) -> dict[str, str | None]:
    """';name=value;flag' header parameters; names lower-cased, quoted values unquoted."""
    params: dict[str, str | None] = {}
    if not text.strip():
        return params
    for item in _split_outside_quotes(text, ";"):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not is_token(name):
            raise HeaderError(f"bad header parameter {item.strip()!r}")
        if sep:
            if value.startswith('"'):
                value = unquote(value)
            elif not value:
                raise HeaderError(f"empty value for header parameter {name!r}")
        params[name.lower()] = value if sep else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif _TOKEN.match(value) or _looks_like_host(value):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote(value)}")
    return "".join(out)


def _looks_like_host(value: str) -> bool:
    return bool(re.match(r"^\[[0-9A-Fa-f:.]+\]$", value))


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        parts = text.split(sep)
    else:
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
            raise HeaderError(f"unterminated quoted string in {text!r}")
    if parts and not parts[0].strip():
        parts = parts[1:]
    return parts


def unquote(text: str) -> str:
    """Decode a quoted-string (RFC 3261 §25.1: quoted-pair is backslash + any char)."""
    if len(text) < 2 or not text.startswith('"') or not text.endswith('"'):
        raise HeaderError(f"bad quoted string {text!r}")
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 == len(body):
                raise HeaderError(f"bad quoted string {text!r}")
            out.append(body[i + 1])
            i += 2
        elif ch == '"':
            raise HeaderError(f"bad quoted string {text!r}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            display = unquote(text[: end + 1])
            text = text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise HeaderError("display name must be followed by <URI>")
        elif "<" in text:
            lt = text.index("<")
            display = " ".join(text[:lt].split()) or None
            if display is not None and not all(is_token(w) for w in display.split()):
                raise HeaderError(f"bad display name {display!r}")
            text = text[lt:]
        if text.startswith("<"):
            gt = text.find(">")
            if gt < 0:
                raise HeaderError("missing '>' after URI")
            uri = parse_uri(text[1:gt].strip())
            params = parse_params(text[gt + 1 :])
        else:
            # addr-spec without brackets: parameters belong to the header (§20.10).
            uri_text, _, param_text = text.partition(";")
            if "?" in uri_text or "," in uri_text:
                raise HeaderError(f"URI with '?' or ',' must be enclosed in <>: {text!r}")
            uri = parse_uri(uri_text.strip())
            params = parse_params(param_text)
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
        proto, sep, rest = text.strip().partition("/")
        version, sep2, rest = rest.lstrip().partition("/")
        if not sep or not sep2 or proto.strip().upper() != "SIP" or version.strip() != "2.0":
            raise HeaderError(f"bad Via protocol in {text!r}")
        rest = rest.lstrip()
        m = re.match(r"^([A-Za-z0-9\-.!%*_+`'~]+)\s+([^;\s]+(?:\s*:\s*\d+)?)\s*(;.*)?$",
                     rest, re.S)
        if not m:
            raise HeaderError(f"bad Via value {text!r}")
        host, port = parse_host(re.sub(r"\s+", "", m.group(2)))
        params = parse_params(m.group(3) or "")
        return cls(m.group(1).upper(), host, port, params)

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
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
            raise HeaderError(f"bad CSeq {text.strip()!r}")
        seq = int(parts[0])
        if seq >= 2**31:  # RFC 3261 §8.1.1.5: less than 2**31
            raise HeaderError(f"CSeq number out of range: {parts[0]}")
        if not is_token(parts[1]):
            raise HeaderError(f"bad CSeq method {parts[1]!r}")
        return cls(seq, parts[1])

    def serialize(self) -> str:
        return f"{self.seq} {self.method}"

    def __str__(self) -> str:
        return self.serialize()
