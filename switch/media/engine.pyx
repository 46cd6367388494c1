# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""MediaEngine: RTP relay worker threads in C, the GIL released for their whole life.

Each worker is a pthread running ``worker_loop``: epoll over its legs' sockets and a
wake eventfd, ``recvmmsg`` batches, immediate relay to the bridged peer (``sendto`` for
one packet, ``sendmmsg`` for a batch), and a 20 ms tick on absolute CLOCK_MONOTONIC
deadlines (``next += 20 ms``; after a stall at most MAX_CATCHUP_TICKS ticks are run back
to back, then the clock re-anchors) for RTP timeouts and statistics.

Python talks to a worker through a mutex-protected queue of commands and its wake
eventfd, and never waits for it: a method checks its arguments (raising MediaError or
ValueError at once), decides what it can itself (leg ids, the worker, the port: the
bind is a syscall in the caller; recording and mix ids), queues the command, writes the
eventfd if the queue was empty, and returns. Each worker applies its queue in order,
shortly after (a packet that arrives before the command is applied is handled the old
way: not yet relayed, recorded, mixed ...). What only the worker can find out comes
back as an event (CommandFailed). Whatever a queued command points to lives until the
worker has applied it (see engine_core.pyx). ``sync()`` waits until every queued
command is applied: for tests and stop(), never for call control. While the engine is
stopped, commands are applied directly by the caller. Call the engine's methods from
one thread (the asyncio loop).

Legs that talk to each other live on one worker: ``open_leg(group=...)`` puts a group's
legs on the same worker, and ``bridge(a, b)`` moves ``b`` to ``a``'s worker if they
differ (detach from the old worker; attach to the new, which applies nothing after that
until the old one has let go), keeping its outgoing stream state so the far end still
sees one continuous stream.

Media beyond relay (per-leg state in legmedia.pyx, allocated when a leg first needs it).
Each tick runs, in order: (1) per leg: timers, RTCP SR/RR when due, and for legs whose
audio is needed (recorded, mixed, in-band DTMF) one jitter-buffer pull decoded to PCM
(silence when lost); (2) every mix on the worker (mixer.pxd, hears masks); (3) every
recording tap (recorder.pxd ring, never blocks); (4) per leg, what the engine itself
sends: RFC 4733 digits first, then prompts/tones, then the leg's mix output. While the
engine is a leg's source, relay toward that leg pauses; generated packets continue the
leg's SSRC and seq, with the marker and a timestamp advanced by the time elapsed when
the source changes (same rule as a re-bridge). Pure relay legs never touch a jitter
buffer. RFC 4733 packets received on any leg are fed to its receive state machine
(one DtmfReceived per key press, at its end) and still relayed.

