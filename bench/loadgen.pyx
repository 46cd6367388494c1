# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""C side of the relay density benchmark: the RTP load generator ("phones") and the
plain C echo relay that serves as the kernel-cost baseline.

Topology for N call pairs: phone p (p = 0 .. 2N-1; 2i is call i's caller, 2i+1 its
agent) talks only to relay leg p; the relay forwards what leg p receives out of leg p^1
to phone p^1. So stream p (the packets phone p sends) arrives at phone p^1.

Every phone sends a 172-byte RTP packet (12-byte header, 160 bytes of PCMU payload)
every 20 ms. Packet g of the whole run goes to phone g % 2N with per-stream counter
g // 2N and is due at t0 + g * 20 ms / 2N: the 2N streams are spread evenly over the
period on absolute CLOCK_MONOTONIC deadlines. The first 24 payload bytes carry a magic,
the stream, g and the send time, because a relay may rewrite SSRC, sequence and
timestamp (it must, across re-bridges), so the header cannot identify a packet.

A UDP socket sends from one source port, and each phone needs its own, so `sendmmsg`
batches per socket: one message per wake normally, several when catching up after a
stall. There is no cross-socket send batching without io_uring.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset


cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    int clock_nanosleep(int clk, int flags, const timespec *req, timespec *rem)
    int CLOCK_MONOTONIC
    int CLOCK_PROCESS_CPUTIME_ID
    int TIMER_ABSTIME

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<netinet/in.h>" nogil:
    ctypedef unsigned short sa_family_t
    ctypedef uint16_t in_port_t
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        sa_family_t sin_family
        in_port_t sin_port
        in_addr sin_addr
    uint16_t htons(uint16_t)
    uint32_t htonl(uint32_t)
    int AF_INET

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int sendmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags)
    int recvmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags, timespec *timeout)
    ssize_t recvfrom(int fd, void *buf, size_t n, int flags, void *addr, socklen_t *alen)
    ssize_t sendto(int fd, const void *buf, size_t n, int flags, const void *addr,
                   socklen_t alen)
    int MSG_DONTWAIT

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLL_CTL_ADD
    int EPOLLIN

cdef extern from "<sys/timerfd.h>" nogil:
    struct itimerspec:
        timespec it_interval
        timespec it_value
    int timerfd_create(int clk, int flags)
    int timerfd_settime(int fd, int flags, const itimerspec *new, itimerspec *old)
    int TFD_NONBLOCK
    int TFD_TIMER_ABSTIME

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t n)
    int close(int fd)


cdef enum:
    PERIOD_NS = 20000000          # 20 ms ptime
    SAMPLES_PER_PACKET = 160      # 8 kHz x 20 ms
    RTP_HEADER_BYTES = 12         # RFC 3550 §5.1, no CSRC, no extension
    PACKET_BYTES = 172
    MAGIC = 0x52444231            # "RDB1"
    HIST_BINS = 262144            # 1 µs bins up to 262 ms; the last bin is overflow
    MAX_EVENTS = 512
    RECV_BATCH = 8
    SEND_BATCH = 8
    LATE_NS = 1000000             # a send more than 1 ms behind its deadline is "late"

# epoll tag of the timerfd / stop fd (phone and leg tags are socket indexes).
cdef uint32_t TIMER_TAG = 0xFFFFFFFF


PACKET_SIZE = PACKET_BYTES
PAYLOAD_SIZE = PACKET_BYTES - RTP_HEADER_BYTES


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t cpu_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline void put_u16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline void put_u32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline uint32_t get_u32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline void put_u64(uint8_t *p, uint64_t v) noexcept nogil:
    put_u32(p, <uint32_t>(v >> 32))
    put_u32(p + 4, <uint32_t>v)


cdef inline uint64_t get_u64(const uint8_t *p) noexcept nogil:
    return (<uint64_t>get_u32(p) << 32) | get_u32(p + 4)


cdef void loopback_addr(sockaddr_in *sa, int port) noexcept nogil:
    memset(sa, 0, sizeof(sockaddr_in))
    sa.sin_family = AF_INET
    sa.sin_port = htons(<uint16_t>port)
    sa.sin_addr.s_addr = htonl(0x7F000001)


cdef int64_t percentile_us(const uint32_t *hist, uint64_t total, double q) noexcept nogil:
    cdef uint64_t rank, seen = 0
    cdef int64_t i
    if total == 0:
        return -1
    rank = <uint64_t>(q * <double>(total - 1))
    for i in range(HIST_BINS):
        seen += hist[i]
        if seen > rank:
            return i
    return HIST_BINS - 1


