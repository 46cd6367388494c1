# cython: language_level=3
"""RelayCore: the Python-side relay half of the media engine (see engine_core.pyx);
MediaEngine (engine.pxd) extends it with the media commands.

Ownership: a Leg is touched only by the worker it is attached to (the hot path takes no
lock). Python reaches a worker only through its command queue (mutex + eventfd wake-up,
never waiting); workers reach Python only through the event ring (mutex + eventfd).
"""

from libc.stdint cimport int64_t, uint64_t

from switch.media.engine_types cimport Cmd, Leg, Shared, Worker, cmd_fn, in_addr


cdef int parse_ipv4(str host, in_addr *out) except -1
cdef int check_int(str name, object value, int low, int high) except -1
cdef int check_positive(str name, object value) except -1


cdef class RelayCore:
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
    cdef list _pending  # per worker: deque of (seq, object or freed port) to release
    cdef public bint _synchronous  # bench: wait for each command (the old behaviour)

    cdef Leg *_leg(self, object leg) except NULL
    # A zeroed command; ``owned`` (heap, or NULL) goes with it, freed if this fails.
    cdef Cmd *_new_cmd(self, int kind, Leg *leg, void *owned=*) except NULL
    cdef int _defer(self, Worker *w, object held) except -1
    cdef int _release(self, Worker *w, uint64_t completed) except -1
    cdef int _release_all(self) except -1
    cdef int _sync(self) except -1
    cdef int _submit(self, Worker *w, Cmd *cmd) except -1
    cdef int _bind_pair(self, Leg *leg) except -1
    cdef void _halt(self) noexcept
    cdef void _stop_threads(self, int count) noexcept
    cdef int _close_leg(self, object leg_id) except -1
    # A CMD_CALL of fn on the leg's worker; ``owned`` (heap, or NULL) goes with it and is
    # freed once applied (or at once if queueing fails).
    cdef int _call(self, Leg *leg, cmd_fn fn, void *ptr, int64_t arg,
                   void *owned=*) except -1
    cdef int _move(self, Leg *leg, Worker *home) except -1
    # Hooks for MediaEngine: release the leg's media before it closes; pinned to a worker.
    cdef int _release_media(self, Leg *leg, object leg_id) except -1
    cdef bint _attached(self, object leg_id) except -1
