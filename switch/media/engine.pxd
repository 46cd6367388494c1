# cython: language_level=3
"""MediaEngine: RelayCore (engine_core.pxd) plus the media commands. The C side is split
along the worker's seams: engine_types.pxd (OS declarations, structs, constants),
engine_events (event ring), engine_relay (packet path), engine_tick (per-tick work),
engine_worker (the loop and the commands it applies).
"""

from switch.media.engine_core cimport RelayCore
from libc.stdint cimport int64_t

from switch.media.engine_types cimport Leg
from switch.media.recorder cimport RecorderWriter


cdef class MediaEngine(RelayCore):
    cdef RecorderWriter _writer  # one per engine: every recording's file I/O
    cdef dict _recordings  # id -> (Recording, RecTap address, legs)
    cdef dict _players  # leg id -> PromptPlayer being played (kept alive)
    cdef dict _mixes  # id -> [MixNode address, {leg id: slot}, worker index or -1]
    cdef int64_t _next_media_id

    cdef int _release_media(self, Leg *leg, object leg_id) except -1
    cdef bint _attached(self, object leg_id) except -1
    cdef int _media(self, Leg *leg) except -1
    cdef _let_go_player(self, Leg *leg, object leg_id)
