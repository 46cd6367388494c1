"""Tone generator: frequencies by FFT, level, cadences exact to the sample, phase continuity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from switch.media.tones import CALL_PROGRESS_TONES, ToneGenerator

RATE = 8000
DBM0_PEAK = 32636 * 10 ** (-3.17 / 20)  # 0 dBm0 sine in 16-bit PCM (µ-law: +3.17 dBm0 = full)
ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYPAD = "123A456B789C*0#D"


def pcm(data: bytes) -> NDArray[np.int16]:
    return np.frombuffer(data, "<i2")


def peaks_hz(x: NDArray[np.int16], count: int) -> list[float]:
    """The `count` strongest frequencies of x (1 s of audio gives 1 Hz bins)."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    bins = np.argsort(spectrum)[-count:]
    return sorted(float(b) * RATE / len(x) for b in bins)


def reference(
    freqs_hz: tuple[float, ...], level_dbm0: float, cadence_ms: tuple[int, ...], n: int
) -> NDArray[np.float64]:
    """What the generator should produce: each burst a sine starting at phase 0."""
    amp = DBM0_PEAK * 10 ** (level_dbm0 / 20)
    out = np.zeros(n)
    k = np.arange(n)
    if cadence_ms:
        cycle = sum(cadence_ms) * RATE // 1000
        starts = np.cumsum((0, *cadence_ms)) * RATE // 1000
        pos = k % cycle
        on = np.zeros(n, dtype=bool)
        phase_k = np.zeros(n, dtype=np.int64)
        for i in range(0, len(cadence_ms), 2):
            inside = (pos >= starts[i]) & (pos < starts[i + 1])
            on |= inside
            phase_k[inside] = pos[inside] - starts[i]
    else:
        on = np.ones(n, dtype=bool)
        phase_k = k
    for f in freqs_hz:
        out += np.where(on, amp * np.sin(2 * np.pi * f * phase_k / RATE), 0.0)
    return out


