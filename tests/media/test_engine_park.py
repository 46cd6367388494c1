"""A parked caller (music looping toward them) taken off park into a bridge: the engine
switches the leg's source from the player to relay within a tick, and the caller's
stream goes on with one SSRC, the next sequence number and a timestamp one frame on (a
marker says a new source began): no gap, no click. Over loopback, paced by the music."""

from itertools import pairwise

import pytest

from switch.media import MediaEngine
from tests.media.phones import HOST, Phone, fields, rtp

pytestmark = pytest.mark.integration

FRAME = 160
MUSIC = bytes(range(256)) * 10  # 16-bit PCM that is not silence, 160 ms


def test_unpark_into_a_bridge_keeps_the_callers_stream_continuous(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, agent = phones[:2]
    parked, agent_leg = engine.open_leg(group="park"), engine.open_leg(group="park")
    engine.set_remote(parked, HOST, caller.port)
    engine.set_remote(agent_leg, HOST, agent.port)
    engine.play(parked, [MUSIC], loop=True)
    heard = [fields(caller.recv()) for _ in range(10)]  # the music, one per tick
    # The bridge and the end of the music are queued together, applied between two
    # ticks; then the agent talks.
    engine.bridge(parked, agent_leg)
    engine.stop_playing(parked)
    engine.sync()
    for k in range(20):
        agent.send(engine, agent_leg, rtp(500 + k, 8000 + FRAME * k, 0xB, b"\x55" * FRAME))
        heard.append(fields(caller.recv()))
    relayed = [n for n, packet in enumerate(heard) if packet[5] == b"\x55" * FRAME]
    assert relayed, "the agent was never heard"
    first = relayed[0]
    assert all(packet[5] == b"\x55" * FRAME for packet in heard[first:])  # relay from then on
    assert len({packet[4] for packet in heard}) == 1  # one SSRC toward the caller
    seqs = [packet[2] for packet in heard]
    assert all((b - a) % 65536 == 1 for a, b in pairwise(seqs))
    # Music until the switch-over, the agent from the next packet: no frame missing
    # between them (the timestamp moves on by the time elapsed), marked.
    before, after = heard[first - 1], heard[first]
    assert FRAME <= (after[3] - before[3]) % 2**32 <= 2 * FRAME and after[1]
    assert all((b[3] - a[3]) % 2**32 == FRAME for a, b in pairwise(heard[first:]))
