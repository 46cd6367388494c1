"""Small helpers shared by the tests that drive external SIP peers."""

from __future__ import annotations

import os
import re
import select
import socket
import time
from typing import IO

from switch.sip import Headers, ParseError, Response, SipMessage, parse_message


def _loose_response(data: bytes) -> Response | None:
    text = data.decode("utf-8", "replace")
    status = re.match(r"SIP/2\.0 (\d{3}) ?([^\r\n]*)", text)
    if status is None:
        return None
    call_id = re.search(r"^(?:Call-ID|i)\s*:\s*(\S+)", text, re.M | re.I)
    headers = Headers([("Call-ID", call_id.group(1))] if call_id else [])
    return Response(int(status.group(1)), status.group(2), headers)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LineReader:
    """Reads lines from a pipe's file descriptor without Python's buffering, so
    select() tells the truth about what is left to read."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.lines: list[str] = []

    def read_line(self, deadline: float) -> str | None:
        """The next line, or None at end of stream; TimeoutError past the deadline."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError("no complete line before the deadline")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                if not self.buffer:
                    return None
                self.buffer += b"\n"
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        line = raw.decode("utf-8", "replace") + "\n"
        self.lines.append(line)
        return line

    def wait_for(self, pattern: str, timeout_s: float = 20.0) -> str:
        """Block until a line matches (an event, not a sleep)."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while True:
            try:
                line = self.read_line(deadline)
            except TimeoutError:
                raise TimeoutError(f"no line matching {pattern!r}; saw:\n"
                                   f"{''.join(self.lines[-30:])}") from None
            if line is None:
                raise EOFError(f"stream ended before {pattern!r}; saw:\n"
                               f"{''.join(self.lines[-30:])}")
            if regex.search(line):
                return line


class UdpClient:
    """A bare UDP socket for sending hand-written SIP and reading what comes back."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = int(self.sock.getsockname()[1])

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    def receive(self, timeout_s: float = 5.0) -> SipMessage | None:
        self.sock.settimeout(timeout_s)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        try:
            return parse_message(data)
        except ParseError:
            # A 400 echoes the bad header it complains about, so it may not parse:
            # keep what a test needs, the status and the Call-ID.
            return _loose_response(data)

    def queued(self) -> list[bytes]:
        """Datagrams already waiting on the socket, without waiting for more (loopback
        delivers within sendto, so what was sent before now is here)."""
        self.sock.setblocking(False)
        waiting = []
        try:
            while True:
                waiting.append(self.sock.recv(65535))
        except BlockingIOError:
            return waiting
        finally:
            self.sock.setblocking(True)

    def request(self, data: bytes, port: int, timeout_s: float = 5.0) -> Response | None:
        self.send(data, port)
        while True:
            message = self.receive(timeout_s)
            if message is None or isinstance(message, Response):
                return message

    def close(self) -> None:
        self.sock.close()
