"""Jitter buffer driven by explicit arrival times and 20 ms ticks (no clock)."""

import struct
from collections.abc import Iterable
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media.jitterbuffer import JitterBuffer, Pulled

FRAME_US = 20_000
TICK_PHASE_US = 5_000  # ticks fall 5 ms after each nominal arrival


Packet = tuple[int, int, int, bytes]  # arrival_us, seq, timestamp, payload


def stream(n: int, *, first_seq: int = 0, first_ts: int = 0, start_us: int = 0) -> list[Packet]:
    """n packets sent every 20 ms, each arriving exactly on time; payload = its index."""
    return [
        (
            start_us + i * FRAME_US,
            (first_seq + i) & 0xFFFF,
            (first_ts + 160 * i) & 0xFFFFFFFF,
            struct.pack("!I", i),
        )
        for i in range(n)
    ]


def run(jb: JitterBuffer, packets: Iterable[Packet], n_ticks: int) -> list[Pulled]:
    """Insert every packet that arrived by each tick, then pull that tick's frame."""
    pending = sorted(packets, key=lambda p: p[0])
    out = []
    for tick in range(n_ticks):
        now_us = TICK_PHASE_US + tick * FRAME_US
        while pending and pending[0][0] <= now_us:
            arrival_us, seq, ts, payload = pending.pop(0)
            jb.insert(seq, ts, payload, arrival_us)
        out.append(jb.pull(now_us))
    return out


def played(out: list[Pulled]) -> list[int]:
    return [p.seq for p in out if p.status == "frame"]


def test_in_order_stream_plays_in_order_with_constant_delay() -> None:
    jb = JitterBuffer()
    out = run(jb, stream(100), 105)
    assert out[0] == Pulled("empty", None, b"")
    # Frame k plays at tick k + 1 (25 ms after it arrived): one constant delay throughout.
    assert [p.seq for p in out[1:101]] == list(range(100))
    assert [p.payload for p in out[1:101]] == [struct.pack("!I", i) for i in range(100)]
    assert jb.stats == {
        "received": 100,
        "played": 100,
        "lost": 0,
        "late": 0,
        "duplicates": 0,
        "resyncs": 0,
        "skipped": 0,
        "empty": 5,
    }
    assert jb.delay_us == jb.target_delay_us == 20_000


def test_sequence_numbers_wrap() -> None:
    out = run(JitterBuffer(), stream(10, first_seq=65530, first_ts=2**32 - 800), 12)
    assert played(out) == [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3]


def test_reordering_within_the_target_is_repaired() -> None:
    packets = stream(100)
    for i in range(10, 90, 8):
        # Packet i comes 1 ms after packet i + 1.
        _, seq, ts, payload = packets[i]
        packets[i] = (packets[i + 1][0] + 1_000, seq, ts, payload)
    jb = JitterBuffer()
    out = run(jb, packets, 110)
    assert played(out) == list(range(100))
    assert jb.stats["lost"] == jb.stats["late"] == 0


def test_missing_frames_are_reported_lost_in_their_slot() -> None:
    packets = [p for p in stream(30) if p[1] not in (10, 11)]
    jb = JitterBuffer()
    out = run(jb, packets, 32)
    # At frame 10's tick nothing after it had arrived: empty (silence), not yet a loss.
    assert out[11] == Pulled("empty", None, b"")
    # By frame 11's tick frame 12 was in: 11 is known lost, and so is 10.
    assert out[12] == Pulled("lost", 11, b"")
    assert played(out) == [s for s in range(30) if s not in (10, 11)]
    assert jb.stats["lost"] == 2


def test_loss_inside_the_buffer_is_reported_lost_at_its_tick() -> None:
    packets = [p for p in stream(30) if p[1] != 10]
    jb = JitterBuffer()
    # With 30 ms of jitter seen once, the delay holds frame 11 before frame 10 is due.
    jb.insert(0, 0, b"x", 0)
    jb.insert(1, 160, b"y", 50_000)
    out = run(jb, [p for p in packets if p[1] >= 2], 32)
    assert Pulled("lost", 10, b"") in out
    assert jb.stats["lost"] == 1


def test_packet_behind_the_play_point_is_dropped_and_counted() -> None:
    jb = JitterBuffer()
    out = run(jb, [p for p in stream(40) if p[1] != 20], 25)
    assert out[21] == Pulled("lost", 20, b"")
    arrival_us, seq, ts, payload = stream(40)[20]
    assert jb.insert(seq, ts, payload, arrival_us + 150_000) == "late"
    out += run(jb, [], 20)
    assert 20 not in played(out)
    assert jb.stats["late"] == 1


def test_duplicates_are_dropped_and_played_once() -> None:
    jb = JitterBuffer()
    packets = stream(10)
    assert jb.insert(*packets[0][1:], packets[0][0]) == "stored"
    assert jb.insert(*packets[0][1:], packets[0][0] + 1) == "duplicate"
    out = run(jb, [*packets[1:], packets[3]], 12)
    assert played(out) == list(range(10))
    assert jb.stats["duplicates"] == 2


