# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-leg media kernels the engine cimports (see legmedia.pxd); no Python objects."""

from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memset

from switch.media.dtmf cimport dtmf_event_from_digit, dtmf_tx_build
from switch.media.g711 cimport (
    ALAW_DECODE,
    ALAW_ENCODE,
    ALAW_SHIFT,
    ULAW_DECODE,
    ULAW_ENCODE,
    ULAW_SHIFT,
)
from switch.media.goertzel cimport goertzel_feed, goertzel_init
from switch.media.jitterbuffer cimport JB_FRAME, JB_MAX_PAYLOAD, jb_init, jb_pull
from switch.media.player cimport player_next_frame
from switch.media.tones cimport tone_generate

cdef enum:
    PT_PCMU = 0
    PT_PCMA = 8


cdef void lm_init(LegMedia *m) noexcept nogil:
    memset(m, 0, sizeof(LegMedia))
    jb_init(&m.jb)
    goertzel_init(&m.goertzel)


cdef int lm_pull(LegMedia *m, int64_t now_us, int payload_type, char *digits,
                 int max_digits) noexcept nogil:
    cdef uint8_t payload[JB_MAX_PAYLOAD]
    cdef Py_ssize_t n_bytes = 0
    cdef uint16_t seq
    cdef Py_ssize_t i
    cdef const int16_t *table = NULL
    if payload_type == PT_PCMU:
        table = ULAW_DECODE
    elif payload_type == PT_PCMA:
        table = ALAW_DECODE
    if jb_pull(&m.jb, now_us, payload, &n_bytes, &seq) == JB_FRAME and table != NULL:
        if n_bytes > LM_FRAME_SAMPLES:
            n_bytes = LM_FRAME_SAMPLES
        for i in range(n_bytes):
            m.pcm[i] = table[payload[i]]
        for i in range(n_bytes, LM_FRAME_SAMPLES):
            m.pcm[i] = 0
    else:
        memset(m.pcm, 0, sizeof(m.pcm))  # lost or nothing due: silence
    if m.inband:
        return goertzel_feed(&m.goertzel, m.pcm, LM_FRAME_SAMPLES, digits, max_digits)
    return 0


cdef int lm_play_frame(LegMedia *m, int16_t *out) noexcept nogil:
    if not m.playing:
        return -1
    if m.tone_on:
        tone_generate(&m.tone, out, LM_FRAME_SAMPLES)
        if not m.tone.finished:
            return 1
    elif m.player != NULL and player_next_frame(m.player, out):
        return 1
    memset(out, 0, LM_FRAME_SAMPLES * sizeof(int16_t))
    m.playing = False
    m.tone_on = False
    m.player = NULL
    return 0


cdef int lm_encode(int payload_type, const int16_t *pcm, uint8_t *out) noexcept nogil:
    cdef int i
    if payload_type == PT_PCMU:
        for i in range(LM_FRAME_SAMPLES):
            out[i] = ULAW_ENCODE[(<uint16_t>pcm[i]) >> ULAW_SHIFT]
    elif payload_type == PT_PCMA:
        for i in range(LM_FRAME_SAMPLES):
            out[i] = ALAW_ENCODE[(<uint16_t>pcm[i]) >> ALAW_SHIFT]
    else:
        return 0
    return LM_FRAME_SAMPLES


cdef bint lm_owns_output(const LegMedia *m) noexcept nogil:
    return m.playing or m.dtmf_active or m.mix != NULL


cdef bint lm_dtmf_next_digit(LegMedia *m) noexcept nogil:
    cdef int event
    while m.digit_index < m.n_digits:
        event = dtmf_event_from_digit(m.digits[m.digit_index])
        m.digit_index += 1
        if event < 0:
            continue  # validated in Python; skip rather than stall if not
        m.n_packets = dtmf_tx_build(<uint8_t>event, m.dtmf_duration_samples,
                                    LM_FRAME_SAMPLES, LM_DTMF_VOLUME, m.packets,
                                    LM_MAX_DTMF_PACKETS)
        if m.n_packets <= 0:
            m.n_packets = 0
            continue
        m.packet_index = 0
        m.event_elapsed = 0
        return True
    m.n_packets = 0
    return False
