# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Tone generator: single or dual sines at a level in dBm0, gated by a cadence.

A plan is a list of segments (tone or silence, each a number of samples); a cadence
repeats it, a DTMF string plays it once. Each oscillator is a 32-bit phase accumulator
evaluated at (sample index within the segment) * step, so the output is a function of
the sample position alone: frames of any size join without a phase jump, chunked
output equals one-shot output, and every burst starts at a zero crossing (no click).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport M_PI, lrint, sin
from libc.stdint cimport int16_t, uint32_t, uint64_t
from libc.string cimport memset

from switch.media.dtmf cimport DTMF_COL_HZ, DTMF_KEYPAD, DTMF_ROW_HZ

cdef double PHASE_TO_RADIANS = 2.0 * M_PI / 4294967296.0

SAMPLE_RATE_HZ = TONE_SAMPLE_RATE_HZ
MAX_SEGMENTS = TONE_MAX_SEGMENTS

# Chinese call-progress tones (YD/T 1576 style values; 450 Hz, -10 dBm0):
# name -> (frequencies_hz, level_dbm0, cadence_ms alternating on, off; () is continuous).
CALL_PROGRESS_TONES = {
    "dial": ((450.0,), -10.0, ()),
    "ringback": ((450.0,), -10.0, (1000, 4000)),
    "busy": ((450.0,), -10.0, (350, 350)),
    "congestion": ((450.0,), -10.0, (700, 700)),
}


cdef uint32_t _phase_step(double freq_hz) noexcept nogil:
    return <uint32_t>lrint(freq_hz / TONE_SAMPLE_RATE_HZ * 4294967296.0)


cdef void tone_init(ToneGen *g, bint repeat) noexcept nogil:
    g.n_segments = 0
    g.repeat = repeat
    g.segment = 0
    g.position = 0
    g.finished = True  # an empty plan is silence


cdef int tone_add_segment(ToneGen *g, uint64_t n_samples, double freq1_hz, double amp1,
                          double freq2_hz, double amp2) noexcept nogil:
    """Append a segment (amplitudes 0 for silence); -1 when the plan is full."""
    cdef ToneSegment *seg
    if g.n_segments == TONE_MAX_SEGMENTS:
        return -1
    seg = &g.segments[g.n_segments]
    seg.n_samples = n_samples
    seg.phase_step[0] = _phase_step(freq1_hz)
    seg.phase_step[1] = _phase_step(freq2_hz)
    seg.amplitude[0] = amp1
    seg.amplitude[1] = amp2
    g.n_segments += 1
    g.finished = False
    return 0


