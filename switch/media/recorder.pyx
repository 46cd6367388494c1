# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Call recorder: WAV files (PCM 16-bit, 8 kHz, mono or stereo) written off the worker.

The worker's tick copies each frame into a per-recording ring (``recorder_write_frame``,
a bounded single-producer/single-consumer queue: atomic head and tail, no lock). One
writer thread per ``RecorderWriter``, a plain pthread running C only, wakes every
``poll_ms`` (or when asked to close or flush), and writes every ring that holds at least
``batch_frames`` in one or two ``pwrite`` calls.

Crash safety: the header is written at open with zero sizes; after each
``header_interval_ms`` of audio has been written, the writer rewrites the RIFF and data
sizes (data first, header after). A process killed with SIGKILL leaves the page cache
intact, so the file on disk holds at least everything the last header covers;
``switch.media.wav.repair_wav`` (``callcenter recordings repair``) recomputes the sizes
from the file length and keeps the audio written after the last header update too.
``sync=True`` adds an fdatasync before each header rewrite, so that a header never
covers audio that a power failure could lose; it costs a disk flush per update and is
off by default.

Samples are written in memory order, which is little-endian on the machines we run on,
as WAV requires. Data chunks are limited to 4 GiB (37 hours of stereo audio); frames past
that fail the recording with EFBIG.
"""

import os

cimport cython
from libc.errno cimport EFBIG, EINTR, ETIMEDOUT, errno
from libc.stdint cimport int16_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.types cimport clockid_t, off_t
from posix.unistd cimport close as c_close, fdatasync, pwrite

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_attr_t:
        pass
    ctypedef struct pthread_mutexattr_t:
        pass
    ctypedef struct pthread_condattr_t:
        pass
    int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                       void *(*start)(void *) noexcept nogil, void *arg)
    int pthread_join(pthread_t thread, void **retval)
    int pthread_mutex_init(pthread_mutex_t *mutex, const pthread_mutexattr_t *attr)
    int pthread_mutex_destroy(pthread_mutex_t *mutex)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)
    int pthread_condattr_init(pthread_condattr_t *attr)
    int pthread_condattr_setclock(pthread_condattr_t *attr, clockid_t clock)
    int pthread_condattr_destroy(pthread_condattr_t *attr)
    int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr)
    int pthread_cond_destroy(pthread_cond_t *cond)
    int pthread_cond_signal(pthread_cond_t *cond)
    int pthread_cond_broadcast(pthread_cond_t *cond)
    int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
    int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                               const timespec *abstime)


cdef extern from *:
    """
    #include <stdint.h>
    /* The ring's head and tail cross threads: acquire/release pairs, no lock. */
    static inline uint64_t rec_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void rec_store_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline int rec_load_int(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void rec_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    """
    uint64_t rec_load_u64(const uint64_t *p) noexcept nogil
    void rec_store_u64(uint64_t *p, uint64_t v) noexcept nogil
    int rec_load_int(const int *p) noexcept nogil
    void rec_store_int(int *p, int v) noexcept nogil


SAMPLE_RATE_HZ = 8000
FRAME_MS = 20
cdef uint64_t MAX_DATA_BYTES = 0xFFFFFFFF - (RECORDER_HEADER_BYTES - 8)


# ---- producer (worker thread) ---------------------------------------------------------


cdef int recorder_write_frame(RecordingState *rec, const int16_t *left,
                              const int16_t *right) noexcept nogil:
    cdef uint64_t head = rec.head  # only this thread writes head
    cdef int16_t *slot
    cdef int i
    if rec_load_int(&rec.closing):
        return 0
    if head - rec_load_u64(&rec.tail) >= rec.ring_frames:
        rec_store_u64(&rec.dropped, rec.dropped + 1)
        return 0
    slot = rec.ring + (head % rec.ring_frames) * rec.slot_samples
    if rec.channels == 1:
        if left != NULL:
            memcpy(slot, left, RECORDER_FRAME_SAMPLES * sizeof(int16_t))
        else:
            memset(slot, 0, RECORDER_FRAME_SAMPLES * sizeof(int16_t))
    else:
        for i in range(RECORDER_FRAME_SAMPLES):
            slot[2 * i] = left[i] if left != NULL else 0
            slot[2 * i + 1] = right[i] if right != NULL else 0
    rec_store_u64(&rec.head, head + 1)
    return 1


# ---- consumer (writer thread) -----------------------------------------------------------


cdef int _pwrite_all(int fd, const uint8_t *data, uint64_t n_bytes, uint64_t offset) noexcept nogil:
    """0, or the errno of the failure; retries short writes and EINTR."""
    cdef ssize_t done
    while n_bytes > 0:
        done = pwrite(fd, data, n_bytes, <off_t>offset)
        if done < 0:
            if errno == EINTR:
                continue
            return errno
        data += done
        n_bytes -= <uint64_t>done
        offset += <uint64_t>done
    return 0


cdef void _put_le32(uint8_t *out, uint32_t value) noexcept nogil:
    out[0] = value & 0xFF
    out[1] = (value >> 8) & 0xFF
    out[2] = (value >> 16) & 0xFF
    out[3] = (value >> 24) & 0xFF


cdef void _update_header(RecordingState *rec) noexcept nogil:
    cdef uint8_t size[4]
    cdef uint64_t data_bytes = rec.frames_written * rec.slot_samples * sizeof(int16_t)
    if rec.error or rec.frames_written == rec.header_frames:
        return
    if rec.sync and fdatasync(rec.fd) != 0:
        rec.error = errno
        return
    _put_le32(size, <uint32_t>(data_bytes + RECORDER_HEADER_BYTES - 8))
    rec.error = _pwrite_all(rec.fd, size, 4, 4)
    if rec.error:
        return
    _put_le32(size, <uint32_t>data_bytes)
    rec.error = _pwrite_all(rec.fd, size, 4, RECORDER_HEADER_BYTES - 4)
    if not rec.error:
        rec.header_frames = rec.frames_written


cdef int _drain(RecordingState *rec, bint force) noexcept nogil:
    """Write what the ring holds (if it is a batch, or ``force``); 1 if the header moved."""
    cdef uint64_t head = rec_load_u64(&rec.head)
    cdef uint64_t tail = rec.tail
    cdef uint64_t n = head - tail
    cdef uint64_t first, slot_bytes = rec.slot_samples * sizeof(int16_t)
    cdef uint64_t offset, index
    cdef uint64_t before = rec.header_frames
    if rec.error:
        return 0
    if n == 0 or (n < rec.batch_frames and not force):
        if force:
            _update_header(rec)
        return rec.header_frames != before
    offset = RECORDER_HEADER_BYTES + rec.frames_written * slot_bytes
    if offset - RECORDER_HEADER_BYTES + n * slot_bytes > MAX_DATA_BYTES:
        rec.error = EFBIG
        return 0
    index = tail % rec.ring_frames
    first = rec.ring_frames - index
    if first > n:
        first = n
    rec.error = _pwrite_all(rec.fd, <const uint8_t *>(rec.ring + index * rec.slot_samples),
                            first * slot_bytes, offset)
    if not rec.error and n > first:
        rec.error = _pwrite_all(rec.fd, <const uint8_t *>rec.ring, (n - first) * slot_bytes,
                                offset + first * slot_bytes)
    if rec.error:
        return 0
    rec_store_u64(&rec.tail, head)
    rec.frames_written += n
    if force or rec.frames_written - rec.header_frames >= rec.header_interval_frames:
        _update_header(rec)
    return rec.header_frames != before


cdef void _finish(RecordingState *rec) noexcept nogil:
    _drain(rec, True)
    if rec.sync and not rec.error and fdatasync(rec.fd) != 0:
        rec.error = errno
    if c_close(rec.fd) != 0 and not rec.error:
        rec.error = errno
    rec.fd = -1
    rec.closed = 1


cdef void _drain_all(WriterState *w, bint force, bint finish_all) noexcept nogil:
    cdef RecordingState *rec = w.recordings
    cdef RecordingState **link = &w.recordings
    cdef bint progressed = False
    while rec != NULL:
        if finish_all or rec_load_int(&rec.closing):
            _finish(rec)
            link[0] = rec.next  # unlink: the writer never touches it again
            rec.next = NULL
            progressed = True
        else:
            if _drain(rec, force):
                progressed = True
            link = &rec.next
        rec = link[0]
    if progressed or force:
        pthread_cond_broadcast(&w.progress)


cdef void _deadline_after(timespec *deadline, long delay_ns) noexcept nogil:
    clock_gettime(CLOCK_MONOTONIC, deadline)
    deadline.tv_sec += delay_ns // 1000000000
    deadline.tv_nsec += delay_ns % 1000000000
    if deadline.tv_nsec >= 1000000000:
        deadline.tv_sec += 1
        deadline.tv_nsec -= 1000000000


cdef void *_writer_main(void *arg) noexcept nogil:
    cdef WriterState *w = <WriterState *>arg
    cdef timespec deadline
    cdef uint64_t flush
    pthread_mutex_lock(&w.lock)
    while not w.stop:
        flush = w.flush_requested
        _drain_all(w, flush != w.flush_done, False)
        w.flush_done = flush
        if w.stop or w.flush_requested != flush:
            continue
        _deadline_after(&deadline, w.poll_ns)
        pthread_cond_timedwait(&w.wake, &w.lock, &deadline)
    _drain_all(w, True, True)
    w.stopped = 1
    pthread_cond_broadcast(&w.progress)
    pthread_mutex_unlock(&w.lock)
    return NULL


# ---- Python API -------------------------------------------------------------------------


def _wav_header(int channels):
    block_align = 2 * channels
    return (
        b"RIFF" + (RECORDER_HEADER_BYTES - 8).to_bytes(4, "little") + b"WAVE"
        + b"fmt " + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # WAVE_FORMAT_PCM
        + channels.to_bytes(2, "little")
        + SAMPLE_RATE_HZ.to_bytes(4, "little")
        + (SAMPLE_RATE_HZ * block_align).to_bytes(4, "little")
        + block_align.to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data" + (0).to_bytes(4, "little")
    )


cdef class RecorderWriter:
    """The writer thread of one engine; ``open()`` starts recordings that it writes."""

    def __cinit__(self, *, int poll_ms=50):
        cdef pthread_condattr_t attr
        cdef int rc
        if poll_ms < 1:
            raise ValueError(f"poll_ms must be at least 1, got {poll_ms}")
        self.state = <WriterState *>calloc(1, sizeof(WriterState))
        if self.state == NULL:
            raise MemoryError()
        self.state.poll_ns = <long>poll_ms * 1000000
        pthread_mutex_init(&self.state.lock, NULL)
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&self.state.wake, &attr)
        pthread_cond_init(&self.state.progress, &attr)
        pthread_condattr_destroy(&attr)
        rc = pthread_create(&self.state.thread, NULL, _writer_main, self.state)
        if rc != 0:
            raise OSError(rc, f"cannot start the recorder writer thread: {os.strerror(rc)}")
        self.state.started = 1

    def open(self, path, int channels, *, int ring_frames=100, batch_frames=None,
             int header_interval_ms=2000, bint sync=False):
        """Create (or truncate) ``path`` and return a Recording written by this writer."""
        cdef Recording recording
        cdef RecordingState *rec
        cdef int batch
        if self.closed:
            raise ValueError("recorder writer is closed")
        if channels not in (1, 2):
            raise ValueError(
                f"channels must be 1 (mono mix) or 2 (stereo: customer left, agent right), "
                f"got {channels}"
            )
        if ring_frames < 1:
            raise ValueError(f"ring_frames must be at least 1, got {ring_frames}")
        batch = max(1, min(25, ring_frames // 2)) if batch_frames is None else batch_frames
        if not 1 <= batch <= ring_frames:
            raise ValueError(
                f"batch_frames must be between 1 and ring_frames ({ring_frames}), got {batch}"
            )
        if header_interval_ms < FRAME_MS:
            raise ValueError(
                f"header_interval_ms must be at least {FRAME_MS} (one frame), "
                f"got {header_interval_ms}"
            )
        path = os.fspath(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            header = _wav_header(channels)
            if os.write(fd, header) != len(header):
                raise OSError(f"short write of the WAV header to {path}")
            rec = <RecordingState *>calloc(1, sizeof(RecordingState))
            if rec == NULL:
                raise MemoryError()
            rec.slot_samples = RECORDER_FRAME_SAMPLES * channels
            rec.ring = <int16_t *>malloc(ring_frames * rec.slot_samples * sizeof(int16_t))
            if rec.ring == NULL:
                free(rec)
                raise MemoryError()
        except BaseException:
            os.close(fd)
            raise
        rec.fd = fd
        rec.channels = channels
        rec.ring_frames = ring_frames
        rec.batch_frames = batch
        rec.header_interval_frames = header_interval_ms // FRAME_MS
        rec.sync = sync
        recording = Recording.__new__(Recording)
        recording.state = rec
        recording.writer = self
        recording.path = path
        recording.channels = channels
        with nogil:
            pthread_mutex_lock(&self.state.lock)
            rec.next = self.state.recordings
            self.state.recordings = rec
            pthread_mutex_unlock(&self.state.lock)
        return recording

    def flush(self):
        """Write every ring and header now; return when done."""
        cdef WriterState *w = self.state
        cdef uint64_t wanted
        if self.closed:
            return
        with nogil:
            pthread_mutex_lock(&w.lock)
            w.flush_requested += 1
            wanted = w.flush_requested
            pthread_cond_signal(&w.wake)
            while w.flush_done < wanted and not w.stopped:
                pthread_cond_wait(&w.progress, &w.lock)
            pthread_mutex_unlock(&w.lock)

    def close(self):
        """Finish every open recording and stop the writer thread."""
        if self.closed:
            return
        self.closed = True
        with nogil:
            pthread_mutex_lock(&self.state.lock)
            self.state.stop = 1
            pthread_cond_signal(&self.state.wake)
            pthread_mutex_unlock(&self.state.lock)
            pthread_join(self.state.thread, NULL)

    def __dealloc__(self):
        if self.state == NULL:
            return
        if self.state.started:
            self.close()
        pthread_cond_destroy(&self.state.wake)
        pthread_cond_destroy(&self.state.progress)
        pthread_mutex_destroy(&self.state.lock)
        free(self.state)
        self.state = NULL


@cython.no_gc_clear  # __dealloc__ needs the writer to unregister from it
cdef class Recording:
    """One WAV file being recorded; made by ``RecorderWriter.open``."""

    def __init__(self):
        raise TypeError("recordings are made by RecorderWriter.open()")

    def write(self, left, right=None):
        """Queue one 20 ms frame (160 samples of 16-bit PCM per channel); False if dropped."""
        cdef Py_buffer left_view, right_view
        cdef const int16_t *right_ptr = NULL
        cdef int queued
        if self.channels == 2 and right is None:
            raise ValueError("a stereo recording takes a right (agent) frame too")
        if self.channels == 1 and right is not None:
            raise ValueError("a mono recording takes one frame (the mix), got a right frame")
        PyObject_GetBuffer(left, &left_view, PyBUF_SIMPLE)
        try:
            _check_frame("left", left_view.len)
            if right is not None:
                PyObject_GetBuffer(right, &right_view, PyBUF_SIMPLE)
                try:
                    _check_frame("right", right_view.len)
                    queued = recorder_write_frame(
                        self.state, <const int16_t *>left_view.buf,
                        <const int16_t *>right_view.buf,
                    )
                finally:
                    PyBuffer_Release(&right_view)
            else:
                queued = recorder_write_frame(self.state, <const int16_t *>left_view.buf, NULL)
        finally:
            PyBuffer_Release(&left_view)
        return queued == 1

    @property
    def dropped_frames(self):
        """Frames refused because the ring was full (the writer fell behind)."""
        return rec_load_u64(&self.state.dropped)

    @property
    def frames_written(self):
        """Frames in the file so far."""
        return _locked_read(self, 0)

    @property
    def flushed_frames(self):
        """Frames the WAV header covers: what survives a crash without repair."""
        return _locked_read(self, 1)

    @property
    def closed(self):
        return bool(_locked_read(self, 2))

    def wait_flushed(self, min_frames, double timeout_s):
        """Wait until the header covers ``min_frames`` (or the timeout, or close);
        return the frames it covers."""
        cdef WriterState *w = self.writer.state
        cdef RecordingState *rec = self.state
        cdef uint64_t wanted = min_frames
        cdef uint64_t covered
        cdef timespec deadline
        cdef int rc = 0
        with nogil:
            _deadline_after(&deadline, <long>(timeout_s * 1e9))
            pthread_mutex_lock(&w.lock)
            while rec.header_frames < wanted and not rec.closed and not w.stopped and rc != ETIMEDOUT:
                rc = pthread_cond_timedwait(&w.progress, &w.lock, &deadline)
            covered = rec.header_frames
            pthread_mutex_unlock(&w.lock)
        return covered

    def close(self):
        """Write what is queued, finalise the header, close the file. Idempotent.
        OSError if any write to the file failed."""
        cdef WriterState *w = self.writer.state
        cdef RecordingState *rec = self.state
        cdef int error
        with nogil:
            pthread_mutex_lock(&w.lock)
            if not rec.closing:
                rec_store_int(&rec.closing, 1)
                pthread_cond_signal(&w.wake)
                error = -1  # report the error once, on the call that closed
            else:
                error = 0
            while not rec.closed and not w.stopped:
                pthread_cond_wait(&w.progress, &w.lock)
            if error == -1:
                error = rec.error
            pthread_mutex_unlock(&w.lock)
        if error > 0:
            raise OSError(error, f"recording {self.path} failed: {os.strerror(error)}", self.path)

    def __dealloc__(self):
        if self.state == NULL:
            return
        if self.writer is not None:
            try:
                self.close()
            except OSError:
                pass  # nobody left to tell; the file keeps what was written
        free(self.state.ring)
        free(self.state)
        self.state = NULL


cdef uint64_t _locked_read(Recording self, int what):
    cdef WriterState *w = self.writer.state
    cdef uint64_t value
    with nogil:
        pthread_mutex_lock(&w.lock)
        if what == 0:
            value = self.state.frames_written
        elif what == 1:
            value = self.state.header_frames
        else:
            value = self.state.closed
        pthread_mutex_unlock(&w.lock)
    return value


cdef _check_frame(str channel, Py_ssize_t n_bytes):
    if n_bytes != RECORDER_FRAME_SAMPLES * 2:
        raise ValueError(
            f"{channel}: a frame is {RECORDER_FRAME_SAMPLES} samples "
            f"({RECORDER_FRAME_SAMPLES * 2} bytes), got {n_bytes} bytes"
        )
