"""WAV files for prompts (read, write) and for recordings cut off by a crash (repair).

Prompts are 8 kHz mono: µ-law, A-law or 16-bit PCM, plain or wrapped in
WAVE_FORMAT_EXTENSIBLE; ``read_prompt`` decodes them to 16-bit little-endian PCM, the
form the player takes. ``repair_wav`` rewrites the RIFF and data sizes of a recording
from the file's length. Pure Python, files only.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from switch.media.events import MediaError
from switch.media.g711 import alaw_decode, ulaw_decode

PROMPT_SAMPLE_RATE_HZ = 8000
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_*: the format tag in the first two bytes, then this fixed tail.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_CHUNK_HEADER = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
_FMT_EXTENSIBLE_BYTES = 40  # 16 + cbSize, valid bits, channel mask, 16-byte sub-format
_MAX_CHUNK_BYTES = 0xFFFFFFFF


class WavError(MediaError, ValueError):
    """A WAV file that cannot be used; the message says why."""


class WavEncoding(enum.IntEnum):
    """The WAVE format tags a prompt may use (mmreg.h)."""

    PCM16 = 1
    ALAW = 6
    ULAW = 7


_LABELS = {WavEncoding.PCM16: "16-bit PCM", WavEncoding.ALAW: "A-law", WavEncoding.ULAW: "µ-law"}
_BITS_PER_SAMPLE = {WavEncoding.PCM16: 16, WavEncoding.ALAW: 8, WavEncoding.ULAW: 8}
_DECODERS: dict[WavEncoding, Callable[[bytes], bytes]] = {
    WavEncoding.PCM16: bytes,
    WavEncoding.ALAW: alaw_decode,
    WavEncoding.ULAW: ulaw_decode,
}


@dataclass(frozen=True)
class WavFormat:
    """The 'fmt ' chunk; ``format_tag`` is the effective one (EXTENSIBLE unwrapped)."""

    format_tag: int
    channels: int
    sample_rate_hz: int
    block_align: int
    bits_per_sample: int

    @classmethod
    def parse(cls, body: bytes) -> WavFormat:
        if len(body) < _FMT.size:
            raise WavError(f"'fmt ' chunk too short: {len(body)} bytes, at least 16 needed")
        tag, channels, rate_hz, _, block_align, bits = _FMT.unpack_from(body)
        if tag == WAVE_FORMAT_EXTENSIBLE:
            if len(body) < _FMT_EXTENSIBLE_BYTES:
                raise WavError(
                    f"WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short: {len(body)} bytes, "
                    f"{_FMT_EXTENSIBLE_BYTES} needed"
                )
            sub_format = body[24:40]
            if sub_format[2:] != _GUID_TAIL:
                raise WavError(f"unsupported WAVE_FORMAT_EXTENSIBLE sub-format {sub_format.hex()}")
            tag = int.from_bytes(sub_format[:2], "little")
        return cls(tag, channels, rate_hz, block_align, bits)


@dataclass(frozen=True)
class RepairResult:
    frames_kept: int  # WAV frames (one sample per channel) in the repaired data chunk
    bytes_truncated: int  # a partial trailing frame cut off the end of the file


def _chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(chunk id, body offset, declared size) for each chunk after the RIFF header."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    offset = 12
    while offset < len(data):
        if len(data) - offset < _CHUNK_HEADER.size:
            raise WavError(
                f"truncated chunk header at byte {offset}: {len(data) - offset} of 8 bytes"
            )
        chunk_id, size = _CHUNK_HEADER.unpack_from(data, offset)
        yield chunk_id, offset + 8, size
        offset += 8 + size + (size & 1)  # bodies are padded to an even length


def _body(data: bytes, chunk_id: bytes, offset: int, size: int) -> bytes:
    present = len(data) - offset
    if present < size:
        name = chunk_id.decode("latin-1")
        raise WavError(
            f"truncated '{name}' chunk at byte {offset - 8}: {size} bytes declared, "
            f"{present} present"
        )
    return data[offset : offset + size]


def decode_prompt(data: bytes) -> bytes:
    """A prompt file's bytes to 16-bit little-endian PCM at 8 kHz; WavError if unusable."""
    encoding: WavEncoding | None = None
    for chunk_id, offset, size in _chunks(data):
        if chunk_id == b"fmt ":
            encoding = _check_prompt_format(WavFormat.parse(_body(data, chunk_id, offset, size)))
        elif chunk_id == b"data":
            if encoding is None:
                raise WavError("'data' chunk before the 'fmt ' chunk")
            samples = _body(data, chunk_id, offset, size)
            if encoding is WavEncoding.PCM16 and len(samples) % 2:
                raise WavError(f"'data' chunk of 16-bit PCM has an odd number of bytes ({size})")
            return _DECODERS[encoding](samples)
    raise WavError("no 'fmt ' chunk" if encoding is None else "no 'data' chunk")


