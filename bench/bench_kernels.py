"""Media kernels beside their baselines, same data, same run (pytest-benchmark).

    .venv/bin/python -m pytest bench/bench_kernels.py --benchmark-only -q
    .venv/bin/python -m pytest bench/bench_kernels.py --benchmark-disable -q   # smoke

Each group holds ``test_<group>_ours`` and ``test_<group>_baseline``; bench/conftest.py
prints "ours vs baseline" per group at the end. Baselines: CPython's audioop for G.711
(10 s of audio, 80,000 samples), numpy for the mixer (int32 sum, subtract own, clip; same
dict-of-bytes in and out as ours). The jitter buffer has no baseline: per-packet cost.
"""

import warnings

import numpy as np
import pytest

from switch.media import JitterBuffer, Mixer, g711

with warnings.catch_warnings():
    # audioop is deprecated (removed in 3.13); here it is only the baseline.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

N_SAMPLES = 80_000  # 10 s at 8 kHz
FRAME_SAMPLES = 160
rng = np.random.default_rng(20240503)
# Speech-like level: mostly small samples, some loud ones.
PCM = np.clip(rng.normal(0, 4000, N_SAMPLES), -32768, 32767).astype("<i2").tobytes()
ULAW = audioop.lin2ulaw(PCM, 2)
ALAW = audioop.lin2alaw(PCM, 2)


def test_ulaw_encode_ours(benchmark):
    benchmark.group = "ulaw-encode 10 s"
    assert benchmark(g711.ulaw_encode, PCM) == ULAW


def test_ulaw_encode_baseline(benchmark):
    benchmark.group = "ulaw-encode 10 s"
    assert benchmark(audioop.lin2ulaw, PCM, 2) == ULAW


def test_ulaw_decode_ours(benchmark):
    benchmark.group = "ulaw-decode 10 s"
    assert benchmark(g711.ulaw_decode, ULAW) == audioop.ulaw2lin(ULAW, 2)


def test_ulaw_decode_baseline(benchmark):
    benchmark.group = "ulaw-decode 10 s"
    benchmark(audioop.ulaw2lin, ULAW, 2)


def test_alaw_encode_ours(benchmark):
    benchmark.group = "alaw-encode 10 s"
    assert benchmark(g711.alaw_encode, PCM) == ALAW


def test_alaw_encode_baseline(benchmark):
    benchmark.group = "alaw-encode 10 s"
    assert benchmark(audioop.lin2alaw, PCM, 2) == ALAW


def test_alaw_decode_ours(benchmark):
    benchmark.group = "alaw-decode 10 s"
    assert benchmark(g711.alaw_decode, ALAW) == audioop.alaw2lin(ALAW, 2)


def test_alaw_decode_baseline(benchmark):
    benchmark.group = "alaw-decode 10 s"
    benchmark(audioop.alaw2lin, ALAW, 2)


def numpy_mix(frames: dict[int, bytes]) -> dict[int, bytes]:
    """Everyone hears everyone else: int32 sum, subtract own, clip to int16."""
    ids = list(frames)
    stacked = np.stack([np.frombuffer(frames[p], dtype="<i2") for p in ids]).astype(np.int32)
    mixed = np.clip(stacked.sum(axis=0) - stacked, -32768, 32767).astype("<i2")
    return {p: mixed[i].tobytes() for i, p in enumerate(ids)}


def mix_inputs(n_parties: int, n_frames: int) -> dict[int, bytes]:
    n = FRAME_SAMPLES * n_frames
    return {
        p: np.clip(rng.normal(0, 8000, n), -32768, 32767).astype("<i2").tobytes()
        for p in range(n_parties)
    }


MIX_CASES = {
    f"mix {n} parties, {label}": (n, n_frames)
    for n in (3, 8)
    for label, n_frames in (("one 20 ms frame", 1), ("1 s of frames", 50))
}


@pytest.mark.parametrize("case", sorted(MIX_CASES))
def test_mix_ours(benchmark, case):
    benchmark.group = case
    frames = mix_inputs(*MIX_CASES[case])
    mixer = Mixer()
    for p in frames:
        mixer.add_participant(p)
    assert benchmark(mixer.mix, frames) == numpy_mix(frames)


@pytest.mark.parametrize("case", sorted(MIX_CASES))
def test_mix_baseline(benchmark, case):
    benchmark.group = case
    benchmark(numpy_mix, mix_inputs(*MIX_CASES[case]))


PACKETS = [(seq, seq * 160, bytes(160), seq * 20_000) for seq in range(50)]


def test_jitterbuffer_insert_pull_50_packets_ours(benchmark):
    """One second of packets, each inserted and pulled on its tick: cost per 50 packets."""
    benchmark.group = "jitterbuffer insert+pull, 50 packets"

    def one_second():
        jb = JitterBuffer()
        for seq, ts, payload, arrival_us in PACKETS:
            jb.insert(seq, ts, payload, arrival_us)
            jb.pull(arrival_us + 25_000)
        return jb

    assert benchmark(one_second).stats["played"] == 50
