# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""N-party mixer: each listener hears the saturating 16-bit sum of the talkers it may hear.

The full sum of everyone talking is taken once per frame in 32 bits; a listener whose
rights differ from "everyone" by fewer talkers than it hears gets that sum minus the
talkers it must not hear (in a conference: minus itself, one pass per listener). A
listener who hears only a few gets its own sum instead. Either way the 32-bit result is
saturated to int16 once, so no intermediate clipping changes the mix.

Supervisor topologies (Asterisk ChanSpy's listen/whisper/barge) are presets over the
same rights: rows of a (talker role, listener role) table, not call states.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, int32_t, uint32_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cdef extern from *:
    int popcount "__builtin_popcount"(unsigned int) noexcept nogil
    int lowest_bit "__builtin_ctz"(unsigned int) noexcept nogil

FRAME_SAMPLES = MIX_FRAME_SAMPLES
FRAME_BYTES = MIX_FRAME_SAMPLES * 2
MAX_PARTIES = MIX_MAX_PARTIES

# (talker role, listener role): who hears whom among supervisor, agent and customer.
_AGENT_CUSTOMER = frozenset({("agent", "customer"), ("customer", "agent")})
_SUPERVISOR_HEARS_BOTH = frozenset({("agent", "supervisor"), ("customer", "supervisor")})
SUPERVISOR_TOPOLOGIES = {
    # Silent monitoring: the supervisor hears the call and nobody hears the supervisor.
    "listen": _AGENT_CUSTOMER | _SUPERVISOR_HEARS_BOTH,
    # Coaching: the agent hears the supervisor, the customer does not.
    "whisper": _AGENT_CUSTOMER | _SUPERVISOR_HEARS_BOTH | {("supervisor", "agent")},
    # Three-way conference.
    "barge": _AGENT_CUSTOMER | _SUPERVISOR_HEARS_BOTH
    | {("supervisor", "agent"), ("supervisor", "customer")},
}
_ROLES = ("supervisor", "agent", "customer")


cdef void mix_init(Mix *mix) noexcept nogil:
    memset(mix, 0, sizeof(Mix))


cdef inline int16_t _saturate(int32_t value) noexcept nogil:
    if value > 32767:
        return 32767
    if value < -32768:
        return -32768
    return <int16_t>value


cdef void mix_frame(const Mix *mix, const int16_t *const *inputs,
                    int16_t *const *outputs) noexcept nogil:
    cdef int32_t total[MIX_FRAME_SAMPLES]
    cdef int32_t work[MIX_FRAME_SAMPLES]
    cdef uint32_t talking = 0
    cdef uint32_t heard, others
    cdef bint have_total = False
    cdef int slot, talker, i
    cdef const int16_t *a
    cdef const int16_t *b
    cdef int16_t *dst

    for slot in range(MIX_MAX_PARTIES):
        if (mix.active >> slot) & 1 and inputs[slot] != NULL:
            talking |= 1u << slot

    for slot in range(MIX_MAX_PARTIES):
        dst = outputs[slot]
        if dst == NULL or not (mix.active >> slot) & 1:
            continue
        heard = mix.hears[slot] & talking & ~(1u << slot)
        # Talkers in the full sum that this listener must not hear (itself included).
        others = talking & ~heard
        if heard == 0:
            memset(dst, 0, MIX_FRAME_SAMPLES * sizeof(int16_t))
        elif popcount(heard) == 1:
            memcpy(dst, inputs[lowest_bit(heard)], MIX_FRAME_SAMPLES * sizeof(int16_t))
        elif popcount(others) < popcount(heard):
            if not have_total:
                _sum_into(total, inputs, talking)
                have_total = True
            if others == 0:
                for i in range(MIX_FRAME_SAMPLES):
                    dst[i] = _saturate(total[i])
            elif popcount(others) == 1:
                a = inputs[lowest_bit(others)]
                for i in range(MIX_FRAME_SAMPLES):
                    dst[i] = _saturate(total[i] - a[i])
            else:
                memcpy(work, total, sizeof(work))
                while others:
                    a = inputs[lowest_bit(others)]
                    others &= others - 1
                    for i in range(MIX_FRAME_SAMPLES):
                        work[i] -= a[i]
                for i in range(MIX_FRAME_SAMPLES):
                    dst[i] = _saturate(work[i])
        else:
            _sum_into(work, inputs, heard)
            for i in range(MIX_FRAME_SAMPLES):
                dst[i] = _saturate(work[i])


cdef void _sum_into(int32_t *acc, const int16_t *const *inputs, uint32_t talkers) noexcept nogil:
    """acc = the 32-bit sum of the talkers' frames; talkers holds at least two bits."""
    cdef const int16_t *a = inputs[lowest_bit(talkers)]
    cdef const int16_t *b
    cdef int i
    talkers &= talkers - 1
    b = inputs[lowest_bit(talkers)]
    talkers &= talkers - 1
    for i in range(MIX_FRAME_SAMPLES):
        acc[i] = <int32_t>a[i] + b[i]
    while talkers:
        a = inputs[lowest_bit(talkers)]
        talkers &= talkers - 1
        for i in range(MIX_FRAME_SAMPLES):
            acc[i] += a[i]


cdef class Mixer:
    """A mix of up to 16 participants keyed by any int id; a new one hears and is heard by all.

    PCM is signed 16-bit in native byte order (little-endian on every platform we build).
    """

    cdef Mix _mix
    cdef dict _slots          # participant -> slot
    cdef object _at_slot      # list: slot -> participant or None

    def __cinit__(self):
        mix_init(&self._mix)
        self._slots = {}
        self._at_slot = [None] * MIX_MAX_PARTIES

    @property
    def participants(self):
        return tuple(self._slots)

    cdef int _slot(self, object participant) except -1:
        try:
            return self._slots[participant]
        except KeyError:
            raise ValueError(f"unknown participant {participant!r}") from None

    def add_participant(self, participant):
        cdef int slot, other
        if participant in self._slots:
            raise ValueError(f"participant {participant!r} is already in the mix")
        if len(self._slots) == MIX_MAX_PARTIES:
            raise ValueError(f"mixer is full ({MIX_MAX_PARTIES} participants)")
        slot = self._at_slot.index(None)
        self._slots[participant] = slot
        self._at_slot[slot] = participant
        self._mix.hears[slot] = self._mix.active
        for other in range(MIX_MAX_PARTIES):
            if (self._mix.active >> other) & 1:
                self._mix.hears[other] |= 1u << slot
        self._mix.active |= 1u << slot

    def remove_participant(self, participant):
        cdef int slot = self._slot(participant)
        cdef int other
        del self._slots[participant]
        self._at_slot[slot] = None
        self._mix.active &= ~(1u << slot)
        self._mix.hears[slot] = 0
        for other in range(MIX_MAX_PARTIES):
            self._mix.hears[other] &= ~(1u << slot)

    def set_rights(self, talker, listener, bint audible):
        cdef int t = self._slot(talker)
        cdef int l = self._slot(listener)
        if t == l:
            raise ValueError(f"participant {talker!r} cannot hear itself")
        if audible:
            self._mix.hears[l] |= 1u << t
        else:
            self._mix.hears[l] &= ~(1u << t)

    def can_hear(self, listener, talker):
        return bool((self._mix.hears[self._slot(listener)] >> self._slot(talker)) & 1)

    def hears(self, listener):
        cdef uint32_t mask = self._mix.hears[self._slot(listener)]
        return frozenset(p for p, slot in self._slots.items() if (mask >> slot) & 1)

    def apply_topology(self, topology, *, supervisor, agent, customer):
        try:
            pairs = SUPERVISOR_TOPOLOGIES[topology]
        except KeyError:
            raise ValueError(
                f"unknown topology {topology!r} (expected barge, listen or whisper)"
            ) from None
        party = {"supervisor": supervisor, "agent": agent, "customer": customer}
        for role in _ROLES:
            self._slot(party[role])
        if len(set(party.values())) != 3:
            raise ValueError("supervisor, agent and customer must be three participants")
        for talker in _ROLES:
            for listener in _ROLES:
                if talker != listener:
                    self.set_rights(party[talker], party[listener], (talker, listener) in pairs)

    def mix(self, frames):
        """Mix a whole number of 20 ms frames: {participant: PCM} -> {participant: PCM}.

        Every participant gets an output; one without an input is silent for the span.
        """
        cdef Py_buffer views[MIX_MAX_PARTIES]
        cdef int16_t *copies[MIX_MAX_PARTIES]
        cdef const int16_t *base_in[MIX_MAX_PARTIES]
        cdef int16_t *base_out[MIX_MAX_PARTIES]
        cdef const int16_t *inputs[MIX_MAX_PARTIES]
        cdef int16_t *outputs[MIX_MAX_PARTIES]
        cdef Py_ssize_t n_bytes = -1
        cdef Py_ssize_t n_frames, frame, offset
        cdef int slot
        cdef int n_views = 0
        cdef dict result = {}
        cdef bytes out

        for participant in frames:
            self._slot(participant)
        memset(copies, 0, sizeof(copies))
        memset(base_in, 0, sizeof(base_in))
        memset(base_out, 0, sizeof(base_out))
        try:
            for participant, pcm in frames.items():
                slot = self._slots[participant]
                PyObject_GetBuffer(pcm, &views[n_views], PyBUF_SIMPLE)
                n_views += 1
                length = views[n_views - 1].len
                if length == 0 or length % (MIX_FRAME_SAMPLES * 2):
                    raise ValueError(
                        f"frame for participant {participant!r} must be a whole number of "
                        f"{MIX_FRAME_SAMPLES * 2}-byte frames (160 samples of 16-bit PCM), "
                        f"got {length} bytes"
                    )
                if n_bytes == -1:
                    n_bytes = length
                elif length != n_bytes:
                    raise ValueError(
                        f"frames must all be the same length, got {n_bytes} and {length} bytes"
                    )
                base_in[slot] = <const int16_t *>views[n_views - 1].buf
                if <uintptr_t>base_in[slot] % sizeof(int16_t):
                    # A misaligned view (a sliced memoryview): read a copy instead.
                    copies[slot] = <int16_t *>malloc(length)
                    if copies[slot] == NULL:
                        raise MemoryError()
                    memcpy(copies[slot], base_in[slot], length)
                    base_in[slot] = copies[slot]
            if n_bytes == -1:
                n_bytes = MIX_FRAME_SAMPLES * 2
            n_frames = n_bytes // (MIX_FRAME_SAMPLES * 2)
            for participant, slot in self._slots.items():
                out = PyBytes_FromStringAndSize(NULL, n_bytes)
                base_out[slot] = <int16_t *>PyBytes_AS_STRING(out)
                result[participant] = out
            with nogil:
                for frame in range(n_frames):
                    offset = frame * MIX_FRAME_SAMPLES
                    for slot in range(MIX_MAX_PARTIES):
                        inputs[slot] = base_in[slot] + offset if base_in[slot] != NULL else NULL
                        outputs[slot] = (
                            base_out[slot] + offset if base_out[slot] != NULL else NULL
                        )
                    mix_frame(&self._mix, inputs, outputs)
            return result
        finally:
            for slot in range(n_views):
                PyBuffer_Release(&views[slot])
            for slot in range(MIX_MAX_PARTIES):
                free(copies[slot])
