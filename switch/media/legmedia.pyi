"""Per-leg media kernels for the engine (decode, detection, playback, DTMF out).

C API only (legmedia.pxd): nothing here is callable from Python; MediaEngine drives it.
"""
