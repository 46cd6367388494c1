"""Small helpers shared by the tests that drive external SIP peers."""

from __future__ import annotations

import re
import select
import socket
import time
from typing import IO

from switch.sip.message import Response, SipMessage, parse_message


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(stream: IO[str], pattern: str, timeout_s: float = 20.0) -> str:
    """Block on the stream until a line matches (an event, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    regex = re.compile(pattern)
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([stream], [], [], max(remaining, 0))
        if not ready:
            raise TimeoutError(f"no line matching {pattern!r}; saw:\n{''.join(seen[-30:])}")
        line = stream.readline()
        if not line:
            raise EOFError(f"stream ended before {pattern!r}; saw:\n{''.join(seen[-30:])}")
        seen.append(line)
        if regex.search(line):
            return line


class UdpClient:
    """A bare UDP socket for sending hand-written SIP and reading what comes back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    def receive(self, timeout_s: float = 5.0) -> SipMessage | None:
        self.sock.settimeout(timeout_s)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return parse_message(data)

    def request(self, data: bytes, port: int, timeout_s: float = 5.0) -> Response | None:
        self.send(data, port)
        while True:
            message = self.receive(timeout_s)
            if message is None or isinstance(message, Response):
                return message

    def close(self) -> None:
        self.sock.close()
