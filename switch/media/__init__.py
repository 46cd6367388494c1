"""The media engine: Cython kernels for RTP media (G.711 so far)."""

from switch.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]
