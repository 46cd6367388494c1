"""C API of the call recorder, for the engine to cimport.

Threads and ownership:
- One worker thread (the producer) calls ``recorder_write_frame`` once per 20 ms tick for
  each recording it feeds. The call is a copy into the recording's ring and never waits:
  when the ring is full the frame is dropped and counted in ``dropped``.
- One writer thread per ``RecorderWriter`` (the consumer) drains every recording's ring
  to its file in large writes and keeps the WAV header up to date.
- Memory: a ``RecordingState`` belongs to its Python ``Recording`` object and is freed
  when that object is. The engine takes ``recording.state`` and must keep the Python
  ``Recording`` alive for as long as it may call ``recorder_write_frame`` on it. Frames
  written after ``Recording.close()`` are ignored (return 0), so the engine may stop
  writing a tick late without harm.
- Only one thread at a time may call ``recorder_write_frame`` on a given recording.
"""

from libc.stdint cimport int16_t, uint64_t


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    ctypedef unsigned long pthread_t


cdef enum:
    RECORDER_FRAME_SAMPLES = 160  # one 20 ms frame of 8 kHz audio, per channel
    RECORDER_HEADER_BYTES = 44    # canonical RIFF/WAVE + fmt (PCM) + data chunk header


cdef struct RecordingState:
    # Fixed at open.
    int fd
    int channels                  # 1: mono mix; 2: left = customer, right = agent
    uint64_t slot_samples         # RECORDER_FRAME_SAMPLES * channels, interleaved
    uint64_t ring_frames          # ring capacity in 20 ms frames
    uint64_t batch_frames         # the writer waits for this many frames (large writes)
    uint64_t header_interval_frames
    int sync                      # fdatasync the data before each header rewrite
    int16_t *ring
    # Producer side (worker thread); read by others with atomic loads.
    uint64_t head                 # frames ever accepted into the ring
    uint64_t dropped              # frames refused because the ring was full
    int closing                   # set by Recording.close(); later frames are ignored
    # Consumer side (writer thread, under the writer's lock).
    uint64_t tail                 # frames ever drained from the ring
    uint64_t frames_written       # frames in the file
    uint64_t header_frames        # frames the header's sizes cover
    int error                     # errno of the first failed write or close, 0 if none
    int closed                    # file finalised and closed
    RecordingState *next          # the writer's list of open recordings


cdef struct WriterState:
    pthread_mutex_t lock
    pthread_cond_t wake           # writer sleeps on it: stop, close or flush requested
    pthread_cond_t progress       # Python waits on it: header updated, recording closed
    RecordingState *recordings
    long poll_ns
    uint64_t flush_requested
    uint64_t flush_done
    int stop
    int stopped
    int started
    pthread_t thread


# Copy one tick into the ring: ``left`` and ``right`` point at RECORDER_FRAME_SAMPLES
# samples each. Stereo: left = customer, right = agent; either may be NULL (silence).
# Mono: ``left`` is the caller's mix (NULL: silence), ``right`` is ignored.
# Returns 1 when the frame was queued, 0 when it was dropped (ring full, counted in
# ``dropped``) or the recording is closing (not counted). Never blocks.
cdef int recorder_write_frame(RecordingState *rec, const int16_t *left,
                              const int16_t *right) noexcept nogil


cdef class RecorderWriter:
    cdef WriterState *state
    cdef bint closed


cdef class Recording:
    cdef RecordingState *state
    cdef RecorderWriter writer
    cdef readonly object path
    cdef readonly int channels
