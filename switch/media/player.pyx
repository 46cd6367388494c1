# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Prompt player: decoded prompts out as 20 ms frames, in order, optionally looping."""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset


cdef int player_next_frame(Player *player, int16_t *out) noexcept nogil:
    cdef Py_ssize_t filled = 0, n
    cdef PlayerItem *item
    if player.finished:
        memset(out, 0, PLAYER_FRAME_SAMPLES * sizeof(int16_t))
        return 0
    while filled < PLAYER_FRAME_SAMPLES:
        if player.index == player.n_items:
            # The end of the list: wrap when looping (total_samples > 0, so this ends).
            if player.loop and player.total_samples > 0:
                player.index = 0
                player.position = 0
                continue
            break
        item = &player.items[player.index]
        n = item.n_samples - player.position
        if n > PLAYER_FRAME_SAMPLES - filled:
            n = PLAYER_FRAME_SAMPLES - filled
        memcpy(out + filled, item.samples + player.position, n * sizeof(int16_t))
        filled += n
        player.position += n
        if player.position == item.n_samples:
            player.index += 1
            player.position = 0
    if filled == 0:
        player.finished = 1
        memset(out, 0, PLAYER_FRAME_SAMPLES * sizeof(int16_t))
        return 0
    memset(out + filled, 0, (PLAYER_FRAME_SAMPLES - filled) * sizeof(int16_t))
    player.frames_played += 1
    return 1


cdef void player_stop(Player *player) noexcept nogil:
    player.loop = 0
    player.index = player.n_items
    player.position = 0


cdef class PromptPlayer:
    """Plays ``prompts`` (16-bit little-endian PCM buffers, kept alive here) in order."""

    def __cinit__(self, prompts, *, bint loop=False):
        cdef Py_ssize_t i
        prompts = list(prompts)
        self.views = <Py_buffer *>calloc(max(1, len(prompts)), sizeof(Py_buffer))
        self.player.items = <PlayerItem *>calloc(max(1, len(prompts)), sizeof(PlayerItem))
        if self.views == NULL or self.player.items == NULL:
            raise MemoryError()
        for i, prompt in enumerate(prompts):
            PyObject_GetBuffer(prompt, &self.views[i], PyBUF_SIMPLE)
            self.n_views += 1
            if self.views[i].len % 2:
                raise ValueError(
                    f"prompt {i} has an odd length ({self.views[i].len} bytes); "
                    f"prompts are 16-bit PCM"
                )
            self.player.items[i].samples = <const int16_t *>self.views[i].buf
            self.player.items[i].n_samples = self.views[i].len // 2
            self.player.total_samples += self.player.items[i].n_samples
        self.player.n_items = len(prompts)
        self.player.loop = loop

    def next_frame(self):
        """The next frame (320 bytes), or None once finished."""
        out = PyBytes_FromStringAndSize(NULL, PLAYER_FRAME_SAMPLES * 2)
        if player_next_frame(&self.player, <int16_t *>PyBytes_AS_STRING(out)):
            return out
        return None

    def stop(self):
        """Finish at the next frame."""
        player_stop(&self.player)

    @property
    def finished(self):
        return bool(self.player.finished)

    @property
    def prompt_index(self):
        """Index of the prompt the next frame starts in (len(prompts) at the end)."""
        return self.player.index

    @property
    def frames_played(self):
        return self.player.frames_played

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.views != NULL:
            for i in range(self.n_views):
                PyBuffer_Release(&self.views[i])
            free(self.views)
        free(self.player.items)
