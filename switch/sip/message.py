"""SIP requests and responses: parse and serialize (RFC 3261 §7, §20, §25).

`parse_message` takes one datagram (or one framed stream message) and returns a
`Request` or `Response`; anything malformed raises `ParseError`, which carries the
status to answer and, when the start line was a request, the raw headers needed to
build that answer (RFC 3261 §8.2: a 400 still echoes Via, From, To, Call-ID, CSeq).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import islice
from typing import TypeVar

from switch.sip.errors import RemoteProtocolError

try:
    from switch.sip._scan import header_lines
    from switch.sip._scan import scan_message as scan_message
except ImportError:  # extension not built: the pure-Python twin, same results
    from switch.sip._scan_py import header_lines
    from switch.sip._scan_py import scan_message as scan_message
from switch.sip.headers import (
    EXACT_NAMES,
    KNOWN_NAMES,
    LIST_HEADERS,
    NAME_ADDR_FAST,
    SIP_URI_FAST,
    VIA_FAST,
    CSeq,
    HeaderError,
    NameAddr,
    Via,
    canonical_name,
    is_token,
    split_list,
)
from switch.sip.status import reason_phrase
from switch.sip.uri import (
    SipUri,
    Uri,
    UriError,
    parse_host,
    parse_uri,
)

SIP_VERSION = "SIP/2.0"
T = TypeVar("T")


class ParseError(RemoteProtocolError):
    """Malformed message. `raw_headers` is set when a request line was read."""

    def __init__(self, message: str, status: int = 400,
                 raw_headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, status)
        self.raw_headers = raw_headers


class Headers:
    """Ordered (name, value) pairs with canonical names; one entry per list element.

    Parsed messages keep their header lines as received and split list headers
    (§7.3.1) into elements only when something reads them; unknown names are
    matched case-insensitively (§7.3.5)."""

    __slots__ = ("_cache", "_items", "_raw", "_source", "_wire")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] | None = items if items is not None else []
        self._wire: list[tuple[str, str]] | None = None
        self._cache: dict[str, object] = {}
        # The received header lines before and after Content-Length, while they are
        # still what serialize() would write; every mutating method drops them.
        self._raw: tuple[bytes, bytes] | None = None
        # A scanned message whose header lines are read on first use (_lines).
        self._source: bytes | None = None

    @classmethod
    def from_lines(cls, lines: list[tuple[str, str]]) -> Headers:
        """Headers from (canonical name, value) lines as received; list values are
        split lazily."""
        headers = cls.__new__(cls)
        headers._items = None
        headers._wire = lines
        headers._cache = {}
        headers._raw = None
        headers._source = None
        return headers

    @classmethod
    def from_scanned(cls, data: bytes, raw: tuple[bytes, bytes] | None) -> Headers:
        """Headers of a message scan_message accepted; its lines are read when first
        needed (a message relayed unread is never split into lines)."""
        headers = cls.__new__(cls)
        headers._items = None
        headers._wire = None
        headers._cache = {}
        headers._raw = raw
        headers._source = data
        return headers

    def _lines(self) -> list[tuple[str, str]]:
        wire = self._wire
        if wire is None:
            wire = self._wire = header_lines(self._source or b"")
            self._source = None
        return wire

    def _all(self) -> list[tuple[str, str]]:
        items = self._items
        if items is None:
            items = self._items = _split_lines(self._lines())
            self._wire = None
        return items

    def get(self, name: str, default: str | None = None) -> str | None:
        if name not in KNOWN_NAMES:
            name = canonical_name(name)
            if name not in KNOWN_NAMES:
                lowered = name.lower()
                for key, value in self._all():
                    if key.lower() == lowered:
                        return value
                return default
        wire = self._wire if self._items is not None else self._lines()
        if wire is not None:
            for key, value in wire:
                if key == name:
                    if name in LIST_HEADERS and "," in value:
                        break  # the first element needs the list split
                    return value
            else:
                return default
        for key, value in self._all():
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        if name not in KNOWN_NAMES:
            name = canonical_name(name)
            if name not in KNOWN_NAMES:
                lowered = name.lower()
                return [value for key, value in self._all() if key.lower() == lowered]
        wire = self._wire if self._items is not None else self._lines()
        if wire is not None:
            # Split only this header's lines; the rest stay unsplit until needed.
            return [value for key, value in _split_lines([kv for kv in wire if kv[0] == name])]
        return [value for key, value in self._all() if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        self._cache.clear()
        self._raw = None
        self._all().append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._cache.clear()
        self._raw = None
        self._all().insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` by one, keeping the first one's position."""
        name = canonical_name(name)
        self._cache.clear()
        self._raw = None
        items = self._all()
        matches = _matcher(name)
        for i, (key, _) in enumerate(items):
            if matches(key):
                items[i] = (name, value)
                items[i + 1 :] = [kv for kv in items[i + 1 :] if not matches(kv[0])]
                return
        items.append((name, value))

    def remove(self, name: str) -> None:
        matches = _matcher(canonical_name(name))
        self._cache.clear()
        self._raw = None
        self._items = [kv for kv in self._all() if not matches(kv[0])]

    def remove_first(self, name: str) -> None:
        matches = _matcher(canonical_name(name))
        self._cache.clear()
        self._raw = None
        items = self._all()
        for i, (key, _) in enumerate(items):
            if matches(key):
                del items[i]
                return

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of `name` in place (a proxy or transport stamping
        the top Via); append it when there is none."""
        name = canonical_name(name)
        matches = _matcher(name)
        self._cache.clear()
        self._raw = None
        items = self._all()
        for i, (key, _) in enumerate(items):
            if matches(key):
                items[i] = (name, value)
                return
        items.append((name, value))

    def items(self) -> list[tuple[str, str]]:
        return list(self._all())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._all() == other._all()

    def __repr__(self) -> str:
        return f"Headers({self._all()!r})"

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """Memoise a structured view of a header until the headers change."""
        try:
            return self._cache[key]  # type: ignore[return-value]
        except KeyError:
            value = self._cache[key] = build()
            return value

    def copy(self) -> Headers:
        return Headers(list(self._all()))


def _matcher(name: str) -> Callable[[str], bool]:
    if name in KNOWN_NAMES:
        return name.__eq__
    lowered = name.lower()
    return lambda key: key.lower() == lowered


def _split_lines(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for name, value in lines:
        if name in LIST_HEADERS and "," in value:
            try:
                elements = split_list(value)
            except HeaderError:
                # Not validated at parse time (e.g. Supported with a stray quote): kept
                # whole, since reading headers must never raise.
                items.append((name, value))
            else:
                items.extend((name, element) for element in elements if element)
        else:
            items.append((name, value))
    return items


class Message:
    """Common part of requests and responses."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    # Structured views of the headers every layer needs.
    @property
    def vias(self) -> list[Via]:
        return self.headers.cached("via", lambda: [Via.parse(v) for v in
                                                   self.headers.get_all("Via")])

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise HeaderError("missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        return self.headers.cached("from", lambda: NameAddr.parse(self._required("From")))

    @property
    def to(self) -> NameAddr:
        return self.headers.cached("to", lambda: NameAddr.parse(self._required("To")))

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return self.headers.cached("cseq", lambda: CSeq.parse(self._required("CSeq")))

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; `Contact: *` is reported by `is_wildcard_contact`."""
        return self.headers.cached("contact", lambda: [
            NameAddr.parse(v) for v in self.headers.get_all("Contact") if v.strip() != "*"])

    @property
    def is_wildcard_contact(self) -> bool:
        return any(v.strip() == "*" for v in self.headers.get_all("Contact"))

    @property
    def record_routes(self) -> list[NameAddr]:
        return self.headers.cached("rr", lambda: [
            NameAddr.parse(v) for v in self.headers.get_all("Record-Route")])

    @property
    def routes(self) -> list[NameAddr]:
        return self.headers.cached("route", lambda: [
            NameAddr.parse(v) for v in self.headers.get_all("Route")])

    def int_header(self, name: str) -> int | None:
        value = self.headers.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit() or not value.isascii() or len(value) > 10:
            raise HeaderError(f"bad {canonical_name(name)} value {value!r}")
        return int(value)

    @property
    def expires(self) -> int | None:
        return self.int_header("Expires")

    @property
    def max_forwards(self) -> int | None:
        return self.int_header("Max-Forwards")

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";")[0].strip().lower()

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise HeaderError(f"missing {name} header")
        return value

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire bytes; Content-Length always states the body's real length (in place
        of any received value, or appended). An unmodified parsed message writes its
        header lines as received (list headers unsplit)."""
        raw = self.headers._raw
        if raw is not None:
            return b"%s\r\n%sContent-Length: %d\r\n%s\r\n%s" % (
                self._start_line().encode("utf-8", "surrogateescape"), raw[0],
                len(self.body), raw[1], self.body)
        lines = [self._start_line()]
        length = f"Content-Length: {len(self.body)}"
        for name, value in self.headers:
            if name == "Content-Length":
                if length:
                    lines.append(length)
                    length = ""
            else:
                lines.append(f"{name}: {value}")
        if length:
            lines.append(length)
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()

    def _same_content(self, other: Message) -> bool:
        # Content-Length is derived from the body, so it takes no part in equality.
        return self.body == other.body and (
            [kv for kv in self.headers if kv[0] != "Content-Length"]
            == [kv for kv in other.headers if kv[0] != "Content-Length"])


class Request(Message):
    __slots__ = ("_uri", "_uri_text", "method")

    def __init__(self, method: str, uri: Uri, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self._uri: Uri | None = uri
        self._uri_text = ""

    @property
    def uri(self) -> Uri:
        """The Request-URI, parsed on first use (parse_message has validated it)."""
        uri = self._uri
        if uri is None:
            uri = self._uri = parse_uri(self._uri_text)
        return uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value

    def _start_line(self) -> str:
        uri = self._uri_text if self._uri is None else self._uri.serialize()
        return f"{self.method} {uri} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.headers.get('Call-ID')}>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Request) and self.method == other.method
                and self.uri == other.uri and self._same_content(other))

    __hash__ = None  # type: ignore[assignment]


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str | None = None, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.headers.get('Call-ID')}>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Response) and self.status == other.status
                and self.reason == other.reason and self._same_content(other))

    __hash__ = None  # type: ignore[assignment]


