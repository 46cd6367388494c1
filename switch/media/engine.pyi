"""The media plane's control surface: commands in, events out (see engine.pyx).

Commands never wait for the media workers: each method checks its arguments (MediaError
or ValueError at once), decides what it can itself (leg id, port, worker, recording and
mix ids, all returned at once), queues the work and returns. Each worker applies its
queue in order shortly after; what only a worker finds out comes back as an event
(CommandFailed). Only tests and stop() wait, with sync().
"""

import os
from collections.abc import Sequence
from typing import Any, Literal

from switch.media.events import MediaEvent

class MediaEngine:
    def __init__(
        self,
        workers: int | None = None,
        port_range: tuple[int, int] = (20000, 29999),
        bind_host: str = "127.0.0.1",
        rtp_timeout_s: float = 30.0,
        stats_interval_s: float = 5.0,
        rtcp_interval_s: float = 5.0,
        ssrc_seed: int | None = None,
        wakeup_window_us: int = 0,
        relatch_silence_s: float | None = 2.0,
    ) -> None:
        """ssrc_seed: reproducible SSRCs and initial seq/ts (tests); None: os.urandom.
        wakeup_window_us: after handling a wake-up, wait this long (0-10000 µs, bounded
        by the next tick) so the next epoll_wait reports many ready sockets at once.
        relatch_silence_s: once latched, a packet from another address with another SSRC
        takes over only after the latched source has been silent this long (a phone that
        moved); None never re-latches until the next set_remote (strict)."""
    def start(self) -> None:
        """Start the worker threads; MediaError if already started."""
    def stop(self) -> None:
        """Let the workers apply what is queued, join them and close every leg."""
    def sync(self) -> None:
        """Wait until every queued command is applied. For tests and stop() only: call
        control never waits for the media plane."""
    def open_leg(self, group: str | None = None, rtcp_mux: bool = False) -> int:
        """Bind an even RTP port (+1 for RTCP unless rtcp_mux); MediaError when none is free."""
    def leg_port(self, leg: int) -> int: ...
    def leg_worker(self, leg: int) -> int: ...
    def set_remote(
        self,
        leg: int,
        host: str,
        port: int,
        payload_type: int = 0,
        dtmf_payload_type: int | None = 101,
    ) -> None: ...
    def bridge(self, a: int, b: int) -> None:
        """Relay a <-> b; b moves to a's worker if they differ (MediaError if b is
        recorded or mixed on its current worker)."""
    def unbridge(self, leg: int) -> None: ...
    def close_leg(self, leg: int) -> None:
        """The leg is forgotten at once; its ports go back to the pool once its worker
        has closed them."""
    @property
    def events_fd(self) -> int: ...
    @property
    def events_dropped(self) -> int: ...
    @property
    def workers_count(self) -> int: ...
    def drain_events(self) -> list[MediaEvent]: ...
    def leg_stats(self, leg: int) -> dict[str, int | float]:
        """received, sent, dropped_invalid, dropped_stranger, relayed, rtcp_received,
        lost, jitter_ms, mos, rtt_ms."""
    def stats(self) -> dict[str, Any]:
        """ticks, tick_overruns, events_dropped, recordings, mixes, and workers: a list
        of {index, legs, ticks, tick_overruns, commands_queued}."""
    # -- media: everything below runs in the workers, no Python per packet or tick
    def record(
        self,
        leg_a: int,
        leg_b: int | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        stereo: bool = True,
    ) -> int:
        """WAV of leg_a's received audio (left) and leg_b's (right), or their mono mix;
        returns the recording id. leg_b moves to leg_a's worker."""
    def stop_recording(self, recording_id: int) -> None:
        """Flush and finalise the WAV; MediaError for an unknown id."""
    def retarget_recording(
        self, recording_id: int, leg_a: int, leg_b: int | None = None,
        extra: Sequence[int] = (),
    ) -> None:
        """Feed the same WAV from leg_a (left) and leg_b (right) from the next tick on
        (a transfer); the new legs move to the recording's worker. Up to 4 `extra`
        legs (a conference member, a supervisor barging in) join the right channel."""
    def pause_recording(self, recording_id: int, paused: bool) -> None:
        """While paused the recording is written silence (its timeline goes on)."""
    def play(
        self, leg: int, prompts: list[str | bytes | os.PathLike[str]], *, loop: bool = False
    ) -> None:
        """WAV paths or raw 16-bit 8 kHz PCM, sent toward the leg in its codec instead of
        relay; PlaybackFinished when a non-looping list ends (not after stop_playing)."""
    def play_tone(
        self, leg: int, name: Literal["dial", "ringback", "busy", "congestion"]
    ) -> None:
        """A call-progress tone until stop_playing (or another play)."""
    def stop_playing(self, leg: int) -> None: ...
    def send_dtmf(self, leg: int, digits: str, *, duration_ms: int = 100) -> None:
        """RFC 4733 events with the leg's telephone-event payload type, 100 ms apart."""
    def set_inband_dtmf(self, leg: int, enabled: bool) -> None:
        """Goertzel detection on the leg's decoded audio: DtmfReceived(duration_ms=0)."""
    def create_mix(self) -> int: ...
    def join_mix(self, mix: int, leg: int) -> None:
        """The leg hears everyone and is heard; it moves to the mix's worker."""
    def leave_mix(self, mix: int, leg: int) -> None: ...
    def destroy_mix(self, mix: int) -> None:
        """Free an emptied mix; MediaError while it has participants."""
    def set_hearing(self, mix: int, listener_leg: int, talker_leg: int, audible: bool) -> None: ...
    def monitor(
        self,
        supervisor_leg: int,
        agent_leg: int,
        customer_leg: int,
        mode: Literal["listen", "whisper", "barge"],
    ) -> int:
        """Create or update the agent's mix for a supervisor; returns the mix id."""
