# cython: language_level=3
"""Per-leg media processing for the engine: decode, detection, playback, DTMF out.

A ``LegMedia`` hangs off an engine leg once the leg needs more than relay (recorded,
mixed, in-band DTMF detection, playback, DTMF generation). It is touched only by the
worker that owns the leg; Python prepares values and hands them over by command.
"""

from libc.stdint cimport int16_t, int64_t, uint8_t, uint32_t

from switch.media.dtmf cimport DtmfTxPacket
from switch.media.goertzel cimport GoertzelState
from switch.media.jitterbuffer cimport JbState
from switch.media.player cimport Player
from switch.media.tones cimport ToneGen


cdef enum:
    LM_FRAME_SAMPLES = 160  # 20 ms at 8 kHz
    LM_MAX_DIGITS = 64  # send_dtmf digits per call
    LM_MAX_DTMF_PACKETS = 128  # one event of up to 2 s at 20 ms per packet, + 3 ends
    LM_MAX_INBAND = 8  # in-band digits detected per tick (one is the most possible)
    LM_DTMF_PAUSE_SAMPLES = 800  # 100 ms between sent digits (ITU-T Q.24 asks >= 40 ms)
    LM_DTMF_VOLUME = 10  # -10 dBm0, RFC 4733 §2.3.4


cdef struct LegMedia:
    # Decode path: fed while anything needs this leg's audio (users counted).
    int decode_users  # recordings + mix membership + in-band detection
    JbState jb
    int16_t pcm[LM_FRAME_SAMPLES]  # this tick's received audio (silence when lost)
    bint inband
    GoertzelState goertzel

    # Output the engine generates toward the leg (relay toward it pauses meanwhile).
    Player *player  # prompts; the Python PromptPlayer that owns it is kept alive
    ToneGen tone
    bint tone_on
    bint playing
    bint play_posts_finished  # post PlaybackFinished when it ends (not when stopped)

    # RFC 4733 generation: digits go one at a time, each then a pause.
    char digits[LM_MAX_DIGITS]
    int n_digits
    int digit_index
    uint32_t dtmf_duration_samples
    DtmfTxPacket packets[LM_MAX_DTMF_PACKETS]
    int n_packets  # of the current digit; 0 between digits
    int packet_index
    uint32_t event_elapsed  # samples since the current event (or pause) started
    uint32_t event_ts  # RTP timestamp of the current event (its start)
    bint dtmf_active

    # Mixing: output of this leg's slot, written by the worker's mix pass.
    void *mix  # the MixNode the leg is in, or NULL
    int mix_slot
    int16_t mix_out[LM_FRAME_SAMPLES]


cdef void lm_init(LegMedia *m) noexcept nogil
# One 20 ms pull: jitter buffer -> decoded pcm (silence on loss or empty); when in-band
# detection is on, runs it and writes detected digits to ``digits``; returns their count.
cdef int lm_pull(LegMedia *m, int64_t now_us, int payload_type, char *digits,
                 int max_digits) noexcept nogil
# Next generated frame (prompts or tone) into out: 1 produced, 0 the playback just ended
# (out is silence, ``playing`` cleared), -1 nothing is playing.
cdef int lm_play_frame(LegMedia *m, int16_t *out) noexcept nogil
# Encode 160 samples for payload type 0 (PCMU) or 8 (PCMA): bytes written, 0 otherwise.
cdef int lm_encode(int payload_type, const int16_t *pcm, uint8_t *out) noexcept nogil
cdef bint lm_owns_output(const LegMedia *m) noexcept nogil
# Start the next queued DTMF digit: builds its packets; False when none is left.
cdef bint lm_dtmf_next_digit(LegMedia *m) noexcept nogil
