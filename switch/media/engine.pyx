# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""MediaEngine: RTP relay worker threads in C, the GIL released for their whole life.

Each worker is a pthread running ``worker_loop``: epoll over its legs' sockets and a
wake eventfd, ``recvmmsg`` batches, immediate relay to the bridged peer (``sendto`` for
one packet, ``sendmmsg`` for a batch), and a 20 ms tick on absolute CLOCK_MONOTONIC
deadlines (``next += 20 ms``; after a stall at most MAX_CATCHUP_TICKS ticks are run back
to back, then the clock re-anchors) for RTP timeouts and statistics.

Python talks to a worker through a mutex-protected queue of commands and its wake
eventfd. Every command is synchronous: the method returns once the worker has applied
it (a round trip of some µs, the worker wakes at once), so a packet sent after
``bridge()`` returns is relayed. While the engine is stopped, commands are applied
directly by the caller. Call the engine's methods from one thread (the asyncio loop).

Legs that talk to each other live on one worker: ``open_leg(group=...)`` puts a group's
legs on the same worker, and ``bridge(a, b)`` moves ``b`` to ``a``'s worker if they
differ (detach from the old worker, attach to the new; both synchronous), keeping its
outgoing stream state so the far end still sees one continuous stream.

Media beyond relay (per-leg state in legmedia.pyx, allocated when a leg first needs it).
Each tick runs, in order: (1) per leg: timers, RTCP SR/RR when due, and for legs whose
audio is needed (recorded, mixed, in-band DTMF) one jitter-buffer pull decoded to PCM
(silence when lost); (2) every mix on the worker (mixer.pxd, hears masks); (3) every
recording tap (recorder.pxd ring, never blocks); (4) per leg, what the engine itself
sends: RFC 4733 digits first, then prompts/tones, then the leg's mix output. While the
engine is a leg's source, relay toward that leg pauses; generated packets continue the
leg's SSRC and seq, with the marker and a timestamp advanced by the time elapsed when
the source changes (same rule as a re-bridge). Pure relay legs never touch a jitter
buffer. RFC 4733 packets received on any leg are fed to its receive state machine
(one DtmfReceived per key press, at its end) and still relayed.
"""

import os
import random
from collections import deque

from libc.errno cimport EADDRINUSE, errno
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset, strerror
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec


cdef extern from "<time.h>" nogil:
    int TIMER_ABSTIME
    int clock_nanosleep(int clock_id, int flags, const timespec *request, timespec *remain)
from posix.unistd cimport close, read, write

from switch.media.dtmf cimport (
    DTMF_ENDED,
    DTMF_MAX_REPORTS,
    DtmfReport,
    dtmf_event_from_digit,
    dtmf_rx_feed,
    dtmf_rx_init,
)
from switch.media.jitterbuffer cimport jb_init, jb_insert
from switch.media.legmedia cimport (
    LM_DTMF_PAUSE_SAMPLES,
    LM_FRAME_SAMPLES,
    LM_MAX_DIGITS,
    LM_MAX_INBAND,
    LegMedia,
    lm_dtmf_next_digit,
    lm_encode,
    lm_init,
    lm_owns_output,
    lm_play_frame,
    lm_pull,
)
from switch.media.mixer cimport mix_frame, mix_init
from switch.media.goertzel cimport goertzel_init
from switch.media.player cimport Player, PromptPlayer
from switch.media.recorder cimport Recording, recorder_write_frame
from switch.media.rtp cimport (
    RTCP_RR,
    RTCP_SR,
    RTP_ERR_RTCP,
    RTP_OK,
    RecvReport,
    RtcpPacket,
    RtcpReportBlock,
    RtcpReportView,
    RtcpSenderInfo,
    RtpHeader,
    load_be16,
    load_be32,
    mos_estimate,
    ntp_middle32,
    rtcp_next,
    rtcp_parse_report,
    rtcp_report_block,
    rtcp_rtt_s,
    rtcp_write_rr,
    rtcp_write_sdes_cname,
    rtcp_write_sr,
    rtp_parse,
    rtp_write_header,
    stats_init,
    stats_peek,
    stats_report_block,
    stats_sr_received,
    stats_update,
    store_be16,
    store_be32,
)
from switch.media.tones cimport ToneGen, dbm0_peak, tone_add_segment, tone_init
from switch.media.g711 cimport (
    ALAW_DECODE,
    ALAW_ENCODE,
    ALAW_SHIFT,
    ULAW_DECODE,
    ULAW_ENCODE,
    ULAW_SHIFT,
)

from switch.media.events import (
    DtmfReceived,
    LegStatistics,
    MediaError,
    PlaybackFinished,
    RtpTimedOut,
)
from switch.media.player import PromptPlayer as _PromptPlayer
from switch.media.recorder import RecorderWriter as _RecorderWriter
from switch.media.tones import CALL_PROGRESS_TONES
from switch.media.wav import read_prompt

cdef enum:
    TICK_NS = 20000000  # 20 ms
    MAX_CATCHUP_TICKS = 5
    EVENT_RING = 65536
    PT_PCMU = 0  # RFC 3551 table 4
    PT_PCMA = 8
    SAMPLES_PER_MS = 8  # G.711 and RFC 4733 events: 8 kHz RTP clock
    NS_PER_SAMPLE = 125000
    GEN_SOURCE = -1  # out_src_leg while the engine itself is the leg's RTP source
    NTP_UNIX_OFFSET_S = 2208988800  # RFC 5905: 1900 -> 1970

cdef uint8_t ULAW_TO_ALAW[256]
cdef uint8_t ALAW_TO_ULAW[256]


cdef void _build_transcode_tables() noexcept nogil:
    # Exactly alaw_encode(ulaw_decode(code)) and back: one lookup per payload byte.
    cdef int code
    for code in range(256):
        ULAW_TO_ALAW[code] = ALAW_ENCODE[(<uint16_t>ULAW_DECODE[code]) >> ALAW_SHIFT]
        ALAW_TO_ULAW[code] = ULAW_ENCODE[(<uint16_t>ALAW_DECODE[code]) >> ULAW_SHIFT]


_build_transcode_tables()


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline bint same_address(const sockaddr_in *a, const sockaddr_in *b) noexcept nogil:
    return a.sin_port == b.sin_port and a.sin_addr.s_addr == b.sin_addr.s_addr


# ---- events: worker -> Python ------------------------------------------------------

cdef void post_event(Shared *shared, const EventRec *rec) noexcept nogil:
    cdef uint64_t one = 1
    cdef bint was_empty
    pthread_mutex_lock(&shared.mutex)
    if shared.count == shared.cap:
        shared.dropped += 1
        pthread_mutex_unlock(&shared.mutex)
        return
    shared.ring[(shared.head + shared.count) % shared.cap] = rec[0]
    was_empty = shared.count == 0
    shared.count += 1
    pthread_mutex_unlock(&shared.mutex)
    if was_empty:  # one wake-up per batch: the reader drains everything at once
        write(shared.eventfd, &one, 8)


cdef void post_stats(Shared *shared, Leg *leg) noexcept nogil:
    cdef EventRec rec
    rec.kind = EV_STATS
    rec.leg = leg.id
    rec.value = 0
    memcpy(rec.counters, &leg.counters, sizeof(Counters))
    quality(leg, &rec)
    post_event(shared, &rec)


cdef void quality(const Leg *leg, EventRec *rec) noexcept nogil:
    """RFC 3550 loss and jitter of the current source, and the E-model MOS from them."""
    cdef RecvReport report
    stats_peek(&leg.rx_stats, &report)
    rec.lost = report.lost
    rec.jitter_ms = report.jitter / SAMPLES_PER_MS
    rec.rtt_ms = leg.rtt_ms
    rec.mos = mos_estimate(
        report.lost / <double>report.expected if report.expected > 0 and report.lost > 0
        else 0.0,
        rec.jitter_ms,
        leg.rtt_ms,  # 0 until an RTCP report block about our stream came back
    )


# ---- commands: Python -> worker ----------------------------------------------------

cdef void unlink_peer(Leg *leg) noexcept nogil:
    if leg.peer != NULL:
        leg.peer.peer = NULL
        leg.peer = NULL


cdef void apply_command(Worker *w, Cmd *cmd) noexcept nogil:
    cdef Leg *leg = cmd.leg
    cdef epoll_event ev
    if cmd.kind == CMD_ATTACH:
        leg.worker = w
        leg.prev = NULL
        leg.next = w.legs
        if w.legs != NULL:
            w.legs.prev = leg
        w.legs = leg
        w.n_legs += 1
        ev.events = EPOLLIN  # level-triggered: one recvmmsg per readiness, no EAGAIN call
        ev.data.ptr = &leg.rtp
        epoll_ctl(w.epfd, EPOLL_CTL_ADD, leg.rtp.fd, &ev)
        if leg.rtcp.fd >= 0:
            ev.data.ptr = &leg.rtcp
            epoll_ctl(w.epfd, EPOLL_CTL_ADD, leg.rtcp.fd, &ev)
    elif cmd.kind == CMD_DETACH:
        epoll_ctl(w.epfd, EPOLL_CTL_DEL, leg.rtp.fd, NULL)
        if leg.rtcp.fd >= 0:
            epoll_ctl(w.epfd, EPOLL_CTL_DEL, leg.rtcp.fd, NULL)
        unlink_peer(leg)
        if leg.prev != NULL:
            leg.prev.next = leg.next
        else:
            w.legs = leg.next
        if leg.next != NULL:
            leg.next.prev = leg.prev
        leg.prev = leg.next = NULL
        leg.worker = NULL
        w.n_legs -= 1
    elif cmd.kind == CMD_SET_REMOTE:
        leg.remote = cmd.addr
        leg.remote_known = True
        leg.remote_set = True
        leg.latched = False  # a new offer: learn the source again from its first packet
        leg.payload_type = cmd.payload_type
        leg.dtmf_payload_type = cmd.dtmf_payload_type
        leg.last_rx_ns = now_ns()
        leg.timeout_posted = False
    elif cmd.kind == CMD_BRIDGE:
        unlink_peer(leg)
        unlink_peer(cmd.other)
        leg.peer = cmd.other
        cmd.other.peer = leg
    elif cmd.kind == CMD_UNBRIDGE:
        unlink_peer(leg)
    elif cmd.kind == CMD_CALL:
        cmd.fn(w, cmd)


cdef bint run_commands(Worker *w) noexcept nogil:
    """Apply queued commands; True when the worker is asked to stop."""
    cdef uint64_t counter
    cdef Cmd *cmd
    cdef Cmd *next_cmd
    cdef bint stopping
    read(w.wakefd, &counter, 8)
    pthread_mutex_lock(&w.mutex)
    cmd = w.cmd_head
    w.cmd_head = w.cmd_tail = NULL
    stopping = w.stopping
    pthread_mutex_unlock(&w.mutex)
    while cmd != NULL:
        next_cmd = cmd.next  # read before done: the submitter's frame goes away after
        apply_command(w, cmd)
        pthread_mutex_lock(&w.mutex)
        cmd.done = True
        pthread_cond_broadcast(&w.cond)
        pthread_mutex_unlock(&w.mutex)
        cmd = next_cmd
    return stopping


# ---- the packet path ---------------------------------------------------------------

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
        # A new source for this stream: continue seq at +1 and ts by the time elapsed.
        elapsed_samples = (now - dst.last_out_ns) // 1000000 * SAMPLES_PER_MS
        if elapsed_samples < 1:
            elapsed_samples = 1
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


cdef inline void ntp_now(uint32_t *sec, uint32_t *frac) noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    sec[0] = <uint32_t>(ts.tv_sec + NTP_UNIX_OFFSET_S)
    frac[0] = <uint32_t>((<uint64_t>ts.tv_nsec << 32) // 1000000000)


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


# ---- media commands (CMD_CALL): run on the worker that owns the leg ----------------

cdef void decode_use(LegMedia *m, int delta) noexcept nogil:
    if m.decode_users == 0 and delta > 0:
        jb_init(&m.jb)  # a fresh start: no stale frames from an earlier use
    m.decode_users += delta


cdef void cmd_set_media(Worker *w, Cmd *cmd) noexcept nogil:
    cmd.leg.media = <LegMedia *>cmd.ptr


cdef void restart_source(Leg *leg) noexcept nogil:
    # The next generated frame starts a new source: marker, ts by the time elapsed.
    if leg.out_src_leg == GEN_SOURCE:
        leg.out_src_leg = 0


cdef void cmd_play(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    if cmd.arg:  # a tone
        m.tone = (<ToneGen *>cmd.ptr)[0]
        m.tone_on = True
        m.player = NULL
    else:
        m.tone_on = False
        m.player = <Player *>cmd.ptr
    m.playing = True
    m.play_posts_finished = True
    restart_source(cmd.leg)


cdef void cmd_stop_playing(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    m.playing = False
    m.tone_on = False
    m.player = NULL


cdef void cmd_send_dtmf(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    memcpy(m.digits, cmd.ptr, <size_t>cmd.payload_type)
    m.n_digits = cmd.payload_type
    m.digit_index = 0
    m.dtmf_duration_samples = <uint32_t>cmd.arg
    m.n_packets = 0
    m.event_elapsed = 0
    m.dtmf_active = True
    restart_source(cmd.leg)


cdef void cmd_inband(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    if cmd.arg and not m.inband:
        goertzel_init(&m.goertzel)
        m.inband = True
        decode_use(m, 1)
    elif not cmd.arg and m.inband:
        m.inband = False
        decode_use(m, -1)


cdef void cmd_tap_add(Worker *w, Cmd *cmd) noexcept nogil:
    cdef RecTap *tap = <RecTap *>cmd.ptr
    decode_use(tap.a.media, 1)
    if tap.b != NULL:
        decode_use(tap.b.media, 1)
    tap.prev = NULL
    tap.next = w.taps
    if w.taps != NULL:
        w.taps.prev = tap
    w.taps = tap


cdef void cmd_tap_remove(Worker *w, Cmd *cmd) noexcept nogil:
    cdef RecTap *tap = <RecTap *>cmd.ptr
    decode_use(tap.a.media, -1)
    if tap.b != NULL:
        decode_use(tap.b.media, -1)
    if tap.prev != NULL:
        tap.prev.next = tap.next
    else:
        w.taps = tap.next
    if tap.next != NULL:
        tap.next.prev = tap.prev
    tap.prev = tap.next = NULL


cdef void cmd_mix_join(Worker *w, Cmd *cmd) noexcept nogil:
    cdef MixNode *node = <MixNode *>cmd.ptr
    cdef int slot = <int>cmd.arg
    cdef int other
    if node.worker == NULL:
        node.worker = w
        node.prev = NULL
        node.next = w.mixes
        if w.mixes != NULL:
            w.mixes.prev = node
        w.mixes = node
    node.slots[slot] = cmd.leg
    cmd.leg.media.mix = node
    cmd.leg.media.mix_slot = slot
    memset(cmd.leg.media.mix_out, 0, sizeof(cmd.leg.media.mix_out))
    decode_use(cmd.leg.media, 1)
    node.mix.hears[slot] = 0
    for other in range(MIX_MAX_PARTIES):  # a newcomer hears everyone and is heard
        if node.mix.active & (1u << other):
            node.mix.hears[slot] |= 1u << other
            node.mix.hears[other] |= 1u << slot
    node.mix.active |= 1u << slot
    restart_source(cmd.leg)


cdef void cmd_mix_leave(Worker *w, Cmd *cmd) noexcept nogil:
    cdef MixNode *node = <MixNode *>cmd.ptr
    cdef int slot = <int>cmd.arg
    cdef int other
    node.mix.active &= ~(1u << slot)
    node.mix.hears[slot] = 0
    for other in range(MIX_MAX_PARTIES):
        node.mix.hears[other] &= ~(1u << slot)
    node.slots[slot] = NULL
    cmd.leg.media.mix = NULL
    decode_use(cmd.leg.media, -1)
    if node.mix.active == 0:
        if node.prev != NULL:
            node.prev.next = node.next
        else:
            w.mixes = node.next
        if node.next != NULL:
            node.next.prev = node.prev
        node.prev = node.next = NULL
        node.worker = NULL


cdef void cmd_mix_hearing(Worker *w, Cmd *cmd) noexcept nogil:
    cdef MixNode *node = <MixNode *>cmd.ptr
    cdef int listener = <int>(cmd.arg >> 8)
    cdef int talker = <int>(cmd.arg & 0xFF)
    if cmd.payload_type:
        node.mix.hears[listener] |= 1u << talker
    else:
        node.mix.hears[listener] &= ~(1u << talker)



# ---- the 20 ms clock ---------------------------------------------------------------

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


cdef void record_pass(Worker *w) noexcept nogil:
    cdef RecTap *tap = w.taps
    cdef int16_t mono[LM_FRAME_SAMPLES]
    cdef int i, total
    while tap != NULL:
        if tap.stereo:
            recorder_write_frame(tap.state, tap.a.media.pcm,
                                 tap.b.media.pcm if tap.b != NULL else NULL)
        elif tap.b == NULL:
            recorder_write_frame(tap.state, tap.a.media.pcm, NULL)
        else:
            for i in range(LM_FRAME_SAMPLES):
                total = <int>tap.a.media.pcm[i] + tap.b.media.pcm[i]
                mono[i] = <int16_t>(32767 if total > 32767 else
                                    (-32768 if total < -32768 else total))
            recorder_write_frame(tap.state, mono, NULL)
        tap = tap.next


cdef void nap_until(int64_t deadline_ns) noexcept nogil:
    cdef timespec ts
    ts.tv_sec = deadline_ns // 1000000000
    ts.tv_nsec = deadline_ns % 1000000000
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)


cdef void worker_loop(Worker *w) noexcept nogil:
    cdef IoBufs *io = w.io
    cdef int64_t now = now_ns()
    cdef int64_t next_tick = now + TICK_NS
    cdef int n, i, ticks, timeout_ms
    cdef bint woken
    cdef Sock *sock
    w.next_stats_ns = now + w.shared.stats_interval_ns
    while True:
        now = now_ns()
        timeout_ms = <int>((next_tick - now + 999999) // 1000000) if next_tick > now else 0
        n = epoll_wait(w.epfd, io.events, MAX_EVENTS, timeout_ms)
        woken = False
        for i in range(n):
            sock = <Sock *>io.events[i].data.ptr
            if sock == NULL:
                woken = True  # commands run after the sockets: a detached leg's Sock
                # may still be in this batch, and its memory is freed once detached
            elif sock.is_rtcp:
                receive_rtcp(w, sock.leg)
            else:
                receive_rtp(w, sock.leg)
        if woken and run_commands(w):
            return
        now = now_ns()
        ticks = 0
        while now >= next_tick and ticks < MAX_CATCHUP_TICKS:
            if now - next_tick > TICK_NS:
                w.tick_overruns += 1  # started more than one period after its deadline
            run_tick(w, next_tick)
            next_tick += TICK_NS
            ticks += 1
        if now >= next_tick:  # stalled longer than the catch-up: re-anchor the clock
            next_tick = now + TICK_NS
        if n > 0 and w.shared.wakeup_window_ns > 0:
            # Coalesce readiness: at real pacing each socket holds one packet per 20 ms,
            # so waiting a little lets one epoll_wait report many sockets (bench shows
            # whether that beats a wake-up per packet; it adds up to the window of delay).
            nap_until(min(now + w.shared.wakeup_window_ns, next_tick))


cdef void *worker_main(void *arg) noexcept nogil:
    worker_loop(<Worker *>arg)
    return NULL


# ---- Python side -------------------------------------------------------------------

cdef int parse_ipv4(str host, in_addr *out) except -1:
    if not isinstance(host, str) or inet_pton(AF_INET, host.encode("ascii", "replace"),
                                              out) != 1:
        raise ValueError(f"host must be an IPv4 address, got {host!r}")
    return 0


cdef int check_int(str name, object value, int low, int high) except -1:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer {low}-{high}, got {value!r}")
    return 0


cdef int check_positive(str name, object value) except -1:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not 0 < value < 1e9):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return 0


cdef class MediaEngine:
    """The media plane. See the module docstring for the threading model."""

    def __cinit__(self, workers=None, port_range=(20000, 29999), bind_host="127.0.0.1",
                  rtp_timeout_s=30.0, stats_interval_s=5.0, rtcp_interval_s=5.0,
                  ssrc_seed=None, wakeup_window_us=0, relatch_silence_s=2.0):
        cdef in_addr addr
        cdef int i, low, high
        cdef Worker *w
        cdef epoll_event ev
        if workers is None:
            workers = os.cpu_count() or 1
        check_int("workers", workers, 1, 1024)
        if (not isinstance(port_range, tuple) or len(port_range) != 2
                or not all(isinstance(p, int) and not isinstance(p, bool) for p in port_range)
                or not 1 <= port_range[0] <= port_range[1] <= 65535):
            raise ValueError(
                f"port_range must be (low, high) with 1 <= low <= high <= 65535, "
                f"got {port_range!r}"
            )
        low, high = port_range
        first_even = low + (low & 1)
        if first_even + 1 > high:
            raise ValueError(f"port_range {low}-{high} holds no even port with port+1 in range")
        if not isinstance(bind_host, str) or inet_pton(
            AF_INET, bind_host.encode("ascii", "replace"), &addr
        ) != 1:
            raise ValueError(f"bind_host must be an IPv4 address, got {bind_host!r}")
        check_positive("rtp_timeout_s", rtp_timeout_s)
        check_positive("stats_interval_s", stats_interval_s)
        check_positive("rtcp_interval_s", rtcp_interval_s)
        check_int("wakeup_window_us", wakeup_window_us, 0, 10000)
        if relatch_silence_s is not None and (
            not isinstance(relatch_silence_s, (int, float)) or isinstance(relatch_silence_s, bool)
            or not 0 <= relatch_silence_s < 1e9
        ):
            raise ValueError(
                "relatch_silence_s must be a non-negative number of seconds or None, "
                f"got {relatch_silence_s!r}"
            )
        if ssrc_seed is not None and (not isinstance(ssrc_seed, int)
                                      or isinstance(ssrc_seed, bool)):
            raise ValueError(f"ssrc_seed must be an integer or None, got {ssrc_seed!r}")
        # STYLE rule 16: randomness is injectable; a seed makes SSRCs and the initial
        # sequence numbers and timestamps reproducible for tests.
        self._ssrc_rng = None if ssrc_seed is None else random.Random(ssrc_seed)
        self._recordings = {}
        self._players = {}
        self._mixes = {}
        self._next_media_id = 1

        self._port_low = low
        self._port_high = high
        self._bind_host = bind_host.encode("ascii")
        self._free_ports = deque(range(first_even, high, 2))
        self._legs = {}
        self._leg_group = {}
        self._groups = {}
        self._next_leg_id = 1

        self.shared = <Shared *>calloc(1, sizeof(Shared))
        if self.shared == NULL:
            raise MemoryError()
        self.shared.eventfd = -1
        pthread_mutex_init(&self.shared.mutex, NULL)
        self.shared.rtp_timeout_ns = <int64_t>(rtp_timeout_s * 1e9)
        self.shared.stats_interval_ns = <int64_t>(stats_interval_s * 1e9)
        self.shared.rtcp_interval_ns = <int64_t>(rtcp_interval_s * 1e9)
        self.shared.wakeup_window_ns = <int64_t>wakeup_window_us * 1000
        self.shared.relatch_silence_ns = (
            -1 if relatch_silence_s is None else <int64_t>(relatch_silence_s * 1e9)
        )
        self.shared.cap = EVENT_RING
        self.shared.ring = <EventRec *>calloc(EVENT_RING, sizeof(EventRec))
        if self.shared.ring == NULL:
            raise MemoryError()
        self.shared.eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.shared.eventfd < 0:
            raise OSError(errno, strerror(errno).decode())

        self.workers = <Worker *>calloc(workers, sizeof(Worker))
        if self.workers == NULL:
            raise MemoryError()
        for i in range(workers):
            w = &self.workers[i]
            w.index = i
            w.shared = self.shared
            w.epfd = -1
            w.wakefd = -1
            pthread_mutex_init(&w.mutex, NULL)
            pthread_cond_init(&w.cond, NULL)
            self.n_workers += 1
            w.io = <IoBufs *>calloc(1, sizeof(IoBufs))
            if w.io == NULL:
                raise MemoryError()
            for j in range(BATCH):
                w.io.rxiov[j].iov_base = w.io.rxbuf[j]
                w.io.rxiov[j].iov_len = PKT_CAP
                w.io.rx[j].msg_hdr.msg_name = &w.io.rxaddr[j]
                w.io.rx[j].msg_hdr.msg_iov = &w.io.rxiov[j]
                w.io.rx[j].msg_hdr.msg_iovlen = 1
            w.epfd = epoll_create1(EPOLL_CLOEXEC)
            w.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
            if w.epfd < 0 or w.wakefd < 0:
                raise OSError(errno, strerror(errno).decode())
            ev.events = EPOLLIN
            ev.data.ptr = NULL
            epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.wakefd, &ev)

    def __dealloc__(self):
        cdef int i
        cdef Worker *w
        cdef Leg *leg
        cdef Leg *next_leg
        if self.workers != NULL:
            if self._running:
                self._stop_threads(self.n_workers)
            for i in range(self.n_workers):
                w = &self.workers[i]
                leg = w.legs
                while leg != NULL:
                    next_leg = leg.next
                    self._free_leg(leg)
                    leg = next_leg
                if w.epfd >= 0:
                    close(w.epfd)
                if w.wakefd >= 0:
                    close(w.wakefd)
                free(w.io)
                pthread_mutex_destroy(&w.mutex)
                pthread_cond_destroy(&w.cond)
            free(self.workers)
            self.workers = NULL
        if self.shared != NULL:
            if self.shared.eventfd >= 0:
                close(self.shared.eventfd)
            free(self.shared.ring)
            pthread_mutex_destroy(&self.shared.mutex)
            free(self.shared)
            self.shared = NULL

    # -- lifecycle

    def start(self):
        """Start one worker thread per configured worker."""
        cdef int i, rc
        if self._running:
            raise MediaError("media engine already started")
        for i in range(self.n_workers):
            self.workers[i].stopping = False
            rc = pthread_create(&self.workers[i].thread, NULL, worker_main, &self.workers[i])
            if rc != 0:
                self._running = i > 0
                self._stop_threads(i)
                raise MediaError(f"cannot start media worker: {strerror(rc).decode()}")
        self._running = True
        if self._writer is None:
            self._writer = _RecorderWriter()

    def stop(self):
        """Join the worker threads and close every leg (its ports become free)."""
        cdef int i
        cdef Leg *leg
        if self._running:
            self._stop_threads(self.n_workers)
        for i in range(self.n_workers):
            leg = self.workers[i].legs
            while leg != NULL:
                self._close_leg(leg.id)
                leg = self.workers[i].legs
        for mix_id in list(self._mixes):
            free(<MixNode *><size_t>self._mixes.pop(mix_id)[0])
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    cdef void _stop_threads(self, int count) noexcept:
        cdef int i
        cdef uint64_t one = 1
        cdef Worker *w
        for i in range(count):
            w = &self.workers[i]
            pthread_mutex_lock(&w.mutex)
            w.stopping = True
            pthread_mutex_unlock(&w.mutex)
            write(w.wakefd, &one, 8)
        with nogil:
            for i in range(count):
                pthread_join(self.workers[i].thread, NULL)
        self._running = False

    # -- commands

    cdef int _submit(self, Worker *w, Cmd *cmd) except -1:
        cdef uint64_t one = 1
        cmd.next = NULL
        cmd.done = False
        if not self._running:
            apply_command(w, cmd)
            return 0
        with nogil:
            pthread_mutex_lock(&w.mutex)
            if w.cmd_tail != NULL:
                w.cmd_tail.next = cmd
            else:
                w.cmd_head = cmd
            w.cmd_tail = cmd
            pthread_mutex_unlock(&w.mutex)
            write(w.wakefd, &one, 8)
            pthread_mutex_lock(&w.mutex)
            while not cmd.done:
                pthread_cond_wait(&w.cond, &w.mutex)
            pthread_mutex_unlock(&w.mutex)
        return 0

    cdef Leg *_leg(self, object leg) except NULL:
        address = self._legs.get(leg) if isinstance(leg, int) else None
        if address is None:
            raise MediaError(f"no such leg: {leg!r}")
        return <Leg *><size_t>address

    cdef int _bind_pair(self, Leg *leg) except -1:
        cdef sockaddr_in addr
        cdef int fd_rtp, fd_rtcp, port, err
        memset(&addr, 0, sizeof(addr))
        addr.sin_family = AF_INET
        inet_pton(AF_INET, self._bind_host, &addr.sin_addr)
        for _ in range(len(self._free_ports)):
            port = self._free_ports.popleft()
            fd_rtp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
            fd_rtcp = -1
            if fd_rtp < 0:
                self._free_ports.appendleft(port)
                raise OSError(errno, strerror(errno).decode())
            addr.sin_port = htons(port)
            err = 0
            if bind(fd_rtp, <sockaddr *>&addr, sizeof(addr)) != 0:
                err = errno
            elif not leg.rtcp_mux:
                fd_rtcp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                addr.sin_port = htons(port + 1)
                if fd_rtcp < 0 or bind(fd_rtcp, <sockaddr *>&addr, sizeof(addr)) != 0:
                    err = errno
            if err == 0:
                leg.port = port
                leg.rtp.fd = fd_rtp
                leg.rtcp.fd = fd_rtcp
                return 0
            close(fd_rtp)
            if fd_rtcp >= 0:
                close(fd_rtcp)
            self._free_ports.append(port)  # taken by someone else: try it again last
            if err != EADDRINUSE:
                raise MediaError(
                    f"cannot bind {self._bind_host.decode()}:{port}: {strerror(err).decode()}"
                )
        raise MediaError(f"no free RTP port in {self._port_low}-{self._port_high}")

    cdef void _free_leg(self, Leg *leg) noexcept:
        close(leg.rtp.fd)
        if leg.rtcp.fd >= 0:
            close(leg.rtcp.fd)
        free(leg.media)
        free(leg)

    def open_leg(self, group=None, rtcp_mux=False):
        """Bind an even RTP port (RTCP on port+1 unless rtcp_mux); return the leg id."""
        cdef Leg *leg
        cdef Cmd cmd
        cdef int index
        if group is not None and not isinstance(group, str):
            raise ValueError(f"group must be a str or None, got {group!r}")
        if group is not None and group in self._groups:
            index = self._groups[group][0]
        else:
            index = min(range(self.n_workers), key=lambda i: self.workers[i].n_legs)
        leg = <Leg *>calloc(1, sizeof(Leg))
        if leg == NULL:
            raise MemoryError()
        leg.rtcp_mux = bool(rtcp_mux)
        leg.rtp.fd = leg.rtcp.fd = -1
        try:
            self._bind_pair(leg)
        except BaseException:
            free(leg)
            raise
        leg.id = self._next_leg_id
        self._next_leg_id += 1
        leg.rtp.leg = leg
        leg.rtcp.leg = leg
        leg.rtcp.is_rtcp = True
        leg.payload_type = PT_PCMU
        leg.dtmf_payload_type = 101
        start = (self._ssrc_rng.getrandbits(80) if self._ssrc_rng is not None
                 else int.from_bytes(os.urandom(10), "big"))
        leg.out_ssrc = start & 0xFFFFFFFF
        leg.last_out_seq = (start >> 32) & 0xFFFF  # where a generated stream starts
        leg.last_out_ts = (start >> 48) & 0xFFFFFFFF
        dtmf_rx_init(&leg.dtmf_rx)
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_ATTACH
        cmd.leg = leg
        self._submit(&self.workers[index], &cmd)
        self._legs[leg.id] = <size_t>leg
        if group is not None:
            self._leg_group[leg.id] = group
            self._groups.setdefault(group, [index, 0])[1] += 1
        return leg.id

    def leg_port(self, leg):
        """The leg's local RTP port."""
        return self._leg(leg).port

    def set_remote(self, leg, host, port, payload_type=0, dtmf_payload_type=101):
        """Where the leg sends (until its first valid packet says otherwise) and its codecs."""
        cdef Leg *target = self._leg(leg)
        cdef Cmd cmd
        memset(&cmd, 0, sizeof(cmd))
        parse_ipv4(host, &cmd.addr.sin_addr)
        check_int("port", port, 1, 65535)
        check_int("payload_type", payload_type, 0, 127)
        if dtmf_payload_type is not None:
            check_int("dtmf_payload_type", dtmf_payload_type, 0, 127)
        cmd.kind = CMD_SET_REMOTE
        cmd.leg = target
        cmd.addr.sin_family = AF_INET
        cmd.addr.sin_port = htons(port)
        cmd.payload_type = payload_type
        cmd.dtmf_payload_type = -1 if dtmf_payload_type is None else dtmf_payload_type
        self._submit(target.worker, &cmd)

    def bridge(self, a, b):
        """Relay a <-> b (each unbridged from any previous peer first)."""
        cdef Leg *leg_a = self._leg(a)
        cdef Leg *leg_b = self._leg(b)
        cdef Worker *home = leg_a.worker
        cdef Cmd cmd
        if leg_a == leg_b:
            raise ValueError(f"cannot bridge leg {a} to itself")
        self._move(leg_b, home)
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_BRIDGE
        cmd.leg = leg_a
        cmd.other = leg_b
        self._submit(home, &cmd)

    def unbridge(self, leg):
        """Stop relaying between leg and its peer (both directions)."""
        cdef Leg *target = self._leg(leg)
        cdef Cmd cmd
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_UNBRIDGE
        cmd.leg = target
        self._submit(target.worker, &cmd)

    def close_leg(self, leg):
        """Close the leg's sockets; its ports go back to the pool."""
        self._close_leg(leg)

    cdef int _close_leg(self, object leg_id) except -1:
        cdef Leg *leg = self._leg(leg_id)
        cdef Cmd cmd
        for rec_id, entry in list(self._recordings.items()):
            if leg_id in entry[2]:
                self.stop_recording(rec_id)
        for mix_id, entry in list(self._mixes.items()):
            if leg_id in entry[1]:
                self.leave_mix(mix_id, leg_id)
        if leg.media != NULL:
            self._call(leg, cmd_stop_playing, NULL, 0)
        self._players.pop(leg_id, None)
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_DETACH
        cmd.leg = leg
        self._submit(leg.worker, &cmd)
        port = leg.port
        self._free_leg(leg)
        del self._legs[leg_id]
        self._free_ports.append(port)
        group = self._leg_group.pop(leg_id, None)
        if group is not None:
            self._groups[group][1] -= 1
            if self._groups[group][1] == 0:
                del self._groups[group]

    # -- what comes back

    @property
    def events_fd(self):
        """An eventfd that is readable while events are queued (for loop.add_reader)."""
        return self.shared.eventfd

    @property
    def events_dropped(self):
        """Events lost because nobody drained the ring in time."""
        return self.shared.dropped

    def drain_events(self):
        """Take every queued event, oldest first, as switch.media.events objects."""
        cdef uint64_t counter
        cdef EventRec *batch
        cdef size_t n, i
        cdef Shared *shared = self.shared
        read(shared.eventfd, &counter, 8)
        with nogil:
            pthread_mutex_lock(&shared.mutex)
            n = shared.count
            batch = <EventRec *>malloc_or_null(n)
            if batch != NULL:
                for i in range(n):
                    batch[i] = shared.ring[(shared.head + i) % shared.cap]
                shared.head = (shared.head + n) % shared.cap
                shared.count = 0
            pthread_mutex_unlock(&shared.mutex)
        if n and batch == NULL:
            raise MemoryError()
        try:
            return [event_object(&batch[i]) for i in range(n)]
        finally:
            free(batch)

    def leg_stats(self, leg):
        """The leg's counters (see switch.media.events.LegStatistics for their meaning)."""
        cdef Leg *target = self._leg(leg)
        cdef EventRec rec
        # Plain reads of what the worker writes: aligned 64-bit loads are atomic here,
        # and a jitter figure one packet old is as good as the current one.
        quality(target, &rec)
        stats = counters_dict(&target.counters)
        stats.update(lost=rec.lost, jitter_ms=rec.jitter_ms, mos=rec.mos,
                     rtt_ms=target.rtt_ms)
        return stats

    @property
    def workers_count(self):
        return self.n_workers

    def leg_worker(self, leg):
        """Index of the worker that owns the leg (legs that talk share one)."""
        return self._leg(leg).worker.index

    def stats(self):
        """Engine-wide clock figures: ticks, tick_overruns (ticks that started more than
        one 20 ms period late), events_dropped, recording_frames_dropped (frames the
        recorder's writer could not take in time), and the same per worker."""
        cdef int i
        cdef Worker *w
        per_worker = []
        for i in range(self.n_workers):
            w = &self.workers[i]
            per_worker.append({"index": i, "legs": w.n_legs, "ticks": w.ticks,
                               "tick_overruns": w.tick_overruns})
        return {
            "ticks": sum(entry["ticks"] for entry in per_worker),
            "tick_overruns": sum(entry["tick_overruns"] for entry in per_worker),
            "events_dropped": self.shared.dropped,
            "recordings": len(self._recordings),
            "recording_frames_dropped": sum(entry[0].dropped_frames
                                            for entry in self._recordings.values()),
            "mixes": len(self._mixes),
            "workers": per_worker,
        }

    # -- media commands: each is applied by the leg's worker (see _call)

    cdef int _call(self, Leg *leg, cmd_fn fn, void *ptr, int64_t arg) except -1:
        cdef Cmd cmd
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_CALL
        cmd.fn = fn
        cmd.leg = leg
        cmd.ptr = ptr
        cmd.arg = arg
        return self._submit(leg.worker, &cmd)

    cdef LegMedia *_media(self, Leg *leg) except NULL:
        cdef LegMedia *m
        if leg.media != NULL:
            return leg.media
        m = <LegMedia *>malloc(sizeof(LegMedia))
        if m == NULL:
            raise MemoryError()
        lm_init(m)
        self._call(leg, cmd_set_media, m, 0)
        return m

    def _attached(self, leg_id):
        return any(leg_id in entry[2] for entry in self._recordings.values()) or any(
            leg_id in entry[1] for entry in self._mixes.values())

    cdef int _move(self, Leg *leg, Worker *home) except -1:
        """Put a leg on ``home`` (legs that share audio share a worker)."""
        cdef Cmd cmd
        if leg.worker == home:
            return 0
        if self._attached(leg.id):
            raise MediaError(
                f"leg {leg.id} is recorded or mixed on another worker; stop that first"
            )
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_DETACH
        cmd.leg = leg
        self._submit(leg.worker, &cmd)
        cmd.kind = CMD_ATTACH
        self._submit(home, &cmd)
        return 0

    def record(self, leg_a, leg_b=None, path=None, *, stereo=True):
        """Record leg_a's received audio (customer, left) and leg_b's (agent, right), or
        with stereo=False their mono mix, to the WAV file ``path``; return its id."""
        cdef Leg *a = self._leg(leg_a)
        cdef Leg *b = NULL if leg_b is None else self._leg(leg_b)
        cdef RecTap *tap
        cdef Recording recording
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path must be a str or os.PathLike, got {path!r}")
        if not isinstance(stereo, bool):
            raise ValueError(f"stereo must be a bool, got {stereo!r}")
        if b == a:
            raise ValueError(f"cannot record leg {leg_a} against itself")
        if b != NULL:
            self._move(b, a.worker)
        if self._writer is None:
            self._writer = _RecorderWriter()
        self._media(a)
        if b != NULL:
            self._media(b)
        recording = self._writer.open(path, 2 if stereo else 1)
        tap = <RecTap *>calloc(1, sizeof(RecTap))
        if tap == NULL:
            recording.close()
            raise MemoryError()
        tap.id = self._next_media_id
        self._next_media_id += 1
        tap.state = recording.state
        tap.a = a
        tap.b = b
        tap.stereo = stereo
        self._call(a, cmd_tap_add, tap, 0)
        legs = (leg_a,) if leg_b is None else (leg_a, leg_b)
        self._recordings[tap.id] = (recording, <size_t>tap, legs)
        return tap.id

    def stop_recording(self, recording_id):
        """Stop feeding the recording, flush it and finalise its WAV header."""
        cdef RecTap *tap
        entry = self._recordings.pop(recording_id, None)
        if entry is None:
            raise MediaError(f"no such recording: {recording_id!r}")
        recording, address, _ = entry
        tap = <RecTap *><size_t>address
        self._call(tap.a, cmd_tap_remove, tap, 0)
        free(tap)
        recording.close()

    def play(self, leg, prompts, *, loop=False):
        """Play prompts (WAV paths, or raw 16-bit 8 kHz PCM bytes) toward the leg."""
        cdef Leg *target = self._leg(leg)
        cdef PromptPlayer player
        if (not isinstance(prompts, list) or not prompts
                or not all(isinstance(p, (str, bytes, os.PathLike)) for p in prompts)):
            raise ValueError(
                f"prompts must be a non-empty list of WAV paths or PCM bytes, got {prompts!r}"
            )
        pcm = [p if isinstance(p, bytes) else read_prompt(p) for p in prompts]
        player = _PromptPlayer(pcm, loop=bool(loop))
        self._media(target)
        self._call(target, cmd_play, &player.player, 0)
        self._players[leg] = player  # after the swap: the old one is no longer read

    def play_tone(self, leg, name):
        """Play a call-progress tone (dial, ringback, busy, congestion) until stopped."""
        cdef Leg *target = self._leg(leg)
        cdef ToneGen gen
        cdef double amplitude
        if name not in CALL_PROGRESS_TONES:
            raise ValueError(
                f"unknown tone {name!r}, expected one of {', '.join(CALL_PROGRESS_TONES)}"
            )
        freqs, level_dbm0, cadence_ms = CALL_PROGRESS_TONES[name]
        amplitude = dbm0_peak(level_dbm0)
        f1 = freqs[0]
        f2 = freqs[1] if len(freqs) > 1 else 0.0
        amp2 = amplitude if len(freqs) > 1 else 0.0
        tone_init(&gen, len(cadence_ms) > 0)
        if not cadence_ms:
            tone_add_segment(&gen, 0, f1, amplitude, f2, amp2)
        for k in range(0, len(cadence_ms), 2):
            tone_add_segment(&gen, cadence_ms[k] * SAMPLES_PER_MS, f1, amplitude, f2, amp2)
            if k + 1 < len(cadence_ms):
                tone_add_segment(&gen, cadence_ms[k + 1] * SAMPLES_PER_MS, 0.0, 0.0, 0.0, 0.0)
        self._media(target)
        self._call(target, cmd_play, &gen, 1)
        self._players.pop(leg, None)

    def stop_playing(self, leg):
        """Stop prompts or tone on the leg (no PlaybackFinished); relay or mix resume."""
        cdef Leg *target = self._leg(leg)
        if target.media != NULL:
            self._call(target, cmd_stop_playing, NULL, 0)
        self._players.pop(leg, None)

    def send_dtmf(self, leg, digits, *, duration_ms=100):
        """Send digits as RFC 4733 telephone-events, 100 ms apart, on the leg's stream."""
        cdef Leg *target = self._leg(leg)
        cdef Cmd cmd
        if (not isinstance(digits, str) or not 1 <= len(digits) <= LM_MAX_DIGITS
                or any(d not in "0123456789*#ABCD" for d in digits)):
            raise ValueError(f"digits must be 1-{LM_MAX_DIGITS} of 0-9 * # A-D, got {digits!r}")
        check_int("duration_ms", duration_ms, 40, 2000)
        if target.dtmf_payload_type < 0:
            raise MediaError(f"leg {leg} has no telephone-event payload type")
        raw = digits.encode("ascii")
        self._media(target)
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_CALL
        cmd.fn = cmd_send_dtmf
        cmd.leg = target
        cmd.ptr = <char *>raw
        cmd.payload_type = len(raw)
        cmd.arg = duration_ms * SAMPLES_PER_MS
        self._submit(target.worker, &cmd)

    def set_inband_dtmf(self, leg, enabled):
        """Detect DTMF tones in the leg's decoded audio (DtmfReceived, duration_ms 0)."""
        cdef Leg *target = self._leg(leg)
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be a bool, got {enabled!r}")
        self._media(target)
        self._call(target, cmd_inband, NULL, enabled)

    def create_mix(self):
        """A new, empty mix; its first participant decides its worker."""
        cdef MixNode *node = <MixNode *>calloc(1, sizeof(MixNode))
        if node == NULL:
            raise MemoryError()
        mix_init(&node.mix)
        node.id = self._next_media_id
        self._next_media_id += 1
        self._mixes[node.id] = (<size_t>node, {})
        return node.id

    def _mix(self, mix):
        entry = self._mixes.get(mix) if isinstance(mix, int) else None
        if entry is None:
            raise MediaError(f"no such mix: {mix!r}")
        return entry

    def join_mix(self, mix, leg):
        """Add the leg: it hears everyone in the mix and everyone hears it."""
        address, members = self._mix(mix)
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Leg *target = self._leg(leg)
        if leg in members:
            return
        for entry_id, entry in self._mixes.items():
            if leg in entry[1]:
                raise MediaError(f"leg {leg} is already in mix {entry_id}")
        if len(members) >= MIX_MAX_PARTIES:
            raise MediaError(f"mix {mix} is full ({MIX_MAX_PARTIES} participants)")
        if node.worker != NULL:
            self._move(target, node.worker)
        slot = min(set(range(MIX_MAX_PARTIES)) - set(members.values()))
        self._media(target)
        self._call(target, cmd_mix_join, node, slot)
        members[leg] = slot

    def leave_mix(self, mix, leg):
        """Take the leg out of the mix; relay toward it resumes if it is bridged."""
        address, members = self._mix(mix)
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Leg *target = self._leg(leg)
        if leg not in members:
            raise MediaError(f"leg {leg} is not in mix {mix}")
        self._call(target, cmd_mix_leave, node, members.pop(leg))

    def set_hearing(self, mix, listener_leg, talker_leg, audible):
        """Whether listener_leg hears talker_leg in the mix."""
        address, members = self._mix(mix)
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Cmd cmd
        for leg in (listener_leg, talker_leg):
            if leg not in members:
                raise MediaError(f"leg {leg!r} is not in mix {mix}")
        if not isinstance(audible, bool):
            raise ValueError(f"audible must be a bool, got {audible!r}")
        memset(&cmd, 0, sizeof(cmd))
        cmd.kind = CMD_CALL
        cmd.fn = cmd_mix_hearing
        cmd.leg = self._leg(listener_leg)
        cmd.ptr = node
        cmd.arg = (members[listener_leg] << 8) | members[talker_leg]
        cmd.payload_type = audible
        self._submit(node.worker, &cmd)

    def monitor(self, supervisor_leg, agent_leg, customer_leg, mode):
        """Supervisor on a call: "listen" (hears both, heard by none), "whisper" (heard
        by the agent only) or "barge" (three-way). Reuses the mix the agent is in, if
        any; returns the mix id."""
        if mode not in MONITOR_MODES:
            raise ValueError(f"mode must be one of listen, whisper, barge, got {mode!r}")
        legs = (supervisor_leg, agent_leg, customer_leg)
        for leg in legs:
            self._leg(leg)
        if len(set(legs)) != 3:
            raise ValueError(f"monitor needs three different legs, got {legs!r}")
        mix = next((mix_id for mix_id, entry in self._mixes.items()
                    if agent_leg in entry[1]), None)
        if mix is None:
            mix = self.create_mix()
        for leg in (agent_leg, customer_leg, supervisor_leg):
            self.join_mix(mix, leg)
        agent_hears, customer_hears = MONITOR_MODES[mode]
        self.set_hearing(mix, agent_leg, customer_leg, True)
        self.set_hearing(mix, customer_leg, agent_leg, True)
        self.set_hearing(mix, supervisor_leg, agent_leg, True)
        self.set_hearing(mix, supervisor_leg, customer_leg, True)
        self.set_hearing(mix, agent_leg, supervisor_leg, agent_hears)
        self.set_hearing(mix, customer_leg, supervisor_leg, customer_hears)
        return mix



cdef EventRec *malloc_or_null(size_t n) noexcept nogil:
    return <EventRec *>malloc(n * sizeof(EventRec) if n else 1)


# mode -> (agent hears the supervisor, customer hears the supervisor)
MONITOR_MODES = {"listen": (False, False), "whisper": (True, False), "barge": (True, True)}

COUNTER_NAMES = ("received", "sent", "dropped_invalid", "dropped_stranger", "relayed",
                 "rtcp_received")


cdef dict counters_dict(const Counters *counters):
    cdef const uint64_t *values = <const uint64_t *>counters
    return {name: values[i] for i, name in enumerate(COUNTER_NAMES)}


cdef object event_object(const EventRec *rec):
    if rec.kind == EV_RTP_TIMEOUT:
        return RtpTimedOut(rec.leg, rec.value)
    if rec.kind == EV_DTMF:
        return DtmfReceived(rec.leg, chr(rec.digit), int(rec.value))
    if rec.kind == EV_PLAYBACK_FINISHED:
        return PlaybackFinished(rec.leg)
    return LegStatistics(rec.leg, *[rec.counters[i] for i in range(N_COUNTERS)],
                         rec.lost, rec.jitter_ms, rec.mos, rec.rtt_ms)
