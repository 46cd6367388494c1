# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Adaptive jitter buffer for the paths that decode (mix, record, detection).

Packets are stored by sequence number in a ring of 64 frames; the play point advances one
20 ms frame per tick. "Transit" is arrival time minus the packet's nominal time (its RTP
timestamp in microseconds): its running minimum over the last one to two windows of
packets is the path's base delay, and a frame is due at nominal + base + ``delay_us``.
The jitter estimate is RFC 3550 §6.4.1's |D| smoothing, but asymmetric (gain 1/4 up,
1/64 down) so the buffer grows within a few packets of a burst and relaxes over seconds.
When the base delay falls, ``delay_us`` takes the difference so no frame becomes due
early: the slow shrink pays it back, one skipped frame at a time.
"""

from collections import namedtuple

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport INT64_MAX, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset

FRAME_US = JB_FRAME_US
MAX_PAYLOAD_BYTES = JB_MAX_PAYLOAD
MIN_DELAY_US = JB_MIN_DELAY_US
MAX_DELAY_US = JB_MAX_DELAY_US
SHRINK_INTERVAL_TICKS = JB_SHRINK_INTERVAL_TICKS

_INSERTED = ("stored", "late", "duplicate", "resynced", "invalid")
Pulled = namedtuple("Pulled", "status seq payload")


cdef void jb_init(JbState *jb) noexcept nogil:
    memset(jb, 0, sizeof(JbState))
    jb.target_us = JB_MIN_DELAY_US
    jb.delay_us = JB_MIN_DELAY_US


cdef inline int64_t _nominal_us(const JbState *jb, uint32_t timestamp) noexcept nogil:
    return <int64_t>(<int32_t>(timestamp - jb.ref_ts)) * JB_US_PER_SAMPLE


cdef inline int64_t _clamp(int64_t value, int64_t low, int64_t high) noexcept nogil:
    return low if value < low else (high if value > high else value)


cdef void _anchor(JbState *jb, uint16_t seq, uint32_t timestamp, int64_t arrival_us) noexcept nogil:
    """Start a stream here: empty ring, play point on this packet, delay kept."""
    cdef int i
    for i in range(JB_SLOTS):
        jb.slots[i].filled = 0
    jb.anchored = 1
    jb.playing = 0
    jb.play_seq = seq
    jb.play_ts = timestamp
    jb.newest_seq = seq
    jb.ref_ts = timestamp
    jb.transit_min_us = arrival_us
    jb.window_min_us = arrival_us
    jb.previous_window_min_us = arrival_us
    jb.window_count = 1
    jb.last_transit_us = arrival_us
    jb.ticks_since_shrink = 0
    jb.late_streak = 0


cdef void _observe_transit(JbState *jb, int64_t transit_us) noexcept nogil:
    cdef int64_t deviation = transit_us - jb.last_transit_us
    cdef int64_t base_us
    jb.last_transit_us = transit_us
    if deviation < 0:
        deviation = -deviation
    if deviation > jb.jitter_us:
        jb.jitter_us += (deviation - jb.jitter_us) // 4
    else:
        jb.jitter_us -= (jb.jitter_us - deviation) // 64
    jb.target_us = _clamp(2 * jb.jitter_us + JB_FRAME_US, JB_MIN_DELAY_US, JB_MAX_DELAY_US)

    if transit_us < jb.window_min_us:
        jb.window_min_us = transit_us
    jb.window_count += 1
    if jb.window_count >= JB_TRANSIT_WINDOW:
        jb.previous_window_min_us = jb.window_min_us
        jb.window_min_us = INT64_MAX
        jb.window_count = 0
    base_us = min(jb.window_min_us, jb.previous_window_min_us)
    if base_us < jb.transit_min_us:
        # Faster path (or the first packets were the delayed ones): keep due times where
        # they are and let the slow shrink take the slack back.
        jb.delay_us += jb.transit_min_us - base_us
    jb.transit_min_us = base_us
    # Grow at once.
    if jb.delay_us < jb.target_us:
        jb.delay_us = jb.target_us
    if jb.delay_us > JB_MAX_DELAY_US:
        jb.delay_us = JB_MAX_DELAY_US


cdef int jb_insert(JbState *jb, uint16_t seq, uint32_t timestamp, const uint8_t *payload,
                   Py_ssize_t n_bytes, int64_t arrival_us) noexcept nogil:
    cdef int result = JB_STORED
    cdef int16_t ahead
    cdef int32_t ts_gap
    cdef uint16_t gap_end
    cdef JbSlot *slot
    if n_bytes < 0 or n_bytes > JB_MAX_PAYLOAD:
        return JB_INVALID
    jb.received += 1
    if not jb.anchored:
        _anchor(jb, seq, timestamp, arrival_us)
    else:
        ahead = <int16_t>(seq - jb.play_seq)
        # Timestamp not explained by the seq distance: silence suppression ended, or a new source.
        ts_gap = <int32_t>(timestamp - jb.play_ts - <uint32_t>(<int32_t>ahead * JB_FRAME_SAMPLES))
        if (ahead >= JB_SLOTS or ahead < -JB_SLOTS
                or ts_gap >= JB_FRAME_SAMPLES or ts_gap <= -JB_FRAME_SAMPLES):
            jb.resyncs += 1
            _anchor(jb, seq, timestamp, arrival_us)
            result = JB_RESYNCED
        else:
            slot = &jb.slots[seq % JB_SLOTS]
            if slot.filled and slot.seq == seq:
                jb.duplicates += 1
                return JB_DUPLICATE
            _observe_transit(jb, arrival_us - _nominal_us(jb, timestamp))
            if ahead < 0:
                if jb.playing or <int16_t>(jb.newest_seq - seq) >= JB_SLOTS:
                    jb.late += 1
                    jb.late_streak += 1
                    if jb.late_streak < JB_LATE_RESYNC:
                        return JB_LATE
                    # Everything arrives behind the play point: the path got slower.
                    jb.resyncs += 1
                    _anchor(jb, seq, timestamp, arrival_us)
                    result = JB_RESYNCED
                else:
                    # Before the first tick plays, an earlier packet moves the start back.
                    jb.play_seq = seq
                    jb.play_ts = timestamp
            if jb.playing and <int16_t>(seq - jb.newest_seq) > 1:
                # Ticks that passed frames after newest_seq found no later frame either and
                # played them as "empty". This packet shows they were sent: count them lost.
                gap_end = seq if <int16_t>(seq - jb.play_seq) < 0 else jb.play_seq
                if <int16_t>(gap_end - jb.newest_seq) > 1:
                    jb.lost += <uint16_t>(gap_end - jb.newest_seq - 1)
    jb.late_streak = 0
    slot = &jb.slots[seq % JB_SLOTS]
    slot.timestamp = timestamp
    slot.seq = seq
    slot.n_bytes = <uint16_t>n_bytes
    slot.filled = 1
    memcpy(slot.payload, payload, n_bytes)
    if <int16_t>(seq - jb.newest_seq) > 0:
        jb.newest_seq = seq
    return result


cdef inline void _advance(JbState *jb) noexcept nogil:
    jb.slots[jb.play_seq % JB_SLOTS].filled = 0
    jb.play_seq += 1
    jb.play_ts += JB_FRAME_SAMPLES


cdef inline bint _buffered(const JbState *jb) noexcept nogil:
    cdef const JbSlot *slot = &jb.slots[jb.play_seq % JB_SLOTS]
    return slot.filled and slot.seq == jb.play_seq


cdef inline bint _known_missing(const JbState *jb) noexcept nogil:
    # A later frame arrived, so this one is lost rather than not sent yet.
    return <int16_t>(jb.newest_seq - jb.play_seq) > 0


cdef int jb_pull(JbState *jb, int64_t now_us, uint8_t *out, Py_ssize_t *n_bytes,
                 uint16_t *seq) noexcept nogil:
    cdef int64_t due_us
    cdef int64_t behind
    cdef const JbSlot *slot
    if not jb.anchored:
        jb.empty += 1
        return JB_EMPTY
    jb.ticks_since_shrink += 1
    if (jb.delay_us >= jb.target_us + JB_FRAME_US
            and jb.ticks_since_shrink >= JB_SHRINK_INTERVAL_TICKS):
        jb.delay_us -= JB_FRAME_US
        jb.ticks_since_shrink = 0
    due_us = _nominal_us(jb, jb.play_ts) + jb.transit_min_us + jb.delay_us
    if now_us < due_us:
        jb.empty += 1
        return JB_EMPTY
    # Frames whose successor is due too are behind schedule (after a shrink or a stalled
    # worker): drop them so the play point catches up.
    behind = (now_us - due_us) // JB_FRAME_US
    while behind > 0:
        if _buffered(jb):
            jb.skipped += 1
        elif _known_missing(jb):
            jb.lost += 1
        _advance(jb)
        behind -= 1
        if behind > JB_SLOTS:
            # Nothing is buffered that far ahead: jump without visiting every slot.
            jb.play_seq += <uint16_t>(behind - JB_SLOTS)
            jb.play_ts += <uint32_t>((behind - JB_SLOTS) * JB_FRAME_SAMPLES)
            behind = JB_SLOTS
    jb.playing = 1
    seq[0] = jb.play_seq
    if _buffered(jb):
        slot = &jb.slots[jb.play_seq % JB_SLOTS]
        memcpy(out, slot.payload, slot.n_bytes)
        n_bytes[0] = slot.n_bytes
        jb.played += 1
        _advance(jb)
        return JB_FRAME
    if _known_missing(jb):
        jb.lost += 1
        _advance(jb)
        return JB_LOST
    jb.empty += 1
    _advance(jb)
    return JB_EMPTY


cdef class JitterBuffer:
    """Python face of the C jitter buffer, for tests and tools; times in microseconds."""

    cdef JbState _jb

    def __cinit__(self):
        jb_init(&self._jb)

    def insert(self, seq, timestamp, payload, arrival_us):
        """Store one packet; returns "stored", "late", "duplicate" or "resynced"."""
        cdef Py_buffer view
        cdef int result
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"seq must be in 0..65535, got {seq}")
        if not 0 <= timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp must be in 0..4294967295, got {timestamp}")
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            if view.len > JB_MAX_PAYLOAD:
                raise ValueError(
                    f"payload must be at most {JB_MAX_PAYLOAD} bytes, got {view.len}"
                )
            result = jb_insert(&self._jb, seq, timestamp, <const uint8_t *>view.buf,
                               view.len, arrival_us)
        finally:
            PyBuffer_Release(&view)
        return _INSERTED[result]

    def pull(self, now_us):
        """The frame for the tick at now_us: Pulled(status, seq, payload)."""
        cdef uint8_t out[JB_MAX_PAYLOAD]
        cdef Py_ssize_t n_bytes = 0
        cdef uint16_t seq = 0
        cdef int status = jb_pull(&self._jb, now_us, out, &n_bytes, &seq)
        if status == JB_FRAME:
            return Pulled("frame", seq, PyBytes_FromStringAndSize(<char *>out, n_bytes))
        if status == JB_LOST:
            return Pulled("lost", seq, b"")
        return Pulled("empty", None, b"")

    @property
    def jitter_us(self):
        return self._jb.jitter_us

    @property
    def target_delay_us(self):
        return self._jb.target_us

    @property
    def delay_us(self):
        return self._jb.delay_us

    @property
    def stats(self):
        cdef JbState *jb = &self._jb
        return {
            "received": jb.received,
            "played": jb.played,
            "lost": jb.lost,
            "late": jb.late,
            "duplicates": jb.duplicates,
            "resyncs": jb.resyncs,
            "skipped": jb.skipped,
            "empty": jb.empty,
        }
