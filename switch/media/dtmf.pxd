# RFC 4733 telephone-event: receive state machine and packet builder, plus the DTMF
# keypad tables that goertzel.pyx and tones.pyx cimport (one copy of the numbers).
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef extern from *:
    """
    /* RFC 4733 §3.2: events 0-9 are the digits, 10 '*', 11 '#', 12-15 'A'-'D'. */
    static const char DTMF_EVENT_DIGITS[17] = "0123456789*#ABCD";
    /* ITU-T Q.23: keypad by (row, column); rows are the low group, columns the high. */
    static const char DTMF_KEYPAD[17] = "123A456B789C*0#D";
    static const double DTMF_ROW_HZ[4] = {697.0, 770.0, 852.0, 941.0};
    static const double DTMF_COL_HZ[4] = {1209.0, 1336.0, 1477.0, 1633.0};
    """
    const char DTMF_EVENT_DIGITS[17]
    const char DTMF_KEYPAD[17]
    const double DTMF_ROW_HZ[4]
    const double DTMF_COL_HZ[4]

cdef enum:
    DTMF_PAYLOAD_BYTES = 4      # RFC 4733 §2.3: event(8) E(1) R(1) volume(6) duration(16)
    DTMF_MAX_EVENT = 15         # 'D'; higher events (flash, modem tones) are ignored
    DTMF_MAX_REPORTS = 3        # one packet can close the old event, open and close a new one
    DTMF_END_PACKETS = 3        # RFC 4733 §2.5.1.4: the end packet is sent three times
    DTMF_MAX_DURATION = 0xFFFF  # 16-bit duration field; longer events need segments (§2.5.2.3)

cdef enum DtmfReportKind:
    DTMF_STARTED = 1
    DTMF_ENDED = 2

cdef struct DtmfReport:
    char digit
    DtmfReportKind kind
    uint32_t duration_samples   # ENDED only: event duration in RTP timestamp units

cdef struct DtmfRxState:
    bint have_event             # an event (open or ended) is the reference for ordering
    bint open                   # started reported, end not yet
    uint32_t timestamp          # RTP timestamp of the current event
    uint16_t last_seq           # newest sequence number seen for the current event
    char digit
    uint32_t duration_samples   # longest duration seen for the current event

cdef struct DtmfTxPacket:
    uint8_t payload[DTMF_PAYLOAD_BYTES]
    bint marker
    uint32_t send_offset_samples  # when to send, from the event start (RTP timestamp is the start)

cdef int dtmf_event_from_digit(char digit) noexcept nogil
cdef void dtmf_rx_init(DtmfRxState *st) noexcept nogil
cdef int dtmf_rx_feed(DtmfRxState *st, const uint8_t *payload, Py_ssize_t length,
                      uint32_t timestamp, bint marker, uint16_t seq,
                      DtmfReport *out) noexcept nogil
cdef int dtmf_rx_flush(DtmfRxState *st, DtmfReport *out) noexcept nogil
cdef int dtmf_tx_count(uint32_t duration_samples, uint32_t packet_samples) noexcept nogil
cdef int dtmf_tx_build(uint8_t event, uint32_t duration_samples, uint32_t packet_samples,
                       uint8_t volume, DtmfTxPacket *out, int max_packets) noexcept nogil
