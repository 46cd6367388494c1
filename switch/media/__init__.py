"""The media plane: RTP relay worker threads in C (MediaEngine) and the Cython kernels."""

from switch.media.engine import MediaEngine
from switch.media.events import (
    DtmfReceived,
    LegStatistics,
    MediaError,
    MediaEvent,
    PlaybackFinished,
    RtpTimedOut,
)
from switch.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = [
    "DtmfReceived",
    "LegStatistics",
    "MediaEngine",
    "MediaError",
    "MediaEvent",
    "PlaybackFinished",
    "RtpTimedOut",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]
