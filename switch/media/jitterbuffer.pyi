"""Adaptive jitter buffer: packets in with their arrival time, one frame out per tick."""

from typing import Literal, NamedTuple

from typing_extensions import Buffer

FRAME_US: int
MAX_PAYLOAD_BYTES: int
MIN_DELAY_US: int
MAX_DELAY_US: int
SHRINK_INTERVAL_TICKS: int

class Pulled(NamedTuple):
    status: Literal["frame", "lost", "empty"]
    seq: int | None  # set for "frame" and "lost"
    payload: bytes  # empty unless "frame"

class JitterBuffer:
    """Times are microseconds of one monotonic clock; one pull per 20 ms tick."""

    def insert(
        self, seq: int, timestamp: int, payload: Buffer, arrival_us: int
    ) -> Literal["stored", "late", "duplicate", "resynced"]:
        """ValueError for seq/timestamp out of range or a payload over 160 bytes."""
    def pull(self, now_us: int) -> Pulled: ...
    @property
    def jitter_us(self) -> int: ...
    @property
    def target_delay_us(self) -> int: ...
    @property
    def delay_us(self) -> int: ...
    @property
    def stats(self) -> dict[str, int]:
        """received, played, lost, late, duplicates, resyncs, skipped, empty."""
