"""RFC 4733 telephone-events: per-leg receiver and packet builder (8 kHz clock)."""

from typing import NamedTuple

from typing_extensions import Buffer

DIGITS: str  # "0123456789*#ABCD", indexed by event code (RFC 4733 §3.2)
SAMPLE_RATE_HZ: int
MAX_DURATION_SAMPLES: int

class TelephoneEventReport(NamedTuple):
    digit: str
    ended: bool  # False: first packet of the event seen; True: the event is over
    duration_samples: int  # when ended: the event's duration in RTP timestamp units

class TelephoneEventPacket(NamedTuple):
    payload: bytes  # 4 bytes: event, E|R|volume, duration (network order)
    marker: bool  # RTP marker bit: first packet of the event
    send_offset_samples: int  # send time after the event start; RTP timestamp = the start

class TelephoneEventDetector:
    """Receiver for one leg; reports each key press once started and once ended."""

    def feed(
        self, payload: Buffer, timestamp: int, marker: bool, seq: int
    ) -> list[TelephoneEventReport]: ...
    def flush(self) -> list[TelephoneEventReport]:
        """End an event whose end packets never came (call on an RTP timeout)."""

def telephone_event_packets(
    digit: str, duration_ms: int, *, packet_ms: int = 20, volume: int = 10
) -> list[TelephoneEventPacket]: ...