SipMessage = Request | Response

_STATUS_LINE = re.compile(r"SIP/([0-9]+\.[0-9]+) ([1-6][0-9][0-9])(?: (.*))?", re.I | re.S)
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)
_FOLD = re.compile(r"[ \t]*\n[ \t]+")
_REQUEST_URI_FAST = re.compile(SIP_URI_FAST)
_DIGITS = re.compile(r"[0-9]+")
_CRLF = (b"\r", b"\n")
_WSP = (" ", "\t")
# Required in every request (RFC 3261 §8.1.1); Max-Forwards is tolerated if absent.
_REQUIRED = ("To", "From", "CSeq", "Call-ID", "Via")
_SINGLE = ("From", "To", "Call-ID", "CSeq")
# Headers parse_message validates, because every layer above reads them.
_WATCHED = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Content-Length",
                      "Max-Forwards", "Expires", "Contact", "Route", "Record-Route"})
# Upper bounds: §20.22 (Max-Forwards 0-255), §20.19 (delta-seconds below 2**32).
_INT_LIMITS = {"Max-Forwards": 255, "Expires": 2**32 - 1}
_INTS = tuple(_INT_LIMITS)
_ADDRESSES = ("Contact", "Route", "Record-Route")
# Methods seen every second skip the token regex (§27.4 and extensions).
_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
                      "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"})