Where the code lives: this module holds MediaEngine's media commands on top of
RelayCore (engine_core.pyx: workers, legs, bridging, events, stats); the worker thread
is engine_worker.pyx (loop, command application), engine_relay.pyx (packet path),
engine_tick.pyx (per-tick work) and engine_events.pyx (event ring), over the structs
and OS declarations of engine_types.pxd.
"""


import os

from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from switch.media.engine_core cimport RelayCore, check_int
from switch.media.engine_types cimport (
    CMD_CALL,
    REC_MAX_EXTRA,
    SAMPLES_PER_MS,
    Cmd,
    MixNode,
    RecExtra,
    RecTap,
    Worker,
)
from switch.media.engine_worker cimport (
    cmd_inband,
    cmd_mix_hearing,
    cmd_nothing,
    cmd_mix_join,
    cmd_mix_leave,
    cmd_play,
    cmd_send_dtmf,
    cmd_set_media,
    cmd_stop_playing,
    cmd_tap_add,
    cmd_tap_pause,
    cmd_tap_remove,
    cmd_tap_retarget,
)
from switch.media.legmedia cimport LM_MAX_DIGITS, LegMedia, lm_init
from switch.media.mixer cimport MIX_MAX_PARTIES, mix_init
from switch.media.player cimport PromptPlayer
from switch.media.recorder cimport Recording
from switch.media.tones cimport ToneGen, dbm0_peak, tone_add_segment, tone_init

from switch.media.events import MediaError
from switch.media.feeders import recording_feeders
from switch.media.player import PromptPlayer as _PromptPlayer
from switch.media.recorder import RecorderWriter as _RecorderWriter
from switch.media.tones import CALL_PROGRESS_TONES
from switch.media.wav import read_prompt

# mode -> (agent hears the supervisor, customer hears the supervisor)
MONITOR_MODES = {"listen": (False, False), "whisper": (True, False), "barge": (True, True)}


cdef class MediaEngine(RelayCore):
    """The media plane. See the module docstring for the threading model."""

    def __cinit__(self, *args, **kwargs):
        # RelayCore.__cinit__ has validated the arguments and set the workers up.
        self._recordings = {}
        self._players = {}
        self._mixes = {}
        self._next_media_id = 1

    def __dealloc__(self):
        # Before this object's players and recordings go: no worker may read them then.
        self._halt()

    def start(self):
        """Start one worker thread per configured worker."""
        RelayCore.start(self)
        if self._writer is None:
            self._writer = _RecorderWriter()

    def stop(self):
        """Join the worker threads and close every leg (its ports become free)."""
        RelayCore.stop(self)
        for mix_id in list(self._mixes):
            free(<MixNode *><size_t>self._mixes.pop(mix_id)[0])
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def stats(self):
        """Engine-wide clock figures: ticks, tick_overruns (ticks that started more than
        one 20 ms period late), events_dropped, recording_frames_dropped (frames the
        recorder's writer could not take in time), and the same per worker."""
        figures = RelayCore.stats(self)
        per_worker = figures.pop("workers")
        figures.update(
            recordings=len(self._recordings),
            recording_frames_dropped=sum(entry[0].dropped_frames
                                         for entry in self._recordings.values()),
            mixes=len(self._mixes),
            workers=per_worker,
        )
        return figures

    cdef int _release_media(self, Leg *leg, object leg_id) except -1:
        for rec_id, entry in list(self._recordings.items()):
            if leg_id in entry[2]:
                self.stop_recording(rec_id)
        for mix_id, entry in list(self._mixes.items()):
            if leg_id in entry[1]:
                self.leave_mix(mix_id, leg_id)
        if leg.has_media:
            self._call(leg, cmd_stop_playing, NULL, 0)
        self._let_go_player(leg, leg_id)
        return 0

    cdef bint _attached(self, object leg_id) except -1:
        return any(leg_id in entry[2] for entry in self._recordings.values()) or any(
            leg_id in entry[1] for entry in self._mixes.values())

    # -- media commands: each is applied by the leg's worker (see RelayCore._call)

    cdef int _media(self, Leg *leg) except -1:
        """Hand the leg a LegMedia (once): the leg owns it from then on."""
        cdef LegMedia *m
        cdef Cmd *cmd
        if leg.has_media:
            return 0
        cmd = self._new_cmd(CMD_CALL, leg)
        m = <LegMedia *>malloc(sizeof(LegMedia))
        if m == NULL:
            free(cmd)
            raise MemoryError()
        lm_init(m)
        cmd.fn = cmd_set_media
        cmd.ptr = m
        leg.has_media = True
        self._submit(leg.worker, cmd)
        return 0

    cdef _let_go_player(self, Leg *leg, object leg_id):
        """The leg's PromptPlayer, if any, lives until its worker has applied what was
        just queued (a play, stop or close that stops reading it)."""
        player = self._players.pop(leg_id, None)
        if player is not None:
            self._defer(leg.worker, player)

    def record(self, leg_a, leg_b=None, path=None, *, stereo=True):
        """Record leg_a's received audio (customer, left) and leg_b's (agent, right), or
        with stereo=False their mono mix, to the WAV file ``path``; return its id."""
        cdef Leg *a = self._leg(leg_a)
        cdef Leg *b = NULL if leg_b is None else self._leg(leg_b)
        cdef RecTap *tap
        cdef Recording recording
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path must be a str or os.PathLike, got {path!r}")
        if not isinstance(stereo, bool):
            raise ValueError(f"stereo must be a bool, got {stereo!r}")
        if b == a:
            raise ValueError(f"cannot record leg {leg_a} against itself")
        if b != NULL:
            self._move(b, a.worker)
        if self._writer is None:
            self._writer = _RecorderWriter()
        self._media(a)
        if b != NULL:
            self._media(b)
        recording = self._writer.open(path, 2 if stereo else 1)
        tap = <RecTap *>calloc(1, sizeof(RecTap))
        if tap == NULL:
            recording.close()
            raise MemoryError()
        tap.id = self._next_media_id
        self._next_media_id += 1
        tap.state = recording.state
        tap.a = a
        tap.b = b
        tap.stereo = stereo
        self._call(a, cmd_tap_add, tap, 0)
        legs = (leg_a,) if leg_b is None else (leg_a, leg_b)
        self._recordings[tap.id] = (recording, <size_t>tap, legs)
        return tap.id

    def stop_recording(self, recording_id):
        """Stop feeding the recording, flush it and finalise its WAV header (at once:
        frames the worker writes until it has removed the tap are ignored)."""
        cdef RecTap *tap
        cdef Worker *w
        cdef Leg *feeder
        entry = self._recordings.pop(recording_id, None)
        if entry is None:
            raise MediaError(f"no such recording: {recording_id!r}")
        recording, address, legs = entry
        tap = <RecTap *><size_t>address
        feeder = self._leg(legs[0])  # never tap.a: the worker may be re-pointing it
        w = feeder.worker
        self._call(feeder, cmd_tap_remove, tap, 0, tap)  # the worker frees the tap
        self._defer(w, recording)  # its RecordingState is read until then
        recording.close()

    def retarget_recording(self, recording_id, leg_a, leg_b=None, extra=()):
        """Feed the recording from leg_a (left) and leg_b (right) from the next tick on,
        into the same file (a transfer, a new party): the legs it was fed from are let
        go, the new ones move to its worker. ``extra`` legs (up to 4: a conference
        member, a supervisor barging in) are mixed into the right channel."""
        cdef RecTap *tap
        cdef Leg *feeder
        cdef Worker *home
        cdef Leg *a = self._leg(leg_a)
        cdef Leg *b = NULL if leg_b is None else self._leg(leg_b)
        cdef Cmd *cmd
        cdef RecExtra *added = NULL
        entry = self._recordings.get(recording_id)
        if entry is None:
            raise MediaError(f"no such recording: {recording_id!r}")
        fed = recording_feeders(leg_a, leg_b, extra)
        extra = fed[1 if leg_b is None else 2:]
        for leg in extra:
            self._leg(leg)
        recording, address, legs = entry
        tap = <RecTap *><size_t>address
        feeder = self._leg(legs[0])
        home = feeder.worker
        # Let go first, so the new legs are free to move to the recording's worker.
        self._recordings[recording_id] = (recording, address, ())
        try:
            self._move(a, home)
            if b != NULL:
                self._move(b, home)
            for leg in extra:
                self._move(self._leg(leg), home)
        except MediaError:
            self._recordings[recording_id] = entry
            raise
        self._media(a)
        if b != NULL:
            self._media(b)
        if extra:
            added = <RecExtra *>calloc(1, sizeof(RecExtra))
            if added == NULL:
                self._recordings[recording_id] = entry
                raise MemoryError()
            for leg in extra:
                self._media(self._leg(leg))
                added.legs[added.n] = self._leg(leg)
                added.n += 1
        cmd = self._new_cmd(CMD_CALL, a, added)
        cmd.fn = cmd_tap_retarget
        cmd.ptr = tap
        cmd.other = b
        self._submit(home, cmd)
        self._recordings[recording_id] = (recording, address, fed)

    def pause_recording(self, recording_id, paused):
        """While paused the recording takes silence (its timeline goes on)."""
        entry = self._recordings.get(recording_id)
        if entry is None:
            raise MediaError(f"no such recording: {recording_id!r}")
        if not isinstance(paused, bool):
            raise ValueError(f"paused must be a bool, got {paused!r}")
        self._call(self._leg(entry[2][0]), cmd_tap_pause, <RecTap *><size_t>entry[1],
                   1 if paused else 0)

    def play(self, leg, prompts, *, loop=False):
        """Play prompts (WAV paths, or raw 16-bit 8 kHz PCM bytes) toward the leg."""
        cdef Leg *target = self._leg(leg)
        cdef PromptPlayer player
        if (not isinstance(prompts, list) or not prompts
                or not all(isinstance(p, (str, bytes, os.PathLike)) for p in prompts)):
            raise ValueError(
                f"prompts must be a non-empty list of WAV paths or PCM bytes, got {prompts!r}"
            )
        pcm = [p if isinstance(p, bytes) else read_prompt(p) for p in prompts]
        player = _PromptPlayer(pcm, loop=bool(loop))
        self._media(target)
        self._call(target, cmd_play, &player.player, 0)
        self._let_go_player(target, leg)
        self._players[leg] = player  # alive while it may be played

    def play_tone(self, leg, name):
        """Play a call-progress tone (dial, ringback, busy, congestion) until stopped."""
        cdef Leg *target = self._leg(leg)
        cdef ToneGen gen
        cdef ToneGen *owned
        cdef double amplitude
        if name not in CALL_PROGRESS_TONES:
            raise ValueError(
                f"unknown tone {name!r}, expected one of {', '.join(CALL_PROGRESS_TONES)}"
            )
        freqs, level_dbm0, cadence_ms = CALL_PROGRESS_TONES[name]
        amplitude = dbm0_peak(level_dbm0)
        f1 = freqs[0]
        f2 = freqs[1] if len(freqs) > 1 else 0.0
        amp2 = amplitude if len(freqs) > 1 else 0.0
        tone_init(&gen, len(cadence_ms) > 0)
        if not cadence_ms:
            tone_add_segment(&gen, 0, f1, amplitude, f2, amp2)
        for k in range(0, len(cadence_ms), 2):
            tone_add_segment(&gen, cadence_ms[k] * SAMPLES_PER_MS, f1, amplitude, f2, amp2)
            if k + 1 < len(cadence_ms):
                tone_add_segment(&gen, cadence_ms[k + 1] * SAMPLES_PER_MS, 0.0, 0.0, 0.0, 0.0)
        self._media(target)
        owned = <ToneGen *>malloc(sizeof(ToneGen))  # by value: the command owns a copy
        if owned == NULL:
            raise MemoryError()
        owned[0] = gen
        self._call(target, cmd_play, owned, 1, owned)
        self._let_go_player(target, leg)

    def stop_playing(self, leg):
        """Stop prompts or tone on the leg (no PlaybackFinished); relay or mix resume."""
        cdef Leg *target = self._leg(leg)
        if target.has_media:
            self._call(target, cmd_stop_playing, NULL, 0)
        self._let_go_player(target, leg)

    def send_dtmf(self, leg, digits, *, duration_ms=100):
        """Send digits as RFC 4733 telephone-events, 100 ms apart, on the leg's stream."""
        cdef Leg *target = self._leg(leg)
        cdef Cmd *cmd
        cdef char *owned
        if (not isinstance(digits, str) or not 1 <= len(digits) <= LM_MAX_DIGITS
                or any(d not in "0123456789*#ABCD" for d in digits)):
            raise ValueError(f"digits must be 1-{LM_MAX_DIGITS} of 0-9 * # A-D, got {digits!r}")
        check_int("duration_ms", duration_ms, 40, 2000)
        if target.ctl_dtmf_payload_type < 0:
            raise MediaError(f"leg {leg} has no telephone-event payload type")
        raw = digits.encode("ascii")
        self._media(target)
        owned = <char *>malloc(len(raw))  # by value: the bytes object may go first
        if owned == NULL:
            raise MemoryError()
        memcpy(owned, <char *>raw, len(raw))
        cmd = self._new_cmd(CMD_CALL, target, owned)
        cmd.fn = cmd_send_dtmf
        cmd.ptr = owned
        cmd.payload_type = len(raw)
        cmd.arg = duration_ms * SAMPLES_PER_MS
        self._submit(target.worker, cmd)

    def set_inband_dtmf(self, leg, enabled):
        """Detect DTMF tones in the leg's decoded audio (DtmfReceived, duration_ms 0)."""
        cdef Leg *target = self._leg(leg)
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be a bool, got {enabled!r}")
        self._media(target)
        self._call(target, cmd_inband, NULL, enabled)

    def create_mix(self):
        """A new, empty mix; its first participant decides its worker (for good)."""
        cdef MixNode *node = <MixNode *>calloc(1, sizeof(MixNode))
        if node == NULL:
            raise MemoryError()
        mix_init(&node.mix)
        node.id = self._next_media_id
        self._next_media_id += 1
        # Its worker is its first participant's, for good: a mix never changes worker,
        # so no two workers can ever touch its MixNode.
        self._mixes[node.id] = [<size_t>node, {}, -1]
        return node.id

    def _mix(self, mix):
        entry = self._mixes.get(mix) if isinstance(mix, int) else None
        if entry is None:
            raise MediaError(f"no such mix: {mix!r}")
        return entry

    def join_mix(self, mix, leg):
        """Add the leg: it hears everyone in the mix and everyone hears it."""
        entry = self._mix(mix)
        address, members, worker = entry
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Leg *target = self._leg(leg)
        if leg in members:
            return
        for entry_id, entry in self._mixes.items():
            if leg in entry[1]:
                raise MediaError(f"leg {leg} is already in mix {entry_id}")
        if len(members) >= MIX_MAX_PARTIES:
            raise MediaError(f"mix {mix} is full ({MIX_MAX_PARTIES} participants)")
        if worker >= 0:
            self._move(target, &self.workers[<int>worker])
        slot = min(set(range(MIX_MAX_PARTIES)) - set(members.values()))
        self._media(target)
        self._call(target, cmd_mix_join, node, slot)
        members[leg] = slot
        entry[2] = target.worker.index

    def leave_mix(self, mix, leg):
        """Take the leg out of the mix; relay toward it resumes if it is bridged."""
        address, members, _ = self._mix(mix)
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Leg *target = self._leg(leg)
        if leg not in members:
            raise MediaError(f"leg {leg} is not in mix {mix}")
        self._call(target, cmd_mix_leave, node, members.pop(leg))

    def destroy_mix(self, mix):
        """Free an emptied mix (every participant has left); its id is unknown after."""
        address, members, worker = self._mix(mix)
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Cmd *cmd
        if members:
            raise MediaError(f"mix {mix} still has participants: {sorted(members)}")
        del self._mixes[mix]
        if worker < 0:  # nobody ever joined: no worker has seen it
            free(node)
            return
        # The worker may still be applying the leaves queued before this: it frees the
        # node after them, in its own turn.
        cmd = self._new_cmd(CMD_CALL, NULL, node)
        cmd.fn = cmd_nothing
        self._submit(&self.workers[<int>worker], cmd)

    def set_hearing(self, mix, listener_leg, talker_leg, audible):
        """Whether listener_leg hears talker_leg in the mix."""
        address, members, worker = self._mix(mix)
        cdef MixNode *node = <MixNode *><size_t>address
        cdef Cmd *cmd
        for leg in (listener_leg, talker_leg):
            if leg not in members:
                raise MediaError(f"leg {leg!r} is not in mix {mix}")
        if not isinstance(audible, bool):
            raise ValueError(f"audible must be a bool, got {audible!r}")
        cmd = self._new_cmd(CMD_CALL, self._leg(listener_leg))
        cmd.fn = cmd_mix_hearing
        cmd.ptr = node
        cmd.arg = (members[listener_leg] << 8) | members[talker_leg]
        cmd.payload_type = audible
        self._submit(&self.workers[<int>worker], cmd)

    def monitor(self, supervisor_leg, agent_leg, customer_leg, mode):
        """Supervisor on a call: "listen" (hears both, heard by none), "whisper" (heard
        by the agent only) or "barge" (three-way). Reuses the mix the agent is in, if
        any; returns the mix id."""
        if mode not in MONITOR_MODES:
            raise ValueError(f"mode must be one of listen, whisper, barge, got {mode!r}")
        legs = (supervisor_leg, agent_leg, customer_leg)
        for leg in legs:
            self._leg(leg)
        if len(set(legs)) != 3:
            raise ValueError(f"monitor needs three different legs, got {legs!r}")
        mix = next((mix_id for mix_id, entry in self._mixes.items()
                    if agent_leg in entry[1]), None)
        if mix is None:
            mix = self.create_mix()
        for leg in (agent_leg, customer_leg, supervisor_leg):
            self.join_mix(mix, leg)
        agent_hears, customer_hears = MONITOR_MODES[mode]
        self.set_hearing(mix, agent_leg, customer_leg, True)
        self.set_hearing(mix, customer_leg, agent_leg, True)
        self.set_hearing(mix, supervisor_leg, agent_leg, True)
        self.set_hearing(mix, supervisor_leg, customer_leg, True)
        self.set_hearing(mix, agent_leg, supervisor_leg, agent_hears)
        self.set_hearing(mix, customer_leg, supervisor_leg, customer_hears)
        return mix
