"""SipTransport over real loopback sockets: what a start that cannot bind leaves behind."""

from __future__ import annotations

import errno
import socket

import pytest

from switch.sip.transport import SipTransport


async def test_a_tcp_port_in_use_fails_the_start_and_frees_the_udp_socket() -> None:
    # UDP and TCP share one port; when TCP cannot have it, nothing may stay bound.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        transport = SipTransport(lambda message, peer: None, lambda error, peer: None)
        with pytest.raises(OSError) as failure:
            await transport.start("127.0.0.1", port)
        assert failure.value.errno == errno.EADDRINUSE
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", port))  # the UDP side was released
        probe.close()
    finally:
        taken.close()
