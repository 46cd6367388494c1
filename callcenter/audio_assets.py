"""Audio the switch ships with, written into the data directory on first start."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 8000
MUSIC_ON_HOLD = "music_on_hold.wav"

# A slow, quiet arpeggio (C major, A minor, F major, G major), 0.4 s a note: something
# a caller recognises as "on hold, still connected" rather than a tone or silence.
_NOTES_HZ = (261.6, 329.6, 392.0, 329.6, 220.0, 261.6, 329.6, 261.6,
             174.6, 220.0, 261.6, 220.0, 196.0, 246.9, 293.7, 246.9)
_NOTE_S = 0.4
_LEVEL = 0.12  # about -18 dBFS: well below speech, never clipping after G.711


def _tune() -> bytes:
    samples_per_note = int(SAMPLE_RATE_HZ * _NOTE_S)
    t = np.arange(samples_per_note) / SAMPLE_RATE_HZ
    # A soft attack and decay on each note, so notes do not click.
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-2.5 * t)
    notes = [np.sin(2 * math.pi * f * t) * envelope for f in _NOTES_HZ]
    audio = np.concatenate(notes) * _LEVEL * 32767
    return audio.astype("<i2").tobytes()


def ensure_music_on_hold(prompts_dir: Path) -> Path:
    """The built-in music on hold, written once; an operator's own file is never
    overwritten."""
    path = prompts_dir / MUSIC_ON_HOLD
    if not path.exists():
        prompts_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        with wave.open(str(partial), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE_HZ)
            out.writeframes(_tune())
        partial.replace(path)
    return path
