"""In-band DTMF detection (Goertzel, 102-sample windows sliding by 34) with Q.24 timing."""

from typing_extensions import Buffer

SAMPLE_RATE_HZ: int
WINDOW_SAMPLES: int
HOP_SAMPLES: int
THRESHOLDS: dict[str, float]
ON_WINDOWS: int
OFF_WINDOWS: int

class GoertzelDetector:
    """One stream's detector: a digit once per tone of >= 40 ms, repeats after >= 40 ms pause."""

    def __init__(self, sample_rate: int = 8000) -> None: ...
    def feed(self, pcm: Buffer) -> str:
        """Signed 16-bit little-endian PCM in; the digits newly detected, in order."""