cdef int tone_plan_dtmf(ToneGen *g, const char *digits, int n_digits, uint64_t on_samples,
                        uint64_t off_samples, double amplitude) noexcept nogil:
    """A one-shot plan for a digit string (on, off per digit); -1 on a bad digit or overflow."""
    cdef int i
    cdef int key
    tone_init(g, False)
    for i in range(n_digits):
        key = 0
        while key < 16 and DTMF_KEYPAD[key] != digits[i]:
            key += 1
        if key == 16:
            return -1
        if tone_add_segment(g, on_samples, DTMF_ROW_HZ[key // 4], amplitude,
                            DTMF_COL_HZ[key % 4], amplitude) < 0:
            return -1
        if tone_add_segment(g, off_samples, 0.0, 0.0, 0.0, 0.0) < 0:
            return -1
    return 0


cdef inline int16_t _saturate(double v) noexcept nogil:
    cdef long s = lrint(v)
    if s > 32767:
        return 32767
    if s < -32768:
        return -32768
    return <int16_t>s


cdef void tone_generate(ToneGen *g, int16_t *out, Py_ssize_t n_samples) noexcept nogil:
    """Write the next n_samples of the plan into out."""
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t j
    cdef Py_ssize_t run
    cdef ToneSegment *seg
    cdef uint64_t k
    cdef double v
    while i < n_samples:
        if g.finished:
            memset(&out[i], 0, (n_samples - i) * sizeof(int16_t))
            return
        seg = &g.segments[g.segment]
        run = n_samples - i
        if seg.n_samples and <uint64_t>run > seg.n_samples - g.position:
            run = <Py_ssize_t>(seg.n_samples - g.position)
        if seg.amplitude[0] == 0.0 and seg.amplitude[1] == 0.0:
            memset(&out[i], 0, run * sizeof(int16_t))
        else:
            for j in range(run):
                k = g.position + <uint64_t>j
                # uint32 wrap-around of k * step is the phase modulo one cycle.
                v = seg.amplitude[0] * sin(PHASE_TO_RADIANS * <uint32_t>(k * seg.phase_step[0]))
                v += seg.amplitude[1] * sin(PHASE_TO_RADIANS * <uint32_t>(k * seg.phase_step[1]))
                out[i + j] = _saturate(v)
        g.position += <uint64_t>run
        i += run
        if seg.n_samples and g.position == seg.n_samples:
            g.position = 0
            g.segment += 1
            if g.segment == g.n_segments:
                g.segment = 0
                g.finished = not g.repeat


def _ms_to_samples(str what, ms):
    if ms <= 0:
        raise ValueError(f"ToneGenerator: {what} must be positive, got {ms}")
    return ms * TONE_SAMPLE_RATE_HZ // 1000


cdef class ToneGenerator:
    """Stateful tone source; call generate(n_samples) once per frame."""

    cdef ToneGen g

    def __init__(self, frequencies_hz=(), level_dbm0=-10.0, cadence_ms=()):
        freqs = [float(f) for f in frequencies_hz]
        cadence = list(cadence_ms)
        if len(freqs) > 2:
            raise ValueError(
                f"ToneGenerator: at most 2 frequencies, got {len(freqs)}"
            )
        for f in freqs:
            if not 0 < f < TONE_SAMPLE_RATE_HZ / 2:
                raise ValueError(
                    f"ToneGenerator: frequency must be between 0 and 4000 Hz, got {f:g}"
                )
        if len(cadence) % 2 or len(cadence) > TONE_MAX_SEGMENTS:
            raise ValueError(
                "ToneGenerator: cadence_ms must be pairs of on, off durations "
                f"(at most {TONE_MAX_SEGMENTS} values), got {len(cadence)} values"
            )
        amp = dbm0_peak(level_dbm0)
        f1, f2 = (freqs + [0.0, 0.0])[:2]
        a1 = amp if len(freqs) > 0 else 0.0
        a2 = amp if len(freqs) > 1 else 0.0
        tone_init(&self.g, True)
        if not cadence:
            if freqs:
                tone_add_segment(&self.g, 0, f1, a1, f2, a2)
            return
        for i, ms in enumerate(cadence):
            n = _ms_to_samples("cadence_ms values", ms)
            if i % 2 == 0:
                tone_add_segment(&self.g, n, f1, a1, f2, a2)
            else:
                tone_add_segment(&self.g, n, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def call_progress(cls, name):
        """A Chinese call-progress tone by name (see CALL_PROGRESS_TONES)."""
        try:
            freqs, level_dbm0, cadence_ms = CALL_PROGRESS_TONES[name]
        except KeyError:
            raise ValueError(
                f"ToneGenerator: unknown call-progress tone {name!r}, "
                f"expected one of {', '.join(CALL_PROGRESS_TONES)}"
            ) from None
        return cls(freqs, level_dbm0, cadence_ms)

    @classmethod
    def dtmf(cls, digits, on_ms=100, off_ms=100, level_dbm0=-10.0):
        """DTMF digits played once (each tone on_ms, then off_ms of silence), per-tone level."""
        cdef ToneGenerator gen = cls()
        cdef bytes raw = digits.encode("ascii", "replace")
        on_samples = _ms_to_samples("on_ms", on_ms)
        off_samples = _ms_to_samples("off_ms", off_ms)
        bad = [d for d in digits if d not in DTMF_KEYPAD[:16].decode("ascii")]
        if bad:
            raise ValueError(f"ToneGenerator: not a DTMF digit: {bad[0]!r}")
        if 2 * len(raw) > TONE_MAX_SEGMENTS:
            raise ValueError(
                f"ToneGenerator: at most {TONE_MAX_SEGMENTS // 2} DTMF digits, got {len(raw)}"
            )
        tone_plan_dtmf(&gen.g, raw, len(raw), on_samples, off_samples, dbm0_peak(level_dbm0))
        return gen

    @property
    def finished(self):
        return bool(self.g.finished)

    def generate(self, n_samples):
        """The next n_samples as signed 16-bit little-endian PCM."""
        cdef bytes out
        cdef int16_t *dst
        cdef Py_ssize_t n
        if n_samples < 0:
            raise ValueError(f"generate: n_samples must not be negative, got {n_samples}")
        n = n_samples
        out = PyBytes_FromStringAndSize(NULL, 2 * n)
        dst = <int16_t *>PyBytes_AS_STRING(out)  # bytes storage is aligned; x86 is little-endian
        with nogil:
            tone_generate(&self.g, dst, n)
        return out
