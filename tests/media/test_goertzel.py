"""In-band DTMF detection on generated signals: levels, noise, Q.24 timing, speech, twist.

Levels: 0 dBm0 is a sine of peak 32636 * 10**(-3.17/20) = 22657 in 16-bit PCM (G.711
µ-law's full-scale sine, peak 8159 in 14 bits, is +3.17 dBm0), so a -20 dBm0 tone has a
peak of 2266. Noise is white Gaussian, its power 20 dB below the two tones together.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from switch.media.goertzel import GoertzelDetector

RATE = 8000
DBM0_PEAK = 32636 * 10 ** (-3.17 / 20)
ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYPAD = "123A456B789C*0#D"
Signal = NDArray[np.float64]


def amplitude(level_dbm0: float) -> float:
    return float(DBM0_PEAK * 10 ** (level_dbm0 / 20))


def sine(freq_hz: float, ms: float, level_dbm0: float, phase: float = 0.3) -> Signal:
    n = np.arange(round(ms * RATE / 1000))
    return amplitude(level_dbm0) * np.sin(2 * np.pi * freq_hz * n / RATE + phase)


def dtmf(digit: str, ms: float, level_dbm0: float = -20, twist_db: float = 0) -> Signal:
    """Row at level_dbm0, column twist_db above it (negative: the usual high-group loss)."""
    key = KEYPAD.index(digit)
    return sine(ROWS[key // 4], ms, level_dbm0) + sine(
        COLS[key % 4], ms, level_dbm0 + twist_db, 1.1
    )


def silence(ms: float) -> Signal:
    return np.zeros(round(ms * RATE / 1000))


def pcm(*parts: Signal, snr_db: float = 20, seed: int = 0) -> bytes:
    """Concatenate, add noise 20 dB below two -20 dBm0 tones, quantise to 16-bit."""
    x = np.concatenate(parts)
    noise_power = 2 * amplitude(-20) ** 2 / 2 / 10 ** (snr_db / 10)
    x = x + np.random.default_rng(seed).normal(0, np.sqrt(noise_power), len(x))
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def detect(data: bytes) -> str:
    return GoertzelDetector().feed(data)


OFFSETS = range(0, 102, 7)  # where the tone starts within the 102-sample analysis grid


def test_all_sixteen_digits_at_minus_20_dbm0_with_noise() -> None:
    parts = [p for d in KEYPAD for p in (dtmf(d, 50), silence(50))]
    assert detect(pcm(silence(30), *parts)) == KEYPAD


@pytest.mark.parametrize("digit", KEYPAD)
def test_each_digit_detected_exactly_once_wherever_it_starts(digit: str) -> None:
    for offset in OFFSETS:
        data = pcm(silence(offset / 8), dtmf(digit, 200), silence(100), seed=offset)
        assert detect(data) == digit, offset


@pytest.mark.parametrize("ms", [40, 45, 60, 1000])
def test_tone_of_40_ms_or_more_is_detected(ms: int) -> None:
    for offset in OFFSETS:
        assert detect(pcm(silence(offset / 8), dtmf("5", ms), silence(60), seed=offset)) == "5"


@pytest.mark.parametrize("ms", [10, 20, 30])
def test_tone_of_30_ms_or_less_is_not_detected(ms: int) -> None:
    for offset in OFFSETS:
        assert detect(pcm(silence(offset / 8), dtmf("5", ms), silence(60), seed=offset)) == ""


def test_same_digit_after_40_ms_pause_is_two_digits() -> None:
    for offset in OFFSETS:
        data = pcm(silence(offset / 8), dtmf("7", 80), silence(40), dtmf("7", 80), silence(60))
        assert detect(data) == "77", offset


def test_same_digit_after_20_ms_pause_is_one_digit() -> None:
    for offset in OFFSETS:
        data = pcm(silence(offset / 8), dtmf("7", 80), silence(20), dtmf("7", 80), silence(60))
        assert detect(data) == "7", offset


def test_different_digits_back_to_back() -> None:
    assert detect(pcm(dtmf("1", 60), dtmf("2", 60), silence(40))) == "12"


def test_single_frequency_is_not_a_digit() -> None:
    for freq in ROWS + COLS:
        assert detect(pcm(sine(freq, 500, -10), silence(50))) == ""


@pytest.mark.parametrize(("twist_db", "expected"), [(-6, "9"), (3, "9"), (-10, ""), (6, "")])
def test_twist_limits(twist_db: float, expected: str) -> None:
    # Column up to 8 dB below the row (normal twist) or 4 dB above it (reverse) is accepted.
    assert detect(pcm(dtmf("9", 100, -15, twist_db), silence(50))) == expected


@pytest.mark.parametrize(("deviation", "expected"), [(0.015, "6"), (-0.015, "6"), (0.04, "")])
def test_frequency_deviation(deviation: float, expected: str) -> None:
    # Q.24: tones within 1.5% of nominal are accepted, beyond 3.5% rejected.
    tone = sine(770 * (1 + deviation), 100, -20) + sine(1477 * (1 + deviation), 100, -20)
    assert detect(pcm(tone, silence(50))) == expected


def test_too_weak_is_not_a_digit() -> None:
    assert detect(pcm(dtmf("3", 200, level_dbm0=-35), silence(50), snr_db=40)) == ""


def speech_like(seconds: float, seed: int) -> Signal:
    """Voiced sound: harmonics of a wandering ~120 Hz pitch, shaped by moving formants."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 120 * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 6)))
    phase0 = 2 * np.pi * np.cumsum(f0) / RATE
    formants = [rng.uniform(lo, hi) for lo, hi in ((300, 900), (900, 2200), (2200, 3000))]
    x = np.zeros(n)
    for h in range(1, 30):
        freq = h * f0
        gain = sum(1 / (1 + ((freq - fm) / 120) ** 2) for fm in formants)
        x += np.where(freq < RATE / 2, gain * np.sin(h * phase0), 0.0)
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2  # 4 Hz syllable rhythm
    shaped: Signal = x * syllables * amplitude(-15) / np.max(np.abs(x))
    return shaped


