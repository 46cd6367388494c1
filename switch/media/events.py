"""What the media plane tells call control: past-tense frozen events, and MediaError.

Workers post C records to a ring; ``MediaEngine.drain_events`` turns them into these
objects in the caller's thread, so no worker ever takes the GIL to report something.
Commands never wait for a worker: what a method can check itself it raises at once
(MediaError, ValueError); what only the worker finds out comes back as CommandFailed.
"""

from dataclasses import dataclass


class MediaError(Exception):
    """The media engine refused a command (no free port, unknown leg, ...)."""


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """One key press on a leg: RFC 4733 (duration_ms from the event's end packet) or,
    with in-band detection on, tones in the audio (duration_ms 0: not measured)."""

    leg: int
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """A non-looping play() ran out of prompts (not posted after stop_playing)."""

    leg: int


@dataclass(frozen=True, slots=True)
class RtpTimedOut:
    """No valid RTP on a leg with a remote address for ``silent_s`` seconds (posted once
    per silence; a packet arriving re-arms it)."""

    leg: int
    silent_s: float


@dataclass(frozen=True, slots=True)
class LegStatistics:
    """A leg's counters, posted every ``stats_interval_s`` (same keys as ``leg_stats``).

    received: valid RTP from the latched source; sent: RTP sent out of this leg;
    dropped_invalid: datagrams that are not RTP (RFC 3550 §5.1 header checks);
    dropped_stranger: valid RTP from an address other than the latched one;
    relayed: received packets forwarded to the bridged peer; rtcp_received: RTCP
    datagrams (RTCP port, or the RTP port with rtcp-mux); lost and jitter_ms: RFC 3550
    A.3/A.8 for the current incoming SSRC; mos: ITU-T G.107 E-model estimate from them
    and rtt_ms, the round trip from RTCP report blocks about our stream (0 until known).
    """

    leg: int
    received: int
    sent: int
    dropped_invalid: int
    dropped_stranger: int
    relayed: int
    rtcp_received: int
    lost: int
    jitter_ms: float
    mos: float
    rtt_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A queued command the worker could not apply, after its method had returned.

    command: "attach" (the worker could not watch the leg's sockets, so the leg receives
    nothing: open_leg, or a move to another worker by bridge, record or join_mix);
    reason: the OS's words (strerror). Closing the leg is the way out.
    """

    leg: int
    command: str
    reason: str


MediaEvent = DtmfReceived | PlaybackFinished | RtpTimedOut | LegStatistics | CommandFailed