cdef class LoadGen:
    """The 2N phones. Sockets are created and bound in Python (`socket` module) and
    passed in as file descriptors together with the relay leg each phone talks to;
    the caller keeps the socket objects alive and connected."""

    cdef int n                      # number of phone sockets (2 x call pairs)
    cdef int *fds
    cdef int epfd, tfd
    cdef int64_t t0
    cdef int64_t tick_ns
    cdef uint64_t cursor            # next packet index g to consider for sending
    cdef uint64_t *next_counter     # per stream: next per-stream counter not yet sent
    cdef uint16_t *seq0
    cdef uint32_t *ts0
    cdef uint32_t *ssrc
    cdef uint64_t *highest          # per stream: highest counter received + 1 (0: none)
    cdef int64_t *prev_lat          # per stream: previous latency in ns (-1: none)
    cdef uint32_t *hist_lat
    cdef uint32_t *hist_jit
    cdef uint8_t *sendbuf           # SEND_BATCH packets
    cdef uint8_t *recvbuf           # RECV_BATCH packets
    # Window of packets that count: g in [win_lo, win_hi).
    cdef uint64_t win_lo, win_hi
    cdef bint counting
    cdef uint64_t received, duplicates, misrouted, foreign, n_lat, n_jit
    cdef uint64_t late_sends, sends, send_errors, wakeups
    cdef int64_t max_late_ns

    def __cinit__(self, list fds, int tick_us=200, uint32_t seed=1):
        cdef int i
        cdef epoll_event ev
        cdef uint32_t x = seed | 1
        self.n = len(fds)
        if self.n == 0 or self.n % 2:
            raise ValueError("fds must hold an even, non-zero number of sockets")
        if tick_us <= 0:
            raise ValueError("tick_us must be positive")
        self.tick_ns = <int64_t>tick_us * 1000
        self.fds = <int *>calloc(self.n, sizeof(int))
        self.next_counter = <uint64_t *>calloc(self.n, sizeof(uint64_t))
        self.seq0 = <uint16_t *>calloc(self.n, sizeof(uint16_t))
        self.ts0 = <uint32_t *>calloc(self.n, sizeof(uint32_t))
        self.ssrc = <uint32_t *>calloc(self.n, sizeof(uint32_t))
        self.highest = <uint64_t *>calloc(self.n, sizeof(uint64_t))
        self.prev_lat = <int64_t *>calloc(self.n, sizeof(int64_t))
        self.hist_lat = <uint32_t *>calloc(HIST_BINS, sizeof(uint32_t))
        self.hist_jit = <uint32_t *>calloc(HIST_BINS, sizeof(uint32_t))
        self.sendbuf = <uint8_t *>calloc(SEND_BATCH, PACKET_BYTES)
        self.recvbuf = <uint8_t *>calloc(RECV_BATCH, PACKET_BYTES + 64)
        if (not self.fds or not self.next_counter or not self.seq0 or not self.ts0
                or not self.ssrc or not self.highest or not self.prev_lat
                or not self.hist_lat or not self.hist_jit or not self.sendbuf
                or not self.recvbuf):
            raise MemoryError()
        self.epfd = epoll_create1(0)
        self.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)
        if self.epfd < 0 or self.tfd < 0:
            raise OSError("epoll_create1/timerfd_create failed")
        ev.events = EPOLLIN
        ev.data.u32 = TIMER_TAG
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.tfd, &ev)
        for i in range(self.n):
            self.fds[i] = fds[i]
            ev.events = EPOLLIN
            ev.data.u32 = <uint32_t>i
            if epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.fds[i], &ev) != 0:
                raise OSError(f"epoll_ctl failed for fd {self.fds[i]}")
            # Distinct, deterministic SSRC/seq/ts starting points (xorshift32).
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            self.ssrc[i] = x
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            self.seq0[i] = <uint16_t>x
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            self.ts0[i] = x
            self.prev_lat[i] = -1
        for i in range(SEND_BATCH):
            # PCMU silence after the 24 bytes of bookkeeping.
            memset(self.sendbuf + i * PACKET_BYTES, 0xFF, PACKET_BYTES)
        self.t0 = 0

    def __dealloc__(self):
        if self.epfd > 0:
            close(self.epfd)
        if self.tfd > 0:
            close(self.tfd)
        free(self.fds); free(self.next_counter); free(self.seq0); free(self.ts0)
        free(self.ssrc); free(self.highest); free(self.prev_lat); free(self.hist_lat)
        free(self.hist_jit); free(self.sendbuf); free(self.recvbuf)

    cdef inline int64_t deadline(self, uint64_t g) noexcept nogil:
        return self.t0 + <int64_t>((g * <uint64_t>PERIOD_NS) // <uint64_t>self.n)

    cdef void fill(self, uint8_t *pkt, int s, uint64_t counter) noexcept nogil:
        cdef uint64_t g = counter * <uint64_t>self.n + <uint64_t>s
        pkt[0] = 0x80                           # V=2, no padding/extension/CSRC
        pkt[1] = 0                              # M=0, PT=0 (PCMU)
        put_u16(pkt + 2, <uint16_t>(self.seq0[s] + counter))
        put_u32(pkt + 4, <uint32_t>(self.ts0[s] + counter * SAMPLES_PER_PACKET))
        put_u32(pkt + 8, self.ssrc[s])
        put_u32(pkt + 12, MAGIC)
        put_u32(pkt + 16, <uint32_t>s)
        put_u64(pkt + 20, g)
        put_u64(pkt + 28, <uint64_t>now_ns())

    cdef void send_due(self, int64_t now) noexcept nogil:
        """Send every packet whose deadline has passed; a stream more than one period
        behind sends its overdue packets as one sendmmsg batch."""
        cdef mmsghdr msgs[SEND_BATCH]
        cdef iovec iov[SEND_BATCH]
        cdef uint64_t g, counter, due_counter
        cdef int s, k, m, rc
        cdef int64_t late
        memset(msgs, 0, sizeof(msgs))
        while self.deadline(self.cursor) <= now:
            g = self.cursor
            self.cursor += 1
            s = <int>(g % <uint64_t>self.n)
            counter = g // <uint64_t>self.n
            if counter < self.next_counter[s]:
                continue                        # already sent in a catch-up batch
            late = now - self.deadline(g)
            if late > LATE_NS:
                self.late_sends += 1
            if late > self.max_late_ns:
                self.max_late_ns = late
            # All of this stream's packets that are due now, at most SEND_BATCH.
            due_counter = counter + 1 + <uint64_t>(late // PERIOD_NS)
            k = <int>(due_counter - counter)
            if k > SEND_BATCH:
                k = SEND_BATCH
            for m in range(k):
                self.fill(self.sendbuf + m * PACKET_BYTES, s, counter + m)
                iov[m].iov_base = self.sendbuf + m * PACKET_BYTES
                iov[m].iov_len = PACKET_BYTES
                msgs[m].msg_hdr.msg_iov = &iov[m]
                msgs[m].msg_hdr.msg_iovlen = 1
            rc = sendmmsg(self.fds[s], msgs, k, MSG_DONTWAIT)
            if rc < 0:
                self.send_errors += k
            else:
                self.sends += rc
                self.send_errors += k - rc
            self.next_counter[s] = counter + k

    cdef void on_packet(self, int q, const uint8_t *pkt, unsigned int length,
                        int64_t now) noexcept nogil:
        cdef uint32_t s
        cdef uint64_t g, counter
        cdef int64_t lat, jit, bin_
        if length != PACKET_BYTES or get_u32(pkt + 12) != MAGIC:
            self.foreign += 1
            return
        s = get_u32(pkt + 16)
        g = get_u64(pkt + 20)
        if s != <uint32_t>(q ^ 1) or g % <uint64_t>self.n != s:
            self.misrouted += 1
            return
        if not self.counting or g < self.win_lo or g >= self.win_hi:
            return
        counter = g // <uint64_t>self.n
        if counter < self.highest[s]:
            self.duplicates += 1            # repeated or reordered
            return
        self.highest[s] = counter + 1
        self.received += 1
        lat = now - <int64_t>get_u64(pkt + 28)
        if lat < 0:
            lat = 0
        bin_ = lat // 1000
        if bin_ >= HIST_BINS:
            bin_ = HIST_BINS - 1
        self.hist_lat[bin_] += 1
        self.n_lat += 1
        if self.prev_lat[s] >= 0:
            jit = lat - self.prev_lat[s]
            if jit < 0:
                jit = -jit
            bin_ = jit // 1000
            if bin_ >= HIST_BINS:
                bin_ = HIST_BINS - 1
            self.hist_jit[bin_] += 1
            self.n_jit += 1
        self.prev_lat[s] = lat

    cdef void loop(self, int64_t end, bint send) noexcept nogil:
        cdef epoll_event events[MAX_EVENTS]
        cdef mmsghdr msgs[RECV_BATCH]
        cdef iovec iov[RECV_BATCH]
        cdef int i, j, nev, got, q
        cdef uint64_t expirations
        cdef int64_t now
        memset(msgs, 0, sizeof(msgs))
        for j in range(RECV_BATCH):
            iov[j].iov_base = self.recvbuf + j * (PACKET_BYTES + 64)
            iov[j].iov_len = PACKET_BYTES + 64
            msgs[j].msg_hdr.msg_iov = &iov[j]
            msgs[j].msg_hdr.msg_iovlen = 1
        while True:
            now = now_ns()
            if now >= end:
                return
            if send:
                self.send_due(now)
            nev = epoll_wait(self.epfd, events, MAX_EVENTS, 2)
            self.wakeups += 1
            for i in range(nev):
                if send and i % 64 == 63:
                    # A long batch of arrivals must not push sends past their deadlines.
                    self.send_due(now_ns())
                if events[i].data.u32 == TIMER_TAG:
                    read(self.tfd, &expirations, 8)
                    continue
                q = <int>events[i].data.u32
                got = recvmmsg(self.fds[q], msgs, RECV_BATCH, MSG_DONTWAIT, NULL)
                if got <= 0:
                    continue
                now = now_ns()
                for j in range(got):
                    self.on_packet(q, <const uint8_t *>iov[j].iov_base, msgs[j].msg_len, now)

    def start_clock(self):
        """Fix t0 (the first deadline) a tick from now and arm the periodic tick."""
        cdef itimerspec its
        self.t0 = now_ns() + self.tick_ns
        its.it_value.tv_sec = self.t0 // 1000000000
        its.it_value.tv_nsec = self.t0 % 1000000000
        its.it_interval.tv_sec = self.tick_ns // 1000000000
        its.it_interval.tv_nsec = self.tick_ns % 1000000000
        if timerfd_settime(self.tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0:
            raise OSError("timerfd_settime failed")

    def run(self, double seconds, bint count=False, bint send=True):
        """Send on schedule and receive for `seconds`. With count=True the packets
        whose deadlines fall in this call form the measured window."""
        cdef int64_t end
        if self.t0 == 0:
            raise RuntimeError("call start_clock() first")
        end = now_ns() + <int64_t>(seconds * 1e9)
        if count:
            self.win_lo = self.cursor
            self.win_hi = 0xFFFFFFFFFFFFFFFF
            self.counting = True
        with nogil:
            self.loop(end, send)
        if count:
            self.win_hi = self.cursor

    def drain(self, double seconds):
        """Receive only, so packets of the window still in flight are counted."""
        with nogil:
            self.loop(now_ns() + <int64_t>(seconds * 1e9), False)
        self.counting = False

    def results(self):
        cdef uint64_t sent = self.win_hi - self.win_lo if self.win_hi >= self.win_lo else 0
        return {
            "sent": sent,
            "received": self.received,
            "lost": sent - self.received if sent > self.received else 0,
            "duplicates": self.duplicates,
            "misrouted": self.misrouted,
            "foreign": self.foreign,
            "send_errors": self.send_errors,
            "late_sends": self.late_sends,
            "max_late_ms": self.max_late_ns / 1e6,
            "wakeups": self.wakeups,
            "latency_p50_ms": percentile_us(self.hist_lat, self.n_lat, 0.50) / 1e3,
            "latency_p99_ms": percentile_us(self.hist_lat, self.n_lat, 0.99) / 1e3,
            "jitter_p50_ms": percentile_us(self.hist_jit, self.n_jit, 0.50) / 1e3,
            "jitter_p99_ms": percentile_us(self.hist_jit, self.n_jit, 0.99) / 1e3,
        }


def process_cpu_s():
    """CPU time of this process (all threads), seconds."""
    return cpu_ns() / 1e9


cdef enum:
    ECHO_PLAIN_C = 0
    ECHO_MMSG_C = 1

ECHO_PLAIN = ECHO_PLAIN_C
ECHO_MMSG = ECHO_MMSG_C


def echo_relay(list fds, list phone_ports, int variant, int stop_fd, int window_us=0):
    """The kernel-cost baseline: a relay with no RTP logic at all. Leg p receives from
    phone p and what it gets is sent out of leg p^1 to phone p^1. One thread, one level-
    triggered epoll over all legs; `variant` ECHO_PLAIN does recvfrom/sendto of one
    packet per readiness event, ECHO_MMSG drains up to 16 with recvmmsg and forwards
    them with one sendmmsg. With window_us > 0 the loop sleeps to the next window
    boundary after each pass so readiness coalesces into fewer, fuller wake-ups.
    Returns when stop_fd becomes readable (EOF on the parent's pipe)."""
    cdef int n = len(fds)
    cdef int *cfds
    cdef sockaddr_in *phones
    cdef int epfd, i
    cdef epoll_event ev
    cdef uint64_t relayed = 0, wakeups = 0, events_seen = 0, errors = 0
    if n == 0 or n % 2 or len(phone_ports) != n:
        raise ValueError("fds and phone_ports must be the same even, non-zero length")
    if variant not in (ECHO_PLAIN, ECHO_MMSG):
        raise ValueError("variant must be ECHO_PLAIN or ECHO_MMSG")
    cfds = <int *>calloc(n, sizeof(int))
    phones = <sockaddr_in *>calloc(n, sizeof(sockaddr_in))
    if not cfds or not phones:
        free(cfds); free(phones)
        raise MemoryError()
    epfd = epoll_create1(0)
    try:
        for i in range(n):
            cfds[i] = fds[i]
            loopback_addr(&phones[i], phone_ports[i])
            ev.events = EPOLLIN
            ev.data.u32 = <uint32_t>i
            if epoll_ctl(epfd, EPOLL_CTL_ADD, cfds[i], &ev) != 0:
                raise OSError(f"epoll_ctl failed for fd {cfds[i]}")
        ev.events = EPOLLIN
        ev.data.u32 = TIMER_TAG
        epoll_ctl(epfd, EPOLL_CTL_ADD, stop_fd, &ev)
        with nogil:
            _echo_loop(epfd, cfds, phones, variant, window_us,
                       &relayed, &wakeups, &events_seen, &errors)
    finally:
        close(epfd)
        free(cfds)
        free(phones)
    return {"relayed": relayed, "wakeups": wakeups, "events": events_seen,
            "send_errors": errors}


cdef void _echo_loop(int epfd, int *fds, sockaddr_in *phones, int variant, int window_us,
                     uint64_t *relayed, uint64_t *wakeups, uint64_t *events_seen,
                     uint64_t *errors) noexcept nogil:
    cdef epoll_event events[MAX_EVENTS]
    cdef uint8_t buf[16][PACKET_BYTES + 64]
    cdef mmsghdr msgs[16]
    cdef iovec iov[16]
    cdef int i, j, nev, p, got, sent
    cdef ssize_t length
    cdef int64_t next_window = 0, now
    cdef timespec ts
    memset(msgs, 0, sizeof(msgs))
    for j in range(16):
        iov[j].iov_base = buf[j]
        iov[j].iov_len = PACKET_BYTES + 64
        msgs[j].msg_hdr.msg_iov = &iov[j]
        msgs[j].msg_hdr.msg_iovlen = 1
    while True:
        nev = epoll_wait(epfd, events, MAX_EVENTS, -1)
        wakeups[0] += 1
        for i in range(nev):
            if events[i].data.u32 == TIMER_TAG:
                return
            events_seen[0] += 1
            p = <int>events[i].data.u32
            if variant == ECHO_PLAIN_C:
                length = recvfrom(fds[p], buf[0], PACKET_BYTES + 64, MSG_DONTWAIT, NULL, NULL)
                if length <= 0:
                    continue
                if sendto(fds[p ^ 1], buf[0], length, MSG_DONTWAIT, &phones[p ^ 1],
                          sizeof(sockaddr_in)) == length:
                    relayed[0] += 1
                else:
                    errors[0] += 1
            else:
                for j in range(16):
                    iov[j].iov_len = PACKET_BYTES + 64
                    msgs[j].msg_hdr.msg_name = NULL
                    msgs[j].msg_hdr.msg_namelen = 0
                got = recvmmsg(fds[p], msgs, 16, MSG_DONTWAIT, NULL)
                if got <= 0:
                    continue
                for j in range(got):
                    iov[j].iov_len = msgs[j].msg_len
                    msgs[j].msg_hdr.msg_name = &phones[p ^ 1]
                    msgs[j].msg_hdr.msg_namelen = sizeof(sockaddr_in)
                sent = sendmmsg(fds[p ^ 1], msgs, got, MSG_DONTWAIT)
                if sent > 0:
                    relayed[0] += sent
                    errors[0] += got - sent
                else:
                    errors[0] += got
        if window_us > 0:
            now = now_ns()
            if next_window <= now:
                next_window = now + <int64_t>window_us * 1000
            ts.tv_sec = next_window // 1000000000
            ts.tv_nsec = next_window % 1000000000
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
            next_window += <int64_t>window_us * 1000
