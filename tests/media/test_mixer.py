"""Mixer against a numpy reference, saturation edges and the supervisor topologies."""

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media.mixer import FRAME_BYTES, Mixer

SAMPLES = 160


def tone(value: int, n_frames: int = 1) -> bytes:
    """A constant frame: enough to read off who was summed into a mix."""
    return struct.pack(f"<{SAMPLES * n_frames}h", *[value] * (SAMPLES * n_frames))


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def reference_mix(
    ids: list[int], hears: dict[int, set[int]], frames: dict[int, bytes], n_bytes: int
) -> dict[int, bytes]:
    """Per listener: int64 sum of the audible talkers' frames, clipped once to int16."""
    pcm = {p: np.frombuffer(frames[p], dtype="<i2").astype(np.int64) for p in frames}
    out = {}
    for listener in ids:
        acc = np.zeros(n_bytes // 2, dtype=np.int64)
        for talker in hears[listener]:
            if talker != listener and talker in pcm:
                acc += pcm[talker]
        out[listener] = np.clip(acc, -32768, 32767).astype("<i2").tobytes()
    return out


@st.composite
def mixes(draw: st.DrawFn) -> tuple[int, list[int], dict[int, set[int]], dict[int, bytes]]:
    n = draw(st.integers(min_value=1, max_value=16))
    ids = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n, unique=True))
    hears = {
        listener: {t for t in ids if t != listener and draw(st.booleans())} for listener in ids
    }
    n_frames = draw(st.integers(min_value=1, max_value=3))
    # Quiet talkers sum without clipping; full-scale ones clip: both paths get exercised.
    scale = draw(st.sampled_from([1, 64, 65536]))
    talking = draw(st.lists(st.sampled_from(ids), unique=True))
    frames = {}
    for p in talking:
        raw = draw(st.binary(min_size=FRAME_BYTES * n_frames, max_size=FRAME_BYTES * n_frames))
        values = np.frombuffer(raw, dtype="<i2").astype(np.int64) * scale // 65536
        frames[p] = values.astype("<i2").tobytes()
    return n_frames, ids, hears, frames


@given(mixes())
def test_equals_numpy_reference_for_random_frames_and_rights(
    case: tuple[int, list[int], dict[int, set[int]], dict[int, bytes]],
) -> None:
    n_frames, ids, hears, frames = case
    mixer = Mixer()
    for p in ids:
        mixer.add_participant(p)
    for listener in ids:
        for talker in ids:
            if talker != listener:
                mixer.set_rights(talker, listener, talker in hears[listener])
    # With no input at all there is nothing to take a length from: one silent frame.
    n_bytes = FRAME_BYTES * n_frames if frames else FRAME_BYTES
    assert mixer.mix(frames) == reference_mix(ids, hears, frames, n_bytes)


def conference(*ids: int) -> Mixer:
    mixer = Mixer()
    for p in ids:
        mixer.add_participant(p)
    return mixer


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (16384, 16383, 32767),  # exactly the top: no clipping needed
        (16384, 16384, 32767),  # one past the top
        (32767, 32767, 32767),
        (-16384, -16384, -32768),  # exactly the bottom
        (-32768, -1, -32768),  # one past the bottom
        (-32768, -32768, -32768),
        (32767, -32768, -1),
    ],
)
def test_sum_saturates_exactly_at_int16_limits(a: int, b: int, expected: int) -> None:
    out = conference(1, 2, 3).mix({1: tone(a), 2: tone(b)})
    assert samples(out[3]) == [expected] * SAMPLES


def test_clipping_happens_once_per_listener_not_in_the_shared_sum() -> None:
    # The full sum 32767 + 32767 - 32768 is out of range; listener 1 hears 32767 - 32768.
    out = conference(1, 2, 3).mix({1: tone(32767), 2: tone(32767), 3: tone(-32768)})
    assert samples(out[1]) == [-1] * SAMPLES
    assert samples(out[2]) == [-1] * SAMPLES
    assert samples(out[3]) == [32767] * SAMPLES


def test_sixteen_party_conference_nobody_hears_themselves() -> None:
    ids = list(range(100, 116))
    mixer = conference(*ids)
    # Talker k sends 2**k: a listener's mix is the bit set of the talkers it heard.
    out = mixer.mix({p: tone(1 << k) for k, p in enumerate(ids[:15])})
    for k, p in enumerate(ids):
        heard = {j for j in range(15) if j != k}
        expected = min(sum(1 << j for j in heard), 32767)
        assert samples(out[p]) == [expected] * SAMPLES
    assert all(mixer.hears(p) == set(ids) - {p} for p in ids)


def test_cannot_grant_a_participant_its_own_audio() -> None:
    mixer = conference(1, 2)
    with pytest.raises(ValueError) as excinfo:
        mixer.set_rights(1, 1, True)
    assert str(excinfo.value) == "participant 1 cannot hear itself"
    assert samples(mixer.mix({1: tone(5)})[1]) == [0] * SAMPLES


SUPERVISOR, AGENT, CUSTOMER = 7, 8, 9
# Each talks a distinct bit so a mix says exactly whom its listener heard.
BITS = {SUPERVISOR: 1, AGENT: 2, CUSTOMER: 4}


