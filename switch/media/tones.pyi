"""Tone generator: cadenced single/dual tones in 16-bit PCM at 8 kHz, phase-continuous."""

from collections.abc import Sequence
from typing import Self

SAMPLE_RATE_HZ: int
MAX_SEGMENTS: int
# name -> (frequencies_hz, level_dbm0, cadence_ms as on, off, ...; () continuous)
CALL_PROGRESS_TONES: dict[str, tuple[tuple[float, ...], float, tuple[int, ...]]]

class ToneGenerator:
    """Each tone at level_dbm0 (0 dBm0 = sine of peak 22657); the cadence repeats."""

    def __init__(
        self,
        frequencies_hz: Sequence[float] = (),
        level_dbm0: float = -10.0,
        cadence_ms: Sequence[int] = (),
    ) -> None: ...
    @classmethod
    def call_progress(cls, name: str) -> Self: ...
    @classmethod
    def dtmf(
        cls, digits: str, on_ms: int = 100, off_ms: int = 100, level_dbm0: float = -10.0
    ) -> Self: ...
    @property
    def finished(self) -> bool:
        """A DTMF string has played out (output is silence from here on)."""
    def generate(self, n_samples: int) -> bytes:
        """The next n_samples as signed 16-bit little-endian PCM."""
