# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""In-band DTMF detection: Goertzel filters on 16-bit PCM at 8 kHz, ITU-T Q.24 timing.

Window: 102 samples (12.75 ms), not 205. Its 78 Hz bins still separate the DTMF
frequencies (each neighbour lies near the first null of the other's bin: 770 Hz is
-22 dB in the 697 Hz bin, the worst pair 852/941 Hz is -19 dB), while the 205-sample
window (25.6 ms, 39 Hz bins) is too long to tell a 30 ms tone from a 40 ms one.
Windows slide by 34 samples: the Goertzel recursion runs once per sample over 34-sample
sub-blocks, and a window's DFT is the phase-rotated sum of its three sub-blocks, so
sliding costs no more per sample than disjoint blocks.

A window holds a digit when (thresholds in the table below):
- the strongest row and column are each above the minimum level;
- twist: the column (high group) is at most 8 dB below the row ("normal", what a line's
  high-frequency loss does) and at most 4 dB above it ("reverse"), as spandsp/Asterisk;
- each is 8 dB above the other rows / columns (relative peak);
- their second harmonics are well below them (voice has harmonics, DTMF has none);
- each tone within 2% of nominal (Q.24: accept 1.5%, reject 3.5%), from the phase
  turn between the first and last sub-block (this also rejects glides);
- the two tones carry 85% of the window's energy, their powers corrected for the bin's
  loss at the measured frequency offset. The ratio is proportional to how much
  of the window the tone fills, so it also times the tone's edges to ~15 samples.

Q.24 timing over the 4.25 ms decisions: a digit is reported once after 6 consecutive
windows (a 40 ms tone always gives 7, a 30 ms one at most 5); the same digit again needs
10 windows without it (a 40 ms pause gives at least 11, a 20 ms one at most 7).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport M_PI, atan2, cos, fabs, pow, sin
from libc.stdint cimport int16_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from switch.media.dtmf cimport DTMF_COL_HZ, DTMF_KEYPAD, DTMF_ROW_HZ
from switch.media.tones cimport dbm0_peak

SAMPLE_RATE_HZ = GOERTZEL_SAMPLE_RATE_HZ
WINDOW_SAMPLES = GOERTZEL_WINDOW_SAMPLES
HOP_SAMPLES = GOERTZEL_SUB_SAMPLES

# Detection thresholds: (name, value, unit); read once into C doubles below.
THRESHOLDS = {
    "min_level_dbm0": -30.0,  # weakest tone accepted (per tone)
    "normal_twist_db": 8.0,  # row above column
    "reverse_twist_db": 4.0,  # column above row
    "relative_peak_db": 8.0,  # chosen tone over the others of its group
    "harmonic_db": -5.0,  # second harmonics vs the tones, both summed. Not lower: a column
    # tone leaks into a row's harmonic bin (1336 Hz into 1394 Hz: -10.6 dB, 1499 Hz, a
    # 1.5% high 1477, into 1540 Hz: -4.4 dB); voiced speech sits well above.
    "energy_fraction": 0.85,  # the two tones' share of the window's energy
    "max_deviation": 0.02,  # Q.24: accept within 1.5% of nominal, reject beyond 3.5%
}
ON_WINDOWS = 6  # Q.24: accept a tone of 40 ms
OFF_WINDOWS = 10  # Q.24: a pause of 40 ms separates repeats of one digit

cdef double COEF[GOERTZEL_FREQS]      # 2 cos w
cdef double COS_W[GOERTZEL_FREQS]
cdef double SIN_W[GOERTZEL_FREQS]
cdef double ROT_RE[GOERTZEL_FREQS]    # e^{-i w 34}: one sub-block later
cdef double ROT_IM[GOERTZEL_FREQS]
cdef double MIN_POWER, NORMAL_TWIST, REVERSE_TWIST, RELATIVE_PEAK, HARMONIC, ENERGY_FRACTION
cdef double MAX_DEVIATION
cdef int ON_RUN = ON_WINDOWS
cdef int OFF_RUN = OFF_WINDOWS


