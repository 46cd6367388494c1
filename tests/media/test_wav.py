"""WAV prompts (decoding, exact errors) and repair of recordings cut off by a crash."""

from __future__ import annotations

import contextlib
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from switch.media.wav import (
    RepairResult,
    WavEncoding,
    WavError,
    decode_prompt,
    encode_wav,
    read_prompt,
    repair_wav,
)

PCM = struct.pack("<8h", 0, 1, -1, 1000, -1000, 32767, -32768, 12345)
EXTENSIBLE = encode_wav(PCM, extensible=True)


def hand_made_ulaw_file(codes: bytes) -> bytes:
    """A µ-law WAV laid out by hand, independent of encode_wav."""
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)
    data = b"data" + struct.pack("<I", len(codes)) + codes + b"\x00" * (len(codes) & 1)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_pcm_prompt_written_by_the_wave_module(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "p.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(PCM)
    assert read_prompt(tmp_path / "p.wav") == PCM


def test_ulaw_prompt_decodes_with_g711() -> None:
    codes = bytes(range(256)) + b"\x7f"  # odd length: a pad byte follows
    assert decode_prompt(hand_made_ulaw_file(codes)) == ulaw_decode(codes)
    assert encode_wav(codes, encoding=WavEncoding.ULAW) == hand_made_ulaw_file(codes)


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize(
    ("encoding", "encode", "decode"),
    [
        (WavEncoding.ULAW, ulaw_encode, ulaw_decode),
        (WavEncoding.ALAW, alaw_encode, alaw_decode),
        (WavEncoding.PCM16, bytes, bytes),
    ],
)
def test_every_prompt_encoding_plain_or_extensible(
    encoding: WavEncoding, encode: object, decode: object, extensible: bool
) -> None:
    assert callable(encode) and callable(decode)
    samples = encode(PCM)
    data = encode_wav(samples, encoding=encoding, extensible=extensible)
    assert (struct.unpack_from("<H", data, 20)[0] == 0xFFFE) is extensible
    assert decode_prompt(data) == decode(samples)


def test_chunks_before_fmt_and_data_are_skipped() -> None:
    plain = encode_wav(PCM)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd chunk, padded
    data = plain[:12] + extra + plain[12:]
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    assert decode_prompt(data) == PCM


def fmt_file(tag: int, channels: int, rate_hz: int, bits: int, data: bytes = b"\x00\x00") -> bytes:
    block = channels * max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate_hz, rate_hz * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a RIFF/WAVE file"),
        (b"RIFX\x00\x00\x00\x00WAVE", "not a RIFF/WAVE file"),
        (b"RIFF\x04\x00\x00\x00AVI ", "not a RIFF/WAVE file"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no 'fmt ' chunk"),
        (b"RIFF\x04\x00\x00\x00WAVEfmt", "truncated chunk header at byte 12: 3 of 8 bytes"),
        (
            b"RIFF\x04\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00",
            "truncated 'fmt ' chunk at byte 12: 16 bytes declared, 2 present",
        ),
        (
            b"RIFF\x04\x00\x00\x00WAVEfmt \x02\x00\x00\x00\x01\x00",
            "'fmt ' chunk too short: 2 bytes, at least 16 needed",
        ),
        (
            b"RIFF\x04\x00\x00\x00WAVEdata\x00\x00\x00\x00",
            "'data' chunk before the 'fmt ' chunk",
        ),
        (fmt_file(1, 1, 16000, 16), "sample rate 16000 Hz: prompts must be 8000 Hz"),
        (fmt_file(7, 2, 8000, 8), "2 channels: prompts must be mono"),
        (
            fmt_file(0x55, 1, 8000, 16),
            "unsupported format 0x0055: prompts must be µ-law (7), A-law (6) or 16-bit PCM (1)",
        ),
        (fmt_file(1, 1, 8000, 8), "8 bits per sample: 16-bit PCM needs 16"),
        (fmt_file(6, 1, 8000, 16), "16 bits per sample: A-law needs 8"),
        (
            fmt_file(1, 1, 8000, 16, b"\x01"),
            "'data' chunk of 16-bit PCM has an odd number of bytes (1)",
        ),
        (
            encode_wav(PCM)[:-4],
            "truncated 'data' chunk at byte 36: 16 bytes declared, 12 present",
        ),
        (encode_wav(PCM)[:36], "no 'data' chunk"),
        (
            EXTENSIBLE[:12] + b"fmt \x12\x00\x00\x00" + b"\xfe\xff" + b"\x00" * 16,
            "WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short: 18 bytes, 40 needed",
        ),
        (
            EXTENSIBLE[:46] + b"\xff" * 14 + EXTENSIBLE[60:],  # the GUID's fixed tail
            "unsupported WAVE_FORMAT_EXTENSIBLE sub-format 0100ffffffffffffffffffffffffffff",
        ),
    ],
)  # fmt: skip
def test_unusable_prompts_say_why(data: bytes, message: str) -> None:
    with pytest.raises(WavError) as excinfo:
        decode_prompt(data)
    assert str(excinfo.value) == message


