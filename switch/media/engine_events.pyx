# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The engine's event ring (see engine_events.pxd): worker -> Python, never blocking a
worker for longer than a copy under the mutex; a full ring drops and counts."""

from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, strerror
from posix.unistd cimport read, write

from switch.media.engine_types cimport (
    EV_COMMAND_FAILED,
    EV_DTMF,
    EV_PLAYBACK_FINISHED,
    EV_RTP_TIMEOUT,
    EV_STATS,
    N_COUNTERS,
    SAMPLES_PER_MS,
    pthread_mutex_lock,
    pthread_mutex_unlock,
)
from switch.media.rtp cimport RecvReport, mos_estimate, stats_peek

from switch.media.events import (
    CommandFailed,
    DtmfReceived,
    LegStatistics,
    PlaybackFinished,
    RtpTimedOut,
)

FAILED_COMMANDS = {1: "attach"}  # EventRec.digit of EV_COMMAND_FAILED (FAILED_*)


cdef void post_event(Shared *shared, const EventRec *rec) noexcept nogil:
    cdef uint64_t one = 1
    cdef bint was_empty
    pthread_mutex_lock(&shared.mutex)
    if shared.count == shared.cap:
        shared.dropped += 1
        pthread_mutex_unlock(&shared.mutex)
        return
    shared.ring[(shared.head + shared.count) % shared.cap] = rec[0]
    was_empty = shared.count == 0
    shared.count += 1
    pthread_mutex_unlock(&shared.mutex)
    if was_empty:  # one wake-up per batch: the reader drains everything at once
        write(shared.eventfd, &one, 8)


cdef void post_stats(Shared *shared, Leg *leg) noexcept nogil:
    cdef EventRec rec
    rec.kind = EV_STATS
    rec.leg = leg.id
    rec.value = 0
    memcpy(rec.counters, &leg.counters, sizeof(Counters))
    quality(leg, &rec)
    post_event(shared, &rec)


cdef void quality(const Leg *leg, EventRec *rec) noexcept nogil:
    """RFC 3550 loss and jitter of the current source, and the E-model MOS from them."""
    cdef RecvReport report
    stats_peek(&leg.rx_stats, &report)
    rec.lost = report.lost
    rec.jitter_ms = report.jitter / SAMPLES_PER_MS
    rec.rtt_ms = leg.rtt_ms
    rec.mos = mos_estimate(
        report.lost / <double>report.expected if report.expected > 0 and report.lost > 0
        else 0.0,
        rec.jitter_ms,
        leg.rtt_ms,  # 0 until an RTCP report block about our stream came back
    )


cdef EventRec *malloc_or_null(size_t n) noexcept nogil:
    return <EventRec *>malloc(n * sizeof(EventRec) if n else 1)


COUNTER_NAMES = ("received", "sent", "dropped_invalid", "dropped_stranger", "relayed",
                 "rtcp_received")


cdef dict counters_dict(const Counters *counters):
    cdef const uint64_t *values = <const uint64_t *>counters
    return {name: values[i] for i, name in enumerate(COUNTER_NAMES)}


cdef object event_object(const EventRec *rec):
    if rec.kind == EV_RTP_TIMEOUT:
        return RtpTimedOut(rec.leg, rec.value)
    if rec.kind == EV_DTMF:
        return DtmfReceived(rec.leg, chr(rec.digit), int(rec.value))
    if rec.kind == EV_PLAYBACK_FINISHED:
        return PlaybackFinished(rec.leg)
    if rec.kind == EV_COMMAND_FAILED:
        return CommandFailed(rec.leg, FAILED_COMMANDS[rec.digit],
                             strerror(<int>rec.value).decode())
    return LegStatistics(rec.leg, *[rec.counters[i] for i in range(N_COUNTERS)],
                         rec.lost, rec.jitter_ms, rec.mos, rec.rtt_ms)


cdef list drain_ring(Shared *shared):
    cdef uint64_t counter
    cdef EventRec *batch
    cdef size_t n, i
    read(shared.eventfd, &counter, 8)
    with nogil:
        pthread_mutex_lock(&shared.mutex)
        n = shared.count
        batch = <EventRec *>malloc_or_null(n)
        if batch != NULL:
            for i in range(n):
                batch[i] = shared.ring[(shared.head + i) % shared.cap]
            shared.head = (shared.head + n) % shared.cap
            shared.count = 0
        pthread_mutex_unlock(&shared.mutex)
    if n and batch == NULL:
        raise MemoryError()
    try:
        return [event_object(&batch[i]) for i in range(n)]
    finally:
        free(batch)
