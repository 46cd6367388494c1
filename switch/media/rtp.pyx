# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-packet RTP work in C: header parse/write (RFC 3550 §5.1), receive statistics
(RFC 3550 Appendix A.1, A.3, A.8), RTCP SR/RR/SDES (RFC 3550 §6.4, §6.5) and an
E-model MOS estimate (ITU-T G.107, simplified).

The kernels (declared in rtp.pxd) take pointer + length and never touch Python, so the
engine's workers call them without the GIL. The `def` functions below are thin
wrappers for tools and tests: they validate arguments, run the same kernels and turn
result codes into `RtpError` with an exact message.
"""

import enum
from typing import NamedTuple

from switch.media.events import MediaError

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport isnan
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset

# RFC 3550 Appendix A.1 constants.
cdef enum:
    RTP_SEQ_MOD = 1 << 16
    MAX_DROPOUT = 3000
    MAX_MISORDER = 100
    MIN_SEQUENTIAL = 2

# RFC 5761 §4: with RTCP on the RTP port, RTCP packet types 200-204 read as RTP payload
# types 72-76 (the marker bit takes the top bit of the packet type).
cdef enum:
    RTCP_MUX_PT_LO = 72
    RTCP_MUX_PT_HI = 76

# Cumulative lost is a signed 24-bit field; A.3 clamps rather than wraps.
cdef enum:
    LOST_MAX = 0x7FFFFF
    LOST_MIN = -0x800000


# ---------------------------------------------------------------- RTP header

cdef int rtp_parse(const uint8_t *buf, Py_ssize_t n, RtpHeader *out) noexcept nogil:
    cdef Py_ssize_t off
    cdef uint8_t pt
    cdef uint8_t pad
    if n < 2:
        return RTP_ERR_SHORT
    if (buf[0] >> 6) != RTP_VERSION:
        return RTP_ERR_VERSION
    pt = buf[1] & 0x7F
    # Checked before the length: an RR without report blocks is only 8 bytes.
    if RTCP_MUX_PT_LO <= pt <= RTCP_MUX_PT_HI:
        return RTP_ERR_RTCP
    if n < RTP_HEADER_LEN:
        return RTP_ERR_SHORT
    out.version = RTP_VERSION
    out.padding = (buf[0] >> 5) & 1
    out.extension = (buf[0] >> 4) & 1
    out.csrc_count = buf[0] & 0x0F
    out.marker = buf[1] >> 7
    out.payload_type = pt
    out.seq = load_be16(buf + 2)
    out.timestamp = load_be32(buf + 4)
    out.ssrc = load_be32(buf + 8)
    off = RTP_HEADER_LEN + 4 * out.csrc_count
    if off > n:
        return RTP_ERR_CSRC_OVERRUN
    out.ext_profile = 0
    out.ext_len = 0
    if out.extension:
        if n - off < 4:
            return RTP_ERR_EXTENSION_OVERRUN
        out.ext_profile = load_be16(buf + off)
        out.ext_len = 4 * <Py_ssize_t>load_be16(buf + off + 2)
        off += 4
        if out.ext_len > n - off:
            return RTP_ERR_EXTENSION_OVERRUN
    out.ext_offset = off
    off += out.ext_len
    out.padding_len = 0
    if out.padding:
        # The last octet counts the padding including itself (RFC 3550 §5.1), so it is
        # at least 1 and cannot reach back into the header.
        pad = buf[n - 1]
        if pad == 0 or pad > n - off:
            return RTP_ERR_PADDING
        out.padding_len = pad
    out.payload_offset = off
    out.payload_len = n - off - out.padding_len
    return RTP_OK


cdef Py_ssize_t rtp_write_header(uint8_t *buf, Py_ssize_t cap, uint8_t payload_type,
                                 bint marker, uint16_t seq, uint32_t timestamp,
                                 uint32_t ssrc) noexcept nogil:
    """Write a 12-byte header without CSRCs, extension or padding; bytes written or error."""
    if cap < RTP_HEADER_LEN or payload_type > 127:
        return RTP_ERR_SPACE
    buf[0] = RTP_VERSION << 6
    buf[1] = <uint8_t>((0x80 if marker else 0) | payload_type)
    rtp_set_ssrc_seq_ts(buf, ssrc, seq, timestamp)
    return RTP_HEADER_LEN


# ---------------------------------------------------------------- receive statistics

cdef void _init_seq(RecvStats *s, uint16_t seq) noexcept nogil:
    s.base_seq = seq
    s.max_seq = seq
    s.bad_seq = RTP_SEQ_MOD + 1  # so seq == bad_seq is false
    s.cycles = 0
    s.received = 0
    s.received_prior = 0
    s.expected_prior = 0
    # Deviation from A.8: a (re)synchronised stream re-bases its transit time, so a
    # sender restarting with a new timestamp origin is not counted as one huge jitter step.
    s.have_transit = 0


cdef void stats_init(RecvStats *s) noexcept nogil:
    memset(s, 0, sizeof(RecvStats))
    s.bad_seq = RTP_SEQ_MOD + 1


cdef int _update_seq(RecvStats *s, uint16_t seq) noexcept nogil:
    """RFC 3550 A.1 update_seq: 1 if the packet counts, 0 if it is held back."""
    cdef uint16_t udelta
    if not s.started:
        _init_seq(s, seq)
        s.max_seq = <uint16_t>(seq - 1)
        s.probation = MIN_SEQUENTIAL
        s.started = 1
    udelta = <uint16_t>(seq - s.max_seq)
    if s.probation:
        # Modulo 2**16 (the A.1 code compares ints, so a probation across 65535 fails).
        if seq == <uint16_t>(s.max_seq + 1):
            s.probation -= 1
            s.max_seq = seq
            if s.probation == 0:
                _init_seq(s, seq)
                s.received += 1
                return 1
        else:
            s.probation = MIN_SEQUENTIAL - 1
            s.max_seq = seq
        return 0
    elif udelta < MAX_DROPOUT:
        # In order, with a permissible gap.
        if seq < s.max_seq:
            s.cycles += RTP_SEQ_MOD
        s.max_seq = seq
    elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
        # A very large jump: accept it only when the next packet follows it, i.e. the
        # sender restarted without telling us.
        if seq == s.bad_seq:
            _init_seq(s, seq)
        else:
            s.bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1)
            return 0
    # else: a duplicate or reordered packet, counted as A.1 does.
    s.received += 1
    return 1


cdef int stats_update(RecvStats *s, uint16_t seq, uint32_t rtp_ts,
                      uint32_t arrival) noexcept nogil:
    """Account one packet; `arrival` is the receive time in RTP timestamp units."""
    cdef uint32_t transit
    cdef int64_t d
    if not _update_seq(s, seq):
        s.discarded += 1
        return 0
    # RFC 3550 A.8, with the differences taken modulo 2**32 so clocks may wrap.
    transit = arrival - rtp_ts
    if s.have_transit:
        d = <int32_t>(transit - s.transit)
        if d < 0:
            d = -d
        s.jitter += (<double>d - s.jitter) / 16.0
    s.transit = transit
    s.have_transit = 1
    return 1


cdef void _fill_report(const RecvStats *s, RecvReport *out) noexcept nogil:
    cdef int64_t expected_interval
    cdef int64_t lost_interval
    memset(out, 0, sizeof(RecvReport))
    out.jitter = s.jitter
    if not s.started or s.probation:
        return  # no valid source yet: nothing expected
    out.extended_max_seq = s.cycles + s.max_seq
    out.expected = out.extended_max_seq - s.base_seq + 1
    out.received = s.received
    out.lost = <int64_t>out.expected - <int64_t>out.received
    # RFC 3550 A.3: fraction lost over the interval since the previous report.
    expected_interval = <int64_t>out.expected - s.expected_prior
    lost_interval = expected_interval - (<int64_t>s.received - s.received_prior)
    if expected_interval > 0 and lost_interval > 0:
        out.fraction_lost = <uint8_t>min((lost_interval << 8) // expected_interval, 255)


cdef void stats_peek(const RecvStats *s, RecvReport *out) noexcept nogil:
    """Current figures; the fraction-lost interval is not advanced."""
    _fill_report(s, out)


cdef void stats_report(RecvStats *s, RecvReport *out) noexcept nogil:
    """Current figures, closing the fraction-lost interval (call once per RTCP report)."""
    _fill_report(s, out)
    s.expected_prior = out.expected
    s.received_prior = out.received


cdef void stats_sr_received(RecvStats *s, uint32_t ntp_sec, uint32_t ntp_frac,
                            uint32_t arrival_ntp16) noexcept nogil:
    """Remember an SR from this source for the LSR/DLSR of our next report block."""
    s.lsr = ntp_middle32(ntp_sec, ntp_frac)
    s.sr_arrival_ntp16 = arrival_ntp16


cdef void stats_report_block(RecvStats *s, uint32_t ssrc, uint32_t now_ntp16,
                             RtcpReportBlock *out) noexcept nogil:
    cdef RecvReport r
    stats_report(s, &r)
    out.ssrc = ssrc
    out.fraction_lost = r.fraction_lost
    out.cumulative_lost = <int32_t>max(min(r.lost, LOST_MAX), LOST_MIN)
    out.ext_highest_seq = r.extended_max_seq
    out.jitter = <uint32_t>r.jitter
    out.lsr = s.lsr
    # RFC 3550 §6.4.1: LSR and DLSR are zero until an SR has arrived.
    out.dlsr = now_ntp16 - s.sr_arrival_ntp16 if s.lsr else 0


# ---------------------------------------------------------------- RTCP

cdef int rtcp_next(const uint8_t *buf, Py_ssize_t n, Py_ssize_t *pos,
                   RtcpPacket *out) noexcept nogil:
    """Step to the next packet of a compound datagram: 1, 0 at the end, or an error."""
    cdef Py_ssize_t p = pos[0]
    cdef Py_ssize_t length
    cdef uint8_t pad
    if p >= n:
        return 0
    if n - p < 4:
        return RTCP_ERR_SHORT
    if (buf[p] >> 6) != RTP_VERSION:
        return RTCP_ERR_VERSION
    length = (<Py_ssize_t>load_be16(buf + p + 2) + 1) * 4
    if length > n - p:
        return RTCP_ERR_LENGTH
    out.padding = (buf[p] >> 5) & 1
    out.count = buf[p] & 0x1F
    out.packet_type = buf[p + 1]
    out.offset = p
    out.length = length
    out.body_len = length
    if out.padding:
        # RFC 3550 A.2: only the last packet of a compound may carry padding.
        pad = buf[p + length - 1]
        if p + length != n or pad == 0 or pad > length - 4:
            return RTCP_ERR_PADDING
        out.body_len = length - pad
    pos[0] = p + length
    return 1


cdef int rtcp_parse_report(const uint8_t *buf, const RtcpPacket *pkt,
                           RtcpReportView *out) noexcept nogil:
    cdef const uint8_t *p = buf + pkt.offset
    cdef Py_ssize_t fixed
    if pkt.packet_type == RTCP_SR:
        fixed = RTCP_SR_LEN
    elif pkt.packet_type == RTCP_RR:
        fixed = RTCP_RR_LEN
    else:
        return RTCP_ERR_NOT_REPORT
    # Profile-specific extensions may follow the blocks, so >= rather than ==.
    if pkt.body_len < fixed + RTCP_BLOCK_LEN * <Py_ssize_t>pkt.count:
        return RTCP_ERR_REPORT_OVERRUN
    out.packet_type = pkt.packet_type
    out.ssrc = load_be32(p + 4)
    out.has_sender_info = pkt.packet_type == RTCP_SR
    if out.has_sender_info:
        out.sender.ntp_sec = load_be32(p + 8)
        out.sender.ntp_frac = load_be32(p + 12)
        out.sender.rtp_ts = load_be32(p + 16)
        out.sender.packet_count = load_be32(p + 20)
        out.sender.octet_count = load_be32(p + 24)
    else:
        memset(&out.sender, 0, sizeof(RtcpSenderInfo))
    out.report_count = pkt.count
    out.blocks_offset = pkt.offset + fixed
    return RTP_OK


cdef int rtcp_validate(const uint8_t *buf, Py_ssize_t n) noexcept nogil:
    """Number of packets in a well-formed compound datagram, or the first error."""
    cdef Py_ssize_t pos = 0
    cdef RtcpPacket pkt
    cdef RtcpReportView report
    cdef int rc
    cdef int count = 0
    if n == 0:
        return RTCP_ERR_SHORT
    while True:
        rc = rtcp_next(buf, n, &pos, &pkt)
        if rc <= 0:
            return count if rc == 0 else rc
        if pkt.packet_type == RTCP_SR or pkt.packet_type == RTCP_RR:
            rc = rtcp_parse_report(buf, &pkt, &report)
            if rc < 0:
                return rc
        count += 1


cdef void rtcp_report_block(const uint8_t *buf, const RtcpReportView *report, int i,
                            RtcpReportBlock *out) noexcept nogil:
    """Read block i (0 <= i < report_count) of a report that rtcp_parse_report accepted."""
    cdef const uint8_t *p = buf + report.blocks_offset + RTCP_BLOCK_LEN * i
    cdef int32_t lost = (<int32_t>p[5] << 16) | (<int32_t>p[6] << 8) | p[7]
    if lost & 0x800000:
        lost -= 0x1000000  # sign-extend the 24-bit field
    out.ssrc = load_be32(p)
    out.fraction_lost = p[4]
    out.cumulative_lost = lost
    out.ext_highest_seq = load_be32(p + 8)
    out.jitter = load_be32(p + 12)
    out.lsr = load_be32(p + 16)
    out.dlsr = load_be32(p + 20)


cdef void _write_header(uint8_t *p, uint8_t count, uint8_t packet_type,
                        Py_ssize_t length) noexcept nogil:
    p[0] = <uint8_t>((RTP_VERSION << 6) | count)
    p[1] = packet_type
    store_be16(p + 2, <uint16_t>(length // 4 - 1))


cdef void _write_blocks(uint8_t *p, const RtcpReportBlock *blocks, int n_blocks) noexcept nogil:
    cdef int i
    cdef int32_t lost
    for i in range(n_blocks):
        lost = max(min(blocks[i].cumulative_lost, LOST_MAX), LOST_MIN)
        store_be32(p, blocks[i].ssrc)
        store_be32(p + 4, (<uint32_t>blocks[i].fraction_lost << 24) | (<uint32_t>lost & 0xFFFFFF))
        store_be32(p + 8, blocks[i].ext_highest_seq)
        store_be32(p + 12, blocks[i].jitter)
        store_be32(p + 16, blocks[i].lsr)
        store_be32(p + 20, blocks[i].dlsr)
        p += RTCP_BLOCK_LEN


cdef Py_ssize_t rtcp_write_sr(uint8_t *buf, Py_ssize_t cap, uint32_t ssrc,
                              const RtcpSenderInfo *sender, const RtcpReportBlock *blocks,
                              int n_blocks) noexcept nogil:
    cdef Py_ssize_t length
    if n_blocks < 0 or n_blocks > RTCP_MAX_BLOCKS:
        return RTCP_ERR_SPACE
    length = RTCP_SR_LEN + RTCP_BLOCK_LEN * n_blocks
    if cap < length:
        return RTCP_ERR_SPACE
    _write_header(buf, <uint8_t>n_blocks, RTCP_SR, length)
    store_be32(buf + 4, ssrc)
    store_be32(buf + 8, sender.ntp_sec)
    store_be32(buf + 12, sender.ntp_frac)
    store_be32(buf + 16, sender.rtp_ts)
    store_be32(buf + 20, sender.packet_count)
    store_be32(buf + 24, sender.octet_count)
    _write_blocks(buf + RTCP_SR_LEN, blocks, n_blocks)
    return length


cdef Py_ssize_t rtcp_write_rr(uint8_t *buf, Py_ssize_t cap, uint32_t ssrc,
                              const RtcpReportBlock *blocks, int n_blocks) noexcept nogil:
    cdef Py_ssize_t length
    if n_blocks < 0 or n_blocks > RTCP_MAX_BLOCKS:
        return RTCP_ERR_SPACE
    length = RTCP_RR_LEN + RTCP_BLOCK_LEN * n_blocks
    if cap < length:
        return RTCP_ERR_SPACE
    _write_header(buf, <uint8_t>n_blocks, RTCP_RR, length)
    store_be32(buf + 4, ssrc)
    _write_blocks(buf + RTCP_RR_LEN, blocks, n_blocks)
    return length


cdef Py_ssize_t rtcp_write_sdes_cname(uint8_t *buf, Py_ssize_t cap, uint32_t ssrc,
                                      const uint8_t *cname, Py_ssize_t cname_len) noexcept nogil:
    """One SDES chunk with a CNAME item: every compound RTCP packet carries one (§6.1)."""
    cdef Py_ssize_t length
    if cname_len < 0 or cname_len > 255:
        return RTCP_ERR_SPACE
    # Header, SSRC, type, length, text, then at least one null octet to end the item
    # list, up to the next 32-bit boundary (RFC 3550 §6.5).
    length = (4 + 4 + 2 + cname_len + 1 + 3) & ~3
    if cap < length:
        return RTCP_ERR_SPACE
    memset(buf, 0, length)
    _write_header(buf, 1, RTCP_SDES, length)
    store_be32(buf + 4, ssrc)
    buf[8] = SDES_CNAME
    buf[9] = <uint8_t>cname_len
    memcpy(buf + 10, cname, cname_len)
    return length


cdef double rtcp_rtt_s(uint32_t arrival_ntp16, uint32_t lsr, uint32_t dlsr) noexcept nogil:
    """RFC 3550 §6.4.1 round trip A - LSR - DLSR in seconds; -1 when unknown."""
    cdef int32_t rtt
    if lsr == 0:
        return -1.0  # the peer has not had an SR from us yet
    rtt = <int32_t>(arrival_ntp16 - lsr - dlsr)
    if rtt < 0:
        return -1.0  # clocks or a stale block: no usable figure
    return rtt / 65536.0


# ---------------------------------------------------------------- MOS (E-model)

# ITU-T G.107 default ratings: R0 - Is with every other parameter at its default.
cdef double R_DEFAULT = 93.2
# ITU-T G.113 Appendix I, G.711: equipment impairment 0 and packet-loss robustness 25.1
# with packet loss concealment (G.711 Appendix I). We take the PLC value because the
# phones and PRI gateways at either end of our legs conceal losses; without PLC it
# would be 4.3.
cdef double IE_G711 = 0.0
cdef double BPL_G711_PLC = 25.1
cdef double BURST_R = 1.0  # random (not bursty) loss
# Effective one-way delay = rtt/2 + 2 * jitter (a jitter buffer holds about twice the
# jitter) + codec/packetisation processing.
cdef double JITTER_BUFFER_FACTOR = 2.0
cdef double PROCESSING_MS = 10.0


cdef double _mos_from_r(double r) noexcept nogil:
    """ITU-T G.107 Annex B, clamped to 1..4.5."""
    cdef double mos
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    return min(max(mos, 1.0), 4.5)


cpdef double mos_estimate(double loss_fraction, double jitter_ms, double rtt_ms) noexcept nogil:
    """MOS from loss (0..1), jitter and round-trip time; out-of-range inputs are clamped
    and NaN scores the worst (1.0)."""
    cdef double delay_ms
    cdef double idelay
    cdef double ppl
    cdef double ie_eff
    if isnan(loss_fraction) or isnan(jitter_ms) or isnan(rtt_ms):
        return 1.0
    loss_fraction = min(max(loss_fraction, 0.0), 1.0)
    delay_ms = max(rtt_ms, 0.0) / 2.0 + JITTER_BUFFER_FACTOR * max(jitter_ms, 0.0) + PROCESSING_MS
    # Delay impairment: the usual linear fit of G.107's Id (Cole & Rosenbluth, 2001),
    # with the knee at 177.3 ms where conversation starts to suffer.
    idelay = 0.024 * delay_ms
    if delay_ms > 177.3:
        idelay += 0.11 * (delay_ms - 177.3)
    ppl = 100.0 * loss_fraction
    ie_eff = IE_G711 + (95.0 - IE_G711) * ppl / (ppl / BURST_R + BPL_G711_PLC)
    return _mos_from_r(R_DEFAULT - idelay - ie_eff)


# ---------------------------------------------------------------- Python API

class RtpErrorCode(enum.IntEnum):
    """Why a datagram was refused; the values are the C kernels' result codes."""

    SHORT = RTP_ERR_SHORT
    VERSION = RTP_ERR_VERSION
    CSRC_OVERRUN = RTP_ERR_CSRC_OVERRUN
    EXTENSION_OVERRUN = RTP_ERR_EXTENSION_OVERRUN
    PADDING = RTP_ERR_PADDING
    RTCP = RTP_ERR_RTCP
    RTCP_SHORT = RTCP_ERR_SHORT
    RTCP_VERSION = RTCP_ERR_VERSION
    RTCP_LENGTH = RTCP_ERR_LENGTH
    RTCP_PADDING = RTCP_ERR_PADDING
    RTCP_REPORT_OVERRUN = RTCP_ERR_REPORT_OVERRUN