HeaderFields = tuple[list[tuple[str, str]], dict[str, list[str]]]


def find_blank_line(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """(end of the header section, start of the body) at the first empty line at or
    after `start`; CRLF and bare LF line ends are both accepted."""
    crlf = data.find(b"\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        at, body = lf, lf + 2
    elif crlf >= 0:
        at, body = crlf, crlf + 3
    else:
        return None
    return (at - 1 if at and data[at - 1] == 13 else at), body


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split the header section from the body at the first empty line."""
    found = find_blank_line(data)
    if found is None:
        raise ParseError("truncated message: no empty line after the header section")
    return data[: found[0]], data[found[1] :]


def head_lines(head: bytes) -> list[str]:
    """The start line and header lines, unfolded (§7.3.1: CRLF + WSP is LWS)."""
    text = head.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            # A lone CR could end a line for some other parser: refuse to relay it, and
            # leave the lines carrying one out of the 400's echoed headers.
            lines = text.split("\n")
            raw = None
            if _is_request_line(lines[0]):
                raw = [(k, v) for k, v in raw_header_lines(lines) if "\r" not in v]
            raise ParseError("bare CR in the header section", 400, raw)
    if "\n " in text or "\n\t" in text:
        text = _FOLD.sub(" ", text)
    return text.split("\n")


def parse_message(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one message. Over UDP (`stream=False`) bytes past Content-Length are
    discarded (RFC 3261 §18.3); a body shorter than Content-Length is an error."""
    scanned = scan_message(data, stream)
    if scanned is not None:
        # A clean message, read and validated in one pass (switch/sip/_scan.pyx): the
        # same result as the full parser below.
        method, uri_text, status, reason, raw, body = scanned
        headers = Headers.from_scanned(data, raw)
        message: SipMessage
        if method is None:
            message = Response.__new__(Response)
            message.status = status
            message.reason = reason
        else:
            message = Request.__new__(Request)
            message.method = method
            message._uri_text = uri_text
            message._uri = None
        message.headers = headers
        message.body = body
        return message
    if not data:
        raise ParseError("empty message")
    if data[:1] in _CRLF:
        # Keepalive CRLFs before the start line are allowed (§7.5).
        data = data.lstrip(b"\r\n")
        if not data:
            raise ParseError("empty message")
    # Fast path for the usual CRLF-only head; the counts catch bare LF or CR.
    head, sep, body = data.partition(b"\r\n\r\n")
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    n = len(lines) - 1
    if not sep or text.count("\n") != n or text.count("\r") != n:
        found = find_blank_line(data)
        if found is None:
            # Still read the headers, so that a request can be answered with a 400.
            lines = head_lines(data.rstrip(b"\r\n"))
            raise ParseError("truncated message: no empty line after the header section",
                             400, raw_header_lines(lines) if _is_request_line(lines[0]) else None)
        head, body = data[: found[0]], data[found[1] :]
        lines = head_lines(head)
    return parse_lines(lines, body, stream=stream)


def parse_lines(lines: list[str], body: bytes, *, stream: bool,
                fields: HeaderFields | ParseError | None = None) -> SipMessage:
    """Build a message from `head_lines` output; `fields` are the already parsed
    header lines (or the error parsing them raised), as StreamFramer has them."""
    try:
        if fields is None:
            fields = parse_header_lines(lines)
        elif isinstance(fields, ParseError):
            raise fields
        return _build(lines[0], fields, body, stream)
    except ParseError as exc:
        if exc.raw_headers is None and _is_request_line(lines[0]):
            exc.raw_headers = raw_header_lines(lines)
        raise
    except RemoteProtocolError as exc:
        raw = raw_header_lines(lines) if _is_request_line(lines[0]) else None
        raise ParseError(str(exc), exc.status, raw) from exc


def _is_request_line(line: str) -> bool:
    # Anything that is not a status line is answered as a (possibly broken) request.
    return bool(line) and line[:4].upper() != "SIP/"


def parse_header_lines(lines: list[str]) -> HeaderFields:
    """(name, value) lines with canonical names, and the values of _WATCHED headers."""
    wire: list[tuple[str, str]] = []
    watched: dict[str, list[str]] = {}
    for line in islice(lines, 1, None):
        name, sep, value = line.partition(":")
        canon = EXACT_NAMES.get(name)
        if canon is None or not sep:
            if line[:1] in _WSP:
                return parse_header_lines(_unfold(lines))
            if not sep:
                raise ParseError(f"bad header line {line[:80]!r}")
            name = name.rstrip(" \t")
            if not is_token(name):
                raise ParseError(f"bad header name {name[:40]!r}")
            canon = canonical_name(name)
        value = value.strip(" \t")
        wire.append((canon, value))
        if canon in _WATCHED:
            found = watched.get(canon)
            if found is None:
                watched[canon] = [value]
            else:
                found.append(value)
    return wire, watched


def _unfold(lines: list[str]) -> list[str]:
    if len(lines) > 1 and lines[1][:1] in _WSP:
        raise ParseError("continuation line after the start line")
    return _FOLD.sub(" ", "\n".join(lines)).split("\n")


def raw_header_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Every well-formed header line, for answering a request that failed to parse."""
    raw: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.strip(" \t")
        if sep and is_token(name):
            raw.append((canonical_name(name), value.strip(" \t")))
    return raw


def _build(start: str, fields: HeaderFields, body: bytes, stream: bool) -> SipMessage:
    wire, watched = fields
    message: SipMessage
    if not _is_request_line(start):
        if not start:
            raise ParseError("empty message")
        m = _STATUS_LINE.fullmatch(start)
        if m is None:
            raise ParseError(f"bad status line {start[:80]!r}")
        if m.group(1) != "2.0":
            raise ParseError(f"unsupported SIP version in {start[:80]!r}", 505)
        message = Response(int(m.group(2)), m.group(3) or "", Headers.from_lines(wire))
        method = None
    else:
        parts = start.split(" ")
        if len(parts) != 3 or not all(parts):
            raise ParseError(f"bad request line {start[:80]!r}")
        method, uri_text, version = parts
        if method not in _METHODS and not is_token(method):
            raise ParseError(f"bad method {method[:40]!r}")
        if version != SIP_VERSION:
            if not _VERSION.fullmatch(version):
                raise ParseError(f"bad request line {start[:80]!r}")
            if version.upper() != SIP_VERSION:
                # Answerable: the headers are read so the 505 can be routed back.
                raise ParseError(f"unsupported SIP version {version!r}", 505)
        request = Request.__new__(Request)
        request.method = method
        request.headers = Headers.from_lines(wire)
        request._uri_text = uri_text
        request._uri = None if _REQUEST_URI_FAST.fullmatch(uri_text) else _request_uri(uri_text)
        message = request
        for name in _REQUIRED:
            if name not in watched:
                raise ParseError(f"missing {name} header")
    _validate(watched, method)
    lengths = watched.get("Content-Length")
    if lengths is not None or stream:
        body = _frame_body(lengths, body, stream)
    message.body = body
    return message


def _request_uri(text: str) -> Uri:
    try:
        uri = parse_uri(text)
    except UriError as exc:
        raise ParseError(f"bad Request-URI: {exc}") from exc
    if isinstance(uri, SipUri) and uri.headers:
        raise ParseError("bad Request-URI: URI headers are not allowed here (§19.1.1)")
    # Other schemes parse (as AbsoluteUri); the server answers 416 for them.
    return uri


def _validate(watched: dict[str, list[str]], method: str | None) -> None:
    """Check what every layer depends on, so later layers never see a bad value.
    Values matching a fast pattern are known to parse; the structured objects are
    built lazily by the Message properties."""
    for name in _SINGLE:
        values = watched.get(name)
        if values is None:
            raise ParseError(f"missing {name} header")
        if len(values) != 1:
            raise ParseError(f"more than one {name} header")
    vias = watched.get("Via")
    if vias is None:
        raise ParseError("missing Via header")
    for value in vias:
        for element in (split_list(value) if "," in value else (value,)):
            if VIA_FAST.fullmatch(element) is None:
                _check("Via", Via.parse, element)
    value = watched["From"][0]
    if NAME_ADDR_FAST.fullmatch(value) is None:
        _check("From", NameAddr.parse, value)
    value = watched["To"][0]
    if NAME_ADDR_FAST.fullmatch(value) is None:
        _check("To", NameAddr.parse, value)
    value = watched["CSeq"][0]
    seq, _, cseq_method = value.partition(" ")
    if not (seq.isdigit() and seq.isascii() and len(seq) < 10
            and (cseq_method == method or cseq_method in _METHODS)):
        cseq_method = _check("CSeq", CSeq.parse, value).method
    if method is not None and cseq_method != method:
        raise ParseError(f"CSeq method {cseq_method} does not match {method}")
    value = watched["Call-ID"][0]
    # word ["@" word] (§25.1): visible characters only.
    if not value.isprintable() or " " in value or not value or not value.isascii():
        raise ParseError(f"bad Call-ID {value[:80]!r}")
    for name in _INTS:
        values = watched.get(name)
        if values is not None:
            if len(values) != 1:
                raise ParseError(f"more than one {name} header")
            text = values[0]
            if not (text.isdigit() and text.isascii() and len(text.lstrip("0")) <= 10
                    and int(text) <= _INT_LIMITS[name]):
                raise ParseError(f"bad {name} value {text[:40]!r}")
    for name in _ADDRESSES:
        values = watched.get(name)
        if values is None:
            continue
        for value in values:
            for element in (split_list(value) if "," in value else (value,)):
                if NAME_ADDR_FAST.fullmatch(element) is not None:
                    continue
                if not element:
                    raise ParseError(f"empty element in {name} header")
                if name == "Contact" and element == "*":
                    if len(values) != 1 or "," in value:
                        raise ParseError("Contact '*' must be the only Contact value")
                    continue
                _check(name, NameAddr.parse, element)


def _check(name: str, parse: Callable[[str], T], value: str) -> T:
    try:
        return parse(value)
    except RemoteProtocolError as exc:
        raise ParseError(f"bad {name} header: {exc}", exc.status) from exc


def _frame_body(lengths: list[str] | None, body: bytes, stream: bool) -> bytes:
    if lengths is None:
        if stream:
            raise ParseError("missing Content-Length on a stream transport")
        return body
    if len(lengths) > 1:
        raise ParseError("more than one Content-Length header")
    text = lengths[0]
    if not (text.isdigit() and text.isascii()):
        raise ParseError(f"bad Content-Length {text[:40]!r}")
    if len(text.lstrip("0")) > len(str(len(body))) or int(text) > len(body):
        raise ParseError(f"Content-Length {text[:40]} exceeds the {len(body)} bytes received")
    length = int(text)
    return body if length == len(body) else body[:length]


# Headers a UAS copies from the request into every response (RFC 3261 §8.2.6.2).
_ECHOED = ("Via", "From", "To", "Call-ID", "CSeq")


def build_response(request: Request, status: int, reason: str | None = None, *,
                   to_tag: str | None = None, body: bytes = b"") -> Response:
    """A response echoing Via, From, To, Call-ID and CSeq; adds a To tag if given and
    the request had none (a tag on 100 Trying is never added, §8.2.6.2)."""
    headers = Headers([(k, v) for k, v in request.headers if k in _ECHOED])
    if to_tag is not None and status > 100 and request.to.tag is None:
        headers.set("To", request.to.with_tag(to_tag).serialize())
    if status == 100 and (timestamp := request.headers.get("Timestamp")) is not None:
        headers.add("Timestamp", timestamp)  # §8.2.6.1
    return Response(status, reason, headers, body)


def build_error_response(raw_headers: list[tuple[str, str]], status: int,
                         reason: str | None = None, *,
                         to_tag: str | None = None) -> Response | None:
    """Answer a request that failed to parse, from its raw headers (ParseError's
    raw_headers). None when the response cannot be routed: no usable top Via. From,
    To, Call-ID and CSeq are echoed when present (the client matches on the branch
    and CSeq, §17.1.3); `to_tag` is added to a To without one (§8.2.6.2)."""
    first: dict[str, str] = {}
    vias: list[str] = []
    for name, value in raw_headers:
        if name == "Via":
            vias.append(value)
        elif name in _ECHOED and name not in first:
            first[name] = value  # one of each: a duplicated To is not echoed twice
    top = _routable_via(vias[0]) if vias else None
    if top is None:
        return None
    headers = Headers([])
    headers.add("Via", top)
    try:
        rest = [element for value in vias for element in split_list(value)][1:]
        for element in rest:
            Via.parse(element)
    except RemoteProtocolError:
        rest = []  # the top Via alone still reaches the client; a bad one would not
    for element in rest:
        headers.add("Via", element)
    for name in ("From", "To", "Call-ID", "CSeq"):
        echoed = first.get(name)
        if echoed is None:
            continue
        if name == "To" and to_tag is not None and status > 100 and ";tag=" not in echoed:
            echoed = f"{echoed};tag={to_tag}"
        headers.add(name, echoed)
    return Response(status, reason, headers)


_LENIENT_VIA = re.compile(
    r"[ \t]*SIP[ \t]*/[ \t]*[0-9]+\.[0-9]+[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?", re.I)


def _routable_via(value: str) -> str | None:
    """The top Via as received when it parses; else its transport and sent-by alone
    (RFC 4475 §3.1.2.1 still wants a 400 for a Via with stray separators, §3.1.2.16
    a 505 for a request whose Via says SIP/7.0)."""
    try:
        top = split_list(value)[0]
        Via.parse(top)
        return top
    except RemoteProtocolError:
        pass
    m = _LENIENT_VIA.match(value)
    if m is None:
        return None
    try:
        via = Via(m.group(1).upper(), *parse_host(m.group(2) + (f":{m.group(3)}" if m.group(3)
                                                                   else "")))
    except RemoteProtocolError:
        return None
    return via.serialize()
