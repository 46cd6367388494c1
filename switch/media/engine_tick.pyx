# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-tick work of a worker (see engine_tick.pxd and the order in engine.pyx's docstring).

Generated packets continue the leg's SSRC and seq, with the marker and a timestamp
advanced by the time elapsed when the source changes (same rule as a re-bridge).
"""

from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset

from switch.media.engine_events cimport post_event, post_stats
from switch.media.engine_types cimport (
    EV_DTMF,
    EV_PLAYBACK_FINISHED,
    EV_RTP_TIMEOUT,
    GEN_SOURCE,
    MSG_DONTWAIT,
    NS_PER_SAMPLE,
    PKT_CAP,
    SAMPLES_PER_MS,
    EventRec,
    Leg,
    MixNode,
    RecTap,
    Shared,
    htons,
    ntohs,
    ntp_now,
    sendto,
    sockaddr,
    sockaddr_in,
)
from switch.media.legmedia cimport (
    LM_DTMF_PAUSE_SAMPLES,
    LM_FRAME_SAMPLES,
    LM_MAX_INBAND,
    LegMedia,
    lm_dtmf_next_digit,
    lm_encode,
    lm_play_frame,
    lm_pull,
)
from switch.media.mixer cimport MIX_MAX_PARTIES, mix_frame
from switch.media.recorder cimport recorder_write_frame
from switch.media.rtp cimport (
    RtcpReportBlock,
    RtcpSenderInfo,
    ntp_middle32,
    rtcp_write_rr,
    rtcp_write_sdes_cname,
    rtcp_write_sr,
    rtp_write_header,
    stats_report_block,
)


cdef void run_tick(Worker *w, int64_t tick_ns) noexcept nogil:
    cdef Shared *shared = w.shared
    cdef Leg *leg = w.legs
    cdef bint stats_due = tick_ns >= w.next_stats_ns
    cdef EventRec rec
    cdef char digits[LM_MAX_INBAND]
    cdef int n, i
    w.ticks += 1
    # 1. per leg: timers, RTCP, and this tick's decoded audio (and in-band detection)
    while leg != NULL:
        if (leg.remote_set and not leg.timeout_posted
                and tick_ns - leg.last_rx_ns >= shared.rtp_timeout_ns):
            leg.timeout_posted = True
            rec.kind = EV_RTP_TIMEOUT
            rec.leg = leg.id
            rec.value = (tick_ns - leg.last_rx_ns) / 1e9
            post_event(shared, &rec)
        if stats_due:
            post_stats(shared, leg)
        if leg.remote_known and shared.rtcp_interval_ns > 0:
            if leg.next_rtcp_ns == 0:
                leg.next_rtcp_ns = tick_ns + shared.rtcp_interval_ns
            elif tick_ns >= leg.next_rtcp_ns:
                send_rtcp(w, leg, tick_ns)
                leg.next_rtcp_ns += shared.rtcp_interval_ns
                if leg.next_rtcp_ns <= tick_ns:
                    leg.next_rtcp_ns = tick_ns + shared.rtcp_interval_ns
        if leg.media != NULL and leg.media.decode_users > 0:
            n = lm_pull(leg.media, tick_ns // 1000, leg.payload_type, digits, LM_MAX_INBAND)
            for i in range(n):
                memset(&rec, 0, sizeof(rec))
                rec.kind = EV_DTMF
                rec.leg = leg.id
                rec.digit = digits[i]
                post_event(shared, &rec)
        leg = leg.next
    if stats_due:
        w.next_stats_ns += shared.stats_interval_ns
        if w.next_stats_ns <= tick_ns:
            w.next_stats_ns = tick_ns + shared.stats_interval_ns
    # 2. mixes, 3. recordings (both read the decoded audio of step 1)
    mix_pass(w)
    record_pass(w)
    # 4. what the engine sends itself: DTMF, playback, mix output
    leg = w.legs
    while leg != NULL:
        if leg.media != NULL:
            output_tick(w, leg, leg.media, tick_ns)
        leg = leg.next


cdef void mix_pass(Worker *w) noexcept nogil:
    cdef MixNode *node = w.mixes
    cdef const int16_t *inputs[MIX_MAX_PARTIES]
    cdef int16_t *outputs[MIX_MAX_PARTIES]
    cdef int slot
    while node != NULL:
        for slot in range(MIX_MAX_PARTIES):
            if node.slots[slot] != NULL:
                inputs[slot] = node.slots[slot].media.pcm
                outputs[slot] = node.slots[slot].media.mix_out
            else:
                inputs[slot] = NULL
                outputs[slot] = NULL
        mix_frame(&node.mix, inputs, outputs)
        node = node.next


cdef inline int16_t _clip(int total) noexcept nogil:
    return <int16_t>(32767 if total > 32767 else (-32768 if total < -32768 else total))


cdef void record_pass(Worker *w) noexcept nogil:
    cdef RecTap *tap = w.taps
    cdef int16_t mono[LM_FRAME_SAMPLES]
    cdef int16_t right[LM_FRAME_SAMPLES]
    cdef int16_t silence[LM_FRAME_SAMPLES]
    cdef const int16_t *b_pcm
    cdef int i, k, total
    memset(silence, 0, sizeof(silence))
    while tap != NULL:
        b_pcm = tap.b.media.pcm if tap.b != NULL else NULL
        if tap.n_extra and not tap.paused:
            # Added parties (a conference, a barge-in) speak on the agent's side.
            for i in range(LM_FRAME_SAMPLES):
                total = 0 if b_pcm == NULL else <int>b_pcm[i]
                for k in range(tap.n_extra):
                    total += tap.extra[k].media.pcm[i]
                right[i] = _clip(total)
            b_pcm = right
        if tap.paused:
            recorder_write_frame(tap.state, silence, silence if tap.stereo else NULL)
        elif tap.stereo:
            recorder_write_frame(tap.state, tap.a.media.pcm, b_pcm)
        elif b_pcm == NULL:
            recorder_write_frame(tap.state, tap.a.media.pcm, NULL)
        else:
            for i in range(LM_FRAME_SAMPLES):
                mono[i] = _clip(<int>tap.a.media.pcm[i] + b_pcm[i])
            recorder_write_frame(tap.state, mono, NULL)
        tap = tap.next


cdef void send_rtcp(Worker *w, Leg *leg, int64_t now) noexcept nogil:
    """RFC 3550 §6.1 compound: SR when this leg has sent RTP (else RR), then SDES CNAME."""
    cdef uint8_t *buf = w.txbuf
    cdef RtcpReportBlock block
    cdef RtcpSenderInfo sender
    cdef int n_blocks = 0
    cdef Py_ssize_t n, more
    cdef uint32_t sec, frac
    cdef sockaddr_in to = leg.remote
    cdef int fd = leg.rtp.fd
    ntp_now(&sec, &frac)
    if leg.counters.received:
        stats_report_block(&leg.rx_stats, leg.in_ssrc, ntp_middle32(sec, frac), &block)
        n_blocks = 1
    if leg.counters.sent:
        sender.ntp_sec = sec
        sender.ntp_frac = frac
        sender.rtp_ts = leg.last_out_ts + <uint32_t>((now - leg.last_out_ns) // NS_PER_SAMPLE)
        sender.packet_count = <uint32_t>leg.counters.sent
        sender.octet_count = <uint32_t>leg.octets_sent
        n = rtcp_write_sr(buf, PKT_CAP, leg.out_ssrc, &sender, &block, n_blocks)
    else:
        n = rtcp_write_rr(buf, PKT_CAP, leg.out_ssrc, &block, n_blocks)
    if n <= 0:
        return
    more = rtcp_write_sdes_cname(buf + n, PKT_CAP - n, leg.out_ssrc,
                                 <const uint8_t *>b"switch", 6)
    if more > 0:
        n += more
    if not leg.rtcp_mux:
        fd = leg.rtcp.fd
        to.sin_port = htons(<uint16_t>(ntohs(to.sin_port) + 1))
    sendto(fd, buf, n, MSG_DONTWAIT, <sockaddr *>&to, sizeof(sockaddr_in))


# ---- what the engine itself sends: playback, mixes, DTMF ---------------------------

cdef bint gen_begin(Leg *leg, int64_t now) noexcept nogil:
    """Make the engine this leg's RTP source; True (marker) when it was not already."""
    cdef int64_t elapsed_samples
    if leg.out_started and leg.out_src_leg == GEN_SOURCE:
        return False
    if leg.out_started:  # continue the stream: ts by the time elapsed since its last packet
        elapsed_samples = (now - leg.last_out_ns) // 1000000 * SAMPLES_PER_MS
        if elapsed_samples < 1:
            elapsed_samples = 1
        elif elapsed_samples > 0x7FFFFFFF:
            elapsed_samples = 0x7FFFFFFF
        leg.gen_ts = leg.last_out_ts + <uint32_t>elapsed_samples
    else:
        leg.gen_ts = leg.last_out_ts  # the random start chosen at open_leg
    leg.out_src_leg = GEN_SOURCE
    leg.out_src_ssrc = 0
    return True


