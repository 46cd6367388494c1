"""G.711 µ-law and A-law codecs; PCM is signed 16-bit little-endian."""

from typing_extensions import Buffer

def ulaw_encode(pcm: Buffer) -> bytes:
    """Encode 16-bit PCM to µ-law; ValueError if the length is odd."""

def alaw_encode(pcm: Buffer) -> bytes:
    """Encode 16-bit PCM to A-law; ValueError if the length is odd."""

def ulaw_decode(data: Buffer) -> bytes:
    """Decode µ-law bytes to 16-bit PCM (two bytes out per byte in)."""

def alaw_decode(data: Buffer) -> bytes:
    """Decode A-law bytes to 16-bit PCM (two bytes out per byte in)."""
