# In-band DTMF detection (Goertzel) over 16-bit PCM at 8 kHz, with ITU-T Q.24 timing.
from libc.stdint cimport int16_t, uint64_t

cdef enum:
    GOERTZEL_SAMPLE_RATE_HZ = 8000
    GOERTZEL_SUB_SAMPLES = 34       # one hop: a decision every 4.25 ms
    GOERTZEL_SUBS = 3               # sub-blocks per analysis window
    GOERTZEL_WINDOW_SAMPLES = 102   # 12.75 ms window, 78 Hz bins
    GOERTZEL_FREQS = 16             # 4 rows, 4 columns, then their second harmonics

cdef struct GoertzelState:
    double s1[GOERTZEL_FREQS]       # Goertzel recursion over the current sub-block
    double s2[GOERTZEL_FREQS]
    double energy                   # sum of squares over the current sub-block
    int n_in_sub
    double y_re[GOERTZEL_SUBS][GOERTZEL_FREQS]  # finished sub-blocks, ring
    double y_im[GOERTZEL_SUBS][GOERTZEL_FREQS]
    double sub_energy[GOERTZEL_SUBS]
    int n_subs                      # finished sub-blocks so far, up to GOERTZEL_SUBS
    int oldest                      # ring index of the oldest finished sub-block
    char candidate                  # digit of the current run of windows (0: none)
    int run                         # consecutive windows with that digit
    char latched                    # last reported digit, until a long enough pause
    int off_windows                 # consecutive windows without the latched digit
    uint64_t n_dropped              # digits that did not fit the caller's buffer

cdef void goertzel_init(GoertzelState *st) noexcept nogil
cdef int goertzel_feed(GoertzelState *st, const int16_t *pcm, Py_ssize_t n_samples,
                       char *digits, int max_digits) noexcept nogil
