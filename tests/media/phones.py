"""Test phones for the media engine's loopback tests: a UDP socket that sends RTP to an
engine leg and receives what the engine sends it, with a recv timeout instead of sleeps."""

import select
import socket
import struct
from typing import Protocol

HOST = "127.0.0.1"
WAIT_S = 5.0


class HasLegPorts(Protocol):
    def leg_port(self, leg: int) -> int: ...


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\xff" * 160, pt: int = 0,
        marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


def fields(packet: bytes) -> tuple[int, bool, int, int, int, bytes]:
    """(payload type, marker, seq, ts, ssrc, payload) of a packet with a plain header."""
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", packet[:12])
    assert b0 >> 6 == 2
    return b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, packet[12:]


class Phone:
    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port))
        self.sock.settimeout(WAIT_S)
        self.port: int = self.sock.getsockname()[1]

    def send(self, engine: HasLegPorts, leg: int, packet: bytes) -> None:
        self.sock.sendto(packet, (HOST, engine.leg_port(leg)))

    def recv(self) -> bytes:
        return self.sock.recv(4096)

    def drain(self) -> list[bytes]:
        got = []
        while select.select([self.sock], [], [], 0)[0]:
            got.append(self.sock.recv(4096))
        return got

    def close(self) -> None:
        self.sock.close()
