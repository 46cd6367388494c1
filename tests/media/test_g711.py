"""G.711 kernels against CPython's audioop (the ITU-T reference algorithm), exhaustively."""

import array
import struct
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media import g711

with warnings.catch_warnings():
    # audioop is deprecated (removed in 3.13); here it is only the reference to match.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))
ALL_CODES = bytes(range(256))

ENCODERS = {
    "ulaw_encode": (g711.ulaw_encode, audioop.lin2ulaw),
    "alaw_encode": (g711.alaw_encode, audioop.lin2alaw),
}
DECODERS = {
    "ulaw_decode": (g711.ulaw_decode, audioop.ulaw2lin),
    "alaw_decode": (g711.alaw_decode, audioop.alaw2lin),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encode_matches_reference_for_every_int16(name: str) -> None:
    ours, reference = ENCODERS[name]
    assert ours(ALL_SAMPLES) == reference(ALL_SAMPLES, 2)


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decode_matches_reference_for_every_code(name: str) -> None:
    ours, reference = DECODERS[name]
    assert ours(ALL_CODES) == reference(ALL_CODES, 2)


def test_known_values() -> None:
    # Silence is 0xFF in µ-law and 0xD5 in A-law (ITU-T G.711 tables 1a/2a).
    assert g711.ulaw_encode(b"\x00\x00") == b"\xff"
    assert g711.alaw_encode(b"\x00\x00") == b"\xd5"
    assert g711.ulaw_decode(b"\x00") == struct.pack("<h", -32124)
    assert g711.alaw_decode(b"\xaa") == struct.pack("<h", 32256)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encode_then_decode_is_stable(name: str) -> None:
    # Decoding a code and encoding it again gives the same code: the codec is idempotent.
    encode = ENCODERS[name][0]
    decode = g711.ulaw_decode if name.startswith("ulaw") else g711.alaw_decode
    codes = encode(ALL_SAMPLES)
    assert encode(decode(codes)) == codes


@given(
    pcm=st.binary(max_size=2000).map(lambda b: b[: len(b) & ~1]),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=6),
)
def test_chunked_encode_equals_one_shot(pcm: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(pcm), *(min(2 * c, len(pcm)) for c in cuts)})
    chunks = [pcm[a:b] for a, b in pairwise(bounds)]
    for encode, _ in ENCODERS.values():
        assert b"".join(encode(chunk) for chunk in chunks) == encode(pcm)


@given(
    data=st.binary(max_size=1000),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=6),
)
def test_chunked_decode_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    chunks = [data[a:b] for a, b in pairwise(bounds)]
    for decode, _ in DECODERS.values():
        assert b"".join(decode(chunk) for chunk in chunks) == decode(data)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encode_rejects_odd_length_with_exact_message(name: str) -> None:
    encode = ENCODERS[name][0]
    with pytest.raises(ValueError) as excinfo:
        encode(b"\x00\x01\x02")
    assert str(excinfo.value) == f"{name}: PCM length must be even (16-bit samples), got 3 bytes"


@pytest.mark.parametrize("function", [g711.ulaw_encode, g711.alaw_decode])
def test_rejects_what_is_not_bytes_like(function: object) -> None:
    with pytest.raises(TypeError, match=r"^a bytes-like object is required, not 'str'$"):
        function("ab")  # type: ignore[operator]


def test_accepts_any_contiguous_buffer_and_empty_input() -> None:
    samples = array.array("h", [0, 1000, -1000, 32767, -32768])
    as_bytes = samples.tobytes()
    expected = g711.ulaw_encode(as_bytes)
    assert g711.ulaw_encode(samples) == expected
    assert g711.ulaw_encode(bytearray(as_bytes)) == expected
    assert g711.ulaw_encode(memoryview(as_bytes)) == expected
    assert g711.ulaw_encode(b"") == b""
    assert g711.alaw_decode(bytearray()) == b""


def test_kernels_are_thread_safe() -> None:
    # The loops run without the GIL; concurrent calls must not disturb one another.
    expected = g711.alaw_encode(ALL_SAMPLES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(g711.alaw_encode, [ALL_SAMPLES] * 16))
    assert results == [expected] * 16