class RtpError(MediaError, ValueError):
    """A datagram that is not acceptable RTP or RTCP; `code` says which check failed."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = RtpErrorCode(code)


RtpPacket = NamedTuple("RtpPacket", [
    ("payload_type", int),
    ("seq", int),
    ("timestamp", int),
    ("ssrc", int),
    ("payload", bytes),
    ("marker", bool),
    ("csrcs", tuple),
    ("extension", object),  # (profile, data) or None
    ("padding_len", int),
])

ReceiveReport = NamedTuple("ReceiveReport", [
    ("received", int),
    ("expected", int),
    ("lost", int),
    ("fraction_lost", int),
    ("extended_max_seq", int),
    ("jitter", float),
])

SenderInfo = NamedTuple("SenderInfo", [
    ("ntp_sec", int),
    ("ntp_frac", int),
    ("rtp_ts", int),
    ("packet_count", int),
    ("octet_count", int),
])

ReportBlock = NamedTuple("ReportBlock", [
    ("ssrc", int),
    ("fraction_lost", int),
    ("cumulative_lost", int),
    ("ext_highest_seq", int),
    ("jitter", int),
    ("lsr", int),
    ("dlsr", int),
])

RtcpReport = NamedTuple("RtcpReport", [
    ("packet_type", int),
    ("ssrc", int),
    ("sender_info", object),  # SenderInfo for an SR, None for an RR
    ("blocks", tuple),
])

_U8 = 0xFF
_U16 = 0xFFFF
_U32 = 0xFFFFFFFF

# Inclusive range of each report block field, for build_sr/build_rr.
_BLOCK_RANGES = {
    "ssrc": (0, _U32),
    "fraction_lost": (0, _U8),
    "cumulative_lost": (LOST_MIN, LOST_MAX),
    "ext_highest_seq": (0, _U32),
    "jitter": (0, _U32),
    "lsr": (0, _U32),
    "dlsr": (0, _U32),
}


def _check(name, value, lo, hi):
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be {lo}..{hi}, got {value!r}")
    return value


cdef bytes _to_bytes(object data):
    """A bytes copy of any contiguous buffer (TypeError for non-buffers such as int)."""
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return PyBytes_FromStringAndSize(<char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef str _rtp_message(int code, const uint8_t *buf, Py_ssize_t n):
    if code == RTP_ERR_SHORT:
        return f"RTP packet of {n} bytes is shorter than the {RTP_HEADER_LEN}-byte header"
    if code == RTP_ERR_VERSION:
        return f"RTP version {buf[0] >> 6}, expected 2"
    if code == RTP_ERR_RTCP:
        return f"RTCP packet type {buf[1] | 0x80} on the RTP port (RFC 5761 muxing)"
    if code == RTP_ERR_CSRC_OVERRUN:
        return f"RTP CSRC list of {buf[0] & 0x0F} entries runs past the end of a {n}-byte packet"
    if code == RTP_ERR_EXTENSION_OVERRUN:
        return f"RTP header extension runs past the end of a {n}-byte packet"
    return f"RTP padding count {buf[n - 1]} does not fit a {n}-byte packet"


def parse_rtp(data):
    """Parse one RTP packet; RtpError (a ValueError) when it is not acceptable RTP."""
    cdef bytes raw = _to_bytes(data)
    cdef const uint8_t *buf = <const uint8_t *>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = len(raw)
    cdef RtpHeader h
    cdef int rc
    cdef int i
    with nogil:
        rc = rtp_parse(buf, n, &h)
    if rc < 0:
        raise RtpError(rc, _rtp_message(rc, buf, n))
    csrcs = tuple([load_be32(buf + RTP_HEADER_LEN + 4 * i) for i in range(h.csrc_count)])
    extension = None
    if h.extension:
        extension = (h.ext_profile, raw[h.ext_offset:h.ext_offset + h.ext_len])
    return RtpPacket(
        payload_type=h.payload_type,
        seq=h.seq,
        timestamp=h.timestamp,
        ssrc=h.ssrc,
        payload=raw[h.payload_offset:h.payload_offset + h.payload_len],
        marker=bool(h.marker),
        csrcs=csrcs,
        extension=extension,
        padding_len=h.padding_len,
    )


def build_rtp(payload_type, seq, timestamp, ssrc, payload=b"", *, marker=False, csrcs=(),
              extension=None, padding_len=0):
    """Serialize an RTP packet; `extension` is (profile, data) with len(data) % 4 == 0."""
    cdef bytes body = _to_bytes(payload)
    cdef bytes ext_data = b""
    cdef bytes out
    cdef uint8_t *p
    cdef Py_ssize_t off
    cdef Py_ssize_t size
    cdef Py_ssize_t i
    _check("payload_type", payload_type, 0, 127)
    _check("seq", seq, 0, _U16)
    _check("timestamp", timestamp, 0, _U32)
    _check("ssrc", ssrc, 0, _U32)
    _check("padding_len", padding_len, 0, _U8)
    csrcs = tuple(csrcs)
    if len(csrcs) > RTP_MAX_CSRC:
        raise ValueError(f"at most {RTP_MAX_CSRC} CSRCs, got {len(csrcs)}")
    for csrc in csrcs:
        _check("csrc", csrc, 0, _U32)
    if extension is not None:
        profile, data = extension
        _check("extension profile", profile, 0, _U16)
        ext_data = _to_bytes(data)
        if len(ext_data) % 4 or len(ext_data) > 4 * _U16:
            raise ValueError(
                f"extension data must be a multiple of 4 bytes up to {4 * _U16}, "
                f"got {len(ext_data)}"
            )
    off = RTP_HEADER_LEN + 4 * len(csrcs)
    size = off + (4 + len(ext_data) if extension is not None else 0) + len(body) + padding_len
    out = PyBytes_FromStringAndSize(NULL, size)
    p = <uint8_t *>PyBytes_AS_STRING(out)
    memset(p, 0, size)
    rtp_write_header(p, size, payload_type, marker, seq, timestamp, ssrc)
    p[0] |= len(csrcs) | (0x20 if padding_len else 0) | (0x10 if extension is not None else 0)
    for i in range(len(csrcs)):
        store_be32(p + RTP_HEADER_LEN + 4 * i, csrcs[i])
    if extension is not None:
        store_be16(p + off, profile)
        store_be16(p + off + 2, len(ext_data) // 4)
        memcpy(p + off + 4, PyBytes_AS_STRING(ext_data), len(ext_data))
        off += 4 + len(ext_data)
    memcpy(p + off, PyBytes_AS_STRING(body), len(body))
    if padding_len:
        p[size - 1] = padding_len
    return out


def rewrite_rtp(packet, ssrc, seq, timestamp, payload_type=None):
    """Rewrite SSRC, sequence number, timestamp and optionally payload type of an RTP
    packet in a writable buffer, in place, as the relay does; RtpError if it is not RTP."""
    cdef Py_buffer view
    cdef RtpHeader h
    cdef int rc
    _check("ssrc", ssrc, 0, _U32)
    _check("seq", seq, 0, _U16)
    _check("timestamp", timestamp, 0, _U32)
    if payload_type is not None:
        _check("payload_type", payload_type, 0, 127)
    PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    try:
        rc = rtp_parse(<const uint8_t *>view.buf, view.len, &h)
        if rc < 0:
            raise RtpError(rc, _rtp_message(rc, <const uint8_t *>view.buf, view.len))
        rtp_set_ssrc_seq_ts(<uint8_t *>view.buf, ssrc, seq, timestamp)
        if payload_type is not None:
            rtp_set_payload_type(<uint8_t *>view.buf, payload_type)
    finally:
        PyBuffer_Release(&view)


cdef class ReceiveStatistics:
    """RFC 3550 receive statistics for one source (the engine keeps a RecvStats per leg)."""

    cdef RecvStats _s

    def __cinit__(self):
        stats_init(&self._s)

    def update(self, seq, rtp_ts, arrival_ts):
        """Account a packet (arrival_ts in RTP timestamp units); False if held back."""
        _check("seq", seq, 0, _U16)
        _check("rtp_ts", rtp_ts, 0, _U32)
        _check("arrival_ts", arrival_ts, 0, _U32)
        return bool(stats_update(&self._s, seq, rtp_ts, arrival_ts))

    def sr_received(self, ntp_sec, ntp_frac, arrival_ntp16):
        """Note an SR from this source, arriving at `arrival_ntp16` (1/65536 s units)."""
        _check("ntp_sec", ntp_sec, 0, _U32)
        _check("ntp_frac", ntp_frac, 0, _U32)
        _check("arrival_ntp16", arrival_ntp16, 0, _U32)
        stats_sr_received(&self._s, ntp_sec, ntp_frac, arrival_ntp16)

    def report(self):
        """Figures for an RTCP report; closes the fraction-lost interval."""
        cdef RecvReport r
        stats_report(&self._s, &r)
        return _py_report(&r)

    def report_block(self, ssrc, now_ntp16):
        """The report block for source `ssrc`; closes the fraction-lost interval."""
        cdef RtcpReportBlock b
        _check("ssrc", ssrc, 0, _U32)
        _check("now_ntp16", now_ntp16, 0, _U32)
        stats_report_block(&self._s, ssrc, now_ntp16, &b)
        return _py_block(&b)

    def peek(self):
        """Figures now, without closing the fraction-lost interval."""
        cdef RecvReport r
        stats_peek(&self._s, &r)
        return _py_report(&r)

    def __repr__(self):
        r = self.peek()
        return (f"ReceiveStatistics(received={r.received}, expected={r.expected}, "
                f"lost={r.lost}, jitter={r.jitter:.1f})")

    @property
    def valid(self):
        """True once the source has passed probation (A.1 MIN_SEQUENTIAL)."""
        return bool(self._s.started and not self._s.probation)

    @property
    def received(self):
        return self.peek().received

    @property
    def expected(self):
        return self.peek().expected

    @property
    def lost(self):
        return self.peek().lost

    @property
    def extended_max_seq(self):
        return self.peek().extended_max_seq

    @property
    def jitter(self):
        """Interarrival jitter (A.8) in RTP timestamp units."""
        return self._s.jitter

    @property
    def discarded(self):
        """Packets held back by probation or an unconfirmed sequence jump."""
        return self._s.discarded


cdef object _py_report(const RecvReport *r):
    return ReceiveReport(r.received, r.expected, r.lost, r.fraction_lost,
                         r.extended_max_seq, r.jitter)


cdef object _py_block(const RtcpReportBlock *b):
    return ReportBlock(b.ssrc, b.fraction_lost, b.cumulative_lost, b.ext_highest_seq,
                       b.jitter, b.lsr, b.dlsr)


cdef str _rtcp_message(int code, const uint8_t *buf, Py_ssize_t n, Py_ssize_t pos):
    if code == RTCP_ERR_SHORT:
        return f"RTCP packet at offset {pos} is truncated: {n - pos} bytes, a header needs 4"
    if code == RTCP_ERR_VERSION:
        return f"RTCP version {buf[pos] >> 6} at offset {pos}, expected 2"
    if code == RTCP_ERR_LENGTH:
        return (f"RTCP length field at offset {pos} says "
                f"{(load_be16(buf + pos + 2) + 1) * 4} bytes, only {n - pos} left")
    if code == RTCP_ERR_PADDING:
        return (f"RTCP padding at offset {pos} is invalid: only the last packet may be "
                f"padded, by 1 to length - 4 bytes")
    return (f"RTCP packet type {buf[pos + 1]} at offset {pos} claims {buf[pos] & 0x1F} "
            f"report blocks, which do not fit its {(load_be16(buf + pos + 2) + 1) * 4} bytes")


def parse_rtcp(data):
    """The SR and RR packets of a compound RTCP datagram (other packet types are checked
    for framing and skipped); RtpError when the datagram is malformed."""
    cdef bytes raw = _to_bytes(data)
    cdef const uint8_t *buf = <const uint8_t *>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = len(raw)
    cdef Py_ssize_t pos = 0
    cdef RtcpPacket pkt
    cdef RtcpReportView rep
    cdef RtcpReportBlock block
    cdef int rc
    cdef int i
    reports = []
    if n == 0:
        raise RtpError(RTCP_ERR_SHORT, _rtcp_message(RTCP_ERR_SHORT, buf, n, 0))
    while True:
        rc = rtcp_next(buf, n, &pos, &pkt)
        if rc == 0:
            return reports
        if rc < 0:
            raise RtpError(rc, _rtcp_message(rc, buf, n, pos))
        if pkt.packet_type != RTCP_SR and pkt.packet_type != RTCP_RR:
            continue
        rc = rtcp_parse_report(buf, &pkt, &rep)
        if rc < 0:
            raise RtpError(rc, _rtcp_message(rc, buf, n, pkt.offset))
        blocks = []
        for i in range(rep.report_count):
            rtcp_report_block(buf, &rep, i, &block)
            blocks.append(_py_block(&block))
        sender = None
        if rep.has_sender_info:
            sender = SenderInfo(rep.sender.ntp_sec, rep.sender.ntp_frac, rep.sender.rtp_ts,
                                rep.sender.packet_count, rep.sender.octet_count)
        reports.append(RtcpReport(rep.packet_type, rep.ssrc, sender, tuple(blocks)))


cdef int _c_blocks(object blocks, RtcpReportBlock *out) except -1:
    cdef int i
    blocks = tuple(blocks)
    if len(blocks) > RTCP_MAX_BLOCKS:
        raise ValueError(f"at most {RTCP_MAX_BLOCKS} report blocks, got {len(blocks)}")
    for i in range(len(blocks)):
        b = ReportBlock(*blocks[i])
        for name, (lo, hi) in _BLOCK_RANGES.items():
            _check(name, getattr(b, name), lo, hi)
        out[i].ssrc = b.ssrc
        out[i].fraction_lost = b.fraction_lost
        out[i].cumulative_lost = b.cumulative_lost
        out[i].ext_highest_seq = b.ext_highest_seq
        out[i].jitter = b.jitter
        out[i].lsr = b.lsr
        out[i].dlsr = b.dlsr
    return len(blocks)


def build_sr(ssrc, sender_info, blocks=()):
    """Serialize a sender report with up to 31 report blocks."""
    cdef RtcpReportBlock c_blocks[RTCP_MAX_BLOCKS]
    cdef RtcpSenderInfo si
    cdef uint8_t buf[RTCP_SR_LEN + RTCP_BLOCK_LEN * RTCP_MAX_BLOCKS]
    cdef int n_blocks
    cdef Py_ssize_t length
    _check("ssrc", ssrc, 0, _U32)
    sender_info = SenderInfo(*sender_info)
    for name in SenderInfo._fields:
        _check(name, getattr(sender_info, name), 0, _U32)
    n_blocks = _c_blocks(blocks, c_blocks)
    si.ntp_sec = sender_info.ntp_sec
    si.ntp_frac = sender_info.ntp_frac
    si.rtp_ts = sender_info.rtp_ts
    si.packet_count = sender_info.packet_count
    si.octet_count = sender_info.octet_count
    length = rtcp_write_sr(buf, sizeof(buf), ssrc, &si, c_blocks, n_blocks)
    return PyBytes_FromStringAndSize(<char *>buf, length)


def build_rr(ssrc, blocks=()):
    """Serialize a receiver report with up to 31 report blocks."""
    cdef RtcpReportBlock c_blocks[RTCP_MAX_BLOCKS]
    cdef uint8_t buf[RTCP_RR_LEN + RTCP_BLOCK_LEN * RTCP_MAX_BLOCKS]
    cdef int n_blocks
    cdef Py_ssize_t length
    _check("ssrc", ssrc, 0, _U32)
    n_blocks = _c_blocks(blocks, c_blocks)
    length = rtcp_write_rr(buf, sizeof(buf), ssrc, c_blocks, n_blocks)
    return PyBytes_FromStringAndSize(<char *>buf, length)


def build_sdes_cname(ssrc, cname):
    """Serialize an SDES packet carrying one CNAME (UTF-8 str or bytes, at most 255 bytes)."""
    cdef bytes text = cname.encode() if isinstance(cname, str) else _to_bytes(cname)
    cdef uint8_t buf[4 + 4 + 2 + 255 + 4]
    cdef Py_ssize_t length
    _check("ssrc", ssrc, 0, _U32)
    if len(text) > 255:
        raise ValueError(f"CNAME must be at most 255 bytes, got {len(text)}")
    length = rtcp_write_sdes_cname(buf, sizeof(buf), ssrc,
                                   <const uint8_t *>PyBytes_AS_STRING(text), len(text))
    return PyBytes_FromStringAndSize(<char *>buf, length)


def ntp_to_ntp16(ntp_sec, ntp_frac):
    """The middle 32 bits of an NTP timestamp: the LSR/DLSR clock, 1/65536 s units."""
    _check("ntp_sec", ntp_sec, 0, _U32)
    _check("ntp_frac", ntp_frac, 0, _U32)
    return ntp_middle32(ntp_sec, ntp_frac)


def rtt_seconds(arrival_ntp16, lsr, dlsr):
    """Round trip from a report block about our stream (RFC 3550 §6.4.1): A - LSR - DLSR,
    or None while LSR is 0 (no SR of ours reached the peer) or the result is negative."""
    _check("arrival_ntp16", arrival_ntp16, 0, _U32)
    _check("lsr", lsr, 0, _U32)
    _check("dlsr", dlsr, 0, _U32)
    rtt = rtcp_rtt_s(arrival_ntp16, lsr, dlsr)
    return None if rtt < 0 else rtt
