"""Message framing on stream transports (RFC 3261 §18.3): Content-Length decides.

Sans-I/O: feed bytes as they arrive, in any split; complete messages come out in
order. CRLF keepalives between messages (RFC 5626 §3.5.1) are absorbed and counted
so the transport can answer the double-CRLF ping with a single CRLF pong.
"""

from __future__ import annotations

import re

from switch.sip.message import ParseError, SipMessage, parse_message

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.I | re.M)


class StreamFramer:
    """Splits a byte stream into SIP messages."""

    def __init__(self, max_message_bytes: int = 65535) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self.pings = 0

    def feed(self, data: bytes) -> list[SipMessage]:
        """Append bytes; return every complete message. Raises ParseError when the
        stream cannot be resynchronised (the connection should then be closed)."""
        self._buffer += data
        messages: list[SipMessage] = []
        while True:
            self._skip_keepalives()
            if not self._buffer:
                break
            head = _HEADER_END.search(self._buffer)
            if head is None:
                if len(self._buffer) > self.max_message_bytes:
                    raise ParseError("message header exceeds the size limit", 513)
                break
            match = _CONTENT_LENGTH.search(self._buffer, 0, head.start())
            if match is None:
                raise ParseError("missing Content-Length on a stream transport")
            total = head.end() + int(match.group(1))
            if total > self.max_message_bytes:
                raise ParseError("message exceeds the size limit", 513)
            if len(self._buffer) < total:
                break
            chunk = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(parse_message(chunk, stream=True))
        return messages

    def _skip_keepalives(self) -> None:
        stripped = 0
        while self._buffer[stripped : stripped + 2] == b"\r\n":
            stripped += 2
        if stripped:
            if stripped >= 4:
                self.pings += 1
            del self._buffer[:stripped]

    @property
    def buffered(self) -> int:
        return len(self._buffer)