cdef void _build_tables():
    global MIN_POWER, NORMAL_TWIST, REVERSE_TWIST, RELATIVE_PEAK, HARMONIC, ENERGY_FRACTION
    global MAX_DEVIATION
    cdef int i
    cdef double hz, w, amp
    for i in range(GOERTZEL_FREQS):
        hz = (DTMF_ROW_HZ[i % 4] if (i % 8) < 4 else DTMF_COL_HZ[i % 4]) * (1 + i // 8)
        w = 2.0 * M_PI * hz / GOERTZEL_SAMPLE_RATE_HZ
        COEF[i] = 2.0 * cos(w)
        COS_W[i] = cos(w)
        SIN_W[i] = sin(w)
        ROT_RE[i] = cos(w * GOERTZEL_SUB_SAMPLES)
        ROT_IM[i] = -sin(w * GOERTZEL_SUB_SAMPLES)
    # Tone power is reported as the energy of the sine over a window: A^2 N / 2.
    amp = dbm0_peak(THRESHOLDS["min_level_dbm0"])
    MIN_POWER = amp * amp * GOERTZEL_WINDOW_SAMPLES / 2.0
    NORMAL_TWIST = pow(10.0, THRESHOLDS["normal_twist_db"] / 10.0)
    REVERSE_TWIST = pow(10.0, THRESHOLDS["reverse_twist_db"] / 10.0)
    RELATIVE_PEAK = pow(10.0, THRESHOLDS["relative_peak_db"] / 10.0)
    HARMONIC = pow(10.0, THRESHOLDS["harmonic_db"] / 10.0)
    ENERGY_FRACTION = THRESHOLDS["energy_fraction"]
    MAX_DEVIATION = THRESHOLDS["max_deviation"]


_build_tables()


cdef void goertzel_init(GoertzelState *st) noexcept nogil:
    memset(st, 0, sizeof(GoertzelState))


cdef inline int _best(const double *power) noexcept nogil:
    cdef int i, best = 0
    for i in range(1, 4):
        if power[i] > power[best]:
            best = i
    return best


cdef inline bint _peaks_alone(const double *power, int best) noexcept nogil:
    cdef int i
    for i in range(4):
        if i != best and power[i] * RELATIVE_PEAK > power[best]:
            return False
    return True


cdef double _off_bin_gain(GoertzelState *st, int f) noexcept nogil:
    """The window's amplitude response to bin f's tone, or 0 when it is off frequency.

    The tone must lie within MAX_DEVIATION of the bin's frequency; the response to a tone
    off the bin by d is |sin(d N / 2) / (N sin(d / 2))|, by which the caller divides so
    that the energy check measures coverage, not how well the sender hit the frequency.

    A tone off the bin by d rad/sample turns a further d * 68 between the oldest and the
    newest sub-block, beyond the bin's own turn; that also rejects slow glides.
    """
    cdef int old = st.oldest
    cdef int new = (st.oldest + GOERTZEL_SUBS - 1) % GOERTZEL_SUBS
    # z = Y_new * conj(Y_old) * r^2, with r^2 = e^{-i w 68}
    cdef double re = st.y_re[new][f] * st.y_re[old][f] + st.y_im[new][f] * st.y_im[old][f]
    cdef double im = st.y_im[new][f] * st.y_re[old][f] - st.y_re[new][f] * st.y_im[old][f]
    cdef double r2_re = ROT_RE[f] * ROT_RE[f] - ROT_IM[f] * ROT_IM[f]
    cdef double r2_im = 2.0 * ROT_RE[f] * ROT_IM[f]
    cdef double z_re = re * r2_re - im * r2_im
    cdef double z_im = re * r2_im + im * r2_re
    cdef double w = atan2(SIN_W[f], COS_W[f])
    cdef double d = atan2(z_im, z_re) / ((GOERTZEL_SUBS - 1) * GOERTZEL_SUB_SAMPLES)
    if fabs(d) > MAX_DEVIATION * w:
        return 0.0
    if fabs(d) < 1e-9:
        return 1.0
    return fabs(sin(d * GOERTZEL_WINDOW_SAMPLES / 2.0)
                / (GOERTZEL_WINDOW_SAMPLES * sin(d / 2.0)))


cdef char _window_digit(GoertzelState *st) noexcept nogil:
    """The digit the last three sub-blocks hold, or 0."""
    cdef double power[GOERTZEL_FREQS]
    cdef double re, im, rre, rim, t, g_row, g_col, energy = 0.0
    cdef int f, b, idx, row, col
    for f in range(GOERTZEL_FREQS):
        # Horner over the sub-blocks, oldest first: X = ((Y0) r + Y1) r + Y2, up to a
        # common phase factor, which |X|^2 does not see.
        re = 0.0
        im = 0.0
        for b in range(GOERTZEL_SUBS):
            idx = (st.oldest + b) % GOERTZEL_SUBS
            # Y0 + r Y1 + r^2 Y2 == r^2 (Y0 r^-2 + ...): accumulate with r^-1 per step.
            t = re * ROT_RE[f] + im * ROT_IM[f]
            im = im * ROT_RE[f] - re * ROT_IM[f]
            re = t + st.y_re[idx][f]
            im = im + st.y_im[idx][f]
        power[f] = (re * re + im * im) * (2.0 / GOERTZEL_WINDOW_SAMPLES)
    for b in range(GOERTZEL_SUBS):
        energy += st.sub_energy[b]
    row = _best(power)
    col = _best(power + 4)
    rre = power[row]
    rim = power[4 + col]
    if rre < MIN_POWER or rim < MIN_POWER:
        return 0
    g_row = _off_bin_gain(st, row)
    g_col = _off_bin_gain(st, 4 + col)
    if g_row == 0.0 or g_col == 0.0:
        return 0
    rre /= g_row * g_row
    rim /= g_col * g_col
    if rre > rim * NORMAL_TWIST or rim > rre * REVERSE_TWIST:
        return 0
    if not _peaks_alone(power, row) or not _peaks_alone(power + 4, col):
        return 0
    if power[8 + row] + power[12 + col] > (rre + rim) * HARMONIC:
        return 0
    if rre + rim < ENERGY_FRACTION * energy:
        return 0
    return DTMF_KEYPAD[row * 4 + col]


cdef void _finish_sub_block(GoertzelState *st) noexcept nogil:
    cdef int f
    cdef int slot = st.oldest
    # y = s[N-1] - e^{-iw} s[N-2] is the sub-block's DFT times e^{iw(N-1)}, the same
    # factor for every sub-block.
    for f in range(GOERTZEL_FREQS):
        st.y_re[slot][f] = st.s1[f] - COS_W[f] * st.s2[f]
        st.y_im[slot][f] = SIN_W[f] * st.s2[f]
        st.s1[f] = 0.0
        st.s2[f] = 0.0
    st.sub_energy[slot] = st.energy
    st.energy = 0.0
    st.n_in_sub = 0
    st.oldest = (slot + 1) % GOERTZEL_SUBS
    if st.n_subs < GOERTZEL_SUBS:
        st.n_subs += 1


cdef int _decide(GoertzelState *st, char *digits, int n, int max_digits) noexcept nogil:
    """Q.24 timing over one window decision; returns the new count of digits."""
    cdef char d = _window_digit(st)
    if d == st.candidate:
        st.run += 1
    else:
        st.candidate = d
        st.run = 1
    if d == st.latched:
        st.off_windows = 0
    else:
        st.off_windows += 1
        if st.off_windows >= OFF_RUN:
            st.latched = 0
    if d and st.run >= ON_RUN and d != st.latched:
        st.latched = d
        st.off_windows = 0
        if n < max_digits:
            digits[n] = d
            n += 1
        else:
            st.n_dropped += 1
    return n


cdef int goertzel_feed(GoertzelState *st, const int16_t *pcm, Py_ssize_t n_samples,
                       char *digits, int max_digits) noexcept nogil:
    """Feed samples; writes each newly detected digit to digits, returns how many."""
    cdef Py_ssize_t i
    cdef int f
    cdef int n = 0
    cdef double x, s0
    for i in range(n_samples):
        x = pcm[i]
        st.energy += x * x
        for f in range(GOERTZEL_FREQS):
            s0 = x + COEF[f] * st.s1[f] - st.s2[f]
            st.s2[f] = st.s1[f]
            st.s1[f] = s0
        st.n_in_sub += 1
        if st.n_in_sub == GOERTZEL_SUB_SAMPLES:
            _finish_sub_block(st)
            if st.n_subs == GOERTZEL_SUBS:
                n = _decide(st, digits, n, max_digits)
    return n


cdef class GoertzelDetector:
    """In-band DTMF detector for one stream; feed() any number of samples at a time."""

    cdef GoertzelState st

    def __init__(self, sample_rate=8000):
        if sample_rate != GOERTZEL_SAMPLE_RATE_HZ:
            raise ValueError(f"GoertzelDetector: sample_rate must be 8000, got {sample_rate}")
        goertzel_init(&self.st)

    def feed(self, pcm):
        """Signed 16-bit little-endian PCM in; the digits detected in it out, in order."""
        cdef Py_buffer view
        cdef Py_ssize_t n_samples
        cdef int max_digits, n
        cdef char *digits
        cdef const int16_t *samples
        cdef int16_t *aligned = NULL
        PyObject_GetBuffer(pcm, &view, PyBUF_SIMPLE)
        try:
            if view.len % 2:
                raise ValueError(
                    f"feed: PCM length must be even (16-bit samples), got {view.len} bytes"
                )
            n_samples = view.len // 2
            # Reports are ON_WINDOWS windows apart, but one may already be under way.
            max_digits = <int>(n_samples // (ON_RUN * GOERTZEL_SUB_SAMPLES)) + 1
            out = PyBytes_FromStringAndSize(NULL, max_digits)
            digits = PyBytes_AS_STRING(out)
            samples = <const int16_t *>view.buf
            if (<size_t>view.buf) % sizeof(int16_t):
                aligned = <int16_t *>malloc(view.len)
                if aligned == NULL:
                    raise MemoryError()
                memcpy(aligned, view.buf, view.len)
                samples = aligned
            with nogil:
                n = goertzel_feed(&self.st, samples, n_samples, digits, max_digits)
            return out[:n].decode("ascii")
        finally:
            free(aligned)
            PyBuffer_Release(&view)