@pytest.mark.parametrize("name", sorted(CALL_PROGRESS_TONES))
def test_call_progress_tones_match_their_cadence_to_the_sample(name: str) -> None:
    freqs, level, cadence = CALL_PROGRESS_TONES[name]
    n = 12 * RATE  # more than two ringback cycles
    gen = ToneGenerator.call_progress(name)
    got = np.concatenate([pcm(gen.generate(160)) for _ in range(n // 160)])
    expected = reference(freqs, level, cadence, n)
    assert np.max(np.abs(got - expected)) <= 1.0  # rounding only: a one-sample shift is ~300
    assert (got[expected == 0] == 0).all()  # silences are exact digital silence


def test_chinese_call_progress_values() -> None:
    assert CALL_PROGRESS_TONES == {
        "dial": ((450.0,), -10.0, ()),
        "ringback": ((450.0,), -10.0, (1000, 4000)),
        "busy": ((450.0,), -10.0, (350, 350)),
        "congestion": ((450.0,), -10.0, (700, 700)),
    }


def test_busy_tone_on_off_edges_in_samples() -> None:
    x = pcm(ToneGenerator.call_progress("busy").generate(4 * 2800))
    nonzero = np.flatnonzero(x)
    # 0.35 s = 2800 samples on, then 2800 samples off, twice; bursts start at phase 0.
    assert nonzero[0] == 1 and nonzero[-1] < 2 * 2800 + 2800
    assert not x[2800 : 2 * 2800].any() and not x[3 * 2800 :].any()
    assert x[2800 - 20 : 2800].any() and x[2 * 2800 + 1]


def test_dial_tone_frequency_and_level() -> None:
    x = pcm(ToneGenerator.call_progress("dial").generate(RATE))
    assert peaks_hz(x, 1) == [450.0]
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    assert rms == pytest.approx(DBM0_PEAK / np.sqrt(2) * 10 ** (-10 / 20), rel=1e-3)


def test_dual_tone_has_both_frequencies() -> None:
    x = pcm(ToneGenerator((350, 440), level_dbm0=-13).generate(RATE))
    assert peaks_hz(x, 2) == [350.0, 440.0]
    assert np.max(np.abs(x - reference((350, 440), -13, (), RATE))) <= 1.0  # each at -13 dBm0


@pytest.mark.parametrize("digit", KEYPAD)
def test_dtmf_digit_is_its_row_and_column(digit: str) -> None:
    key = KEYPAD.index(digit)
    x = pcm(ToneGenerator.dtmf(digit, on_ms=1000, off_ms=50).generate(RATE))
    assert peaks_hz(x, 2) == [ROWS[key // 4], COLS[key % 4]]


def test_dtmf_string_timing_then_silence() -> None:
    gen = ToneGenerator.dtmf("19", on_ms=70, off_ms=50, level_dbm0=-7)
    x = pcm(gen.generate(2 * 960))
    assert gen.finished
    expected = np.concatenate(
        [
            reference((697, 1209), -7, (70, 50), 960),
            reference((852, 1477), -7, (70, 50), 960),
        ]
    )
    assert np.max(np.abs(x - expected)) <= 1.0
    assert pcm(gen.generate(500)).tolist() == [0] * 500


def test_no_discontinuity_at_frame_boundaries() -> None:
    # A continuous tone's sample-to-sample step never exceeds the sine's largest slope,
    # so a phase jump at a 160-sample frame edge would show.
    gen = ToneGenerator((1004,), level_dbm0=0)
    x = np.concatenate([pcm(gen.generate(160)) for _ in range(100)]).astype(np.float64)
    max_step = DBM0_PEAK * 2 * np.sin(np.pi * 1004 / RATE) + 1
    assert np.max(np.abs(np.diff(x))) <= max_step
    assert np.max(np.abs(x - reference((1004,), 0, (), len(x)))) <= 1.0


@given(
    st.sampled_from([*sorted(CALL_PROGRESS_TONES), "dtmf"]),
    st.lists(st.integers(0, 3000), min_size=1, max_size=12),
)
def test_chunked_equals_one_shot(name: str, chunks: list[int]) -> None:
    def make() -> ToneGenerator:
        if name == "dtmf":
            return ToneGenerator.dtmf("0123456789*#ABCD", on_ms=40, off_ms=40)
        return ToneGenerator.call_progress(name)

    chunked = make()
    joined = b"".join(chunked.generate(n) for n in chunks)
    assert joined == make().generate(sum(chunks))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ToneGenerator((1, 2, 3)), "ToneGenerator: at most 2 frequencies, got 3"),
        (
            lambda: ToneGenerator((4000,)),
            "ToneGenerator: frequency must be between 0 and 4000 Hz, got 4000",
        ),
        (
            lambda: ToneGenerator((450,), cadence_ms=(100,)),
            "ToneGenerator: cadence_ms must be pairs of on, off durations "
            "(at most 64 values), got 1 values",
        ),
        (
            lambda: ToneGenerator((450,), cadence_ms=(100, 0)),
            "ToneGenerator: cadence_ms values must be positive, got 0",
        ),
        (
            lambda: ToneGenerator.call_progress("howler"),
            "ToneGenerator: unknown call-progress tone 'howler', "
            "expected one of dial, ringback, busy, congestion",
        ),
        (lambda: ToneGenerator.dtmf("12x"), "ToneGenerator: not a DTMF digit: 'x'"),
        (lambda: ToneGenerator.dtmf("1", on_ms=0), "ToneGenerator: on_ms must be positive, got 0"),
        (lambda: ToneGenerator.dtmf("1" * 33), "ToneGenerator: at most 32 DTMF digits, got 33"),
        (
            lambda: ToneGenerator().generate(-1),
            "generate: n_samples must not be negative, got -1",
        ),
    ],
)
def test_bad_arguments(make: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()  # type: ignore[operator]
    assert str(info.value) == message


def test_empty_generator_is_silence() -> None:
    gen = ToneGenerator()
    assert gen.generate(160) == bytes(320)
    assert gen.finished
