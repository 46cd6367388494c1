# cython: language_level=3
"""The engine's packet path: receive, latch, rewrite/transcode, send; RTCP receive."""

from switch.media.engine_types cimport Leg, Worker


# Drain one readiness of the leg's RTP socket (recvmmsg batch) and relay to its peer.
cdef void receive_rtp(Worker *w, Leg *leg) noexcept nogil
# Drain one readiness of the leg's RTCP socket (not used with rtcp-mux).
cdef void receive_rtcp(Worker *w, Leg *leg) noexcept nogil
