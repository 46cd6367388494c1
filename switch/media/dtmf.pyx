# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""RFC 4733 telephone-events (DTMF over RTP): a per-leg receive state machine and a
packet builder.

Payload (RFC 4733 §2.3): event(8) E(1) R(1) volume(6) duration(16), network order.
All packets of one event carry the event's start as RTP timestamp, and the duration
grows; the end packet (E=1) is sent three times (§2.5.1.4). A new event is a new RTP
timestamp (§2.5.1.3).

The receiver reports a digit as STARTED on the first packet it sees of an event (the
IVR reacts without waiting for the key to be released), then once as ENDED with the
duration. A lost start packet still gives STARTED from whichever packet arrives first
(even an end packet, which then gives both). Events above 15 (flash, modem tones) are
ignored. Reports go into a caller-owned array of DTMF_MAX_REPORTS.
"""

from collections import namedtuple

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport free, malloc

DIGITS = DTMF_EVENT_DIGITS[:16].decode("ascii")
SAMPLE_RATE_HZ = 8000  # RFC 4733 §2.1: telephone-event uses the audio's clock, 8 kHz here
MAX_DURATION_SAMPLES = DTMF_MAX_DURATION

TelephoneEventReport = namedtuple("TelephoneEventReport", "digit ended duration_samples")
TelephoneEventPacket = namedtuple("TelephoneEventPacket", "payload marker send_offset_samples")


cdef int dtmf_event_from_digit(char digit) noexcept nogil:
    """The RFC 4733 event code of a keypad character, or -1."""
    cdef int event
    for event in range(DTMF_MAX_EVENT + 1):
        if DTMF_EVENT_DIGITS[event] == digit:
            return event
    return -1


cdef inline bint _seq_newer(uint16_t seq, uint16_t than) noexcept nogil:
    return <int16_t>(seq - than) > 0


cdef void dtmf_rx_init(DtmfRxState *st) noexcept nogil:
    st.have_event = False
    st.open = False
    st.timestamp = 0
    st.last_seq = 0
    st.digit = 0
    st.duration_samples = 0


cdef inline void _report(DtmfReport *out, char digit, DtmfReportKind kind,
                         uint32_t duration_samples) noexcept nogil:
    out.digit = digit
    out.kind = kind
    out.duration_samples = duration_samples


cdef int dtmf_rx_feed(DtmfRxState *st, const uint8_t *payload, Py_ssize_t length,
                      uint32_t timestamp, bint marker, uint16_t seq,
                      DtmfReport *out) noexcept nogil:
    """Feed one telephone-event payload; returns how many reports were written to out."""
    cdef int n = 0
    cdef uint8_t event
    cdef bint end
    cdef uint32_t duration
    cdef int32_t age
    cdef bint new_event
    if length < DTMF_PAYLOAD_BYTES:
        return 0
    event = payload[0]
    if event > DTMF_MAX_EVENT:
        return 0
    end = (payload[1] & 0x80) != 0
    duration = (<uint32_t>payload[2] << 8) | payload[3]

    new_event = not st.have_event
    if st.have_event:
        age = <int32_t>(timestamp - st.timestamp)
        if age < 0:
            return 0  # a late packet of an event we have moved past
        # A sender that reuses the timestamp for the next key (it sent no audio between)
        # is told apart from redundancy by the marker on a packet newer than the end.
        new_event = age > 0 or (marker and not st.open and _seq_newer(seq, st.last_seq))

    if new_event:
        if st.open:
            # Every end packet of the previous event was lost: close it with what we saw.
            _report(&out[n], st.digit, DTMF_ENDED, st.duration_samples)
            n += 1
        st.have_event = True
        st.open = True
        st.timestamp = timestamp
        st.last_seq = seq
        st.digit = DTMF_EVENT_DIGITS[event]
        st.duration_samples = duration
        _report(&out[n], st.digit, DTMF_STARTED, 0)
        n += 1
    else:
        if _seq_newer(seq, st.last_seq):
            st.last_seq = seq
        if st.open and duration > st.duration_samples:
            st.duration_samples = duration
    if end and st.open:
        st.open = False
        _report(&out[n], st.digit, DTMF_ENDED, st.duration_samples)
        n += 1
    return n


cdef int dtmf_rx_flush(DtmfRxState *st, DtmfReport *out) noexcept nogil:
    """Close an event whose end packets never came (the engine calls this on a timeout)."""
    if not st.open:
        return 0
    st.open = False
    _report(out, st.digit, DTMF_ENDED, st.duration_samples)
    return 1


cdef int dtmf_tx_count(uint32_t duration_samples, uint32_t packet_samples) noexcept nogil:
    """Packets for one event: one per packet interval before the end, then three end packets."""
    if duration_samples == 0 or packet_samples == 0:
        return 0
    return <int>((duration_samples - 1) // packet_samples) + DTMF_END_PACKETS


cdef int dtmf_tx_build(uint8_t event, uint32_t duration_samples, uint32_t packet_samples,
                       uint8_t volume, DtmfTxPacket *out, int max_packets) noexcept nogil:
    """Build the packets of one event; returns their count, or -1 if out is too small.

    Packet j goes out at (j + 1) * packet_samples after the event start, when that much
    of the key press has elapsed, and says so in its duration; the first has the marker.
    Every packet carries the event start as RTP timestamp (the caller's).
    """
    cdef int n = dtmf_tx_count(duration_samples, packet_samples)
    cdef int j
    cdef uint32_t elapsed
    cdef bint end
    if n <= 0 or n > max_packets or duration_samples > DTMF_MAX_DURATION:
        return -1
    for j in range(n):
        elapsed = (<uint32_t>j + 1) * packet_samples
        end = elapsed >= duration_samples
        if end:
            elapsed = duration_samples
        out[j].payload[0] = event
        out[j].payload[1] = (0x80 if end else 0) | (volume & 0x3F)
        out[j].payload[2] = (elapsed >> 8) & 0xFF
        out[j].payload[3] = elapsed & 0xFF
        out[j].marker = j == 0
        out[j].send_offset_samples = (<uint32_t>j + 1) * packet_samples
    return n


# Python API (tools and tests); the engine uses the kernels above.

cdef class TelephoneEventDetector:
    """RFC 4733 receiver for one leg: feed every telephone-event RTP packet in arrival order."""

    cdef DtmfRxState st

    def __cinit__(self):
        dtmf_rx_init(&self.st)

    def feed(self, payload, timestamp, marker, seq):
        cdef Py_buffer view
        cdef DtmfReport out[DTMF_MAX_REPORTS]
        cdef int n
        cdef int i
        if not 0 <= timestamp <= 0xFFFFFFFF:
            raise ValueError(f"feed: timestamp must be 0..4294967295, got {timestamp}")
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"feed: seq must be 0..65535, got {seq}")
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            n = dtmf_rx_feed(&self.st, <const uint8_t *>view.buf, view.len,
                             <uint32_t>timestamp, bool(marker), <uint16_t>seq, out)
        finally:
            PyBuffer_Release(&view)
        return [_py_report(&out[i]) for i in range(n)]

    def flush(self):
        cdef DtmfReport out[1]
        if dtmf_rx_flush(&self.st, out):
            return [_py_report(&out[0])]
        return []


cdef object _py_report(DtmfReport *r):
    return TelephoneEventReport(chr(r.digit), r.kind == DTMF_ENDED, r.duration_samples)


def telephone_event_packets(digit, duration_ms, *, packet_ms=20, volume=10):
    """The packets of one key press: [TelephoneEventPacket(payload, marker, send_offset_samples)]."""
    cdef int event
    cdef int n
    cdef int j
    cdef DtmfTxPacket *packets
    if not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS:
        raise ValueError(f"telephone_event_packets: digit must be one of {DIGITS}, got {digit!r}")
    if duration_ms <= 0:
        raise ValueError(
            f"telephone_event_packets: duration_ms must be positive, got {duration_ms}"
        )
    if duration_ms * SAMPLE_RATE_HZ // 1000 > MAX_DURATION_SAMPLES:
        raise ValueError(
            "telephone_event_packets: duration_ms must be at most "
            f"{MAX_DURATION_SAMPLES * 1000 // SAMPLE_RATE_HZ} (16-bit duration at 8000 Hz), "
            f"got {duration_ms}"
        )
    if packet_ms <= 0:
        raise ValueError(f"telephone_event_packets: packet_ms must be positive, got {packet_ms}")
    if not 0 <= volume <= 63:
        raise ValueError(f"telephone_event_packets: volume must be 0..63 (-dBm0), got {volume}")
    event = DIGITS.index(digit)
    duration_samples = duration_ms * SAMPLE_RATE_HZ // 1000
    packet_samples = packet_ms * SAMPLE_RATE_HZ // 1000
    n = dtmf_tx_count(duration_samples, packet_samples)
    packets = <DtmfTxPacket *>malloc(n * sizeof(DtmfTxPacket))
    if packets == NULL:
        raise MemoryError()
    try:
        n = dtmf_tx_build(event, duration_samples, packet_samples, volume, packets, n)
        return [
            TelephoneEventPacket(bytes(packets[j].payload[:DTMF_PAYLOAD_BYTES]), bool(packets[j].marker),
                       packets[j].send_offset_samples)
            for j in range(n)
        ]
    finally:
        free(packets)
