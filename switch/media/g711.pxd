# cython: language_level=3
"""G.711 kernels and tables for other media modules to cimport (the engine transcodes).

Tables are built once when switch.media.g711 is imported; cimporting this module imports
it, so they are ready before any cimporter runs.
"""

from libc.stdint cimport int16_t, uint8_t


cdef enum:
    ULAW_SHIFT = 2  # sample >> 2 is the 14-bit value that µ-law encodes
    ALAW_SHIFT = 3  # sample >> 3 is the 13-bit value that A-law encodes

# Encode: indexed by the sample's bit pattern (uint16) shifted right by *_SHIFT.
cdef uint8_t ULAW_ENCODE[16384]
cdef uint8_t ALAW_ENCODE[8192]
# Decode: indexed by the code byte.
cdef int16_t ULAW_DECODE[256]
cdef int16_t ALAW_DECODE[256]

# Pointer + length kernels: PCM is signed 16-bit little-endian, two bytes per sample.
cdef void ulaw_encode_into(const uint8_t *pcm, Py_ssize_t n_samples, uint8_t *out) noexcept nogil
cdef void alaw_encode_into(const uint8_t *pcm, Py_ssize_t n_samples, uint8_t *out) noexcept nogil
cdef void ulaw_decode_into(const uint8_t *codes, Py_ssize_t n_samples, uint8_t *pcm) noexcept nogil
cdef void alaw_decode_into(const uint8_t *codes, Py_ssize_t n_samples, uint8_t *pcm) noexcept nogil
