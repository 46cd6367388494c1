# cython: language_level=3
"""A worker thread's own side: the loop, and the commands it applies (Python -> worker).

Every command runs on the worker that owns the leg (or directly in the caller while the
engine is stopped); the cmd_* functions are the CMD_CALL bodies of the media commands.
A command is heap memory; whoever applies it frees it (see apply_and_free).
"""

from switch.media.engine_types cimport Cmd, Leg, Worker


# Apply one command, then free it and what it owns (Cmd.owned; the leg for CMD_CLOSE).
cdef void apply_and_free(Worker *w, Cmd *cmd) noexcept nogil
# Close the leg's sockets and free it with its LegMedia (not attached to any worker).
cdef void leg_free(Leg *leg) noexcept nogil
# pthread entry point: arg is the Worker; returns when the worker is asked to stop.
cdef void *worker_main(void *arg) noexcept nogil

cdef void cmd_set_media(Worker *w, Cmd *cmd) noexcept nogil  # ptr: LegMedia
cdef void cmd_play(Worker *w, Cmd *cmd) noexcept nogil  # ptr: Player, or ToneGen if arg
cdef void cmd_stop_playing(Worker *w, Cmd *cmd) noexcept nogil
cdef void cmd_send_dtmf(Worker *w, Cmd *cmd) noexcept nogil  # ptr/payload_type: digits
cdef void cmd_inband(Worker *w, Cmd *cmd) noexcept nogil  # arg: enabled
cdef void cmd_tap_add(Worker *w, Cmd *cmd) noexcept nogil  # ptr: RecTap
cdef void cmd_tap_remove(Worker *w, Cmd *cmd) noexcept nogil
cdef void cmd_tap_retarget(Worker *w, Cmd *cmd) noexcept nogil  # ptr: RecTap, leg, other
cdef void cmd_tap_pause(Worker *w, Cmd *cmd) noexcept nogil  # ptr: RecTap, arg: paused
cdef void cmd_mix_join(Worker *w, Cmd *cmd) noexcept nogil  # ptr: MixNode, arg: slot
cdef void cmd_mix_leave(Worker *w, Cmd *cmd) noexcept nogil
cdef void cmd_mix_hearing(Worker *w, Cmd *cmd) noexcept nogil  # arg: listener<<8|talker
cdef void cmd_nothing(Worker *w, Cmd *cmd) noexcept nogil  # frees what it owns, in turn
