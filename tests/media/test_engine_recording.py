"""A call's one recording while its parties change and while it is paused, over real
loopback sockets: retarget_recording feeds the same file from other legs (a transfer),
pause_recording writes silence so the file's timeline stays true.

Paced like tests/media/test_engine_media.py: a clock leg loops a silent prompt toward a
clock phone, one packet per engine tick; engine.sync() before packets must meet a
command's effect.
"""

import random
import struct
import wave
from pathlib import Path

import pytest

from switch.media import MediaEngine, MediaError, ulaw_decode
from tests.media.phones import HOST, Phone, rtp
from tests.media.test_engine_media import Clock, call

pytestmark = pytest.mark.integration

FRAME = 160


def recorded_call(engine: MediaEngine, customer: Phone, agent: Phone, clock_phone: Phone,
                  group: str) -> tuple[Clock, int, int]:
    clock = Clock(engine, clock_phone, group=group)
    leg_c, leg_a = call(engine, customer, agent, group)
    return clock, leg_c, leg_a


def talk(engine: MediaEngine, clock: Clock, pairs: list[tuple[Phone, int, list[bytes]]],
         seq0: int) -> None:
    """Each phone sends its payloads, one per engine tick, then the jitter buffers drain
    for 15 ticks: the next talk starts at seq0 + 35 (its timestamps count those ticks,
    as a phone's would)."""
    for k in range(len(pairs[0][2])):
        clock.tick()
        for n, (phone, leg, payloads) in enumerate(pairs):
            phone.send(engine, leg, rtp(seq0 + k, 160 * (seq0 + k), 0xA0 + n, payloads[k]))
    clock.tick(15)


