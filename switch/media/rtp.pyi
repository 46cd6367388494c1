"""RTP/RTCP per-packet work (RFC 3550) and an E-model MOS estimate (ITU-T G.107)."""

import enum
from collections.abc import Iterable
from typing import NamedTuple

from typing_extensions import Buffer

from switch.media.events import MediaError

class RtpErrorCode(enum.IntEnum):
    SHORT = -1
    VERSION = -2
    CSRC_OVERRUN = -3
    EXTENSION_OVERRUN = -4
    PADDING = -5
    RTCP = -6
    RTCP_SHORT = -11
    RTCP_VERSION = -12
    RTCP_LENGTH = -13
    RTCP_PADDING = -14
    RTCP_REPORT_OVERRUN = -15

class RtpError(MediaError, ValueError):
    """A datagram that is not acceptable RTP or RTCP; `code` says which check failed."""

    code: RtpErrorCode
    def __init__(self, code: int, message: str) -> None: ...

class RtpPacket(NamedTuple):
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool
    csrcs: tuple[int, ...]
    extension: tuple[int, bytes] | None  # (profile, data)
    padding_len: int

class ReceiveReport(NamedTuple):
    received: int
    expected: int
    lost: int  # cumulative, negative when duplicates outnumber losses
    fraction_lost: int  # since the previous report, /256
    extended_max_seq: int
    jitter: float  # RTP timestamp units

class SenderInfo(NamedTuple):
    ntp_sec: int
    ntp_frac: int
    rtp_ts: int
    packet_count: int
    octet_count: int

class ReportBlock(NamedTuple):
    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    ext_highest_seq: int
    jitter: int
    lsr: int
    dlsr: int  # 1/65536 s

class RtcpReport(NamedTuple):
    packet_type: int  # 200 SR, 201 RR
    ssrc: int
    sender_info: SenderInfo | None
    blocks: tuple[ReportBlock, ...]

def parse_rtp(data: Buffer) -> RtpPacket:
    """Parse one RTP packet; RtpError when it is not acceptable RTP."""

def build_rtp(
    payload_type: int,
    seq: int,
    timestamp: int,
    ssrc: int,
    payload: Buffer = b"",
    *,
    marker: bool = False,
    csrcs: Iterable[int] = (),
    extension: tuple[int, Buffer] | None = None,
    padding_len: int = 0,
) -> bytes:
    """Serialize an RTP packet; ValueError for out-of-range fields."""

def rewrite_rtp(
    packet: Buffer, ssrc: int, seq: int, timestamp: int, payload_type: int | None = None
) -> None:
    """Rewrite SSRC/seq/timestamp (and payload type) of a writable RTP packet in place."""

class ReceiveStatistics:
    """RFC 3550 A.1/A.3/A.8 receive statistics for one source."""

    def update(self, seq: int, rtp_ts: int, arrival_ts: int) -> bool: ...
    def sr_received(self, ntp_sec: int, ntp_frac: int, arrival_ntp16: int) -> None: ...
    def report(self) -> ReceiveReport: ...
    def report_block(self, ssrc: int, now_ntp16: int) -> ReportBlock: ...
    def peek(self) -> ReceiveReport: ...
    @property
    def valid(self) -> bool: ...
    @property
    def received(self) -> int: ...
    @property
    def expected(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def extended_max_seq(self) -> int: ...
    @property
    def jitter(self) -> float: ...
    @property
    def discarded(self) -> int: ...

def parse_rtcp(data: Buffer) -> list[RtcpReport]:
    """SR and RR packets of a compound RTCP datagram; RtpError when malformed."""

def build_sr(
    ssrc: int, sender_info: SenderInfo | tuple[int, int, int, int, int],
    blocks: Iterable[ReportBlock] = (),
) -> bytes: ...
def build_rr(ssrc: int, blocks: Iterable[ReportBlock] = ()) -> bytes: ...
def build_sdes_cname(ssrc: int, cname: str | bytes) -> bytes: ...
def ntp_to_ntp16(ntp_sec: int, ntp_frac: int) -> int: ...
def rtt_seconds(arrival_ntp16: int, lsr: int, dlsr: int) -> float | None: ...
def mos_estimate(loss_fraction: float, jitter_ms: float, rtt_ms: float) -> float:
    """MOS 1..4.5 from loss fraction (0..1), jitter and round trip; inputs are clamped."""