def _check_prompt_format(fmt: WavFormat) -> WavEncoding:
    try:
        encoding = WavEncoding(fmt.format_tag)
    except ValueError:
        raise WavError(
            f"unsupported format 0x{fmt.format_tag:04x}: prompts must be µ-law (7), "
            f"A-law (6) or 16-bit PCM (1)"
        ) from None
    if fmt.sample_rate_hz != PROMPT_SAMPLE_RATE_HZ:
        raise WavError(f"sample rate {fmt.sample_rate_hz} Hz: prompts must be 8000 Hz")
    if fmt.channels != 1:
        raise WavError(f"{fmt.channels} channels: prompts must be mono")
    if fmt.bits_per_sample != _BITS_PER_SAMPLE[encoding]:
        raise WavError(
            f"{fmt.bits_per_sample} bits per sample: {_LABELS[encoding]} needs "
            f"{_BITS_PER_SAMPLE[encoding]}"
        )
    return encoding


def read_prompt(path: str | os.PathLike[str]) -> bytes:
    """Read and decode a prompt file; WavError names the file, OSError if unreadable."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        return decode_prompt(data)
    except WavError as error:
        raise WavError(f"{os.fspath(path)}: {error}") from None


def encode_wav(
    samples: bytes,
    *,
    encoding: WavEncoding = WavEncoding.PCM16,
    channels: int = 1,
    sample_rate_hz: int = PROMPT_SAMPLE_RATE_HZ,
    extensible: bool = False,
) -> bytes:
    """A WAV file holding ``samples`` as they are (16-bit PCM, or G.711 codes)."""
    bits = _BITS_PER_SAMPLE[encoding]
    block_align = channels * bits // 8
    if len(samples) % block_align:
        raise WavError(
            f"{len(samples)} bytes of samples is not a whole number of {block_align}-byte frames"
        )
    tag = WAVE_FORMAT_EXTENSIBLE if extensible else int(encoding)
    fmt = _FMT.pack(tag, channels, sample_rate_hz, sample_rate_hz * block_align, block_align, bits)
    if extensible:
        speaker_mask = 0x4 if channels == 1 else 0x3  # front centre / front left+right
        fmt += struct.pack("<HHI", 22, bits, speaker_mask)
        fmt += int(encoding).to_bytes(2, "little") + _GUID_TAIL
    elif encoding is not WavEncoding.PCM16:
        fmt += b"\x00\x00"  # cbSize: non-PCM formats carry it
    body = b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"data", samples)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return _CHUNK_HEADER.pack(chunk_id, len(body)) + body + b"\x00" * (len(body) & 1)


def repair_wav(path: str | os.PathLike[str]) -> RepairResult:
    """Make the header of a recording cut off by a crash match the file.

    The data chunk is taken to run to the end of the file (the recorder writes it
    last); a partial trailing frame is cut off, the RIFF and data sizes rewritten.
    A file that is already whole comes out unchanged.
    """
    with open(path, "r+b") as file:
        file_bytes = os.fstat(file.fileno()).st_size
        data_offset, block_align = _locate_data(file)
        available = file_bytes - data_offset
        kept = available - available % block_align
        if kept > _MAX_CHUNK_BYTES - (data_offset - 8):
            raise WavError(f"'data' chunk too large for WAV: {kept} bytes")
        file.truncate(data_offset + kept)
        pad = kept & 1
        if pad:
            file.seek(data_offset + kept)
            file.write(b"\x00")
        file.seek(4)
        file.write((data_offset + kept + pad - 8).to_bytes(4, "little"))
        file.seek(data_offset - 4)
        file.write(kept.to_bytes(4, "little"))
    return RepairResult(frames_kept=kept // block_align, bytes_truncated=available - kept)


def _locate_data(file: BinaryIO) -> tuple[int, int]:
    """(offset of the data chunk's body, block align), reading chunk headers only."""
    file.seek(0)
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt: WavFormat | None = None
    offset = 12
    while True:
        file.seek(offset)
        header = file.read(_CHUNK_HEADER.size)
        if len(header) < _CHUNK_HEADER.size:
            raise WavError("no 'data' chunk")
        chunk_id, size = _CHUNK_HEADER.unpack(header)
        if chunk_id == b"data":
            if fmt is None:
                raise WavError("'data' chunk before the 'fmt ' chunk")
            return offset + 8, fmt.block_align
        if chunk_id == b"fmt ":
            body = file.read(size)
            if len(body) < size:
                raise WavError(
                    f"truncated 'fmt ' chunk at byte {offset}: {size} bytes declared, "
                    f"{len(body)} present"
                )
            fmt = WavFormat.parse(body)
            if fmt.block_align < 1:
                raise WavError(f"block align {fmt.block_align} in the 'fmt ' chunk")
        offset += 8 + size + (size & 1)