cdef void gen_send(Worker *w, Leg *leg, int payload_type, const uint8_t *payload,
                   int n_payload, uint32_t ts, bint marker, int64_t now) noexcept nogil:
    cdef uint8_t *buf = w.txbuf
    cdef uint16_t seq = <uint16_t>(leg.last_out_seq + 1)
    cdef Py_ssize_t n
    leg.last_out_seq = seq
    leg.last_out_ts = ts
    leg.last_out_ns = now
    leg.out_started = True
    if not leg.remote_known:
        return
    n = rtp_write_header(buf, PKT_CAP, <uint8_t>payload_type, marker, seq, ts, leg.out_ssrc)
    memcpy(buf + n, payload, n_payload)
    leg.counters.sent += 1
    leg.octets_sent += n_payload
    if sendto(leg.rtp.fd, buf, n + n_payload, MSG_DONTWAIT, <sockaddr *>&leg.remote,
              sizeof(sockaddr_in)) < 0:
        leg.counters.sent -= 1
        leg.octets_sent -= n_payload


cdef void gen_audio(Worker *w, Leg *leg, const int16_t *pcm, int64_t now) noexcept nogil:
    cdef uint8_t payload[LM_FRAME_SAMPLES]
    cdef bint marker = gen_begin(leg, now)
    cdef int n = lm_encode(leg.payload_type, pcm, payload)
    if n:
        gen_send(w, leg, leg.payload_type, payload, n, leg.gen_ts, marker, now)
    leg.gen_ts += LM_FRAME_SAMPLES


