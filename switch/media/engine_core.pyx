# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""RelayCore: the engine's relay half on the Python side (MediaEngine in engine.pyx adds
the media commands): worker threads and their command queues, legs and their ports,
bridging, the event ring and statistics. See engine.pyx for the threading model.

Commands are queued, never waited for. The caller decides everything it can at once
(leg ids, worker, port binding, argument checks) and keeps its own view of it (the
"control side" fields of Leg and Worker). What a queued command points to stays alive
until the worker has applied it: the command carries values or owns heap memory that
the worker frees, a closed leg is freed by the worker (CMD_CLOSE), and Python objects
(players, recordings) and freed ports wait in ``_pending`` until the worker's
``completed`` counter has passed the command that let go of them.
"""

import os
import random
from collections import deque

from libc.errno cimport EADDRINUSE, errno
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, strerror
from posix.unistd cimport close, write

from switch.media.dtmf cimport dtmf_rx_init
from switch.media.engine_events cimport counters_dict, drain_ring, quality
from switch.media.engine_types cimport (
    AF_INET,
    BATCH,
    CMD_ATTACH,
    CMD_BRIDGE,
    CMD_CALL,
    CMD_CLOSE,
    CMD_DETACH,
    CMD_HOLD,
    CMD_SET_REMOTE,
    CMD_UNBRIDGE,
    EFD_CLOEXEC,
    EFD_NONBLOCK,
    EPOLL_CLOEXEC,
    EPOLL_CTL_ADD,
    EPOLLIN,
    EVENT_RING,
    PKT_CAP,
    PT_PCMU,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    SOCK_NONBLOCK,
    EventRec,
    IoBufs,
    bind,
    epoll_create1,
    epoll_ctl,
    epoll_event,
    eventfd,
    htons,
    inet_pton,
    pthread_cond_broadcast,
    pthread_cond_destroy,
    pthread_cond_init,
    pthread_cond_wait,
    pthread_create,
    pthread_join,
    pthread_mutex_destroy,
    pthread_mutex_init,
    pthread_mutex_lock,
    pthread_mutex_unlock,
    sockaddr,
    sockaddr_in,
    socket,
)
from switch.media.engine_worker cimport apply_and_free, leg_free, worker_main

from switch.media.events import MediaError


cdef int parse_ipv4(str host, in_addr *out) except -1:
    if not isinstance(host, str) or inet_pton(AF_INET, host.encode("ascii", "replace"),
                                              out) != 1:
        raise ValueError(f"host must be an IPv4 address, got {host!r}")
    return 0


cdef int check_int(str name, object value, int low, int high) except -1:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer {low}-{high}, got {value!r}")
    return 0


cdef int check_positive(str name, object value) except -1:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not 0 < value < 1e9):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return 0


cdef class RelayCore:
    """Workers, legs, bridging, events: everything but the media commands, which
    MediaEngine (engine.pyx) adds on top through the _release_media/_attached hooks.
    See engine.pyx's docstring for the threading model."""

    def __cinit__(self, workers=None, port_range=(20000, 29999), bind_host="127.0.0.1",
                  rtp_timeout_s=30.0, stats_interval_s=5.0, rtcp_interval_s=5.0,
                  ssrc_seed=None, wakeup_window_us=0, relatch_silence_s=2.0):
        cdef in_addr addr
        cdef int i, low, high
        cdef Worker *w
        cdef epoll_event ev
        if workers is None:
            workers = os.cpu_count() or 1
        check_int("workers", workers, 1, 1024)
        if (not isinstance(port_range, tuple) or len(port_range) != 2
                or not all(isinstance(p, int) and not isinstance(p, bool) for p in port_range)
                or not 1 <= port_range[0] <= port_range[1] <= 65535):
            raise ValueError(
                f"port_range must be (low, high) with 1 <= low <= high <= 65535, "
                f"got {port_range!r}"
            )
        low, high = port_range
        first_even = low + (low & 1)
        if first_even + 1 > high:
            raise ValueError(f"port_range {low}-{high} holds no even port with port+1 in range")
        if not isinstance(bind_host, str) or inet_pton(
            AF_INET, bind_host.encode("ascii", "replace"), &addr
        ) != 1:
            raise ValueError(f"bind_host must be an IPv4 address, got {bind_host!r}")
        check_positive("rtp_timeout_s", rtp_timeout_s)
        check_positive("stats_interval_s", stats_interval_s)
        check_positive("rtcp_interval_s", rtcp_interval_s)
        check_int("wakeup_window_us", wakeup_window_us, 0, 10000)
        if relatch_silence_s is not None and (
            not isinstance(relatch_silence_s, (int, float)) or isinstance(relatch_silence_s, bool)
            or not 0 <= relatch_silence_s < 1e9
        ):
            raise ValueError(
                "relatch_silence_s must be a non-negative number of seconds or None, "
                f"got {relatch_silence_s!r}"
            )
        if ssrc_seed is not None and (not isinstance(ssrc_seed, int)
                                      or isinstance(ssrc_seed, bool)):
            raise ValueError(f"ssrc_seed must be an integer or None, got {ssrc_seed!r}")
        # STYLE rule 16: randomness is injectable; a seed makes SSRCs and the initial
        # sequence numbers and timestamps reproducible for tests.
        self._ssrc_rng = None if ssrc_seed is None else random.Random(ssrc_seed)

        self._port_low = low
        self._port_high = high
        self._bind_host = bind_host.encode("ascii")
        self._free_ports = deque(range(first_even, high, 2))
        self._legs = {}
        self._leg_group = {}
        self._groups = {}
        self._next_leg_id = 1
        self._pending = [deque() for _ in range(workers)]

        self.shared = <Shared *>calloc(1, sizeof(Shared))
        if self.shared == NULL:
            raise MemoryError()
        self.shared.eventfd = -1
        pthread_mutex_init(&self.shared.mutex, NULL)
        self.shared.rtp_timeout_ns = <int64_t>(rtp_timeout_s * 1e9)
        self.shared.stats_interval_ns = <int64_t>(stats_interval_s * 1e9)
        self.shared.rtcp_interval_ns = <int64_t>(rtcp_interval_s * 1e9)
        self.shared.wakeup_window_ns = <int64_t>wakeup_window_us * 1000
        self.shared.relatch_silence_ns = (
            -1 if relatch_silence_s is None else <int64_t>(relatch_silence_s * 1e9)
        )
        self.shared.cap = EVENT_RING
        self.shared.ring = <EventRec *>calloc(EVENT_RING, sizeof(EventRec))
        if self.shared.ring == NULL:
            raise MemoryError()
        self.shared.eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.shared.eventfd < 0:
            raise OSError(errno, strerror(errno).decode())

        self.workers = <Worker *>calloc(workers, sizeof(Worker))
        if self.workers == NULL:
            raise MemoryError()
        for i in range(workers):
            w = &self.workers[i]
            w.index = i
            w.shared = self.shared
            w.epfd = -1
            w.wakefd = -1
            pthread_mutex_init(&w.mutex, NULL)
            pthread_cond_init(&w.cond, NULL)
            self.n_workers += 1
            w.io = <IoBufs *>calloc(1, sizeof(IoBufs))
            if w.io == NULL:
                raise MemoryError()
            for j in range(BATCH):
                w.io.rxiov[j].iov_base = w.io.rxbuf[j]
                w.io.rxiov[j].iov_len = PKT_CAP
                w.io.rx[j].msg_hdr.msg_name = &w.io.rxaddr[j]
                w.io.rx[j].msg_hdr.msg_iov = &w.io.rxiov[j]
                w.io.rx[j].msg_hdr.msg_iovlen = 1
            w.epfd = epoll_create1(EPOLL_CLOEXEC)
            w.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
            if w.epfd < 0 or w.wakefd < 0:
                raise OSError(errno, strerror(errno).decode())
            ev.events = EPOLLIN
            ev.data.ptr = NULL
            epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.wakefd, &ev)

    def __dealloc__(self):
        cdef int i
        cdef Worker *w
        cdef Leg *leg
        cdef Leg *next_leg
        cdef Cmd *cmd
        if self.workers != NULL:
            self._halt()
            for i in range(self.n_workers):
                w = &self.workers[i]
                while w.cmd_head != NULL:  # none after a sync; freed, never applied
                    cmd = w.cmd_head
                    w.cmd_head = cmd.next
                    free(cmd.owned)
                    free(cmd)
                leg = w.legs
                while leg != NULL:
                    next_leg = leg.next
                    leg_free(leg)
                    leg = next_leg
                if w.epfd >= 0:
                    close(w.epfd)
                if w.wakefd >= 0:
                    close(w.wakefd)
                free(w.io)
                pthread_mutex_destroy(&w.mutex)
                pthread_cond_destroy(&w.cond)
            free(self.workers)
            self.workers = NULL
        if self.shared != NULL:
            if self.shared.eventfd >= 0:
                close(self.shared.eventfd)
            free(self.shared.ring)
            pthread_mutex_destroy(&self.shared.mutex)
            free(self.shared)
            self.shared = NULL

    # -- lifecycle

    def start(self):
        """Start one worker thread per configured worker."""
        cdef int i, rc
        if self._running:
            raise MediaError("media engine already started")
        for i in range(self.n_workers):
            self.workers[i].stopping = False
            self.workers[i].hold = False
            rc = pthread_create(&self.workers[i].thread, NULL, worker_main, &self.workers[i])
            if rc != 0:
                self._running = i > 0
                self._stop_threads(i)
                raise MediaError(f"cannot start media worker: {strerror(rc).decode()}")
        self._running = True

    def stop(self):
        """Let the workers apply every queued command, join them, and close every leg
        (its ports become free)."""
        cdef int i
        cdef Leg *leg
        if self._running:
            for i in range(self.n_workers):
                self._resume_worker(i)  # a worker parked by the test hook goes on
            self._sync()
            self._stop_threads(self.n_workers)
        for i in range(self.n_workers):
            leg = self.workers[i].legs
            while leg != NULL:
                self._close_leg(leg.id)
                leg = self.workers[i].legs

    cdef void _halt(self) noexcept:
        """For __dealloc__ (no stop() was called): apply what is queued, join."""
        cdef int i
        if not self._running:
            return
        try:
            for i in range(self.n_workers):
                self._resume_worker(i)
            self._sync()
        except BaseException:
            pass  # nothing to tell anyone; the threads are stopped regardless
        self._stop_threads(self.n_workers)

    cdef void _stop_threads(self, int count) noexcept:
        cdef int i
        cdef uint64_t one = 1
        cdef Worker *w
        for i in range(count):
            w = &self.workers[i]
            pthread_mutex_lock(&w.mutex)
            w.stopping = True
            w.hold = False
            pthread_cond_broadcast(&w.cond)
            pthread_mutex_unlock(&w.mutex)
            write(w.wakefd, &one, 8)
        with nogil:
            for i in range(count):
                pthread_join(self.workers[i].thread, NULL)
        self._running = False

    # -- commands

    cdef Cmd *_new_cmd(self, int kind, Leg *leg, void *owned=NULL) except NULL:
        cdef Cmd *cmd = <Cmd *>calloc(1, sizeof(Cmd))
        if cmd == NULL:
            free(owned)
            raise MemoryError()
        cmd.kind = kind
        cmd.leg = leg
        cmd.owned = owned
        return cmd

    cdef int _submit(self, Worker *w, Cmd *cmd) except -1:
        """Queue ``cmd`` (heap; the queue owns it from here) and return at once. The
        wake-up is written only when the queue was empty: the worker takes the whole
        queue at once, so one write serves every command queued before it looks."""
        cdef uint64_t one = 1
        cdef uint64_t completed, seq
        cdef bint was_empty
        cmd.next = NULL
        if not self._running:
            apply_and_free(w, cmd)
            return 0
        w.submitted += 1
        seq = cmd.seq = w.submitted
        # The GIL stays held: a worker holds this mutex for a few pointer moves only
        # and never needs the GIL, so taking it here cannot deadlock.
        pthread_mutex_lock(&w.mutex)
        was_empty = w.cmd_head == NULL
        if w.cmd_tail != NULL:
            w.cmd_tail.next = cmd
        else:
            w.cmd_head = cmd
        w.cmd_tail = cmd
        completed = w.completed
        pthread_mutex_unlock(&w.mutex)
        if was_empty:
            write(w.wakefd, &one, 8)
        if self._synchronous:
            with nogil:
                pthread_mutex_lock(&w.mutex)
                while w.completed < seq:
                    pthread_cond_wait(&w.cond, &w.mutex)
                completed = w.completed
                pthread_mutex_unlock(&w.mutex)
        if self._pending[w.index]:
            self._release(w, completed)
        return 0

    cdef int _defer(self, Worker *w, object held) except -1:
        """Keep ``held`` (an object a queued command may still use, or an int: a port
        whose sockets the worker closes) until ``w`` has applied every command queued
        so far; then drop it (a port goes back to the pool)."""
        if self._running:
            self._pending[w.index].append((w.submitted, held))
        elif type(held) is int:
            self._free_ports.append(held)
        return 0

    cdef int _release(self, Worker *w, uint64_t completed) except -1:
        pending = self._pending[w.index]
        while pending and pending[0][0] <= completed:
            held = pending.popleft()[1]
            if type(held) is int:
                self._free_ports.append(held)
        return 0

    cdef int _release_all(self) except -1:
        """Release what every worker's applied commands let go of."""
        cdef int i
        cdef Worker *w
        cdef uint64_t completed
        for i in range(self.n_workers):
            if self._pending[i]:
                w = &self.workers[i]
                pthread_mutex_lock(&w.mutex)
                completed = w.completed
                pthread_mutex_unlock(&w.mutex)
                self._release(w, completed)
        return 0

    cdef int _sync(self) except -1:
        cdef int i
        cdef Worker *w
        cdef uint64_t target
        if not self._running:
            return 0
        for i in range(self.n_workers):
            w = &self.workers[i]
            target = w.submitted
            with nogil:
                pthread_mutex_lock(&w.mutex)
                while w.completed < target:
                    pthread_cond_wait(&w.cond, &w.mutex)
                pthread_mutex_unlock(&w.mutex)
            self._release(w, target)
        return 0

    def sync(self):
        """Wait until every worker has applied every command queued so far.

        For tests (a packet sent after sync() meets the bridge, recording, mix ... that
        was asked for) and stop() only: call control never waits for the media plane."""
        self._sync()

    def _stall_worker(self, index):
        """Test hook: park worker ``index`` at a command queued now; returns once it is
        parked. Commands queued meanwhile wait in its queue until _resume_worker. With
        another worker parked, this may wait forever (the queue can be gated on it)."""
        cdef Worker *w
        cdef Cmd *cmd
        check_int("index", index, 0, self.n_workers - 1)
        if not self._running:
            raise MediaError("media engine is not running")
        w = &self.workers[<int>index]
        cmd = self._new_cmd(CMD_HOLD, NULL)
        pthread_mutex_lock(&w.mutex)
        w.hold = True
        pthread_mutex_unlock(&w.mutex)
        self._submit(w, cmd)
        with nogil:
            pthread_mutex_lock(&w.mutex)
            while not w.held:
                pthread_cond_wait(&w.cond, &w.mutex)
            pthread_mutex_unlock(&w.mutex)

    def _resume_worker(self, index):
        """Test hook: let a worker parked by _stall_worker go on."""
        cdef Worker *w
        check_int("index", index, 0, self.n_workers - 1)
        w = &self.workers[<int>index]
        pthread_mutex_lock(&w.mutex)
        w.hold = False
        pthread_cond_broadcast(&w.cond)
        pthread_mutex_unlock(&w.mutex)

    cdef Leg *_leg(self, object leg) except NULL:
        address = self._legs.get(leg) if isinstance(leg, int) else None
        if address is None:
            raise MediaError(f"no such leg: {leg!r}")
        return <Leg *><size_t>address

    cdef int _bind_pair(self, Leg *leg) except -1:
        cdef sockaddr_in addr
        cdef int fd_rtp, fd_rtcp, port, err
        if not self._free_ports:
            self._release_all()  # ports of closed legs whose sockets are closed by now
        memset(&addr, 0, sizeof(addr))
        addr.sin_family = AF_INET
        inet_pton(AF_INET, self._bind_host, &addr.sin_addr)
        for _ in range(len(self._free_ports)):
            port = self._free_ports.popleft()
            fd_rtp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
            fd_rtcp = -1
            if fd_rtp < 0:
                self._free_ports.appendleft(port)
                raise OSError(errno, strerror(errno).decode())
            addr.sin_port = htons(port)
            err = 0
            if bind(fd_rtp, <sockaddr *>&addr, sizeof(addr)) != 0:
                err = errno
            elif not leg.rtcp_mux:
                fd_rtcp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                addr.sin_port = htons(port + 1)
                if fd_rtcp < 0 or bind(fd_rtcp, <sockaddr *>&addr, sizeof(addr)) != 0:
                    err = errno
            if err == 0:
                leg.port = port
                leg.rtp.fd = fd_rtp
                leg.rtcp.fd = fd_rtcp
                return 0
            close(fd_rtp)
            if fd_rtcp >= 0:
                close(fd_rtcp)
            self._free_ports.append(port)  # taken by someone else: try it again last
            if err != EADDRINUSE:
                raise MediaError(
                    f"cannot bind {self._bind_host.decode()}:{port}: {strerror(err).decode()}"
                )
        raise MediaError(f"no free RTP port in {self._port_low}-{self._port_high}")

    def open_leg(self, group=None, rtcp_mux=False):
        """Bind an even RTP port (RTCP on port+1 unless rtcp_mux); return the leg id."""
        cdef Leg *leg
        cdef Cmd *cmd
        cdef int index
        if group is not None and not isinstance(group, str):
            raise ValueError(f"group must be a str or None, got {group!r}")
        if group is not None and group in self._groups:
            index = self._groups[group][0]
        else:
            index = min(range(self.n_workers), key=lambda i: self.workers[i].legs_assigned)
        leg = <Leg *>calloc(1, sizeof(Leg))
        if leg == NULL:
            raise MemoryError()
        try:
            cmd = self._new_cmd(CMD_ATTACH, leg)
        except MemoryError:
            free(leg)
            raise
        leg.rtcp_mux = bool(rtcp_mux)
        leg.rtp.fd = leg.rtcp.fd = -1
        try:
            self._bind_pair(leg)  # a syscall here and now: no worker round trip
        except BaseException:
            free(cmd)
            free(leg)
            raise
        leg.id = self._next_leg_id
        self._next_leg_id += 1
        leg.rtp.leg = leg
        leg.rtcp.leg = leg
        leg.rtcp.is_rtcp = True
        leg.payload_type = PT_PCMU
        leg.dtmf_payload_type = leg.ctl_dtmf_payload_type = 101
        start = (self._ssrc_rng.getrandbits(80) if self._ssrc_rng is not None
                 else int.from_bytes(os.urandom(10), "big"))
        leg.out_ssrc = start & 0xFFFFFFFF
        leg.last_out_seq = (start >> 32) & 0xFFFF  # where a generated stream starts
        leg.last_out_ts = (start >> 48) & 0xFFFFFFFF
        dtmf_rx_init(&leg.dtmf_rx)
        leg_id = leg.id
        leg.worker = &self.workers[index]
        leg.worker.legs_assigned += 1
        self._legs[leg_id] = <size_t>leg
        if group is not None:
            self._leg_group[leg_id] = group
            self._groups.setdefault(group, [index, 0])[1] += 1
        self._submit(leg.worker, cmd)
        return leg_id

    def leg_port(self, leg):
        """The leg's local RTP port."""
        return self._leg(leg).port

    def set_remote(self, leg, host, port, payload_type=0, dtmf_payload_type=101):
        """Where the leg sends (until its first valid packet says otherwise) and its codecs."""
        cdef Leg *target = self._leg(leg)
        cdef Cmd *cmd
        cdef in_addr addr
        parse_ipv4(host, &addr)
        check_int("port", port, 1, 65535)
        check_int("payload_type", payload_type, 0, 127)
        if dtmf_payload_type is not None:
            check_int("dtmf_payload_type", dtmf_payload_type, 0, 127)
        cmd = self._new_cmd(CMD_SET_REMOTE, target)
        cmd.addr.sin_addr = addr
        cmd.addr.sin_family = AF_INET
        cmd.addr.sin_port = htons(port)
        cmd.payload_type = payload_type
        cmd.dtmf_payload_type = -1 if dtmf_payload_type is None else dtmf_payload_type
        target.ctl_dtmf_payload_type = cmd.dtmf_payload_type
        self._submit(target.worker, cmd)

    def bridge(self, a, b):
        """Relay a <-> b (each unbridged from any previous peer first)."""
        cdef Leg *leg_a = self._leg(a)
        cdef Leg *leg_b = self._leg(b)
        cdef Worker *home = leg_a.worker
        cdef Cmd *cmd
        if leg_a == leg_b:
            raise ValueError(f"cannot bridge leg {a} to itself")
        self._move(leg_b, home)
        cmd = self._new_cmd(CMD_BRIDGE, leg_a)
        cmd.other = leg_b
        self._submit(home, cmd)

    def unbridge(self, leg):
        """Stop relaying between leg and its peer (both directions)."""
        cdef Leg *target = self._leg(leg)
        self._submit(target.worker, self._new_cmd(CMD_UNBRIDGE, target))

    def close_leg(self, leg):
        """Forget the leg at once; its worker closes its sockets, and then its ports go
        back to the pool."""
        self._close_leg(leg)

    cdef int _close_leg(self, object leg_id) except -1:
        cdef Leg *leg = self._leg(leg_id)
        cdef Worker *w
        cdef Cmd *cmd
        self._release_media(leg, leg_id)
        w = leg.worker
        port = leg.port
        cmd = self._new_cmd(CMD_CLOSE, leg)
        del self._legs[leg_id]
        w.legs_assigned -= 1
        self._submit(w, cmd)  # the worker frees the leg: not to be touched from here on
        self._defer(w, port)  # bound again only once its sockets are closed
        group = self._leg_group.pop(leg_id, None)
        if group is not None:
            self._groups[group][1] -= 1
            if self._groups[group][1] == 0:
                del self._groups[group]

    # -- what comes back

    @property
    def events_fd(self):
        """An eventfd that is readable while events are queued (for loop.add_reader)."""
        return self.shared.eventfd

    @property
    def events_dropped(self):
        """Events lost because nobody drained the ring in time."""
        return self.shared.dropped

    def drain_events(self):
        """Take every queued event, oldest first, as switch.media.events objects."""
        self._release_all()
        return drain_ring(self.shared)

    def leg_stats(self, leg):
        """The leg's counters (see switch.media.events.LegStatistics for their meaning)."""
        cdef Leg *target = self._leg(leg)
        cdef EventRec rec
        # Plain reads of what the worker writes: aligned 64-bit loads are atomic here,
        # and a jitter figure one packet old is as good as the current one.
        quality(target, &rec)
        stats = counters_dict(&target.counters)
        stats.update(lost=rec.lost, jitter_ms=rec.jitter_ms, mos=rec.mos,
                     rtt_ms=target.rtt_ms)
        return stats

    @property
    def workers_count(self):
        return self.n_workers

    def leg_worker(self, leg):
        """Index of the worker that owns the leg (legs that talk share one)."""
        return self._leg(leg).worker.index

    def stats(self):
        """Engine-wide clock figures: ticks, tick_overruns (ticks that started more than
        one 20 ms period late), events_dropped, and the same per worker with its legs
        (once its queue has run) and commands_queued (not yet applied)."""
        cdef int i
        cdef Worker *w
        cdef uint64_t completed
        per_worker = []
        for i in range(self.n_workers):
            w = &self.workers[i]
            pthread_mutex_lock(&w.mutex)
            completed = w.completed
            pthread_mutex_unlock(&w.mutex)
            per_worker.append({"index": i, "legs": w.legs_assigned, "ticks": w.ticks,
                               "tick_overruns": w.tick_overruns,
                               "commands_queued": w.submitted - completed
                               if self._running else 0})
        return {
            "ticks": sum(entry["ticks"] for entry in per_worker),
            "tick_overruns": sum(entry["tick_overruns"] for entry in per_worker),
            "events_dropped": self.shared.dropped,
            "workers": per_worker,
        }

    # -- for the media commands: each is applied by the leg's worker

    cdef int _call(self, Leg *leg, cmd_fn fn, void *ptr, int64_t arg,
                   void *owned=NULL) except -1:
        cdef Cmd *cmd = self._new_cmd(CMD_CALL, leg, owned)
        cmd.fn = fn
        cmd.ptr = ptr
        cmd.arg = arg
        return self._submit(leg.worker, cmd)

    cdef int _release_media(self, Leg *leg, object leg_id) except -1:
        """Hook: stop whatever media uses the leg before it closes (MediaEngine)."""
        return 0

    cdef bint _attached(self, object leg_id) except -1:
        """Hook: whether the leg is recorded or mixed, i.e. pinned to its worker."""
        return False

    cdef int _move(self, Leg *leg, Worker *home) except -1:
        """Put a leg on ``home`` (legs that share audio share a worker). The attach is
        gated on the detach: ``home`` applies nothing queued after it until the old
        worker has let go of the leg (and wakes ``home`` when it has)."""
        cdef Worker *old = leg.worker
        cdef Cmd *detach
        cdef Cmd *attach
        if old == home:
            return 0
        if self._attached(leg.id):
            raise MediaError(
                f"leg {leg.id} is recorded or mixed on another worker; stop that first"
            )
        detach = self._new_cmd(CMD_DETACH, leg)
        try:
            attach = self._new_cmd(CMD_ATTACH, leg)
        except MemoryError:
            free(detach)
            raise
        detach.notify = home
        self._submit(old, detach)
        if self._running:
            attach.gate = old
            attach.gate_seq = old.submitted
        leg.worker = home
        old.legs_assigned -= 1
        home.legs_assigned += 1
        self._submit(home, attach)
        return 0
