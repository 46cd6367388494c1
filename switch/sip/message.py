"""SIP requests and responses: parse and serialize (RFC 3261 §7, §20, §25).

`parse_message` takes one datagram (or one framed stream message) and returns a
`Request` or `Response`; anything malformed raises `ParseError`, which carries the
status to answer and, when the start line was a request, the raw headers needed to
build that answer (RFC 3261 §8.2: a 400 still echoes Via, From, To, Call-ID, CSeq).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypeVar

from switch.sip.errors import RemoteProtocolError
from switch.sip.headers import (
    LIST_HEADERS,
    CSeq,
    HeaderError,
    NameAddr,
    Via,
    canonical_name,
    is_token,
    split_list,
)
from switch.sip.status import reason_phrase
from switch.sip.uri import Uri, UriError, parse_uri

SIP_VERSION = "SIP/2.0"
T = TypeVar("T")


class ParseError(RemoteProtocolError):
    """Malformed message. `raw_headers` is set when a request line was read."""

    def __init__(self, message: str, status: int = 400,
                 raw_headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, status)
        self.raw_headers = raw_headers


class Headers:
    """Ordered (name, value) pairs with canonical names; one entry per list element."""

    __slots__ = ("_cache", "_items")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = items if items is not None else []
        self._cache: dict[str, object] = {}

    def get(self, name: str, default: str | None = None) -> str | None:
        name = canonical_name(name)
        for key, value in self._items:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = canonical_name(name)
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        self._cache.clear()
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._cache.clear()
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` by one, keeping the first one's position."""
        name = canonical_name(name)
        self._cache.clear()
        for i, (key, _) in enumerate(self._items):
            if key == name:
                self._items[i] = (name, value)
                self._items[i + 1 :] = [kv for kv in self._items[i + 1 :] if kv[0] != name]
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        name = canonical_name(name)
        self._cache.clear()
        self._items = [kv for kv in self._items if kv[0] != name]

    def remove_first(self, name: str) -> None:
        name = canonical_name(name)
        self._cache.clear()
        for i, (key, _) in enumerate(self._items):
            if key == name:
                del self._items[i]
                return

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """Memoise a structured view of a header until the headers change."""
        try:
            return self._cache[key]  # type: ignore[return-value]
        except KeyError:
            value = self._cache[key] = build()
            return value

    def copy(self) -> Headers:
        return Headers(list(self._items))


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
        """Wire bytes; Content-Length always states the body's real length."""
        lines = [self._start_line()]
        lines.extend(f"{k}: {v}" for k, v in self.headers if k != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


class Request(Message):
    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: Uri, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def _start_line(self) -> str:
        return f"{self.method} {self.uri.serialize()} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.headers.get('Call-ID')}>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Request) and self.method == other.method
                and self.uri == other.uri and self.headers == other.headers
                and self.body == other.body)


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
                and self.reason == other.reason and self.headers == other.headers
                and self.body == other.body)


SipMessage = Request | Response

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT = re.compile(r"\r?\n")
_STATUS_LINE = re.compile(r"^SIP/(\d+\.\d+) (\d{3}) (.*)$", re.I)
# Required in every request (RFC 3261 §8.1.1); Max-Forwards is tolerated if absent.
_REQUIRED = ("To", "From", "CSeq", "Call-ID", "Via")


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split the header section from the body at the first empty line."""
    m = _HEADER_END.search(data)
    if m is None:
        return data, b""
    return data[: m.start()], data[m.end() :]


def parse_message(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one message. Over UDP (`stream=False`) bytes past Content-Length are
    discarded (RFC 3261 §18.3); a body shorter than Content-Length is an error."""
    head_bytes, body = split_head(data)
    head = head_bytes.decode("utf-8", "surrogateescape")
    lines = _LINE_SPLIT.split(head)
    # Tolerate leading CRLFs (keepalives, RFC 3261 §7.5) before the start line.
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise ParseError("empty message")
    start = lines[0]
    request_parts: tuple[str, Uri, str] | None = None
    response_parts: tuple[int, str] | None = None
    if start.upper().startswith("SIP/"):
        response_parts = _parse_status_line(start)
    else:
        request_parts = _parse_request_line_syntax(start)
    raw_headers: list[tuple[str, str]] = []
    try:
        items = _parse_header_lines(lines[1:], raw_headers)
        headers = Headers(items)
        if request_parts is not None:
            method, uri, _ = request_parts
            message: SipMessage = Request(method, uri, headers)
        else:
            assert response_parts is not None
            message = Response(response_parts[0], response_parts[1], headers)
        message.body = _frame_body(headers, body, stream)
        _validate(message)
        if request_parts is not None and request_parts[2] != SIP_VERSION:
            # Answerable: the headers were read so the 505 can be routed back.
            raise ParseError(f"unsupported SIP version {request_parts[2]!r}", 505)
    except ParseError as exc:
        if request_parts is not None and exc.raw_headers is None:
            exc.raw_headers = raw_headers
        raise
    except RemoteProtocolError as exc:
        raise ParseError(str(exc), exc.status,
                         raw_headers if request_parts is not None else None) from exc
    return message


