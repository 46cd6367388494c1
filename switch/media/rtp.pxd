# cython: language_level=3
"""Per-packet RTP/RTCP work for the media engine: declarations to cimport.

Everything here is C over pointer + length: no Python objects, callable without the GIL.
Multi-byte fields on the wire are network byte order (RFC 3550 §4).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t


cdef enum:
    RTP_VERSION = 2
    RTP_HEADER_LEN = 12  # RFC 3550 §5.1 fixed header
    RTP_MAX_CSRC = 15  # the CC field is 4 bits
    RTCP_SR = 200  # RFC 3550 §6.4.1
    RTCP_RR = 201  # RFC 3550 §6.4.2
    RTCP_SDES = 202  # RFC 3550 §6.5
    RTCP_BYE = 203
    RTCP_APP = 204
    RTCP_SR_LEN = 28  # header + SSRC + 20-byte sender info
    RTCP_RR_LEN = 8  # header + SSRC
    RTCP_BLOCK_LEN = 24  # one report block
    RTCP_MAX_BLOCKS = 31  # the RC field is 5 bits
    SDES_CNAME = 1


# Result codes: 0 is success, RTP and RTCP errors have their own ranges so one int
# says which parser refused the datagram.
cdef enum:
    RTP_OK = 0
    RTP_ERR_SHORT = -1  # fewer bytes than the fixed header
    RTP_ERR_VERSION = -2  # V != 2
    RTP_ERR_CSRC_OVERRUN = -3  # CC * 4 bytes do not fit
    RTP_ERR_EXTENSION_OVERRUN = -4  # extension header or its data do not fit
    RTP_ERR_PADDING = -5  # padding count 0 or larger than what follows the header
    RTP_ERR_RTCP = -6  # payload type 72-76: RTCP on a muxed port, RFC 5761 §4
    RTP_ERR_SPACE = -7  # writer: output buffer too small or an argument out of range
    RTCP_ERR_SHORT = -11  # fewer than 4 bytes left for a packet header
    RTCP_ERR_VERSION = -12  # V != 2
    RTCP_ERR_LENGTH = -13  # length field runs past the end of the datagram
    RTCP_ERR_PADDING = -14  # padding on a packet that is not last, or a bad count
    RTCP_ERR_REPORT_OVERRUN = -15  # RC report blocks do not fit in the packet
    RTCP_ERR_NOT_REPORT = -16  # rtcp_parse_report on a packet that is not SR/RR
    RTCP_ERR_SPACE = -17  # writer: output buffer too small or too many blocks


cdef struct RtpHeader:
    uint8_t version
    uint8_t padding  # P bit
    uint8_t extension  # X bit
    uint8_t csrc_count
    uint8_t marker
    uint8_t payload_type
    uint16_t seq
    uint32_t timestamp
    uint32_t ssrc
    uint16_t ext_profile  # "defined by profile" field, 0 without X
    Py_ssize_t ext_offset  # start of the extension data (after its 4-byte header)
    Py_ssize_t ext_len  # extension data bytes (length field * 4)
    Py_ssize_t payload_offset
    Py_ssize_t payload_len  # excludes padding
    uint8_t padding_len  # includes the count byte itself; 0 without P


# RFC 3550 Appendix A.1 / A.3 / A.8 receive state for one source.
cdef struct RecvStats:
    uint8_t started  # a first packet has been seen
    uint16_t max_seq  # highest sequence number seen
    uint32_t cycles  # shifted count of sequence number wraps (multiples of 65536)
    uint32_t base_seq
    uint32_t bad_seq  # last "bad" seq + 1, 65537 when none
    uint32_t probation  # sequential packets still needed before the source is valid
    uint32_t received  # packets accepted (duplicates included, as in A.1)
    uint32_t expected_prior  # A.3 interval bookkeeping
    uint32_t received_prior
    uint32_t discarded  # packets stats_update refused (probation, unconfirmed big jump)
    uint8_t have_transit
    uint32_t transit  # previous (arrival - rtp_ts), timestamp units, modulo 2**32
    double jitter  # A.8 estimate, timestamp units
    uint32_t lsr  # middle 32 bits of the NTP time in the last SR from this source
    uint32_t sr_arrival_ntp16  # when that SR arrived, same 1/65536 s units


cdef struct RecvReport:
    uint32_t received
    uint32_t expected
    int64_t lost  # cumulative; negative when duplicates outnumber losses
    uint8_t fraction_lost  # since the previous report, fixed point /256
    uint32_t extended_max_seq
    double jitter  # timestamp units


cdef struct RtcpSenderInfo:
    uint32_t ntp_sec
    uint32_t ntp_frac
    uint32_t rtp_ts
    uint32_t packet_count
    uint32_t octet_count


cdef struct RtcpReportBlock:
    uint32_t ssrc
    uint8_t fraction_lost
    int32_t cumulative_lost  # 24-bit signed on the wire
    uint32_t ext_highest_seq
    uint32_t jitter
    uint32_t lsr
    uint32_t dlsr  # 1/65536 s


cdef struct RtcpPacket:  # one packet inside a compound datagram
    uint8_t padding
    uint8_t count  # RC / SC / subtype
    uint8_t packet_type
    Py_ssize_t offset  # of its header in the datagram
    Py_ssize_t length  # bytes including header and padding: (length field + 1) * 4
    Py_ssize_t body_len  # bytes including header, excluding padding


cdef struct RtcpReportView:  # an SR or RR
    uint8_t packet_type
    uint32_t ssrc
    uint8_t has_sender_info
    RtcpSenderInfo sender
    uint8_t report_count
    Py_ssize_t blocks_offset  # of the first report block in the datagram


# Byte order helpers, inline so the relay path pays no call.
cdef inline uint16_t load_be16(const uint8_t *p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline uint32_t load_be32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | <uint32_t>p[3])


cdef inline void store_be16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline void store_be32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline void rtp_set_ssrc_seq_ts(uint8_t *buf, uint32_t ssrc, uint16_t seq,
                                     uint32_t ts) noexcept nogil:
    """Rewrite a parsed packet's SSRC, sequence number and timestamp in place (relay)."""
    store_be16(buf + 2, seq)
    store_be32(buf + 4, ts)
    store_be32(buf + 8, ssrc)


