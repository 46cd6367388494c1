# cython: language_level=3
"""The media engine's C side: OS declarations, per-leg and per-worker structs, shared
constants. Every engine_*.pyx module cimports these; none holds C globals of its own
except engine_relay (its transcoding tables).

Ownership: a Leg is touched only by the worker it is attached to (the hot path takes no
lock), except the fields marked "control side", which only the thread calling the
engine's methods reads or writes. Python reaches a worker only through its command
queue (mutex + eventfd wake-up, never waiting for the worker); workers reach Python only
through the event ring (mutex + eventfd). A queued Cmd is heap memory the worker frees
once it has applied it, with whatever it owns (``Cmd.owned``).
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec
from posix.uio cimport iovec

from switch.media.dtmf cimport DtmfRxState
from switch.media.legmedia cimport LegMedia
from switch.media.mixer cimport MIX_MAX_PARTIES, Mix
from switch.media.recorder cimport RecorderWriter, RecordingState
from switch.media.rtp cimport RecvStats


cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    int pthread_create(pthread_t *thread, const void *attr,
                       void *(*start)(void *) noexcept nogil, void *arg)
    int pthread_join(pthread_t thread, void **retval)
    int pthread_mutex_init(pthread_mutex_t *mutex, const void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *mutex)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)
    int pthread_cond_init(pthread_cond_t *cond, const void *attr)
    int pthread_cond_destroy(pthread_cond_t *cond)
    int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
    int pthread_cond_broadcast(pthread_cond_t *cond)


cdef extern from "<sys/epoll.h>" nogil:
    enum:
        EPOLLIN
        EPOLL_CTL_ADD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC
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


cdef extern from "<sys/eventfd.h>" nogil:
    enum:
        EFD_NONBLOCK
        EFD_CLOEXEC
    int eventfd(unsigned int initval, int flags)


cdef extern from "<sys/socket.h>" nogil:
    enum:
        AF_INET
        SOCK_DGRAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        MSG_DONTWAIT
        MSG_TRUNC
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
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
    int socket(int domain, int type, int protocol)
    int bind(int fd, const sockaddr *addr, socklen_t addrlen)
    ssize_t sendto(int fd, const void *buf, size_t n, int flags, const sockaddr *addr,
                   socklen_t addrlen)
    int recvmmsg(int fd, mmsghdr *msgs, unsigned int vlen, int flags, timespec *timeout)
    int sendmmsg(int fd, mmsghdr *msgs, unsigned int vlen, int flags)


cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr


cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)
    uint16_t htons(uint16_t v)
    uint16_t ntohs(uint16_t v)


cdef enum:
    BATCH = 32  # datagrams per recvmmsg/sendmmsg
    MAX_EVENTS = 256  # epoll events per wait
    PKT_CAP = 2048  # bytes per receive slot; longer datagrams are truncated -> invalid
    CMD_ATTACH = 1
    CMD_DETACH = 2
    CMD_SET_REMOTE = 3
    CMD_BRIDGE = 4
    CMD_UNBRIDGE = 5
    CMD_CALL = 6  # run cmd.fn on the worker (media commands)
    CMD_CLOSE = 7  # detach, close the sockets, free the leg: the worker owns it from here
    CMD_HOLD = 8  # test hook: the worker parks until Worker.hold is cleared
    EV_RTP_TIMEOUT = 1
    EV_STATS = 2
    EV_DTMF = 3
    EV_PLAYBACK_FINISHED = 4
    EV_COMMAND_FAILED = 5  # value: errno; digit: which command (FAILED_*)
    FAILED_ATTACH = 1  # epoll_ctl refused the leg's sockets: it receives nothing
    N_COUNTERS = 6


cdef struct Sock:  # what an epoll event points at (NULL: the worker's wake eventfd)
    Leg *leg
    int fd
    bint is_rtcp


cdef struct Counters:
    uint64_t received  # valid RTP from the latched source
    uint64_t sent  # RTP sent out of this leg's socket
    uint64_t dropped_invalid  # not RTP (header checks), truncated, empty
    uint64_t dropped_stranger  # valid RTP from another source than the latched one
    uint64_t relayed  # received here and sent on by the bridged peer
    uint64_t rtcp_received


cdef struct Leg:
    int64_t id
    int port
    bint rtcp_mux
    Sock rtp
    Sock rtcp  # fd -1 with rtcp-mux
    Leg *prev  # the worker's list of attached legs
    Leg *next
    Leg *peer  # bridged leg (same worker), or NULL

    # Where this leg sends: set by set_remote, then learnt from the first valid packet.
    sockaddr_in remote
    bint remote_known  # we have an address to send to
    bint remote_set  # set_remote was called: the RTP timeout is armed
    bint latched  # remote was learnt from a packet (symmetric RTP)
    int payload_type  # the audio codec this leg's far end speaks (0 PCMU, 8 PCMA)
    int dtmf_payload_type  # RFC 4733 telephone-event, -1 when the far end has none
    uint32_t in_ssrc  # SSRC of the latched source's last packet
    int64_t last_rx_ns  # CLOCK_MONOTONIC of the last valid packet (or of set_remote)
    bint timeout_posted

    # The stream this leg sends: one SSRC and continuous seq/ts whatever feeds it.
    uint32_t out_ssrc
    bint out_started
    int64_t out_src_leg  # which leg and SSRC the offsets below were computed for
    uint32_t out_src_ssrc
    uint16_t seq_offset
    uint32_t ts_offset
    uint16_t last_out_seq  # highest sequence number sent
    uint32_t last_out_ts  # its timestamp
    int64_t last_out_ns  # when it was sent

    uint32_t gen_ts  # next timestamp of a frame the engine itself sends
    uint64_t octets_sent  # RTP payload bytes sent (RTCP SR)

    Counters counters
    RecvStats rx_stats  # RFC 3550 A.1/A.8 for the current incoming SSRC
    DtmfRxState dtmf_rx  # RFC 4733 receive state (every leg detects)
    double rtt_ms  # from RTCP report blocks about our stream; 0 until known
    int64_t next_rtcp_ns  # when the next SR/RR is due (0: not scheduled)
    LegMedia *media  # decode/playback/DTMF-out/mix state; NULL for pure relay

    # Control side: what the caller decided, ahead of what the worker has applied.
    Worker *worker  # the worker the leg is on once its queued commands have run
    bint has_media  # a LegMedia was handed over (set_media queued)
    int ctl_dtmf_payload_type  # as the last set_remote asked; -1: none


cdef struct MixNode:  # a conference on one worker
    int64_t id
    Mix mix
    Leg *slots[MIX_MAX_PARTIES]
    Worker *worker  # NULL while the mix has no participant
    MixNode *prev
    MixNode *next


cdef enum:
    REC_MAX_EXTRA = 4  # parties added to a call whose voices join the right channel


cdef struct RecExtra:  # a retarget command's new added parties (heap, the command owns it)
    Leg *legs[REC_MAX_EXTRA]
    int n


cdef struct RecTap:  # a recording fed by one worker each tick
    int64_t id
    RecordingState *state
    Leg *a  # customer: left channel
    Leg *b  # agent: right channel, or NULL
    Leg *extra[REC_MAX_EXTRA]  # added to the right channel (a conference, a barge-in)
    int n_extra
    bint stereo
    bint paused  # the tick writes silence: the file's timeline goes on
    RecTap *prev
    RecTap *next


ctypedef void (*cmd_fn)(Worker *w, Cmd *cmd) noexcept nogil


cdef struct Cmd:  # heap memory: the worker frees it (and ``owned``) once applied
    int kind
    cmd_fn fn  # CMD_CALL
    void *ptr
    int64_t arg
    Leg *leg
    Leg *other
    sockaddr_in addr
    int payload_type
    int dtmf_payload_type
    void *owned  # heap memory carried by value (a tone, digits, a removed tap), or NULL
    uint64_t seq  # this worker's command number, from 1
    Worker *gate  # apply only once gate.completed >= gate_seq (a leg moving in from
    uint64_t gate_seq  # there must have been detached first), or NULL
    Worker *notify  # wake this worker once applied (its queue may be gated on this)
    Cmd *next


cdef struct EventRec:
    int kind
    int64_t leg
    double value
    uint64_t counters[N_COUNTERS]
    int64_t lost
    double jitter_ms
    double mos
    double rtt_ms
    char digit  # EV_DTMF


cdef struct Shared:  # engine-wide: configuration and the event ring
    int64_t rtp_timeout_ns
    int64_t stats_interval_ns
    int64_t rtcp_interval_ns
    int64_t wakeup_window_ns  # 0: handle readiness at once; >0: let it pile up first
    int64_t relatch_silence_ns  # -1: never re-latch (strict); see receive_rtp
    pthread_mutex_t mutex
    EventRec *ring
    size_t cap
    size_t head
    size_t count
    uint64_t dropped  # events lost to a full ring
    int eventfd


cdef struct IoBufs:
    mmsghdr rx[BATCH]
    iovec rxiov[BATCH]
    sockaddr_in rxaddr[BATCH]
    uint8_t rxbuf[BATCH][PKT_CAP]
    mmsghdr tx[BATCH]
    iovec txiov[BATCH]
    epoll_event events[MAX_EVENTS]


cdef struct Worker:
    int index
    int epfd
    int wakefd
    pthread_t thread
    bint stopping
    pthread_mutex_t mutex  # guards the command queue, completed, stopping, hold, held
    pthread_cond_t cond  # broadcast when completed moves on, and for hold/held
    Cmd *cmd_head
    Cmd *cmd_tail
    uint64_t completed  # seq of the last command applied
    bint hold  # test hook: CMD_HOLD parks the worker while this is set
    bint held  # the worker is parked at a CMD_HOLD
    uint64_t submitted  # control side: seq of the last command queued
    int legs_assigned  # control side: legs on this worker once its queue has run
    Leg *legs
    int n_legs
    int64_t next_stats_ns
    Shared *shared
    IoBufs *io
    MixNode *mixes
    RecTap *taps
    uint64_t ticks
    uint64_t tick_overruns  # ticks run more than one period after their deadline
    uint8_t txbuf[PKT_CAP]  # packets the worker builds (playback, mix, DTMF, RTCP)


cdef enum:
    TICK_NS = 20000000  # 20 ms
    MAX_CATCHUP_TICKS = 5
    EVENT_RING = 65536
    PT_PCMU = 0  # RFC 3551 table 4
    PT_PCMA = 8
    SAMPLES_PER_MS = 8  # G.711 and RFC 4733 events: 8 kHz RTP clock
    NS_PER_SAMPLE = 125000
    GEN_SOURCE = -1  # out_src_leg while the engine itself is the leg's RTP source
    NTP_UNIX_OFFSET_S = 2208988800  # RFC 5905: 1900 -> 1970


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline bint same_address(const sockaddr_in *a, const sockaddr_in *b) noexcept nogil:
    return a.sin_port == b.sin_port and a.sin_addr.s_addr == b.sin_addr.s_addr


cdef inline void ntp_now(uint32_t *sec, uint32_t *frac) noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    sec[0] = <uint32_t>(ts.tv_sec + NTP_UNIX_OFFSET_S)
    frac[0] = <uint32_t>((<uint64_t>ts.tv_nsec << 32) // 1000000000)
