# cython: language_level=3
"""The engine's per-tick work: timeouts, stats, RTCP send, decode, mixes, recordings,
and what the engine sends itself (RFC 4733 digits, prompts and tones, mix output)."""

from libc.stdint cimport int64_t

from switch.media.engine_types cimport Worker


# One 20 ms tick of the worker at the absolute CLOCK_MONOTONIC time tick_ns.
cdef void run_tick(Worker *w, int64_t tick_ns) noexcept nogil
