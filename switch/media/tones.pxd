# Tone generator: cadenced single/dual tones into 16-bit PCM at 8 kHz, phase-continuous.
from libc.math cimport pow
from libc.stdint cimport int16_t, uint32_t, uint64_t

cdef enum:
    TONE_SAMPLE_RATE_HZ = 8000
    TONE_MAX_SEGMENTS = 64  # a DTMF string of 32 digits (on + off each)

# Peak of a 0 dBm0 sine in 16-bit PCM. G.711 µ-law: a sine whose peak is the largest
# 14-bit magnitude (8159, i.e. 32636 in 16-bit) is +3.17 dBm0 (ITU-T G.711 §2 / G.168),
# so 0 dBm0 is 32636 * 10**(-3.17/20) = 22657 (RMS 16021).
cdef inline double dbm0_peak(double level_dbm0) noexcept nogil:
    """Peak amplitude (16-bit units) of a sine at level_dbm0."""
    return 32636.0 * pow(10.0, (level_dbm0 - 3.17) / 20.0)


cdef struct ToneSegment:
    uint64_t n_samples        # 0: lasts forever
    uint32_t phase_step[2]    # phase increment per sample, 2**32 per cycle
    double amplitude[2]       # peak in 16-bit units; 0 silences that oscillator

cdef struct ToneGen:
    ToneSegment segments[TONE_MAX_SEGMENTS]
    int n_segments
    bint repeat               # cadence: start again after the last segment
    int segment               # current segment
    uint64_t position         # samples played of the current segment
    bint finished             # a one-shot plan has played out; output is silence

cdef void tone_init(ToneGen *g, bint repeat) noexcept nogil
cdef int tone_add_segment(ToneGen *g, uint64_t n_samples, double freq1_hz, double amp1,
                          double freq2_hz, double amp2) noexcept nogil
cdef int tone_plan_dtmf(ToneGen *g, const char *digits, int n_digits, uint64_t on_samples,
                        uint64_t off_samples, double amplitude) noexcept nogil
cdef void tone_generate(ToneGen *g, int16_t *out, Py_ssize_t n_samples) noexcept nogil
