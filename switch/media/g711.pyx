# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""G.711 µ-law and A-law (ITU-T G.711), bit-exact with CPython's audioop for 16-bit PCM.

PCM is signed 16-bit little-endian. Decoding is one 256-entry table lookup per byte.
Encoding only depends on the top 14 (µ-law) or 13 (A-law) bits of a sample, so it is one
lookup in a 16384- or 8192-entry table indexed by the sample's bit pattern shifted right.
The tables are built once at import from the reference segment search (the same
algorithm as the Sun/ITU reference code that audioop uses), so the hot loops hold no
branches at all.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy

# Reference constants, ITU-T G.711 / Sun g711.c (the code audioop.c carries).
cdef int ULAW_BIAS = 0x84
cdef int ULAW_CLIP = 8159  # largest 14-bit magnitude before the bias is added
cdef int16_t[8] SEG_UEND = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
cdef int16_t[8] SEG_AEND = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]

# ULAW_SHIFT/ALAW_SHIFT and the four tables are declared in g711.pxd (shared with the
# engine, which transcodes PCMU<->PCMA with them).


cdef int _segment(int value, const int16_t *ends) noexcept nogil:
    """Index of the first segment whose end is >= value; 8 when value is past them all."""
    cdef int seg
    for seg in range(8):
        if value <= ends[seg]:
            return seg
    return 8


cdef uint8_t _ulaw_from_14bit(int value) noexcept nogil:
    cdef int mask = 0xFF
    cdef int seg
    if value < 0:
        value = -value
        mask = 0x7F
    if value > ULAW_CLIP:
        value = ULAW_CLIP
    value += ULAW_BIAS >> 2
    seg = _segment(value, SEG_UEND)
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    return <uint8_t>(((seg << 4) | ((value >> (seg + 1)) & 0xF)) ^ mask)


cdef uint8_t _alaw_from_13bit(int value) noexcept nogil:
    cdef int mask = 0xD5  # sign bit set: positive
    cdef int seg
    cdef int code
    if value < 0:
        mask = 0x55
        value = -value - 1
    seg = _segment(value, SEG_AEND)
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    code = seg << 4
    if seg < 2:
        code |= (value >> 1) & 0xF
    else:
        code |= (value >> seg) & 0xF
    return <uint8_t>(code ^ mask)