@pytest.mark.parametrize(
    ("topology", "heard_by"),
    [
        # listen: the supervisor hears both; nobody hears the supervisor.
        ("listen", {SUPERVISOR: {AGENT, CUSTOMER}, AGENT: {CUSTOMER}, CUSTOMER: {AGENT}}),
        # whisper: only the agent hears the supervisor.
        (
            "whisper",
            {SUPERVISOR: {AGENT, CUSTOMER}, AGENT: {CUSTOMER, SUPERVISOR}, CUSTOMER: {AGENT}},
        ),
        # barge: a three-way conference.
        (
            "barge",
            {
                SUPERVISOR: {AGENT, CUSTOMER},
                AGENT: {CUSTOMER, SUPERVISOR},
                CUSTOMER: {AGENT, SUPERVISOR},
            },
        ),
    ],
)
def test_supervisor_topologies(topology: str, heard_by: dict[int, set[int]]) -> None:
    mixer = conference(SUPERVISOR, AGENT, CUSTOMER)
    mixer.apply_topology(topology, supervisor=SUPERVISOR, agent=AGENT, customer=CUSTOMER)
    out = mixer.mix({p: tone(bit) for p, bit in BITS.items()})
    for listener, talkers in heard_by.items():
        assert mixer.hears(listener) == talkers
        assert samples(out[listener]) == [sum(BITS[t] for t in talkers)] * SAMPLES


def test_topologies_switch_back_and_forth_and_leave_other_participants_alone() -> None:
    mixer = conference(SUPERVISOR, AGENT, CUSTOMER, 10)
    mixer.apply_topology("barge", supervisor=SUPERVISOR, agent=AGENT, customer=CUSTOMER)
    mixer.apply_topology("listen", supervisor=SUPERVISOR, agent=AGENT, customer=CUSTOMER)
    assert mixer.hears(AGENT) == {CUSTOMER, 10}
    assert mixer.hears(10) == {SUPERVISOR, AGENT, CUSTOMER}


def test_a_participant_without_a_packet_is_silence() -> None:
    out = conference(1, 2, 3).mix({1: tone(1000)})
    assert samples(out[1]) == [0] * SAMPLES
    assert samples(out[2]) == samples(out[3]) == [1000] * SAMPLES
    assert conference(1, 2).mix({}) == {1: bytes(FRAME_BYTES), 2: bytes(FRAME_BYTES)}


def test_mixes_several_frames_in_one_call_frame_by_frame() -> None:
    a = tone(100) + tone(-200) + tone(30000)
    b = tone(1) + tone(2) + tone(30000)
    out = conference(1, 2, 3).mix({1: a, 2: b})
    assert samples(out[3]) == [101] * SAMPLES + [-198] * SAMPLES + [32767] * SAMPLES
    assert out[1] == b and out[2] == a


def test_removed_participant_is_no_longer_heard_and_its_slot_is_reused() -> None:
    mixer = conference(1, 2, 3)
    mixer.remove_participant(2)
    assert mixer.participants == (1, 3)
    assert mixer.hears(1) == {3}
    mixer.add_participant(4)
    assert mixer.hears(4) == {1, 3}
    assert mixer.hears(1) == {3, 4}
    out = mixer.mix({1: tone(1), 3: tone(2), 4: tone(4)})
    assert samples(out[1]) == [6] * SAMPLES


def test_accepts_misaligned_and_other_buffers() -> None:
    raw = bytearray(b"\x00" + tone(-7))
    out = conference(1, 2).mix({1: memoryview(raw)[1:]})
    assert samples(out[2]) == [-7] * SAMPLES


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.mix({5: tone(0)}), "unknown participant 5"),
        (lambda m: m.set_rights(1, 5, True), "unknown participant 5"),
        (lambda m: m.remove_participant(5), "unknown participant 5"),
        (lambda m: m.add_participant(1), "participant 1 is already in the mix"),
        (
            lambda m: m.mix({1: b"\x00" * 100}),
            "frame for participant 1 must be a whole number of 320-byte frames "
            "(160 samples of 16-bit PCM), got 100 bytes",
        ),
        (
            lambda m: m.mix({1: b""}),
            "frame for participant 1 must be a whole number of 320-byte frames "
            "(160 samples of 16-bit PCM), got 0 bytes",
        ),
        (
            lambda m: m.mix({1: tone(0), 2: tone(0, 2)}),
            "frames must all be the same length, got 320 and 640 bytes",
        ),
        (
            lambda m: m.apply_topology("spy", supervisor=1, agent=2, customer=1),
            "unknown topology 'spy' (expected barge, listen or whisper)",
        ),
        (
            lambda m: m.apply_topology("barge", supervisor=1, agent=2, customer=1),
            "supervisor, agent and customer must be three participants",
        ),
    ],
)
def test_bad_arguments_have_exact_messages(call: object, message: str) -> None:
    mixer = conference(1, 2)
    with pytest.raises(ValueError) as excinfo:
        call(mixer)  # type: ignore[operator]
    assert str(excinfo.value) == message


def test_mixer_holds_sixteen_participants() -> None:
    mixer = conference(*range(16))
    with pytest.raises(ValueError) as excinfo:
        mixer.add_participant(16)
    assert str(excinfo.value) == "mixer is full (16 participants)"
