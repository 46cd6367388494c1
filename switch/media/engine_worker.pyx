# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The worker thread (see engine_worker.pxd): epoll over its legs' sockets and its wake
eventfd, relay as packets arrive (engine_relay), commands after the sockets, and the
20 ms tick on absolute deadlines (engine_tick).

Commands: the worker takes its whole queue at once and applies it in order, freeing
each command after it. A command gated on another worker (a leg moving in, which that
worker must have detached first) stops the batch: the rest goes back to the head of the
queue until the other worker, having applied the detach, writes this one's eventfd.
``completed`` (the last command's seq) is published under the mutex after each batch
and before any such wake-up; the control side reads it to release what the applied
commands no longer need, and sync() waits on it.
"""

from libc.errno cimport errno
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, timespec
from posix.unistd cimport close, read, write

from switch.media.engine_events cimport post_event

from switch.media.engine_relay cimport receive_rtcp, receive_rtp
from switch.media.engine_tick cimport run_tick
from switch.media.engine_types cimport (
    CMD_ATTACH,
    CMD_BRIDGE,
    CMD_CALL,
    CMD_CLOSE,
    CMD_DETACH,
    CMD_HOLD,
    CMD_SET_REMOTE,
    CMD_UNBRIDGE,
    EPOLL_CTL_ADD,
    EPOLL_CTL_DEL,
    EPOLLIN,
    EV_COMMAND_FAILED,
    FAILED_ATTACH,
    GEN_SOURCE,
    MAX_CATCHUP_TICKS,
    MAX_EVENTS,
    TICK_NS,
    IoBufs,
    Leg,
    MixNode,
    RecExtra,
    RecTap,
    Sock,
    epoll_ctl,
    epoll_event,
    epoll_wait,
    now_ns,
    pthread_cond_broadcast,
    pthread_cond_wait,
    pthread_mutex_lock,
    pthread_mutex_unlock,
    EventRec,
)
from switch.media.goertzel cimport goertzel_init
from switch.media.jitterbuffer cimport jb_init
from switch.media.legmedia cimport LegMedia
from switch.media.mixer cimport MIX_MAX_PARTIES
from switch.media.player cimport Player
from switch.media.tones cimport ToneGen


cdef extern from "<time.h>" nogil:
    int TIMER_ABSTIME
    int clock_nanosleep(int clock_id, int flags, const timespec *request, timespec *remain)


cdef void unlink_peer(Leg *leg) noexcept nogil:
    if leg.peer != NULL:
        leg.peer.peer = NULL
        leg.peer = NULL


cdef void detach(Worker *w, Leg *leg) noexcept nogil:
    epoll_ctl(w.epfd, EPOLL_CTL_DEL, leg.rtp.fd, NULL)
    if leg.rtcp.fd >= 0:
        epoll_ctl(w.epfd, EPOLL_CTL_DEL, leg.rtcp.fd, NULL)
    unlink_peer(leg)
    if leg.prev != NULL:
        leg.prev.next = leg.next
    else:
        w.legs = leg.next
    if leg.next != NULL:
        leg.next.prev = leg.prev
    leg.prev = leg.next = NULL
    w.n_legs -= 1


cdef void attach(Worker *w, Leg *leg) noexcept nogil:
    cdef epoll_event ev
    cdef EventRec rec
    cdef int rc
    leg.prev = NULL
    leg.next = w.legs
    if w.legs != NULL:
        w.legs.prev = leg
    w.legs = leg
    w.n_legs += 1
    ev.events = EPOLLIN  # level-triggered: one recvmmsg per readiness, no EAGAIN call
    ev.data.ptr = &leg.rtp
    rc = epoll_ctl(w.epfd, EPOLL_CTL_ADD, leg.rtp.fd, &ev)
    if rc == 0 and leg.rtcp.fd >= 0:
        ev.data.ptr = &leg.rtcp
        rc = epoll_ctl(w.epfd, EPOLL_CTL_ADD, leg.rtcp.fd, &ev)
    if rc != 0:  # only the worker can find out (e.g. ENOSPC: max_user_watches)
        memset(&rec, 0, sizeof(rec))
        rec.kind = EV_COMMAND_FAILED
        rec.leg = leg.id
        rec.value = errno
        rec.digit = FAILED_ATTACH
        post_event(w.shared, &rec)


cdef void leg_free(Leg *leg) noexcept nogil:
    close(leg.rtp.fd)
    if leg.rtcp.fd >= 0:
        close(leg.rtcp.fd)
    free(leg.media)
    free(leg)


cdef void apply_command(Worker *w, Cmd *cmd) noexcept nogil:
    cdef Leg *leg = cmd.leg
    if cmd.kind == CMD_ATTACH:
        attach(w, leg)
    elif cmd.kind == CMD_DETACH:
        detach(w, leg)
    elif cmd.kind == CMD_CLOSE:
        detach(w, leg)
        leg_free(leg)  # sockets closed here: no fd number is reused while in our epoll
    elif cmd.kind == CMD_SET_REMOTE:
        leg.remote = cmd.addr
        leg.remote_known = True
        leg.remote_set = True
        leg.latched = False  # a new offer: learn the source again from its first packet
        leg.payload_type = cmd.payload_type
        leg.dtmf_payload_type = cmd.dtmf_payload_type
        leg.last_rx_ns = now_ns()
        leg.timeout_posted = False
    elif cmd.kind == CMD_BRIDGE:
        unlink_peer(leg)
        unlink_peer(cmd.other)
        leg.peer = cmd.other
        cmd.other.peer = leg
    elif cmd.kind == CMD_UNBRIDGE:
        unlink_peer(leg)
    elif cmd.kind == CMD_CALL:
        cmd.fn(w, cmd)


cdef void apply_and_free(Worker *w, Cmd *cmd) noexcept nogil:
    apply_command(w, cmd)
    free(cmd.owned)
    free(cmd)


cdef void publish(Worker *w, uint64_t completed) noexcept nogil:
    pthread_mutex_lock(&w.mutex)
    w.completed = completed
    pthread_cond_broadcast(&w.cond)  # sync(), and the synchronous mode, wait on it
    pthread_mutex_unlock(&w.mutex)


cdef bint gate_open(const Cmd *cmd) noexcept nogil:
    cdef bint is_open
    pthread_mutex_lock(&cmd.gate.mutex)
    is_open = cmd.gate.completed >= cmd.gate_seq
    pthread_mutex_unlock(&cmd.gate.mutex)
    return is_open


cdef void hold(Worker *w) noexcept nogil:
    """Test hook (CMD_HOLD): park until the control side clears ``hold``."""
    pthread_mutex_lock(&w.mutex)
    w.held = True
    pthread_cond_broadcast(&w.cond)
    while w.hold:
        pthread_cond_wait(&w.cond, &w.mutex)
    w.held = False
    pthread_mutex_unlock(&w.mutex)


cdef bint run_commands(Worker *w) noexcept nogil:
    """Apply queued commands; True when the worker is asked to stop."""
    cdef uint64_t counter, one = 1
    cdef uint64_t done
    cdef Cmd *cmd
    cdef Cmd *next_cmd
    cdef Cmd *last
    cdef Worker *notify
    cdef bint stopping
    read(w.wakefd, &counter, 8)  # before looking at gates: a wake-up after is not lost
    pthread_mutex_lock(&w.mutex)
    cmd = w.cmd_head
    w.cmd_head = w.cmd_tail = NULL
    stopping = w.stopping
    done = w.completed
    pthread_mutex_unlock(&w.mutex)
    while cmd != NULL:
        if cmd.gate != NULL and not gate_open(cmd):
            # Put the rest back in front of whatever was queued meanwhile; the gate's
            # worker writes our eventfd once it has applied the command we wait for.
            last = cmd
            while last.next != NULL:
                last = last.next
            pthread_mutex_lock(&w.mutex)
            last.next = w.cmd_head
            if w.cmd_head == NULL:
                w.cmd_tail = last
            w.cmd_head = cmd
            w.completed = done
            pthread_cond_broadcast(&w.cond)
            pthread_mutex_unlock(&w.mutex)
            return False
        next_cmd = cmd.next
        done = cmd.seq
        notify = cmd.notify
        if cmd.kind == CMD_HOLD:
            publish(w, done)
            hold(w)
            free(cmd)
        else:
            apply_and_free(w, cmd)
        if notify != NULL:
            publish(w, done)
            write(notify.wakefd, &one, 8)
        cmd = next_cmd
    publish(w, done)
    return stopping


# ---- media commands (CMD_CALL): run on the worker that owns the leg ----------------

cdef void decode_use(LegMedia *m, int delta) noexcept nogil:
    if m.decode_users == 0 and delta > 0:
        jb_init(&m.jb)  # a fresh start: no stale frames from an earlier use
    m.decode_users += delta


cdef void cmd_set_media(Worker *w, Cmd *cmd) noexcept nogil:
    cmd.leg.media = <LegMedia *>cmd.ptr


cdef void restart_source(Leg *leg) noexcept nogil:
    # The next generated frame starts a new source: marker, ts by the time elapsed.
    if leg.out_src_leg == GEN_SOURCE:
        leg.out_src_leg = 0


cdef void cmd_play(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    if cmd.arg:  # a tone
        m.tone = (<ToneGen *>cmd.ptr)[0]
        m.tone_on = True
        m.player = NULL
    else:
        m.tone_on = False
        m.player = <Player *>cmd.ptr
    m.playing = True
    m.play_posts_finished = True
    restart_source(cmd.leg)


cdef void cmd_stop_playing(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    m.playing = False
    m.tone_on = False
    m.player = NULL


cdef void cmd_send_dtmf(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    memcpy(m.digits, cmd.ptr, <size_t>cmd.payload_type)
    m.n_digits = cmd.payload_type
    m.digit_index = 0
    m.dtmf_duration_samples = <uint32_t>cmd.arg
    m.n_packets = 0
    m.event_elapsed = 0
    m.dtmf_active = True
    restart_source(cmd.leg)


cdef void cmd_inband(Worker *w, Cmd *cmd) noexcept nogil:
    cdef LegMedia *m = cmd.leg.media
    if cmd.arg and not m.inband:
        goertzel_init(&m.goertzel)
        m.inband = True
        decode_use(m, 1)
    elif not cmd.arg and m.inband:
        m.inband = False
        decode_use(m, -1)


cdef void cmd_tap_add(Worker *w, Cmd *cmd) noexcept nogil:
    cdef RecTap *tap = <RecTap *>cmd.ptr
    decode_use(tap.a.media, 1)
    if tap.b != NULL:
        decode_use(tap.b.media, 1)
    tap.prev = NULL
    tap.next = w.taps
    if w.taps != NULL:
        w.taps.prev = tap
    w.taps = tap


cdef void cmd_tap_remove(Worker *w, Cmd *cmd) noexcept nogil:
    cdef RecTap *tap = <RecTap *>cmd.ptr
    cdef int i
    decode_use(tap.a.media, -1)
    if tap.b != NULL:
        decode_use(tap.b.media, -1)
    for i in range(tap.n_extra):
        decode_use(tap.extra[i].media, -1)
    if tap.prev != NULL:
        tap.prev.next = tap.next
    else:
        w.taps = tap.next
    if tap.next != NULL:
        tap.next.prev = tap.prev
    tap.prev = tap.next = NULL


cdef void cmd_tap_retarget(Worker *w, Cmd *cmd) noexcept nogil:
    # The same file, fed from other legs from this tick on (uses taken before let go,
    # so a leg that stays keeps its jitter buffer).
    cdef RecTap *tap = <RecTap *>cmd.ptr
    cdef RecExtra *extra = <RecExtra *>cmd.owned  # the new added parties (NULL: none)
    cdef int i
    decode_use(cmd.leg.media, 1)
    if cmd.other != NULL:
        decode_use(cmd.other.media, 1)
    if extra != NULL:
        for i in range(extra.n):
            decode_use(extra.legs[i].media, 1)
    decode_use(tap.a.media, -1)
    if tap.b != NULL:
        decode_use(tap.b.media, -1)
    for i in range(tap.n_extra):
        decode_use(tap.extra[i].media, -1)
    tap.a = cmd.leg
    tap.b = cmd.other
    tap.n_extra = 0 if extra == NULL else extra.n
    for i in range(tap.n_extra):
        tap.extra[i] = extra.legs[i]


cdef void cmd_tap_pause(Worker *w, Cmd *cmd) noexcept nogil:
    (<RecTap *>cmd.ptr).paused = cmd.arg != 0


cdef void cmd_mix_join(Worker *w, Cmd *cmd) noexcept nogil:
    cdef MixNode *node = <MixNode *>cmd.ptr
    cdef int slot = <int>cmd.arg
    cdef int other
    if node.worker == NULL:
        node.worker = w
        node.prev = NULL
        node.next = w.mixes
        if w.mixes != NULL:
            w.mixes.prev = node
        w.mixes = node
    node.slots[slot] = cmd.leg
    cmd.leg.media.mix = node
    cmd.leg.media.mix_slot = slot
    memset(cmd.leg.media.mix_out, 0, sizeof(cmd.leg.media.mix_out))
    decode_use(cmd.leg.media, 1)
    node.mix.hears[slot] = 0
    for other in range(MIX_MAX_PARTIES):  # a newcomer hears everyone and is heard
        if node.mix.active & (1u << other):
            node.mix.hears[slot] |= 1u << other
            node.mix.hears[other] |= 1u << slot
    node.mix.active |= 1u << slot
    restart_source(cmd.leg)


cdef void cmd_mix_leave(Worker *w, Cmd *cmd) noexcept nogil:
    cdef MixNode *node = <MixNode *>cmd.ptr
    cdef int slot = <int>cmd.arg
    cdef int other
    node.mix.active &= ~(1u << slot)
    node.mix.hears[slot] = 0
    for other in range(MIX_MAX_PARTIES):
        node.mix.hears[other] &= ~(1u << slot)
    node.slots[slot] = NULL
    cmd.leg.media.mix = NULL
    decode_use(cmd.leg.media, -1)
    if node.mix.active == 0:
        if node.prev != NULL:
            node.prev.next = node.next
        else:
            w.mixes = node.next
        if node.next != NULL:
            node.next.prev = node.prev
        node.prev = node.next = NULL
        node.worker = NULL


cdef void cmd_mix_hearing(Worker *w, Cmd *cmd) noexcept nogil:
    cdef MixNode *node = <MixNode *>cmd.ptr
    cdef int listener = <int>(cmd.arg >> 8)
    cdef int talker = <int>(cmd.arg & 0xFF)
    if cmd.payload_type:
        node.mix.hears[listener] |= 1u << talker
    else:
        node.mix.hears[listener] &= ~(1u << talker)


cdef void cmd_nothing(Worker *w, Cmd *cmd) noexcept nogil:
    # Applied in its turn after every command queued before it; apply_and_free then
    # frees what it owns (an emptied mix, say), which nothing on the worker uses by now.
    pass


cdef void nap_until(int64_t deadline_ns) noexcept nogil:
    cdef timespec ts
    ts.tv_sec = deadline_ns // 1000000000
    ts.tv_nsec = deadline_ns % 1000000000
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)


cdef void worker_loop(Worker *w) noexcept nogil:
    cdef IoBufs *io = w.io
    cdef int64_t now = now_ns()
    cdef int64_t next_tick = now + TICK_NS
    cdef int n, i, ticks, timeout_ms
    cdef bint woken
    cdef Sock *sock
    w.next_stats_ns = now + w.shared.stats_interval_ns
    while True:
        now = now_ns()
        timeout_ms = <int>((next_tick - now + 999999) // 1000000) if next_tick > now else 0
        n = epoll_wait(w.epfd, io.events, MAX_EVENTS, timeout_ms)
        woken = False
        for i in range(n):
            sock = <Sock *>io.events[i].data.ptr
            if sock == NULL:
                woken = True  # commands run after the sockets: a detached leg's Sock
                # may still be in this batch, and its memory is freed once detached
            elif sock.is_rtcp:
                receive_rtcp(w, sock.leg)
            else:
                receive_rtp(w, sock.leg)
        if woken and run_commands(w):
            return
        now = now_ns()
        ticks = 0
        while now >= next_tick and ticks < MAX_CATCHUP_TICKS:
            if now - next_tick > TICK_NS:
                w.tick_overruns += 1  # started more than one period after its deadline
            run_tick(w, next_tick)
            next_tick += TICK_NS
            ticks += 1
        if now >= next_tick:  # stalled longer than the catch-up: re-anchor the clock
            next_tick = now + TICK_NS
        if n > 0 and w.shared.wakeup_window_ns > 0:
            # Coalesce readiness: at real pacing each socket holds one packet per 20 ms,
            # so waiting a little lets one epoll_wait report many sockets (bench shows
            # whether that beats a wake-up per packet; it adds up to the window of delay).
            nap_until(min(now + w.shared.wakeup_window_ns, next_tick))


cdef void *worker_main(void *arg) noexcept nogil:
    worker_loop(<Worker *>arg)
    return NULL
