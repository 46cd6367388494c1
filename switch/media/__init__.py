"""The media plane: RTP relay worker threads in C (MediaEngine) and the Cython kernels.

Kernels are importable for tools and tests as well: G.711, RTP/RTCP and statistics,
RFC 4733 and in-band DTMF, tones, mixer, jitter buffer, recorder, WAV prompts, player.
"""

from switch.media.dtmf import TelephoneEventDetector, telephone_event_packets
from switch.media.engine import MediaEngine
from switch.media.events import (
    CommandFailed,
    DtmfReceived,
    LegStatistics,
    MediaError,
    MediaEvent,
    PlaybackFinished,
    RtpTimedOut,
)
from switch.media.feeders import REC_MAX_EXTRA
from switch.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from switch.media.goertzel import GoertzelDetector
from switch.media.jitterbuffer import JitterBuffer
from switch.media.mixer import Mixer
from switch.media.player import PromptPlayer
from switch.media.recorder import RecorderWriter, Recording
from switch.media.rtp import ReceiveStatistics, RtpError, mos_estimate, parse_rtp
from switch.media.tones import ToneGenerator
from switch.media.wav import WavError, read_prompt, repair_wav

__all__ = [
    "REC_MAX_EXTRA",
    "CommandFailed",
    "DtmfReceived",
    "GoertzelDetector",
    "JitterBuffer",
    "LegStatistics",
    "MediaEngine",
    "MediaError",
    "MediaEvent",
    "Mixer",
    "PlaybackFinished",
    "PromptPlayer",
    "ReceiveStatistics",
    "RecorderWriter",
    "Recording",
    "RtpError",
    "RtpTimedOut",
    "TelephoneEventDetector",
    "ToneGenerator",
    "WavError",
    "alaw_decode",
    "alaw_encode",
    "mos_estimate",
    "parse_rtp",
    "read_prompt",
    "repair_wav",
    "telephone_event_packets",
    "ulaw_decode",
    "ulaw_encode",
]
