# cython: language_level=3
"""C API of the N-party mixer, for the engine to cimport.

Rights are data: ``hears[L]`` is a bit mask of the slots listener L hears (bit T set: T's
audio reaches L). ``mix_frame`` never lets a slot hear itself, whatever the mask says.
A ``Mix`` is owned by one worker thread; ``mix_frame`` only reads it.
"""

from libc.stdint cimport int16_t, uint32_t


cdef enum:
    MIX_MAX_PARTIES = 16
    MIX_FRAME_SAMPLES = 160  # one 20 ms frame of 8 kHz audio


cdef struct Mix:
    uint32_t active                   # bit per slot in use
    uint32_t hears[MIX_MAX_PARTIES]   # hears[listener]: bit per talker it hears


cdef void mix_init(Mix *mix) noexcept nogil

# inputs[slot]: MIX_FRAME_SAMPLES native-endian samples, or NULL (no packet this tick:
# silence). outputs[slot]: where the slot's mix goes, or NULL when nobody wants it.
# Only active slots are read or written.
cdef void mix_frame(const Mix *mix, const int16_t *const *inputs,
                    int16_t *const *outputs) noexcept nogil