cdef int16_t _linear_from_ulaw(uint8_t code) noexcept nogil:
    cdef int u = (~code) & 0xFF
    cdef int t = (((u & 0xF) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4)
    return <int16_t>((ULAW_BIAS - t) if (u & 0x80) else (t - ULAW_BIAS))


cdef int16_t _linear_from_alaw(uint8_t code) noexcept nogil:
    cdef int a = code ^ 0x55
    cdef int seg = (a & 0x70) >> 4
    cdef int t = (a & 0xF) << 4
    if seg == 0:
        t += 8
    else:
        t = (t + 0x108) << (seg - 1)
    return <int16_t>(t if (a & 0x80) else -t)


cdef void _build_tables() noexcept nogil:
    cdef int i
    for i in range(1 << 14):
        # i is the sample's top 14 bits as an unsigned pattern; undo two's complement.
        ULAW_ENCODE[i] = _ulaw_from_14bit(i - (1 << 14) if i >= (1 << 13) else i)
    for i in range(1 << 13):
        ALAW_ENCODE[i] = _alaw_from_13bit(i - (1 << 13) if i >= (1 << 12) else i)
    for i in range(256):
        ULAW_DECODE[i] = _linear_from_ulaw(<uint8_t>i)
        ALAW_DECODE[i] = _linear_from_alaw(<uint8_t>i)
        ULAW_DECODE_LE[i] = _little_endian(<uint16_t>ULAW_DECODE[i])
        ALAW_DECODE_LE[i] = _little_endian(<uint16_t>ALAW_DECODE[i])


# Decoded samples as the two bytes PCM output holds (little-endian) read back as a native
# uint16: the decode loop then stores each sample with one 16-bit move on any CPU.
cdef uint16_t ULAW_DECODE_LE[256]
cdef uint16_t ALAW_DECODE_LE[256]
# Two codes at once (the pair as it lies in memory, read as a native uint16) -> the four
# output bytes as a native uint32: one lookup and one 32-bit store per two samples.
# 256 KiB per law, which stays in L2 for a 10 s buffer.
cdef uint32_t ULAW_DECODE_PAIR[65536]
cdef uint32_t ALAW_DECODE_PAIR[65536]


cdef void _build_pair_table(const uint16_t *single, uint32_t *pair) noexcept nogil:
    cdef int i
    cdef uint8_t codes[2]
    cdef uint16_t samples[2]
    cdef uint16_t index
    for i in range(65536):
        index = <uint16_t>i
        memcpy(codes, &index, 2)
        samples[0] = single[codes[0]]
        samples[1] = single[codes[1]]
        memcpy(&pair[i], samples, 4)


cdef uint16_t _little_endian(uint16_t value) noexcept nogil:
    cdef uint8_t wire[2]
    cdef uint16_t native
    wire[0] = value & 0xFF
    wire[1] = value >> 8
    memcpy(&native, wire, 2)
    return native


_build_tables()
_build_pair_table(ULAW_DECODE_LE, ULAW_DECODE_PAIR)
_build_pair_table(ALAW_DECODE_LE, ALAW_DECODE_PAIR)


# Kernels: pointer + length in, pointer out; no Python objects, callable without the GIL.

cdef void ulaw_encode_into(const uint8_t *pcm, Py_ssize_t n_samples, uint8_t *out) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint16_t sample
    for i in range(n_samples):
        sample = pcm[2 * i] | (<uint16_t>pcm[2 * i + 1] << 8)
        out[i] = ULAW_ENCODE[sample >> ULAW_SHIFT]


cdef void alaw_encode_into(const uint8_t *pcm, Py_ssize_t n_samples, uint8_t *out) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint16_t sample
    for i in range(n_samples):
        sample = pcm[2 * i] | (<uint16_t>pcm[2 * i + 1] << 8)
        out[i] = ALAW_ENCODE[sample >> ALAW_SHIFT]


cdef inline void _decode_into(const uint8_t *codes, Py_ssize_t n_samples, uint8_t *pcm,
                              const uint16_t *single, const uint32_t *pair) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint16_t index
    for i in range(0, n_samples - 1, 2):
        memcpy(&index, codes + i, 2)
        memcpy(pcm + 2 * i, &pair[index], 4)  # two samples, one 32-bit store
    if n_samples % 2:
        memcpy(pcm + 2 * (n_samples - 1), &single[codes[n_samples - 1]], 2)


cdef void ulaw_decode_into(const uint8_t *codes, Py_ssize_t n_samples, uint8_t *pcm) noexcept nogil:
    _decode_into(codes, n_samples, pcm, ULAW_DECODE_LE, ULAW_DECODE_PAIR)


cdef void alaw_decode_into(const uint8_t *codes, Py_ssize_t n_samples, uint8_t *pcm) noexcept nogil:
    _decode_into(codes, n_samples, pcm, ALAW_DECODE_LE, ALAW_DECODE_PAIR)


ctypedef void (*kernel_t)(const uint8_t *, Py_ssize_t, uint8_t *) noexcept nogil


cdef bytes _encode(str name, object pcm, kernel_t kernel):
    cdef Py_buffer view
    cdef Py_ssize_t n_samples
    cdef bytes out
    cdef uint8_t *dst
    PyObject_GetBuffer(pcm, &view, PyBUF_SIMPLE)
    try:
        if view.len % 2:
            raise ValueError(
                f"{name}: PCM length must be even (16-bit samples), got {view.len} bytes"
            )
        n_samples = view.len // 2
        out = PyBytes_FromStringAndSize(NULL, n_samples)
        dst = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            kernel(<const uint8_t *>view.buf, n_samples, dst)
        return out
    finally:
        PyBuffer_Release(&view)


cdef bytes _decode(object data, kernel_t kernel):
    cdef Py_buffer view
    cdef Py_ssize_t n_samples
    cdef bytes out
    cdef uint8_t *dst
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n_samples = view.len
        out = PyBytes_FromStringAndSize(NULL, 2 * n_samples)
        dst = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            kernel(<const uint8_t *>view.buf, n_samples, dst)
        return out
    finally:
        PyBuffer_Release(&view)


def ulaw_encode(pcm):
    """Encode signed 16-bit little-endian PCM to µ-law, one byte per sample."""
    return _encode("ulaw_encode", pcm, ulaw_encode_into)


def alaw_encode(pcm):
    """Encode signed 16-bit little-endian PCM to A-law, one byte per sample."""
    return _encode("alaw_encode", pcm, alaw_encode_into)


def ulaw_decode(data):
    """Decode µ-law bytes to signed 16-bit little-endian PCM."""
    return _decode(data, ulaw_decode_into)


def alaw_decode(data):
    """Decode A-law bytes to signed 16-bit little-endian PCM."""
    return _decode(data, alaw_decode_into)