cdef void dtmf_tick(Worker *w, Leg *leg, LegMedia *m, int64_t now) noexcept nogil:
    """RFC 4733 out: a digit's packets as its duration elapses, then a pause."""
    cdef bint marker
    cdef int i
    if m.n_packets == 0:
        if m.digit_index > 0 and m.event_elapsed < LM_DTMF_PAUSE_SAMPLES:
            m.event_elapsed += LM_FRAME_SAMPLES  # the pause after a digit
            leg.gen_ts += LM_FRAME_SAMPLES
            return
        if not lm_dtmf_next_digit(m):
            m.dtmf_active = False
            return
        gen_begin(leg, now)
        m.event_ts = leg.gen_ts
    m.event_elapsed += LM_FRAME_SAMPLES
    while (m.packet_index < m.n_packets
           and m.packets[m.packet_index].send_offset_samples <= m.event_elapsed):
        i = m.packet_index
        gen_send(w, leg, leg.dtmf_payload_type, m.packets[i].payload, 4, m.event_ts,
                 m.packets[i].marker, now)
        m.packet_index += 1
    if m.packet_index >= m.n_packets:
        leg.gen_ts = m.event_ts + m.event_elapsed
        m.n_packets = 0
        m.event_elapsed = 0


cdef void output_tick(Worker *w, Leg *leg, LegMedia *m, int64_t now) noexcept nogil:
    """DTMF first, then playback, then the leg's mix; otherwise relay feeds it."""
    cdef int16_t pcm[LM_FRAME_SAMPLES]
    cdef EventRec rec
    cdef int rc
    if m.dtmf_active:
        dtmf_tick(w, leg, m, now)
        return
    rc = lm_play_frame(m, pcm)
    if rc == 1:
        gen_audio(w, leg, pcm, now)
        return
    if rc == 0 and m.play_posts_finished:
        memset(&rec, 0, sizeof(rec))
        rec.kind = EV_PLAYBACK_FINISHED
        rec.leg = leg.id
        post_event(w.shared, &rec)
    if m.mix != NULL:
        gen_audio(w, leg, m.mix_out, now)