def gliding_tones(seconds: float, seed: int) -> Signal:
    """Two whistles sweeping the row and the column band together, 4-10 sweeps a second."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    x = np.zeros(len(t))
    for lo, hi in ((600, 1000), (1150, 1700)):
        f = lo + (hi - lo) * ((rng.uniform(4, 10) * t + rng.uniform(0, 1)) % 1.0)
        x += amplitude(-15) * np.sin(2 * np.pi * np.cumsum(f) / RATE)
    return x


@pytest.mark.parametrize("seed", range(8))
def test_speech_like_input_gives_no_digits(seed: int) -> None:
    assert detect(pcm(speech_like(3, seed), seed=seed)) == ""


@pytest.mark.parametrize("seed", range(8))
def test_gliding_tones_give_no_digits(seed: int) -> None:
    assert detect(pcm(gliding_tones(3, seed), seed=seed)) == ""


def test_white_noise_gives_no_digits() -> None:
    assert detect(pcm(silence(5000), snr_db=-20)) == ""


def test_digits_within_speech() -> None:
    speech = speech_like(1, 3)
    assert detect(pcm(speech, silence(40), dtmf("#", 80), silence(40), speech)) == "#"


SIGNAL = pcm(silence(13), *[p for d in "90#A" for p in (dtmf(d, 47), silence(43))])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 400), max_size=40))
def test_chunked_feeding_equals_one_shot(cuts_samples: list[int]) -> None:
    detector = GoertzelDetector()
    digits = ""
    start = 0
    for cut in [*cuts_samples, len(SIGNAL)]:
        end = min(start + 2 * cut, len(SIGNAL))
        digits += detector.feed(SIGNAL[start:end])
        start = end
    assert digits == detect(SIGNAL) == "90#A"


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4000).filter(lambda b: len(b) % 2 == 0))
def test_arbitrary_pcm_never_crashes(data: bytes) -> None:
    assert set(detect(data)) <= set(KEYPAD)


def test_unaligned_buffer_is_accepted() -> None:
    data = b"\x00" + pcm(dtmf("D", 60), silence(40))
    assert GoertzelDetector().feed(memoryview(data)[1:]) == "D"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError) as info:
        GoertzelDetector(sample_rate=16000)
    assert str(info.value) == "GoertzelDetector: sample_rate must be 8000, got 16000"
    with pytest.raises(ValueError) as info:
        GoertzelDetector().feed(b"\x00\x00\x00")
    assert str(info.value) == "feed: PCM length must be even (16-bit samples), got 3 bytes"
