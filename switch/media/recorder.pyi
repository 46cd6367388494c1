"""Call recorder: WAV (PCM 16-bit, 8 kHz, mono or stereo) written by a writer thread."""

import os

from typing_extensions import Buffer

class RecorderWriter:
    """One writer thread per engine; drains every recording's ring to its file."""

    def __init__(self, *, poll_ms: int = 50) -> None: ...
    def open(
        self,
        path: str | os.PathLike[str],
        channels: int,
        *,
        ring_frames: int = 100,
        batch_frames: int | None = None,
        header_interval_ms: int = 2000,
        sync: bool = False,
    ) -> Recording:
        """Create (or truncate) ``path``; ValueError for bad arguments, OSError from open."""
    def flush(self) -> None:
        """Write every ring and header now; return when done."""
    def close(self) -> None:
        """Finish every open recording and stop the writer thread (idempotent)."""

class Recording:
    """One WAV file being recorded. Frames are 20 ms: 160 samples per channel."""

    @property
    def path(self) -> str: ...
    @property
    def channels(self) -> int: ...
    @property
    def dropped_frames(self) -> int:
        """Frames refused because the ring was full."""
    @property
    def frames_written(self) -> int:
        """Frames in the file so far."""
    @property
    def flushed_frames(self) -> int:
        """Frames the WAV header covers."""
    @property
    def closed(self) -> bool: ...
    def write(self, left: Buffer, right: Buffer | None = None) -> bool:
        """Queue a frame (stereo: left = customer, right = agent); False if dropped."""
    def wait_flushed(self, min_frames: int, timeout_s: float) -> int:
        """Wait until the header covers ``min_frames``; return the frames it covers."""
    def close(self) -> None:
        """Flush, finalise the header, close the file; OSError if a write failed."""
