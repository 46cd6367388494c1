"""MediaEngine media features over real loopback sockets: recording, playback, tones,
DTMF in and out (RFC 4733 and in-band), mixes and supervisor monitoring, RTCP.

Nothing sleeps. Paths that decode go through a jitter buffer, which wants packets at
the real 20 ms pace: the tests take that pace from the engine itself, from a "clock"
leg that loops a silent prompt toward a clock phone (one packet per engine tick).
Commands are queued, not waited for: where a phone's packets must meet a command's
effect (bridge, recording, mix, stopped playback), the test calls engine.sync() first;
otherwise it waits for what the command makes observable (packets, events).
"""

import math
import random
import select
import struct
import wave
from pathlib import Path

import pytest

from switch.media import (
    DtmfReceived,
    MediaEngine,
    MediaError,
    PlaybackFinished,
    ToneGenerator,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from switch.media.rtp import ReportBlock, build_rr, parse_rtcp
from switch.media.wav import encode_wav
from tests.media.phones import HOST, WAIT_S, Phone, fields, rtp

pytestmark = pytest.mark.integration

PORTS = (7500, 7699)  # as tests/media/conftest.py
RTCP_PHONE_PORT = 7700  # even: the phone's RTCP is on 7701
FRAME = 160


class Clock:
    """One engine tick per packet: a silent loop played toward a phone. A tick waits for
    a packet sent after it was asked for (what queued up meanwhile is dropped), so a
    busy machine that delays the test cannot turn ticks into a burst of old packets."""

    def __init__(self, engine: MediaEngine, phone: Phone, group: str | None = None) -> None:
        self.phone = phone
        self.leg = engine.open_leg(group=group)
        engine.set_remote(self.leg, HOST, phone.port)
        engine.play(self.leg, [bytes(2 * FRAME)], loop=True)

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.phone.drain()
            self.phone.recv()


def call(engine: MediaEngine, a: Phone, b: Phone, group: str) -> tuple[int, int]:
    leg1, leg2 = engine.open_leg(group=group), engine.open_leg(group=group)
    engine.set_remote(leg1, HOST, a.port)
    engine.set_remote(leg2, HOST, b.port)
    engine.bridge(leg1, leg2)
    engine.sync()  # the bridge is in place before any phone talks
    return leg1, leg2


def pcm_samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def wait_events(engine: MediaEngine, want: int, kind: type) -> list:
    seen: list = []
    while sum(isinstance(e, kind) for e in seen) < want:
        assert select.select([engine.events_fd], [], [], WAIT_S)[0], seen
        seen += engine.drain_events()
    return [e for e in seen if isinstance(e, kind)]


def power(samples: list[int], freq_hz: float) -> float:
    """Goertzel power of one frequency, normalised by the block length squared."""
    coeff = 2 * math.cos(2 * math.pi * freq_hz / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / len(samples) ** 2


def tone_frames(freq_hz: float, n: int, amplitude: float = 6000.0) -> list[bytes]:
    samples = [int(amplitude * math.sin(2 * math.pi * freq_hz * k / 8000))
               for k in range(n * FRAME)]
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    return [ulaw_encode(pcm[2 * FRAME * i:2 * FRAME * (i + 1)]) for i in range(n)]


# ---- recording ---------------------------------------------------------------------


def run_call(engine: MediaEngine, clock: Clock, a: Phone, b: Phone, legs: tuple[int, int],
             payload_a: list[bytes], payload_b: list[bytes]) -> None:
    for k, (pa, pb) in enumerate(zip(payload_a, payload_b, strict=True)):
        clock.tick()
        a.send(engine, legs[0], rtp(1000 + k, 160 * k, 0xA, pa))
        b.send(engine, legs[1], rtp(5000 + k, 320 + 160 * k, 0xB, pb))
    clock.tick(15)  # longer than the jitter buffer's play-out delay


def test_stereo_recording_has_customer_left_agent_right_bit_exact(
    engine, phones, tmp_path: Path
) -> None:
    a, b, c = phones[:3]
    clock = Clock(engine, c, group="rec")
    legs = call(engine, a, b, "rec")
    rng = random.Random(1)
    payload_a = [rng.randbytes(FRAME) for _ in range(25)]
    payload_b = [rng.randbytes(FRAME) for _ in range(25)]
    rec = engine.record(legs[0], legs[1], str(tmp_path / "call.wav"))
    engine.sync()  # the tap is in place before the first packet
    run_call(engine, clock, a, b, legs, payload_a, payload_b)
    engine.stop_recording(rec)
    with wave.open(str(tmp_path / "call.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        frames = pcm_samples(wav.readframes(wav.getnframes()))
    left = struct.pack(f"<{len(frames) // 2}h", *frames[0::2])
    right = struct.pack(f"<{len(frames) // 2}h", *frames[1::2])
    want_left = ulaw_decode(b"".join(payload_a))
    want_right = ulaw_decode(b"".join(payload_b))
    assert left.find(want_left) % 2 == 0 and want_left in left
    assert right.find(want_right) % 2 == 0 and want_right in right
    # Relay went on while recording (both ways, each packet once).
    assert engine.leg_stats(legs[0])["relayed"] == 25
    assert engine.leg_stats(legs[1])["relayed"] == 25
    with pytest.raises(MediaError, match=rf"^no such recording: {rec}$"):
        engine.stop_recording(rec)


def test_mono_recording_is_the_sum_of_both_sides(engine, phones, tmp_path: Path) -> None:
    a, b, c = phones[:3]
    clock = Clock(engine, c, group="mono")
    legs = call(engine, a, b, "mono")
    rng = random.Random(2)
    payload_a = [rng.randbytes(FRAME) for _ in range(20)]
    silence = [b"\xff" * FRAME] * 20  # µ-law 0xFF decodes to 0: the sum is a's audio
    rec = engine.record(legs[0], legs[1], tmp_path / "mono.wav", stereo=False)
    engine.sync()
    run_call(engine, clock, a, b, legs, payload_a, silence)
    engine.stop_recording(rec)
    with wave.open(str(tmp_path / "mono.wav")) as wav:
        assert wav.getnchannels() == 1
        data = wav.readframes(wav.getnframes())
    want = ulaw_decode(b"".join(payload_a))
    assert data.find(want) % 2 == 0 and want in data


# ---- playback ----------------------------------------------------------------------


def test_prompt_playback_is_the_prompt_then_playback_finished(
    engine, phones, tmp_path: Path
) -> None:
    p = phones[0]
    leg = engine.open_leg()
    engine.set_remote(leg, HOST, p.port, payload_type=8)  # PCMA: encoded per the leg
    rng = random.Random(3)
    first = rng.randbytes(2 * 250)  # 250 samples: frames do not line up with prompts
    second = rng.randbytes(2 * 200)
    (tmp_path / "second.wav").write_bytes(encode_wav(second))
    engine.play(leg, [first, str(tmp_path / "second.wav")])
    got = [fields(p.recv()) for _ in range(3)]  # 450 samples: three frames, padded
    assert [g[0] for g in got] == [8, 8, 8]
    assert [g[1] for g in got] == [True, False, False]
    assert [(g[2] - got[0][2]) % 65536 for g in got] == [0, 1, 2]
    assert [(g[3] - got[0][3]) % 2**32 for g in got] == [0, 160, 320]
    assert len({g[4] for g in got}) == 1
    audio = alaw_decode(b"".join(g[5] for g in got))
    assert audio == alaw_decode(alaw_encode(first + second + bytes(2 * 30)))
    assert wait_events(engine, 1, PlaybackFinished) == [PlaybackFinished(leg)]
    assert engine.leg_stats(leg)["sent"] == 3


def test_loop_repeats_until_stopped_and_stop_posts_nothing(engine, phones) -> None:
    p, c = phones[:2]
    clock = Clock(engine, c)
    leg = engine.open_leg()
    engine.set_remote(leg, HOST, p.port)
    rng = random.Random(4)
    prompt = rng.randbytes(2 * 2 * FRAME)
    engine.play(leg, [prompt], loop=True)
    got = [fields(p.recv())[5] for _ in range(6)]
    want = ulaw_encode(prompt)
    assert b"".join(got) == want * 3
    engine.stop_playing(leg)
    engine.sync()  # applied: the worker sends nothing more toward the leg
    p.drain()  # loopback delivers at sendto: all that was sent is queued now
    clock.tick(3)
    assert p.drain() == []
    assert not any(isinstance(e, PlaybackFinished) and e.leg == leg
                   for e in engine.drain_events())


def test_playback_pauses_relay_and_continues_the_legs_stream(engine, phones) -> None:
    a, b = phones[:2]
    leg1, leg2 = call(engine, a, b, "pause")
    a.send(engine, leg1, rtp(10, 1600, 0xA, b"\x01" * FRAME))
    before = fields(b.recv())
    engine.play(leg2, [bytes(2 * FRAME)])
    played = fields(b.recv())
    wait_events(engine, 1, PlaybackFinished)
    a.send(engine, leg1, rtp(11, 1760, 0xA, b"\x02" * FRAME))
    after = fields(b.recv())
    assert played[4] == before[4] == after[4]  # one SSRC toward the phone
    assert (played[2] - before[2]) % 65536 == 1 and (after[2] - played[2]) % 65536 == 1
    assert played[1] and after[1]  # a new source each time: marker
    assert 0 < (played[3] - before[3]) % 2**32 < 8000 * WAIT_S
    assert after[5] == b"\x02" * FRAME


def test_ringback_cadence_is_one_second_on_then_off(engine, phones) -> None:
    p = phones[0]
    leg = engine.open_leg()
    engine.set_remote(leg, HOST, p.port)
    engine.play_tone(leg, "ringback")
    frames = [pcm_samples(ulaw_decode(fields(p.recv())[5])) for _ in range(60)]
    energy = [sum(x * x for x in f) / FRAME for f in frames]
    assert all(e > 1e6 for e in energy[:50]) and all(e == 0 for e in energy[50:])
    on = frames[10]
    assert power(on, 450) > 100 * power(on, 1000)
    engine.stop_playing(leg)


# ---- DTMF --------------------------------------------------------------------------


def test_send_dtmf_emits_rfc4733_packets(engine, phones) -> None:
    p = phones[0]
    leg = engine.open_leg()
    engine.set_remote(leg, HOST, p.port, dtmf_payload_type=96)
    engine.send_dtmf(leg, "1#", duration_ms=100)
    got = [fields(p.recv()) for _ in range(14)]
    assert {g[0] for g in got} == {96}
    assert [(g[2] - got[0][2]) % 65536 for g in got] == list(range(14))
    first, second = got[:7], got[7:]
    for packets, event in ((first, 1), (second, 11)):
        assert [g[1] for g in packets] == [True] + [False] * 6
        assert len({g[3] for g in packets}) == 1
        decoded = [struct.unpack("!BBH", g[5]) for g in packets]
        assert [d[0] for d in decoded] == [event] * 7
        assert [d[1] & 0x80 for d in decoded] == [0] * 4 + [0x80] * 3
        assert [d[1] & 0x3F for d in decoded] == [10] * 7
        assert [d[2] for d in decoded] == [160, 320, 480, 640, 800, 800, 800]
    assert (second[0][3] - first[0][3]) % 2**32 >= 800 + 800  # tone then pause


def test_received_telephone_events_give_one_event_per_key(engine, phones) -> None:
    a, b = phones[:2]
    leg1, _ = call(engine, a, b, "dtmf")
    seq = 0
    for event, ts in ((5, 8000), (5, 16000), (11, 24000)):
        for duration, end in ((160, False), (320, False), (480, True), (480, True),
                              (480, True)):
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            a.send(engine, leg1, rtp(seq, ts, 0xA, payload, pt=101, marker=duration == 160))
            seq += 1
    events = wait_events(engine, 3, DtmfReceived)
    assert events == [DtmfReceived(leg1, "5", 60), DtmfReceived(leg1, "5", 60),
                      DtmfReceived(leg1, "#", 60)]
    assert len([b.recv() for _ in range(15)]) == 15  # still relayed


def test_inband_dtmf_is_detected_in_decoded_audio(engine, phones) -> None:
    a, c = phones[:2]
    clock = Clock(engine, c, group="inband")
    leg = engine.open_leg(group="inband")
    engine.set_remote(leg, HOST, a.port)
    engine.set_inband_dtmf(leg, True)
    engine.sync()  # detection is on before the first tone frame
    tones = ToneGenerator.dtmf("19", on_ms=100, off_ms=100, level_dbm0=-10.0)
    pcm = tones.generate(8000 * 2 // 5) + bytes(2 * FRAME * 10)
    for k in range(len(pcm) // (2 * FRAME)):
        clock.tick()
        a.send(engine, leg, rtp(k, 160 * k, 0xA, ulaw_encode(pcm[2 * FRAME * k:
                                                                 2 * FRAME * (k + 1)])))
    events = wait_events(engine, 2, DtmfReceived)
    assert [(e.leg, e.digit) for e in events] == [(leg, "1"), (leg, "9")]


# ---- mixes and monitoring ----------------------------------------------------------

FREQS = {"customer": 500.0, "agent": 1000.0, "supervisor": 2000.0}


def heard(engine: MediaEngine, clock: Clock, parties: dict[str, tuple[Phone, int]],
          frames: dict[str, list[bytes]], start: int) -> dict[str, set[str]]:
    """Run 20 ticks with every party talking; who each party hears over the last 5."""
    received: dict[str, list[bytes]] = {name: [] for name in parties}
    for k in range(20):
        clock.tick()
        for name, (phone, leg) in parties.items():
            phone.send(engine, leg, rtp(start + k, 160 * (start + k), hash(name) & 0xFFFF,
                                        frames[name][k]))
            received[name] += [fields(d)[5] for d in phone.drain()]
    result = {}
    for name, payloads in received.items():
        samples = pcm_samples(ulaw_decode(b"".join(payloads[-5:])))
        result[name] = {talker for talker, f in FREQS.items()
                        if power(samples, f) > 1e5}
    return result


def test_monitor_listen_whisper_barge(engine, phones) -> None:
    pc, pa, ps, clk = phones[:4]
    clock = Clock(engine, clk, group="mon")
    customer, agent = call(engine, pc, pa, "mon")
    supervisor = engine.open_leg()  # on whichever worker: monitor moves it
    engine.set_remote(supervisor, HOST, ps.port)
    parties = {"customer": (pc, customer), "agent": (pa, agent),
               "supervisor": (ps, supervisor)}
    frames = {name: tone_frames(f, 20) for name, f in FREQS.items()}

    mix = engine.monitor(supervisor, agent, customer, "listen")
    assert engine.leg_worker(supervisor) == engine.leg_worker(agent)
    engine.sync()
    assert heard(engine, clock, parties, frames, 0) == {
        "customer": {"agent"}, "agent": {"customer"}, "supervisor": {"customer", "agent"},
    }
    assert engine.monitor(supervisor, agent, customer, "whisper") == mix
    engine.sync()
    assert heard(engine, clock, parties, frames, 20) == {
        "customer": {"agent"}, "agent": {"customer", "supervisor"},
        "supervisor": {"customer", "agent"},
    }
    engine.monitor(supervisor, agent, customer, "barge")
    engine.sync()
    assert heard(engine, clock, parties, frames, 40) == {
        "customer": {"agent", "supervisor"}, "agent": {"customer", "supervisor"},
        "supervisor": {"customer", "agent"},
    }
    engine.set_hearing(mix, customer, supervisor, False)
    engine.sync()
    assert heard(engine, clock, parties, frames, 60)["customer"] == {"agent"}
    # Leaving the mix: the bridged pair is back on plain relay.
    for leg in (supervisor, agent, customer):
        engine.leave_mix(mix, leg)
    engine.sync()
    pc.drain()
    pa.drain()
    pc.send(engine, customer, rtp(100, 16000, 0xC, b"\x33" * FRAME))
    assert fields(pa.recv())[5] == b"\x33" * FRAME


def test_mix_of_three_each_hears_the_other_two(engine, phones) -> None:
    p1, p2, p3, clk = phones[:4]
    clock = Clock(engine, clk, group="mix")
    legs = []
    for phone in (p1, p2, p3):
        leg = engine.open_leg()
        engine.set_remote(leg, HOST, phone.port)
        legs.append(leg)
    mix = engine.create_mix()
    for leg in legs:
        engine.join_mix(mix, leg)
    engine.sync()
    parties = {"customer": (p1, legs[0]), "agent": (p2, legs[1]),
               "supervisor": (p3, legs[2])}
    frames = {name: tone_frames(f, 20) for name, f in FREQS.items()}
    assert heard(engine, clock, parties, frames, 0) == {
        "customer": {"agent", "supervisor"}, "agent": {"customer", "supervisor"},
        "supervisor": {"customer", "agent"},
    }


# ---- RTCP and engine statistics ----------------------------------------------------


def test_rtcp_reports_go_to_rtcp_port_and_rtt_comes_back(phones) -> None:
    media = MediaEngine(workers=1, port_range=PORTS, rtcp_interval_s=0.1, ssrc_seed=1)
    media.start()
    rtp_sock = Phone(RTCP_PHONE_PORT)
    rtcp_sock = Phone(RTCP_PHONE_PORT + 1)
    try:
        leg = media.open_leg()
        media.set_remote(leg, HOST, RTCP_PHONE_PORT)
        for k in range(3):
            rtp_sock.send(media, leg, rtp(k, 160 * k, 0xA, b"\xff" * FRAME))
        reports = parse_rtcp(rtcp_sock.recv())
        assert reports[0].packet_type == 201  # nothing sent yet: RR
        assert reports[0].blocks[0].ssrc == 0xA
        assert reports[0].blocks[0].ext_highest_seq == 2
        media.play(leg, [bytes(2 * FRAME)], loop=True)  # now it sends: SR
        while True:
            reports = parse_rtcp(rtcp_sock.recv())
            if reports[0].packet_type == 200:
                break
        sr = reports[0]
        lsr = ((sr.sender_info.ntp_sec & 0xFFFF) << 16) | (sr.sender_info.ntp_frac >> 16)
        block = ReportBlock(sr.ssrc, 0, 0, 0, 0, lsr, 0)
        rtcp_sock.sock.sendto(build_rr(0xA, [block]), (HOST, media.leg_port(leg) + 1))
        while media.leg_stats(leg)["rtcp_received"] < 1:
            rtcp_sock.recv()  # the engine reads it within a report interval
        assert 0 < media.leg_stats(leg)["rtt_ms"] < 1000
    finally:
        media.stop()
        rtp_sock.close()
        rtcp_sock.close()


def test_stats_count_ticks_and_overruns(engine, phones) -> None:
    clock = Clock(engine, phones[0])
    clock.tick(3)
    stats = engine.stats()
    assert stats["ticks"] >= 3
    assert isinstance(stats["tick_overruns"], int) and stats["recording_frames_dropped"] == 0
    assert len(stats["workers"]) == 2
    assert sum(w["legs"] for w in stats["workers"]) == 1


def test_ssrc_seed_makes_ssrcs_reproducible(phones) -> None:
    def first_ssrc() -> int:
        media = MediaEngine(workers=1, port_range=PORTS, ssrc_seed=42)
        media.start()
        try:
            leg = media.open_leg()
            media.set_remote(leg, HOST, phones[0].port)
            media.play(leg, [bytes(2 * FRAME)])
            return fields(phones[0].recv())[4]
        finally:
            media.stop()

    assert first_ssrc() == first_ssrc()


def test_media_commands_have_exact_error_messages(engine) -> None:
    leg = engine.open_leg()
    cases = [
        (lambda: engine.play(leg, []), ValueError,
         "prompts must be a non-empty list of WAV paths or PCM bytes, got []"),
        (lambda: engine.play_tone(leg, "siren"), ValueError,
         "unknown tone 'siren', expected one of dial, ringback, busy, congestion"),
        (lambda: engine.send_dtmf(leg, "12x"), ValueError,
         "digits must be 1-64 of 0-9 * # A-D, got '12x'"),
        (lambda: engine.send_dtmf(leg, "1", duration_ms=10), ValueError,
         "duration_ms must be an integer 40-2000, got 10"),
        (lambda: engine.monitor(leg, leg + 1, leg + 2, "spy"), ValueError,
         "mode must be one of listen, whisper, barge, got 'spy'"),
        (lambda: engine.record(leg, None, None), ValueError,
         "path must be a str or os.PathLike, got None"),
        (lambda: engine.join_mix(999, leg), MediaError, "no such mix: 999"),
        (lambda: engine.set_inband_dtmf(leg, 1), ValueError, "enabled must be a bool, got 1"),
        (lambda: engine.stop_recording(5), MediaError, "no such recording: 5"),
    ]
    for run, error, message in cases:
        with pytest.raises(error) as info:
            run()
        assert str(info.value) == message
    engine.set_remote(leg, HOST, 9, dtmf_payload_type=None)
    with pytest.raises(MediaError) as info:
        engine.send_dtmf(leg, "1")
    assert str(info.value) == f"leg {leg} has no telephone-event payload type"


def test_a_recorded_leg_is_not_moved_off_its_worker(engine, tmp_path: Path) -> None:
    x, y = engine.open_leg(), engine.open_leg()
    assert engine.leg_worker(x) != engine.leg_worker(y)
    rec = engine.record(y, None, tmp_path / "y.wav")
    with pytest.raises(MediaError) as info:
        engine.bridge(x, y)
    assert str(info.value) == f"leg {y} is recorded or mixed on another worker; stop that first"
    engine.stop_recording(rec)
    engine.bridge(x, y)
    assert engine.leg_worker(x) == engine.leg_worker(y)
