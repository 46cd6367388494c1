"""Arbitrary datagrams through a real socket into a bridged leg: the engine counts each
one exactly once, never crashes, and a valid packet sent afterwards is still relayed."""

import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.media import MediaEngine

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
WAIT_S = 5.0
ACCOUNTED = ("received", "dropped_invalid", "dropped_stranger", "rtcp_received")


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(WAIT_S)
    return sock


@pytest.fixture(scope="module")
def bridged() -> Iterator[tuple[MediaEngine, int, socket.socket, socket.socket]]:
    engine = MediaEngine(workers=1, port_range=(7400, 7499))
    engine.start()
    a, b = udp(), udp()
    leg1, leg2 = engine.open_leg(rtcp_mux=True), engine.open_leg()
    engine.set_remote(leg1, HOST, a.getsockname()[1])
    engine.set_remote(leg2, HOST, b.getsockname()[1], payload_type=8)  # transcoding path
    engine.bridge(leg1, leg2)
    engine.sync()
    yield engine, leg1, a, b
    engine.stop()
    a.close()
    b.close()


# Mostly RTP-shaped bytes (version 2, random flags and lengths) plus pure noise.
rtp_like = st.builds(
    lambda first, rest: bytes([0x80 | (first & 0x3F)]) + rest,
    st.integers(0, 255),
    st.binary(max_size=64),
)
datagrams = st.lists(st.one_of(rtp_like, st.binary(max_size=1600)), max_size=8)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(datagrams)
def test_arbitrary_datagrams_are_accounted_for_and_relay_survives(bridged, sent) -> None:
    engine, leg1, a, b = bridged
    before = engine.leg_stats(leg1)
    port = engine.leg_port(leg1)
    for datagram in sent:
        a.sendto(datagram, (HOST, port))
    sentinel = b"sentinel-" + bytes(8)
    a.sendto(struct.pack("!BBHII", 0x80, 8, 1, 0, 0x5E) + sentinel, (HOST, port))
    while True:  # relayed fuzz packets may come first; the sentinel is last
        data = b.recv(4096)
        if data.endswith(sentinel) and len(data) == 12 + len(sentinel):
            break
    after = engine.leg_stats(leg1)
    delta = {name: after[name] - before[name] for name in after}
    assert sum(delta[name] for name in ACCOUNTED) == len(sent) + 1
    assert delta["relayed"] == delta["received"]
