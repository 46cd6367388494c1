"""C API of the prompt player, for the engine to cimport.

A ``Player`` walks a list of decoded prompts (16-bit PCM) one 20 ms frame at a time.
The prompts are concatenated without gaps; the last frame of the list is padded with
silence; with ``loop`` set the list starts over seamlessly (music on hold) until
``player_stop``. The sample buffers belong to the Python ``PromptPlayer`` that built the
struct; the engine keeps that object alive while it calls ``player_next_frame``, and
only the worker that plays a player touches its struct.
"""

from cpython.buffer cimport Py_buffer
from libc.stdint cimport int16_t


cdef enum:
    PLAYER_FRAME_SAMPLES = 160  # 20 ms at 8 kHz


cdef struct PlayerItem:
    const int16_t *samples
    Py_ssize_t n_samples


cdef struct Player:
    PlayerItem *items
    Py_ssize_t n_items
    Py_ssize_t total_samples  # sum over items; 0 means nothing to play
    Py_ssize_t index          # the item playing now
    Py_ssize_t position       # next sample within it
    Py_ssize_t frames_played
    int loop
    int finished              # set once player_next_frame has returned 0


# Fill ``out`` with the next PLAYER_FRAME_SAMPLES samples. Returns 1 while playing (the
# frame holds prompt audio, padded with silence at the very end), 0 once finished (``out``
# is silence and ``finished`` is set: time to post PlaybackFinished).
cdef int player_next_frame(Player *player, int16_t *out) noexcept nogil

# Finish at the next frame (stop playing, or end music on hold).
cdef void player_stop(Player *player) noexcept nogil


cdef class PromptPlayer:
    cdef Player player
    cdef Py_buffer *views
    cdef Py_ssize_t n_views
