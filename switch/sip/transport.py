"""UDP and TCP transports on asyncio: the only module of switch.sip that owns sockets.

Bytes in, parsed messages out (RFC 3261 §18). The transport stamps `received` and
`rport` into the top Via of every request (§18.2.1, RFC 3581) so responses find a
phone behind NAT, frames TCP streams by Content-Length, keeps connections for reuse
(§18.3: responses go back on the connection the request came in on), and enforces
limits on message size and on the number of open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from switch.sip.framing import StreamFramer
from switch.sip.message import ParseError, Request, SipMessage, parse_message
from switch.sip.peer import Outgoing, Peer

log = logging.getLogger(__name__)

MessageHandler = Callable[[SipMessage, Peer], None]
ErrorHandler = Callable[[ParseError, Peer], None]


def stamp_via(request: Request, peer: Peer) -> None:
    """Write where the request really came from into its top Via, replacing whatever
    the sender wrote there: §18.2.1 `received` when sent-by differs from the source,
    RFC 3581 `rport` (and then always `received`) when the client asked for it.

    A `received` or `rport` value in a request is the sender's claim, not a fact: left
    in place it would aim our responses at any host (reflection) and make bans and logs
    blame an address of the sender's choosing. So a sender-written `received` is
    overwritten with the source, and an `rport` with a value is treated as a request.
    """
    via = request.top_via
    params = via.params
    changes: dict[str, str | None] = {}
    wants_rport = "rport" in params
    if wants_rport and params["rport"] != str(peer.port):
        changes["rport"] = str(peer.port)
    if ((wants_rport or "received" in params or via.host.strip("[]") != peer.host)
            and params.get("received") != peer.host):
        changes["received"] = peer.host
    if changes:
        request.headers.replace_first("Via", via.with_params(**changes).serialize())


@dataclass(frozen=True, slots=True)
class TransportLimits:
    max_message_bytes: int = 65535
    max_tcp_connections: int = 1024

UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
PORT_ZERO_ATTEMPTS = 5  # tries to find a port free for both UDP and TCP


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not a subclass of asyncio.DatagramTransport.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        peer = Peer("UDP", str(addr[0]), int(addr[1]))
        self.owner.handle_bytes(data, peer)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that went away: nothing to do per packet.
        log.debug("UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport, connection_id: int) -> None:
        self.owner = owner
        self.connection_id = connection_id
        self.framer = StreamFramer(owner.limits.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport has the Transport interface without subclassing it.
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        host, port = stream.get_extra_info("peername")[:2]
        self.peer = Peer("TCP", host, port, self.connection_id)
        if len(self.owner.connections) >= self.owner.limits.max_tcp_connections:
            log.warning("refusing TCP connection from %s:%s: connection limit", host, port)
            stream.abort()
            return
        self.owner.connections[self.connection_id] = self
        self.owner.by_address[(host, port)] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        events = self.framer.feed_events(data)
        if self.framer.pings:
            self.framer.pings = 0
            self.transport.write(b"\r\n")  # RFC 5626 §4.4.1 pong
        for event in events:
            if isinstance(event, ParseError):
                self.owner.on_error(event, self.peer)
            else:
                self.owner.deliver(event, self.peer)
        if self.framer.failed is not None:
            # Lost framing (no or bad Content-Length, over the size limit): the stream
            # cannot be resynchronised, so close it after answering what we could.
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.connections.pop(self.connection_id, None)
        if self.peer is not None:
            key = (self.peer.host, self.peer.port)
            if self.owner.by_address.get(key) is self:
                del self.owner.by_address[key]

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class SipTransport:
    """Listens on UDP and TCP on one address; `send` routes an Outgoing."""

    def __init__(self, on_message: MessageHandler, on_error: ErrorHandler,
                 limits: TransportLimits | None = None) -> None:
        self.on_message = on_message
        self.on_error = on_error
        self.limits = limits or TransportLimits()
        self.connections: dict[int, _TcpConnection] = {}
        self.by_address: dict[tuple[str, int], _TcpConnection] = {}
        self._next_connection_id = 1
        self._udp: _UdpProtocol | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._pending_connects: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._queued: dict[tuple[str, int], list[bytes]] = {}
        self.addresses: list[tuple[str, str, int]] = []
        self.dropped_oversize = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on UDP and TCP, on the same port. With port 0 the kernel picks a free
        UDP port, which TCP may still have in use (another program's connection): then
        another port is tried."""
        attempts = PORT_ZERO_ATTEMPTS if port == 0 else 1
        for attempt in range(1, attempts + 1):
            try:
                await self._start_on(host, port)
                return
            except OSError as exc:
                if attempt == attempts or exc.errno != errno.EADDRINUSE:
                    raise

    async def _start_on(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        udp_transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port))
        # uvloop calls connection_made later; the returned transport is the same one.
        protocol.transport = udp_transport
        sock = udp_transport.get_extra_info("socket")
        if sock is not None:
            # A trunk's burst of INVITEs (or a few hundred phones re-registering at once)
            # must wait in the kernel while the loop is busy, not be dropped and
            # retransmitted 500 ms later. The kernel caps this at net.core.rmem_max.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)
        bound = udp_transport.get_extra_info("sockname")
        try:
            server = await loop.create_server(self._new_connection, host, bound[1],
                                              reuse_address=True)
        except OSError:
            udp_transport.close()
            await asyncio.sleep(0)  # the loop closes the socket on its next turn: let it
            raise
        self._udp = protocol
        self._servers.append(server)
        self.addresses = [("UDP", bound[0], bound[1]), ("TCP", bound[0], bound[1])]

    @property
    def port(self) -> int:
        return self.addresses[0][2]

    def _new_connection(self) -> _TcpConnection:
        connection = _TcpConnection(self, self._next_connection_id)
        self._next_connection_id += 1
        return connection

    def handle_bytes(self, data: bytes, peer: Peer) -> None:
        if len(data) > self.limits.max_message_bytes:
            self.dropped_oversize += 1
            return
        if not data.strip(b"\r\n\x00 "):
            return  # keepalive datagram
        try:
            message = parse_message(data)
        except ParseError as exc:
            self.on_error(exc, peer)
            return
        self.deliver(message, peer)

    def deliver(self, message: SipMessage, peer: Peer) -> None:
        if isinstance(message, Request):
            stamp_via(message, peer)
        self.on_message(message, peer)

    def send(self, outgoing: Outgoing) -> None:
        peer = outgoing.peer
        if peer.transport == "UDP":
            if self._udp is not None and self._udp.transport is not None:
                self._udp.transport.sendto(outgoing.data, (peer.host, peer.port))
            return
        connection = (self.connections.get(peer.connection_id)
                      if peer.connection_id is not None else None)
        if connection is None:
            connection = self.by_address.get((peer.host, peer.port))
        if connection is not None:
            connection.send(outgoing.data)
            return
        self._connect_and_send(peer, outgoing.data)

    def _connect_and_send(self, peer: Peer, data: bytes) -> None:
        key = (peer.host, peer.port)
        self._queued.setdefault(key, []).append(data)
        if key not in self._pending_connects:
            self._pending_connects[key] = asyncio.ensure_future(self._connect(key))

    async def _connect(self, key: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(self._new_connection, *key)
            for data in self._queued.pop(key, []):
                connection.send(data)
        except OSError as exc:
            log.info("TCP connect to %s:%s failed: %s", key[0], key[1], exc)
            self._queued.pop(key, None)
        finally:
            self._pending_connects.pop(key, None)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.close()
        for task in list(self._pending_connects.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
