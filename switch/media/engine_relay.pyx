# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The packet path (see engine_relay.pxd): runs on a worker thread, no Python objects.

Symmetric RTP: the first valid packet after set_remote latches the leg's remote address;
later packets from elsewhere are strangers unless they carry another SSRC and the
latched source has been silent for Shared.relatch_silence_ns (-1: never). A packet for
the bridged peer is rewritten into the peer's own outgoing stream (its SSRC, continuous
seq/ts, the peer's payload types; PCMU <-> PCMA by table) and sent in one batch.
"""

from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset

from switch.media.dtmf cimport DTMF_ENDED, DTMF_MAX_REPORTS, DtmfReport, dtmf_rx_feed
from switch.media.engine_events cimport post_event
from switch.media.engine_types cimport (
    BATCH,
    EV_DTMF,
    MSG_DONTWAIT,
    MSG_TRUNC,
    recvmmsg,
    NS_PER_SAMPLE,
    PT_PCMA,
    PT_PCMU,
    SAMPLES_PER_MS,
    EventRec,
    IoBufs,
    Shared,
    now_ns,
    ntp_now,
    same_address,
    sendmmsg,
    sendto,
    sockaddr,
    sockaddr_in,
)
from switch.media.g711 cimport (
    ALAW_DECODE,
    ALAW_ENCODE,
    ALAW_SHIFT,
    ULAW_DECODE,
    ULAW_ENCODE,
    ULAW_SHIFT,
)
from switch.media.jitterbuffer cimport jb_insert
from switch.media.legmedia cimport lm_owns_output
from switch.media.rtp cimport (
    RTCP_RR,
    RTCP_SR,
    RTP_ERR_RTCP,
    RTP_OK,
    RtcpPacket,
    RtcpReportBlock,
    RtcpReportView,
    RtpHeader,
    load_be16,
    load_be32,
    ntp_middle32,
    rtcp_next,
    rtcp_parse_report,
    rtcp_report_block,
    rtcp_rtt_s,
    rtp_parse,
    stats_init,
    stats_sr_received,
    stats_update,
    store_be16,
    store_be32,
)

cdef uint8_t ULAW_TO_ALAW[256]
cdef uint8_t ALAW_TO_ULAW[256]


cdef void _build_transcode_tables() noexcept nogil:
    # Exactly alaw_encode(ulaw_decode(code)) and back: one lookup per payload byte.
    cdef int code
    for code in range(256):
        ULAW_TO_ALAW[code] = ALAW_ENCODE[(<uint16_t>ULAW_DECODE[code]) >> ALAW_SHIFT]
        ALAW_TO_ULAW[code] = ULAW_ENCODE[(<uint16_t>ALAW_DECODE[code]) >> ULAW_SHIFT]


_build_transcode_tables()


cdef inline bint rewrite_for_peer(Leg *src, Leg *dst, uint8_t *buf, Py_ssize_t offset,
                                  Py_ssize_t payload_end, int64_t now) noexcept nogil:
    """Make ``buf`` part of ``dst``'s outgoing stream; False to drop it."""
    cdef uint8_t pt = buf[1] & 0x7F
    cdef uint8_t marker = buf[1] & 0x80
    cdef uint8_t out_pt = pt
    cdef const uint8_t *table = NULL
    cdef uint16_t seq = load_be16(buf + 2)
    cdef uint32_t ts = load_be32(buf + 4)
    cdef uint32_t ssrc = load_be32(buf + 8)
    cdef uint16_t seq_out
    cdef uint32_t ts_out
    cdef int64_t elapsed_samples
    cdef Py_ssize_t i
    if src.dtmf_payload_type >= 0 and pt == src.dtmf_payload_type:
        if dst.dtmf_payload_type < 0:
            return False  # the far end takes no telephone-events
        out_pt = <uint8_t>dst.dtmf_payload_type
    elif pt == src.payload_type and pt != dst.payload_type:
        if pt == PT_PCMU and dst.payload_type == PT_PCMA:
            table = ULAW_TO_ALAW
        elif pt == PT_PCMA and dst.payload_type == PT_PCMU:
            table = ALAW_TO_ULAW
        if table != NULL:
            for i in range(offset, payload_end):
                buf[i] = table[buf[i]]
            out_pt = <uint8_t>dst.payload_type
    if not dst.out_started:
        dst.out_started = True
        dst.seq_offset = 0
        dst.ts_offset = 0
        dst.last_out_seq = seq
        dst.last_out_ts = ts
        dst.last_out_ns = now
    elif dst.out_src_leg != src.id or dst.out_src_ssrc != ssrc:
        # A new source for this stream: continue seq at +1 and ts by the time elapsed,
        # at least the 20 ms frame last sent (never inside it: a parked caller's music
        # ending just before the agent's first packet must not overlap it).
        elapsed_samples = (now - dst.last_out_ns) // 1000000 * SAMPLES_PER_MS
        if elapsed_samples < 20 * SAMPLES_PER_MS:
            elapsed_samples = 20 * SAMPLES_PER_MS
        elif elapsed_samples > 0x7FFFFFFF:
            elapsed_samples = 0x7FFFFFFF
        dst.seq_offset = <uint16_t>(dst.last_out_seq + 1 - seq)
        dst.ts_offset = <uint32_t>(dst.last_out_ts + <uint32_t>elapsed_samples - ts)
        marker = 0x80
    dst.out_src_leg = src.id
    dst.out_src_ssrc = ssrc
    dst.octets_sent += <uint64_t>(payload_end - offset)
    seq_out = <uint16_t>(seq + dst.seq_offset)
    ts_out = <uint32_t>(ts + dst.ts_offset)
    if <int16_t>(seq_out - dst.last_out_seq) >= 0:
        dst.last_out_seq = seq_out
        dst.last_out_ts = ts_out
        dst.last_out_ns = now
    buf[1] = marker | out_pt
    store_be16(buf + 2, seq_out)
    store_be32(buf + 4, ts_out)
    store_be32(buf + 8, dst.out_ssrc)
    return True