def test_delay_grows_fast_with_jitter_and_shrinks_slowly_when_it_stops() -> None:
    steady_before = stream(50)  # 1 s
    jittery = stream(100, first_seq=50, first_ts=50 * 160, start_us=50 * FRAME_US)
    # Every other packet 60 ms late: 2 s of heavy jitter.
    jittery = [(a + 60_000 if s % 2 else a, s, ts, payload) for a, s, ts, payload in jittery]
    steady_after = stream(500, first_seq=150, first_ts=150 * 160, start_us=150 * FRAME_US)
    jb = JitterBuffer()

    all_packets = steady_before + jittery + steady_after
    pending = sorted(all_packets, key=lambda p: p[0])
    delays = []
    out = []
    for tick in range(660):
        now_us = TICK_PHASE_US + tick * FRAME_US
        while pending and pending[0][0] <= now_us:
            arrival_us, seq, ts, payload = pending.pop(0)
            jb.insert(seq, ts, payload, arrival_us)
        out.append(jb.pull(now_us))
        delays.append(jb.delay_us)

    assert delays[49] == 20_000  # no jitter, minimum delay
    assert delays[60] >= 80_000  # 200 ms into the jitter: already grown
    assert max(delays[50:150]) <= 200_000
    # Once it grew, jittered packets arrive in time: at most the first few were late.
    assert jb.stats["late"] <= 3
    assert delays[160] >= 80_000  # 200 ms after the jitter stopped: still there
    assert delays[-1] <= 40_000  # 10 s later: back near the minimum
    assert jb.stats["skipped"] >= 4  # shrinking skipped frames, one at a time
    seqs = played(out)
    assert seqs == sorted(set(seqs))


def test_new_source_resyncs() -> None:
    jb = JitterBuffer()
    out = run(jb, stream(10), 11)
    second = stream(10, first_seq=40_000, first_ts=123_456_789, start_us=300_000)
    assert jb.insert(*second[0][1:], second[0][0]) == "resynced"
    out = run(jb, second[1:], 40)
    assert played(out) == list(range(40_000, 40_010))
    assert jb.stats["resyncs"] == 1


def test_talk_spurt_after_silence_suppression_keeps_the_delay() -> None:
    # seq continues, the timestamp jumps 2 s: the sender stopped sending during silence.
    first = stream(10)
    spurt = stream(10, first_seq=10, first_ts=10 * 160 + 16_000, start_us=10 * FRAME_US + 2_000_000)
    jb = JitterBuffer()
    out = run(jb, first + spurt, 125)
    resumed = next(i for i, p in enumerate(out) if p.seq == 10)
    # Arrived at 2.2 s, plays at the first tick 20 ms later, as before the silence.
    assert TICK_PHASE_US + resumed * FRAME_US == 2_200_000 + 25_000
    assert played(out) == list(range(20))
    assert jb.stats["resyncs"] == 1 and jb.stats["lost"] == 0


def test_nothing_received_is_empty() -> None:
    jb = JitterBuffer()
    assert jb.pull(0) == Pulled("empty", None, b"")
    assert jb.stats["empty"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((70_000, 0, b"", 0), "seq must be in 0..65535, got 70000"),
        ((-1, 0, b"", 0), "seq must be in 0..65535, got -1"),
        ((0, 2**32, b"", 0), "timestamp must be in 0..4294967295, got 4294967296"),
        ((0, 0, bytes(161), 0), "payload must be at most 160 bytes, got 161"),
    ],
)
def test_bad_arguments_have_exact_messages(args: tuple[int, int, bytes, int], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        JitterBuffer().insert(*args)
    assert str(excinfo.value) == message


@given(
    first_seq=st.integers(0, 0xFFFF),
    first_ts=st.integers(0, 0xFFFFFFFF),
    events=st.lists(
        st.tuples(
            st.integers(0, 70),  # index into the stream (repeats are duplicates)
            st.integers(0, 250_000),  # network delay
        ),
        max_size=120,
    ),
)
def test_one_stream_never_plays_a_frame_twice_or_out_of_order(
    first_seq: int, first_ts: int, events: list[tuple[int, int]]
) -> None:
    base = stream(71, first_seq=first_seq, first_ts=first_ts)
    packets = [(base[i][0] + delay, *base[i][1:]) for i, delay in events]
    jb = JitterBuffer()
    out = run(jb, packets, 90)
    frames = [p for p in out if p.status == "frame"]
    ids = [struct.unpack("!I", p.payload)[0] for p in frames]
    assert len(ids) == len(set(ids))
    if jb.stats["resyncs"] == 0:
        for a, b in pairwise(frames):
            assert 0 < (b.seq - a.seq) & 0xFFFF < 0x8000
    assert all(p.seq == (first_seq + i) & 0xFFFF for p, i in zip(frames, ids, strict=True))


@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("insert"),
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFFFFFF),
                st.integers(0, 160),
                st.integers(0, 100_000),
            ),
            st.tuples(st.just("pull"), st.integers(0, 100_000)),
        ),
        max_size=200,
    )
)
def test_arbitrary_input_never_crashes_or_replays(events: list[tuple]) -> None:
    jb = JitterBuffer()
    now_us = 0
    outputs = []
    for n, event in enumerate(events):
        if event[0] == "insert":
            _, seq, ts, size, step_us = event
            now_us += step_us
            payload = struct.pack("!I", n).ljust(max(size, 4), b"\0")[: max(size, 4)]
            jb.insert(seq, ts, payload[:160], now_us)
        else:
            now_us += event[1]
            outputs.append(jb.pull(now_us))
    ids = [p.payload[:4] for p in outputs if p.status == "frame"]
    assert len(ids) == len(set(ids))
    stats = jb.stats
    assert stats["played"] == len(ids)
    assert stats["played"] + stats["lost"] + stats["empty"] == len(outputs)
