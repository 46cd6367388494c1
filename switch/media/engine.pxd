# cython: language_level=3
"""The media engine's Python-facing class; its C side is split along the worker's seams:
engine_types.pxd (OS declarations, structs, constants), engine_events (event ring),
engine_relay (packet path), engine_tick (per-tick work), engine_worker (loop, commands).

Ownership: a Leg is touched only by the worker it is attached to (the hot path takes no
lock). Python reaches a worker only through its command queue (mutex + eventfd wake-up);
workers reach Python only through the event ring (mutex + eventfd).
"""

from libc.stdint cimport int64_t

from switch.media.engine_types cimport Cmd, Leg, Shared, Worker, cmd_fn
from switch.media.legmedia cimport LegMedia
from switch.media.recorder cimport RecorderWriter


cdef class MediaEngine:
    cdef Shared *shared
    cdef Worker *workers
    cdef int n_workers
    cdef bint _running
    cdef int64_t _next_leg_id
    cdef int _port_low
    cdef int _port_high
    cdef bytes _bind_host
    cdef object _free_ports  # deque of even ports, least recently freed first
    cdef dict _legs  # leg id -> address of its Leg struct
    cdef dict _leg_group  # leg id -> group (only legs opened with one)
    cdef dict _groups  # group -> [worker index, open legs]
    cdef object _ssrc_rng  # random.Random(ssrc_seed), or None: os.urandom
    cdef RecorderWriter _writer  # one per engine: every recording's file I/O
    cdef dict _recordings  # id -> (Recording, RecTap address)
    cdef dict _players  # leg id -> PromptPlayer being played (kept alive)
    cdef dict _mixes  # id -> MixNode address
    cdef int64_t _next_media_id

    cdef Leg *_leg(self, object leg) except NULL
    cdef int _submit(self, Worker *w, Cmd *cmd) except -1
    cdef int _bind_pair(self, Leg *leg) except -1
    cdef void _free_leg(self, Leg *leg) noexcept
    cdef void _stop_threads(self, int count) noexcept
    cdef int _close_leg(self, object leg_id) except -1
    cdef int _call(self, Leg *leg, cmd_fn fn, void *ptr, int64_t arg) except -1
    cdef int _move(self, Leg *leg, Worker *home) except -1
    cdef LegMedia *_media(self, Leg *leg) except NULL