cdef inline void rtp_set_payload_type(uint8_t *buf, uint8_t payload_type) noexcept nogil:
    """Rewrite the payload type in place, keeping the marker bit (transcoding relay)."""
    buf[1] = <uint8_t>((buf[1] & 0x80) | (payload_type & 0x7F))


cdef inline uint32_t ntp_middle32(uint32_t ntp_sec, uint32_t ntp_frac) noexcept nogil:
    """The middle 32 bits of a 64-bit NTP timestamp (LSR/DLSR units, 1/65536 s)."""
    return (ntp_sec << 16) | (ntp_frac >> 16)


cdef int rtp_parse(const uint8_t *buf, Py_ssize_t n, RtpHeader *out) noexcept nogil
cdef Py_ssize_t rtp_write_header(uint8_t *buf, Py_ssize_t cap, uint8_t payload_type,
                                 bint marker, uint16_t seq, uint32_t timestamp,
                                 uint32_t ssrc) noexcept nogil

cdef void stats_init(RecvStats *s) noexcept nogil
cdef int stats_update(RecvStats *s, uint16_t seq, uint32_t rtp_ts,
                      uint32_t arrival) noexcept nogil
cdef void stats_peek(const RecvStats *s, RecvReport *out) noexcept nogil
cdef void stats_report(RecvStats *s, RecvReport *out) noexcept nogil
cdef void stats_sr_received(RecvStats *s, uint32_t ntp_sec, uint32_t ntp_frac,
                            uint32_t arrival_ntp16) noexcept nogil
cdef void stats_report_block(RecvStats *s, uint32_t ssrc, uint32_t now_ntp16,
                             RtcpReportBlock *out) noexcept nogil

cdef int rtcp_next(const uint8_t *buf, Py_ssize_t n, Py_ssize_t *pos,
                   RtcpPacket *out) noexcept nogil
cdef int rtcp_validate(const uint8_t *buf, Py_ssize_t n) noexcept nogil
cdef int rtcp_parse_report(const uint8_t *buf, const RtcpPacket *pkt,
                           RtcpReportView *out) noexcept nogil
cdef void rtcp_report_block(const uint8_t *buf, const RtcpReportView *report, int i,
                            RtcpReportBlock *out) noexcept nogil
cdef Py_ssize_t rtcp_write_sr(uint8_t *buf, Py_ssize_t cap, uint32_t ssrc,
                              const RtcpSenderInfo *sender, const RtcpReportBlock *blocks,
                              int n_blocks) noexcept nogil
cdef Py_ssize_t rtcp_write_rr(uint8_t *buf, Py_ssize_t cap, uint32_t ssrc,
                              const RtcpReportBlock *blocks, int n_blocks) noexcept nogil
cdef Py_ssize_t rtcp_write_sdes_cname(uint8_t *buf, Py_ssize_t cap, uint32_t ssrc,
                                      const uint8_t *cname, Py_ssize_t cname_len) noexcept nogil
cdef double rtcp_rtt_s(uint32_t arrival_ntp16, uint32_t lsr, uint32_t dlsr) noexcept nogil

# cpdef: the same kernel is the Python-visible mos_estimate.
cpdef double mos_estimate(double loss_fraction, double jitter_ms, double rtt_ms) noexcept nogil
