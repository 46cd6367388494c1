"""Message framing on stream transports (RFC 3261 §18.3): Content-Length decides.

Sans-I/O: feed bytes as they arrive, in any split; complete messages come out in
order. CRLF keepalives between messages (RFC 5626 §3.5.1) are absorbed and counted
so the transport can answer the double-CRLF ping with a single CRLF pong.

Two kinds of error. A message whose header section and Content-Length could be read
but which is otherwise malformed is consumed: the stream stays in step, and the
ParseError (with raw_headers for a 400) is reported in order with the messages
around it. Without a usable Content-Length, or past the size limit, the stream
cannot be resynchronised: the framer fails for good (`failed` is set) and the
connection should be closed after answering, if `raw_headers` allow it.
"""

from __future__ import annotations

from typing import NoReturn

from switch.sip.message import (
    HeaderFields,
    ParseError,
    SipMessage,
    find_blank_line,
    head_lines,
    parse_header_lines,
    parse_lines,
    raw_header_lines,
)


class StreamFramer:
    """Splits a byte stream into SIP messages."""

    def __init__(self, max_message_bytes: int = 65535) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._scan_from = 0  # where to resume looking for the empty line
        # The header section of the message being received, once complete.
        self._head: tuple[int, list[str], HeaderFields | ParseError, int] | None = None
        self._pending: ParseError | None = None
        self.failed: ParseError | None = None
        self.pings = 0
        self._keepalive_crlfs = 0

    def feed(self, data: bytes) -> list[SipMessage]:
        """Append bytes; return every complete message before the first error.

        An error raises ParseError. When complete messages precede it in the same
        feed, they are returned and the error is raised by the next call (feed(b"")
        will do); `has_pending_error` tells. After a fatal error every call raises it.
        """
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error
        messages: list[SipMessage] = []
        for item in self.feed_events(data):
            if isinstance(item, ParseError):
                if messages:
                    self._pending = item
                    return messages
                raise item
            messages.append(item)
        return messages

    @property
    def has_pending_error(self) -> bool:
        return self._pending is not None

    def feed_events(self, data: bytes) -> list[SipMessage | ParseError]:
        """Append bytes; return messages and recoverable errors in stream order. A
        fatal error ends the list (and `failed` is set); later calls return it again."""
        if self.failed is not None:
            return [self.failed]
        self._buffer += data
        events: list[SipMessage | ParseError] = []
        while True:
            try:
                message = self._next_message()
            except ParseError as exc:
                events.append(exc)
                if self.failed is not None:
                    return events
                continue
            if message is None:
                return events
            events.append(message)

    def _next_message(self) -> SipMessage | None:
        if self._head is None:
            self._skip_keepalives()
            if not self._buffer:
                return None
            self._head = self._read_head()
            if self._head is None:
                return None
        body_start, lines, fields, length = self._head
        total = body_start + length
        if len(self._buffer) < total:
            return None
        body = bytes(self._buffer[body_start:total])
        del self._buffer[:total]
        self._head = None
        self._scan_from = 0
        return parse_lines(lines, body, stream=True, fields=fields)

    def _read_head(self) -> tuple[int, list[str], HeaderFields | ParseError, int] | None:
        buffer = self._buffer
        found = find_blank_line(buffer, self._scan_from)
        if found is None:
            if len(buffer) > self.max_message_bytes:
                self._fail(ParseError(
                    f"header section exceeds {self.max_message_bytes} bytes", 513))
            self._scan_from = max(0, len(buffer) - 3)
            return None
        head_end, body_start = found
        try:
            lines = head_lines(bytes(buffer[:head_end]))
        except ParseError as exc:
            self._fail(exc)
        fields: HeaderFields | ParseError
        try:
            fields = parse_header_lines(lines)
            lengths = fields[1].get("Content-Length")
        except ParseError as exc:
            # Still frame it if a Content-Length can be read, so the stream keeps step.
            fields = exc
            lengths = [v for k, v in raw_header_lines(lines) if k == "Content-Length"]
        raw = raw_header_lines(lines) if lines[0][:4].upper() != "SIP/" else None
        if not lengths:
            self._fail(ParseError("missing Content-Length on a stream transport", 400, raw))
        text = lengths[0]
        if len(lengths) > 1 or not (text.isdigit() and text.isascii()):
            self._fail(ParseError(f"bad Content-Length {text[:40]!r} on a stream transport",
                                  400, raw))
        if len(text.lstrip("0")) > 10 or body_start + int(text) > self.max_message_bytes:
            self._fail(ParseError(f"message exceeds {self.max_message_bytes} bytes", 513, raw))
        return body_start, lines, fields, int(text)

    def _fail(self, error: ParseError) -> NoReturn:
        self.failed = error
        self._buffer.clear()
        raise error

    def _skip_keepalives(self) -> None:
        buffer = self._buffer
        stripped = 0
        while buffer[stripped : stripped + 2] == b"\r\n":
            stripped += 2
            # Every second CRLF in a row completes a double-CRLF ping, however split.
            self._keepalive_crlfs += 1
            if self._keepalive_crlfs == 2:
                self._keepalive_crlfs = 0
                self.pings += 1
        if stripped:
            del buffer[:stripped]
        if buffer and buffer[0] != 0x0D:  # a lone CR may still become a keepalive CRLF
            self._keepalive_crlfs = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)
