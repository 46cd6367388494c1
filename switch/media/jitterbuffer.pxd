# cython: language_level=3
"""C API of the adaptive jitter buffer, for the engine's decode paths to cimport.

A pure data structure: no clock inside. The worker passes each packet's arrival time and
calls ``jb_pull`` once per 20 ms tick with that tick's time, both in microseconds of the
same monotonic clock. One ``JbState`` belongs to one worker thread.

Play-out schedule: a frame is due at its nominal arrival (RTP timestamp mapped through
the smallest transit time seen lately) plus ``delay_us``. ``delay_us`` follows
``target_us = clamp(2 * jitter + 20 ms, 20 ms, 200 ms)``: it grows at once when the
target rises (frames wait: the caller plays silence or PLC) and shrinks by one frame at
most every ``JB_SHRINK_INTERVAL_TICKS`` ticks (a frame is skipped).
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef enum:
    JB_SLOTS = 64                    # frames the buffer can hold ahead of the play point
    JB_MAX_PAYLOAD = 160             # one 20 ms G.711 frame
    JB_FRAME_SAMPLES = 160           # RTP timestamp step per frame at 8 kHz
    JB_FRAME_US = 20000
    JB_US_PER_SAMPLE = 125
    JB_MIN_DELAY_US = 20000
    JB_MAX_DELAY_US = 200000
    JB_SHRINK_INTERVAL_TICKS = 25    # shrink by at most 20 ms per 500 ms
    JB_TRANSIT_WINDOW = 50           # packets per window of the running minimum transit
    JB_LATE_RESYNC = 5               # this many late packets in a row: the path got slower

# jb_insert results
cdef enum:
    JB_STORED = 0
    JB_LATE = 1        # behind the play point: dropped and counted
    JB_DUPLICATE = 2   # already buffered: dropped and counted
    JB_RESYNCED = 3    # a jump in seq/timestamp (new talk spurt, new SSRC): stored as a new start
    JB_INVALID = 4     # payload longer than JB_MAX_PAYLOAD (or negative length): dropped

# jb_pull results
cdef enum:
    JB_FRAME = 0       # a frame was copied out
    JB_LOST = 1        # the frame due now never arrived (later ones did): play PLC/silence
    JB_EMPTY = 2       # nothing due yet, or nothing received this far: play silence.
                       # (A frame passed as empty is counted lost once a later one arrives.)


cdef struct JbSlot:
    uint32_t timestamp
    uint16_t seq
    uint16_t n_bytes
    uint8_t filled
    uint8_t payload[JB_MAX_PAYLOAD]


cdef struct JbState:
    JbSlot slots[JB_SLOTS]           # indexed by seq % JB_SLOTS
    int anchored                     # a stream start has been seen
    int playing                      # the play point has moved since the start
    uint16_t play_seq                # next frame to play
    uint32_t play_ts                 # its RTP timestamp
    uint16_t newest_seq              # highest seq received since the start
    uint32_t ref_ts                  # timestamps are measured from here
    int64_t transit_min_us           # running minimum of arrival - nominal time
    int64_t window_min_us            # minimum of the current window
    int64_t previous_window_min_us
    int window_count
    int64_t last_transit_us
    int64_t jitter_us                # smoothed |transit difference|, fast up, slow down
    int64_t target_us
    int64_t delay_us
    int ticks_since_shrink
    int late_streak
    uint64_t received
    uint64_t played
    uint64_t lost
    uint64_t late
    uint64_t duplicates
    uint64_t resyncs
    uint64_t skipped                 # buffered frames dropped to shrink the delay
    uint64_t empty


cdef void jb_init(JbState *jb) noexcept nogil
cdef int jb_insert(JbState *jb, uint16_t seq, uint32_t timestamp, const uint8_t *payload,
                   Py_ssize_t n_bytes, int64_t arrival_us) noexcept nogil
# On JB_FRAME copies the payload to out (room for JB_MAX_PAYLOAD bytes) and sets n_bytes;
# on JB_FRAME and JB_LOST sets seq to the frame's sequence number.
cdef int jb_pull(JbState *jb, int64_t now_us, uint8_t *out, Py_ssize_t *n_bytes,
                 uint16_t *seq) noexcept nogil
