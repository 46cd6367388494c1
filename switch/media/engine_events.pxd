# cython: language_level=3
"""The event ring: workers post fixed-size records (mutex + eventfd), Python drains them."""

from switch.media.engine_types cimport Counters, EventRec, Leg, Shared


cdef void post_event(Shared *shared, const EventRec *rec) noexcept nogil
cdef void post_stats(Shared *shared, Leg *leg) noexcept nogil
# RFC 3550 loss and jitter of the leg's current source, and the E-model MOS from them.
cdef void quality(const Leg *leg, EventRec *rec) noexcept nogil
cdef dict counters_dict(const Counters *counters)
# Every queued event, oldest first, as switch.media.events objects.
cdef list drain_ring(Shared *shared)