cdef void send_batch(IoBufs *io, Leg *src, Leg *dst, int n) noexcept nogil:
    cdef int sent = 0
    cdef int rc
    # Counted before the syscall, corrected after: whoever sees a packet arrive also
    # sees it counted (the far end can wake before sendto returns here).
    dst.counters.sent += n
    src.counters.relayed += n
    if n == 1:
        if sendto(dst.rtp.fd, io.txiov[0].iov_base, io.txiov[0].iov_len, MSG_DONTWAIT,
                  <sockaddr *>&dst.remote, sizeof(sockaddr_in)) >= 0:
            sent = 1
    else:
        while sent < n:
            rc = sendmmsg(dst.rtp.fd, io.tx + sent, n - sent, MSG_DONTWAIT)
            if rc <= 0:
                break  # socket buffer full or an ICMP error: drop the rest
            sent += rc
    dst.counters.sent -= n - sent
    src.counters.relayed -= n - sent


cdef void receive_rtp(Worker *w, Leg *leg) noexcept nogil:
    cdef IoBufs *io = w.io
    cdef Leg *peer = leg.peer
    cdef int n, i
    cdef int n_tx = 0
    cdef uint8_t *buf
    cdef Py_ssize_t length, offset, payload_end
    cdef sockaddr_in *source
    cdef uint32_t ssrc
    cdef int64_t now
    cdef int rc
    cdef RtpHeader header
    for i in range(BATCH):
        io.rx[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)
    n = recvmmsg(leg.rtp.fd, io.rx, BATCH, MSG_DONTWAIT, NULL)
    if n <= 0:
        return
    now = now_ns()
    for i in range(n):
        buf = io.rxbuf[i]
        length = io.rx[i].msg_len
        if io.rx[i].msg_hdr.msg_flags & MSG_TRUNC:
            leg.counters.dropped_invalid += 1
            continue
        rc = rtp_parse(buf, length, &header)
        if rc != RTP_OK:
            if rc == RTP_ERR_RTCP and leg.rtcp_mux:
                handle_rtcp(leg, buf, length)  # RFC 5761 §4: PT 72-76 is RTCP
            else:
                leg.counters.dropped_invalid += 1
            continue
        offset = header.payload_offset
        payload_end = offset + header.payload_len
        source = &io.rxaddr[i]
        ssrc = header.ssrc
        if not leg.latched:
            leg.remote = source[0]
            leg.remote_known = True
            leg.latched = True
        elif not same_address(source, &leg.remote):
            # Re-latch only to a new SSRC after the latched source has been silent long
            # enough (a phone that moved, e.g. a NAT rebinding); otherwise a stranger.
            if (w.shared.relatch_silence_ns >= 0 and ssrc != leg.in_ssrc
                    and now - leg.last_rx_ns > w.shared.relatch_silence_ns):
                leg.remote = source[0]
            else:
                leg.counters.dropped_stranger += 1
                continue
        if ssrc != leg.in_ssrc or not leg.counters.received:
            stats_init(&leg.rx_stats)  # a new source: its own sequence space
        stats_update(&leg.rx_stats, header.seq, header.timestamp,
                     <uint32_t>(now // NS_PER_SAMPLE))
        leg.in_ssrc = ssrc
        leg.last_rx_ns = now
        leg.timeout_posted = False
        leg.counters.received += 1
        if leg.dtmf_payload_type >= 0 and header.payload_type == leg.dtmf_payload_type:
            dtmf_received(leg, w.shared, buf + offset, header.payload_len, &header)
        elif (leg.media != NULL and leg.media.decode_users > 0
              and header.payload_type == leg.payload_type):
            jb_insert(&leg.media.jb, header.seq, header.timestamp, buf + offset,
                      header.payload_len, now // 1000)
        if peer != NULL and peer.remote_known and (
            peer.media == NULL or not lm_owns_output(peer.media)
        ) and rewrite_for_peer(
            leg, peer, buf, offset, payload_end, now
        ):
            io.txiov[n_tx].iov_base = buf
            io.txiov[n_tx].iov_len = length
            io.tx[n_tx].msg_hdr.msg_name = &peer.remote
            io.tx[n_tx].msg_hdr.msg_namelen = sizeof(sockaddr_in)
            io.tx[n_tx].msg_hdr.msg_iov = &io.txiov[n_tx]
            io.tx[n_tx].msg_hdr.msg_iovlen = 1
            io.tx[n_tx].msg_hdr.msg_control = NULL
            io.tx[n_tx].msg_hdr.msg_controllen = 0
            io.tx[n_tx].msg_hdr.msg_flags = 0
            n_tx += 1
    if n_tx:
        send_batch(io, leg, peer, n_tx)


cdef void receive_rtcp(Worker *w, Leg *leg) noexcept nogil:
    cdef IoBufs *io = w.io
    cdef int n, i
    for i in range(BATCH):
        io.rx[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)
    n = recvmmsg(leg.rtcp.fd, io.rx, BATCH, MSG_DONTWAIT, NULL)
    for i in range(n):
        if not io.rx[i].msg_hdr.msg_flags & MSG_TRUNC:
            handle_rtcp(leg, io.rxbuf[i], io.rx[i].msg_len)
        else:
            leg.counters.rtcp_received += 1


cdef void handle_rtcp(Leg *leg, const uint8_t *buf, Py_ssize_t n) noexcept nogil:
    """Count an RTCP datagram; learn LSR from SRs and the RTT from blocks about us."""
    cdef Py_ssize_t pos = 0
    cdef RtcpPacket pkt
    cdef RtcpReportView view
    cdef RtcpReportBlock block
    cdef uint32_t sec, frac, arrival
    cdef double rtt_s
    cdef int i
    leg.counters.rtcp_received += 1
    ntp_now(&sec, &frac)
    arrival = ntp_middle32(sec, frac)
    while rtcp_next(buf, n, &pos, &pkt) > 0:
        if pkt.packet_type != RTCP_SR and pkt.packet_type != RTCP_RR:
            continue
        if rtcp_parse_report(buf, &pkt, &view) < 0:
            continue
        if view.has_sender_info:
            stats_sr_received(&leg.rx_stats, view.sender.ntp_sec, view.sender.ntp_frac,
                              arrival)
        for i in range(view.report_count):
            rtcp_report_block(buf, &view, i, &block)
            if block.ssrc == leg.out_ssrc:
                rtt_s = rtcp_rtt_s(arrival, block.lsr, block.dlsr)
                if rtt_s >= 0:
                    leg.rtt_ms = rtt_s * 1000.0


cdef void dtmf_received(Leg *leg, Shared *shared, const uint8_t *payload,
                        Py_ssize_t length, RtpHeader *header) noexcept nogil:
    """RFC 4733 in: one DtmfReceived per key press, when its end is known."""
    cdef DtmfReport reports[DTMF_MAX_REPORTS]
    cdef EventRec rec
    cdef int n, i
    n = dtmf_rx_feed(&leg.dtmf_rx, payload, length, header.timestamp, header.marker,
                     header.seq, reports)
    for i in range(n):
        if reports[i].kind == DTMF_ENDED:
            memset(&rec, 0, sizeof(rec))
            rec.kind = EV_DTMF
            rec.leg = leg.id
            rec.digit = reports[i].digit
            rec.value = reports[i].duration_samples // SAMPLES_PER_MS
            post_event(shared, &rec)