def channels(path: Path) -> tuple[bytes, bytes]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        data = wav.readframes(wav.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    return (struct.pack(f"<{len(samples) // 2}h", *samples[0::2]),
            struct.pack(f"<{len(samples) // 2}h", *samples[1::2]))


def at(channel: bytes, pcm: bytes) -> int:
    """Sample offset of `pcm` in `channel` (it must be there, sample-aligned)."""
    offset = channel.find(pcm)
    assert offset >= 0 and offset % 2 == 0
    return offset // 2


def test_retargeted_recording_goes_on_in_the_same_file_with_the_new_party(
    engine, phones, tmp_path: Path
) -> None:
    customer, agent, other_agent, clock_phone = phones[:4]
    clock, leg_c, leg_a = recorded_call(engine, customer, agent, clock_phone, "rec")
    rng = random.Random(3)
    before = [[rng.randbytes(FRAME) for _ in range(20)] for _ in range(2)]
    after = [[rng.randbytes(FRAME) for _ in range(20)] for _ in range(2)]
    path = tmp_path / "call.wav"
    rec = engine.record(leg_c, leg_a, str(path))
    engine.sync()
    talk(engine, clock, [(customer, leg_c, before[0]), (agent, leg_a, before[1])], 0)
    # A transfer: the customer is bridged to another agent, the first one leaves.
    leg_b = engine.open_leg(group="rec")
    engine.set_remote(leg_b, HOST, other_agent.port)
    engine.unbridge(leg_c)
    engine.bridge(leg_c, leg_b)
    engine.retarget_recording(rec, leg_c, leg_b)
    engine.close_leg(leg_a)  # no longer feeds it: the recording goes on
    engine.sync()
    talk(engine, clock, [(customer, leg_c, after[0]), (other_agent, leg_b, after[1])], 35)
    engine.stop_recording(rec)
    left, right = channels(path)
    assert at(left, ulaw_decode(b"".join(before[0]))) \
        < at(left, ulaw_decode(b"".join(after[0])))
    assert at(right, ulaw_decode(b"".join(before[1]))) \
        < at(right, ulaw_decode(b"".join(after[1])))
    assert engine.stats()["recordings"] == 0


def test_an_added_party_is_recorded_on_the_agents_channel_until_let_go(
    engine, phones, tmp_path: Path
) -> None:
    # A supervisor barges in: their voice joins the right channel (summed with the
    # agent's, here silent); once the call lets them go (back to listening, say) what
    # they send is no longer recorded, and closing their leg does not end the recording.
    customer, agent, supervisor, clock_phone = phones[:4]
    clock, leg_c, leg_a = recorded_call(engine, customer, agent, clock_phone, "rec")
    leg_s = engine.open_leg(group="rec")
    engine.set_remote(leg_s, HOST, supervisor.port)
    rng = random.Random(5)
    silent = [b"\xff" * FRAME] * 20  # mu-law zero
    barge = [[rng.randbytes(FRAME) for _ in range(20)] for _ in range(2)]
    after = [[rng.randbytes(FRAME) for _ in range(20)] for _ in range(2)]
    path = tmp_path / "call.wav"
    rec = engine.record(leg_c, leg_a, str(path))
    engine.retarget_recording(rec, leg_c, leg_a, [leg_s])
    engine.sync()
    talk(engine, clock, [(customer, leg_c, barge[0]), (agent, leg_a, silent),
                         (supervisor, leg_s, barge[1])], 0)
    engine.retarget_recording(rec, leg_c, leg_a)
    engine.sync()
    talk(engine, clock, [(customer, leg_c, after[0]), (agent, leg_a, silent),
                         (supervisor, leg_s, after[1])], 35)
    engine.close_leg(leg_s)
    engine.sync()
    assert engine.stats()["recordings"] == 1
    engine.stop_recording(rec)
    left, right = channels(path)
    assert at(right, ulaw_decode(b"".join(barge[1]))) >= 0
    assert at(left, ulaw_decode(b"".join(barge[0]))) < at(left, ulaw_decode(b"".join(after[0])))
    assert right.find(ulaw_decode(after[1][0])) < 0  # let go: not recorded


def test_retarget_refusals(engine) -> None:
    leg1, leg2 = engine.open_leg(), engine.open_leg()
    with pytest.raises(MediaError, match=r"^no such recording: 99$"):
        engine.retarget_recording(99, leg1, leg2)
    with pytest.raises(MediaError, match=r"^no such recording: 99$"):
        engine.pause_recording(99, True)
    rec = engine.record(leg1, None, "/dev/null")
    with pytest.raises(ValueError, match=rf"^cannot record leg {leg2} against itself$"):
        engine.retarget_recording(rec, leg2, leg2)
    with pytest.raises(ValueError, match=r"^paused must be a bool, got 1$"):
        engine.pause_recording(rec, 1)
    with pytest.raises(MediaError, match=r"^no such leg: 12345$"):
        engine.retarget_recording(rec, leg1, 12345)
    with pytest.raises(ValueError, match=r"^extra legs must differ"):
        engine.retarget_recording(rec, leg1, leg2, [leg2])
    with pytest.raises(ValueError, match=r"^at most 4 extra legs, got 5$"):
        engine.retarget_recording(rec, leg1, None, [engine.open_leg() for _ in range(5)])
    with pytest.raises(MediaError, match=r"^no such leg: 12345$"):
        engine.retarget_recording(rec, leg1, leg2, [12345])
    engine.stop_recording(rec)


def test_paused_recording_is_silence_for_as_long_as_the_pause(
    engine, phones, tmp_path: Path
) -> None:
    customer, agent, clock_phone = phones[:3]
    clock, leg_c, leg_a = recorded_call(engine, customer, agent, clock_phone, "pause")
    rng = random.Random(4)
    spoken = [[[rng.randbytes(FRAME) for _ in range(20)] for _ in range(2)]
              for _ in range(3)]
    path = tmp_path / "call.wav"
    rec = engine.record(leg_c, leg_a, str(path))
    engine.sync()
    talk(engine, clock, [(customer, leg_c, spoken[0][0]), (agent, leg_a, spoken[0][1])], 0)
    engine.pause_recording(rec, True)
    engine.sync()
    talk(engine, clock, [(customer, leg_c, spoken[1][0]), (agent, leg_a, spoken[1][1])], 35)
    engine.pause_recording(rec, False)
    engine.sync()
    talk(engine, clock, [(customer, leg_c, spoken[2][0]), (agent, leg_a, spoken[2][1])], 70)
    engine.stop_recording(rec)
    left, right = channels(path)
    for channel, side in ((left, 0), (right, 1)):
        first = at(channel, ulaw_decode(b"".join(spoken[0][side])))
        last = at(channel, ulaw_decode(b"".join(spoken[2][side])))
        assert ulaw_decode(b"".join(spoken[1][side])) not in channel  # the card number
        # The pause is there as silence: its 20 packets plus the drain ticks around it.
        gap = channel[2 * (first + 20 * FRAME):2 * last]
        assert len(gap) >= 2 * 35 * FRAME
        assert bytes(2 * 20 * FRAME) in gap