def _parse_status_line(line: str) -> tuple[int, str]:
    m = _STATUS_LINE.match(line)
    if not m:
        raise ParseError(f"bad status line {line[:80]!r}")
    if m.group(1) != "2.0":
        raise ParseError(f"unsupported SIP version in {line[:80]!r}", 505)
    status = int(m.group(2))
    if not 100 <= status <= 699:
        raise ParseError(f"status code out of range: {status}")
    return status, m.group(3)


def _parse_request_line_syntax(line: str) -> tuple[str, Uri, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise ParseError(f"bad request line {line[:80]!r}")
    method, uri_text, version = parts
    if not is_token(method):
        raise ParseError(f"bad method {method[:40]!r}")
    if not version.upper().startswith("SIP/"):
        raise ParseError(f"bad request line {line[:80]!r}")
    try:
        uri = parse_uri(uri_text)
    except UriError as exc:
        raise ParseError(f"bad Request-URI: {exc}") from exc
    return method, uri, version.upper()


def _parse_header_lines(lines: list[str], raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # Unfold continuation lines (RFC 3261 §7.3.1: LWS includes CRLF + SP/HT).
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise ParseError("header continuation before any header")
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    items: list[tuple[str, str]] = []
    for line in unfolded:
        colon = line.find(":")
        if colon <= 0:
            raise ParseError(f"bad header line {line[:80]!r}")
        name = line[:colon].rstrip(" \t")
        if not is_token(name):
            raise ParseError(f"bad header name {name[:40]!r}")
        name = canonical_name(name)
        value = line[colon + 1 :].strip(" \t")
        raw.append((name, value))
        if name in LIST_HEADERS:
            for element in split_list(value):
                if element:
                    items.append((name, element))
                elif name in ("Via", "Contact", "Route", "Record-Route"):
                    raise ParseError(f"empty element in {name} header")
        else:
            items.append((name, value))
    return items


def _frame_body(headers: Headers, body: bytes, stream: bool) -> bytes:
    lengths = headers.get_all("Content-Length")
    if len(lengths) > 1:
        raise ParseError("more than one Content-Length header")
    if not lengths:
        if stream:
            raise ParseError("missing Content-Length on a stream transport")
        return body
    text = lengths[0].strip()
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"bad Content-Length {text!r}")
    length = int(text)
    if length > len(body):
        raise ParseError(f"Content-Length {length} exceeds the {len(body)} bytes received")
    return body[:length]


def _validate(message: SipMessage) -> None:
    headers = message.headers
    if isinstance(message, Request):
        for name in _REQUIRED:
            if headers.get(name) is None:
                raise ParseError(f"missing {name} header")
    # Parse what every layer depends on now, so later layers never see a bad value.
    message.vias  # noqa: B018
    if not message.vias:
        raise ParseError("missing Via header")
    message.from_  # noqa: B018
    message.to  # noqa: B018
    cseq = message.cseq
    if len(headers.get_all("Call-ID")) != 1 or len(headers.get_all("CSeq")) != 1:
        raise ParseError("duplicate Call-ID or CSeq header")
    if len(headers.get_all("From")) != 1 or len(headers.get_all("To")) != 1:
        raise ParseError("duplicate From or To header")
    if not message.call_id or any(ch.isspace() for ch in message.call_id):
        raise ParseError(f"bad Call-ID {message.call_id!r}")
    message.max_forwards  # noqa: B018
    message.expires  # noqa: B018
    if isinstance(message, Request):
        if cseq.method != message.method:
            raise ParseError(f"CSeq method {cseq.method} does not match {message.method}")
        message.contacts  # noqa: B018


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
                         reason: str | None = None) -> Response | None:
    """Answer a request that failed to parse, from its raw headers. None when the
    response could not be routed (no usable Via) or matched (no Call-ID/CSeq)."""
    echoed = [(k, v) for k, v in raw_headers if k in _ECHOED]
    names = {k for k, _ in echoed}
    if not {"Via", "Call-ID", "CSeq", "From", "To"} <= names:
        return None
    headers = Headers([])
    for name, value in echoed:
        if name == "Via":
            for element in split_list(value):
                headers.add(name, element)
        else:
            headers.add(name, value)
    try:
        Via.parse(headers.get("Via") or "")
    except RemoteProtocolError:
        return None
    return Response(status, reason, headers)