def test_read_prompt_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hello.wav"
    path.write_bytes(fmt_file(1, 1, 44100, 16))
    with pytest.raises(WavError) as excinfo:
        read_prompt(path)
    assert str(excinfo.value) == f"{path}: sample rate 44100 Hz: prompts must be 8000 Hz"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_wav_errors(data: bytes) -> None:
    with contextlib.suppress(WavError):
        decode_prompt(data)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_arbitrary_bytes_after_a_riff_header_raise_only_wav_errors(
    after_fmt: bytes, tail: bytes
) -> None:
    with contextlib.suppress(WavError):
        decode_prompt(encode_wav(PCM)[:36] + after_fmt + tail)


@given(st.lists(st.integers(-32768, 32767), max_size=300))
def test_pcm_round_trip(samples: list[int]) -> None:
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    assert decode_prompt(encode_wav(pcm)) == pcm


# ---- repair ----------------------------------------------------------------------------


def recording(tmp_path: Path, data: bytes, *, channels: int = 2, header_bytes: int = 0) -> Path:
    """A recording as a crash leaves it: the header covers only ``header_bytes``."""
    path = tmp_path / "rec.wav"
    whole = encode_wav(data[: len(data) - len(data) % (2 * channels)], channels=channels)
    header = bytearray(whole[:44])
    header[4:8] = struct.pack("<I", 36 + header_bytes)
    header[40:44] = struct.pack("<I", header_bytes)
    path.write_bytes(bytes(header) + data)
    return path


def read_frames(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path)) as wav:
        return wav.getnframes(), wav.readframes(wav.getnframes())


def test_repair_keeps_all_audio_past_the_last_header_update(tmp_path: Path) -> None:
    audio = bytes(range(256)) * 10  # 2560 bytes = 640 stereo frames
    path = recording(tmp_path, audio, header_bytes=400)
    assert read_frames(path)[0] == 100  # before: only what the header covered

    assert repair_wav(path) == RepairResult(frames_kept=640, bytes_truncated=0)
    assert read_frames(path) == (640, audio)
    assert path.stat().st_size == 44 + len(audio)


def test_repair_cuts_a_partial_trailing_frame(tmp_path: Path) -> None:
    audio = bytes(range(255))  # 63 stereo frames and 3 bytes
    path = recording(tmp_path, audio, header_bytes=0)
    assert repair_wav(path) == RepairResult(frames_kept=63, bytes_truncated=3)
    assert read_frames(path) == (63, audio[:252])


def test_repair_of_a_whole_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "whole.wav"
    path.write_bytes(encode_wav(PCM))
    assert repair_wav(path) == RepairResult(frames_kept=8, bytes_truncated=0)
    assert path.read_bytes() == encode_wav(PCM)


def test_repair_pads_an_odd_data_chunk(tmp_path: Path) -> None:
    path = tmp_path / "ulaw.wav"
    codes = b"\x01\x02\x03\x04\x05"
    # The header says 3 codes (and a pad byte); a crash left 5 codes and no pad.
    path.write_bytes(encode_wav(codes[:3], encoding=WavEncoding.ULAW)[:-1] + codes[3:])
    assert repair_wav(path) == RepairResult(frames_kept=5, bytes_truncated=0)
    assert path.read_bytes() == encode_wav(codes, encoding=WavEncoding.ULAW)
    assert decode_prompt(path.read_bytes()) == ulaw_decode(codes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF", "not a RIFF/WAVE file"),
        (encode_wav(PCM)[:36], "no 'data' chunk"),
        (b"RIFF\x04\x00\x00\x00WAVEdata\x00\x00\x00\x00", "'data' chunk before the 'fmt ' chunk"),
        (
            b"RIFF\x04\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00",
            "truncated 'fmt ' chunk at byte 12: 16 bytes declared, 2 present",
        ),
    ],
)
def test_repair_refuses_what_is_not_a_recording(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(data)
    with pytest.raises(WavError) as excinfo:
        repair_wav(path)
    assert str(excinfo.value) == message
    assert path.read_bytes() == data  # untouched
