"""The media plane's control surface: commands in, events out (see engine.pyx)."""

from switch.media.events import MediaEvent

class MediaEngine:
    def __init__(
        self,
        workers: int | None = None,
        port_range: tuple[int, int] = (20000, 29999),
        bind_host: str = "127.0.0.1",
        rtp_timeout_s: float = 30.0,
        stats_interval_s: float = 5.0,
    ) -> None: ...
    def start(self) -> None:
        """Start the worker threads; MediaError if already started."""
    def stop(self) -> None:
        """Join the worker threads and close every leg."""
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
        """Relay a <-> b; b moves to a's worker if they differ."""
    def unbridge(self, leg: int) -> None: ...
    def close_leg(self, leg: int) -> None: ...
    @property
    def events_fd(self) -> int: ...
    @property
    def events_dropped(self) -> int: ...
    @property
    def workers_count(self) -> int: ...
    def drain_events(self) -> list[MediaEvent]: ...
    def leg_stats(self, leg: int) -> dict[str, int | float]:
        """received, sent, dropped_invalid, dropped_stranger, relayed, rtcp_received,
        lost, jitter_ms, mos."""
