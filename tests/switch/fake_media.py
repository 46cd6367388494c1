"""FakeMediaEngine: call control's test double for switch.media.MediaEngine.

Same public methods, signatures and argument checks (with the same messages for the
common mistakes) as the C engine, but no sockets, threads or audio: every command the
caller gives is appended to ``commands`` as ``(method_name, *arguments)`` in signature
order, and events come only from the test, through ``emit``. ``events_fd`` is a real
eventfd that is readable while emitted events wait, so code that watches the engine with
``loop.add_reader(engine.events_fd, ...)`` runs unchanged against the fake.

What the fake keeps, because call control's behaviour depends on it: which legs, mixes
and recordings exist (unknown ids raise MediaError like the engine), each leg's port,
remote, codecs, peer and worker (bridge moves ``b`` to ``a``'s worker, refused when ``b``
is recorded or mixed elsewhere), and that closing a leg stops its recordings and takes
it out of its mix. Queries (leg_port, leg_stats, stats, drain_events, ...) are answered
but not recorded: ``commands`` is what call control asked the media plane to do. Like
the engine's, commands take effect as far as the caller can see at once (ids, ports,
errors); ``sync`` (a barrier for tests of the real engine) has nothing to wait for.

tests/switch/test_fake_media.py checks that the method names and signatures here equal
MediaEngine's (compiled class and engine.pyi), so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from switch.media import MediaError, MediaEvent, PlaybackFinished
from switch.media.feeders import recording_feeders

# Mirrors of the engine's compile-time limits and tone table (legmedia.pxd, mixer.pxd,
# tones.pyx): the fake must refuse what the engine refuses.
MAX_DTMF_DIGITS = 64
MIX_MAX_PARTIES = 16
TONE_NAMES = ("dial", "ringback", "busy", "congestion")
MONITOR_MODES = {"listen": (False, False), "whisper": (True, False), "barge": (True, True)}
DTMF_DIGITS = "0123456789*#ABCD"
LEG_STAT_KEYS = (
    "received",
    "sent",
    "dropped_invalid",
    "dropped_stranger",
    "relayed",
    "rtcp_received",
    "lost",
    "jitter_ms",
    "mos",
    "rtt_ms",
)

Command = tuple[Any, ...]


@dataclass
class FakeLeg:
    """What the fake remembers about one leg (readable by tests via ``legs``)."""

    leg_id: int
    port: int
    worker: int
    group: str | None
    rtcp_mux: bool
    remote: tuple[str, int] | None = None
    payload_type: int = 0
    dtmf_payload_type: int | None = 101
    peer: int | None = None
    playing: Literal["prompts", "loop", "tone"] | None = None
    inband_dtmf: bool = False
    stats: dict[str, int | float] = field(default_factory=lambda: dict.fromkeys(LEG_STAT_KEYS, 0))


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer {low}-{high}, got {value!r}")


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1e9:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _check_ipv4(name: str, value: object) -> None:
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"{name} must be an IPv4 address, got {value!r}") from None


class FakeMediaEngine:
    """Records commands, answers queries from its own bookkeeping, emits injected events."""

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
        if workers is None:
            workers = os.cpu_count() or 1
        _check_int("workers", workers, 1, 1024)
        if (
            not isinstance(port_range, tuple)
            or len(port_range) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in port_range)
            or not 1 <= port_range[0] <= port_range[1] <= 65535
        ):
            raise ValueError(
                f"port_range must be (low, high) with 1 <= low <= high <= 65535, got {port_range!r}"
            )
        low, high = port_range
        first_even = low + (low & 1)
        if first_even + 1 > high:
            raise ValueError(f"port_range {low}-{high} holds no even port with port+1 in range")
        _check_ipv4("bind_host", bind_host)
        _check_positive("rtp_timeout_s", rtp_timeout_s)
        _check_positive("stats_interval_s", stats_interval_s)
        _check_positive("rtcp_interval_s", rtcp_interval_s)
        _check_int("wakeup_window_us", wakeup_window_us, 0, 10000)
        if relatch_silence_s is not None and (
            not isinstance(relatch_silence_s, int | float)
            or isinstance(relatch_silence_s, bool)
            or not 0 <= relatch_silence_s < 1e9
        ):
            raise ValueError(
                "relatch_silence_s must be a non-negative number of seconds or None, "
                f"got {relatch_silence_s!r}"
            )
        if ssrc_seed is not None and (
            not isinstance(ssrc_seed, int) or isinstance(ssrc_seed, bool)
        ):
            raise ValueError(f"ssrc_seed must be an integer or None, got {ssrc_seed!r}")
        self.commands: list[Command] = []
        self.legs: dict[int, FakeLeg] = {}
        self.recordings: dict[int, tuple[int, ...]] = {}
        self.paused_recordings: set[int] = set()
        self.mixes: dict[int, dict[int, int]] = {}  # mix -> {leg: slot}
        self.hearing: dict[int, dict[tuple[int, int], bool]] = {}  # mix -> (listener, talker)
        self._mix_workers: dict[int, int] = {}  # mix -> its first participant's worker
        self.running = False
        self._n_workers = workers
        self._port_low, self._port_high = low, high
        self._free_ports = list(range(first_even, high, 2))
        self._next_leg_id = 1
        self._next_media_id = 1
        self._groups: dict[str, int] = {}
        self._events: list[MediaEvent] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._events_dropped = 0
        self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    # -- test controls (not part of MediaEngine)

    def emit(self, event: MediaEvent) -> None:
        """Queue an event as a worker would: drain_events returns it, events_fd wakes."""
        self._events.append(event)
        os.eventfd_write(self._eventfd, 1)

    def finish_playback(self, leg: int) -> None:
        """A non-looping play() on the leg ran out: emit PlaybackFinished (as the engine)."""
        target = self._leg(leg)
        if target.playing != "prompts":
            raise MediaError(f"leg {leg} is not playing a non-looping prompt list")
        target.playing = None
        self.emit(PlaybackFinished(leg))

    def fail_next(self, method: str, error: BaseException) -> None:
        """Make the next call of ``method`` raise ``error`` (e.g. no free RTP port)."""
        if not callable(getattr(self, method, None)):
            raise AttributeError(f"MediaEngine has no method {method!r}")
        self._failures.setdefault(method, []).append(error)

    def set_leg_stats(self, leg: int, **values: int | float) -> None:
        """What leg_stats reports for the leg from now on (unknown keys refused)."""
        unknown = set(values) - set(LEG_STAT_KEYS)
        if unknown:
            raise ValueError(f"unknown leg statistics: {sorted(unknown)}")
        self._leg(leg).stats.update(values)

    def close(self) -> None:
        """Release the eventfd (the real engine's lives as long as the object)."""
        if self._eventfd >= 0:
            os.close(self._eventfd)
            self._eventfd = -1

    def _command(self, *command: Any) -> None:
        pending = self._failures.get(command[0])
        if pending:
            raise pending.pop(0)
        self.commands.append(command)

    def _leg(self, leg: object) -> FakeLeg:
        found = self.legs.get(leg) if isinstance(leg, int) else None
        if found is None:
            raise MediaError(f"no such leg: {leg!r}")
        return found

    def _mix(self, mix: object) -> dict[int, int]:
        found = self.mixes.get(mix) if isinstance(mix, int) else None
        if found is None:
            raise MediaError(f"no such mix: {mix!r}")
        return found

    def _attached(self, leg: int) -> bool:
        return any(leg in legs for legs in self.recordings.values()) or any(
            leg in members for members in self.mixes.values()
        )

    def _move(self, leg: FakeLeg, worker: int) -> None:
        if leg.worker == worker:
            return
        if self._attached(leg.leg_id):
            raise MediaError(
                f"leg {leg.leg_id} is recorded or mixed on another worker; stop that first"
            )
        leg.worker = worker

    # -- lifecycle

    def start(self) -> None:
        if self.running:
            raise MediaError("media engine already started")
        self._command("start")
        self.running = True

    def stop(self) -> None:
        self._command("stop")
        self.running = False
        for leg_id in list(self.legs):
            self._close(leg_id)

    def sync(self) -> None:
        """Nothing is ever queued here: a no-op, not recorded (it is not a command)."""

    # -- legs and relay

    def open_leg(self, group: str | None = None, rtcp_mux: bool = False) -> int:
        if group is not None and not isinstance(group, str):
            raise ValueError(f"group must be a str or None, got {group!r}")
        self._command("open_leg", group, rtcp_mux)
        if not self._free_ports:
            raise MediaError(f"no free RTP port in {self._port_low}-{self._port_high}")
        if group is not None and group in self._groups:
            worker = self._groups[group]
        else:
            loads = [0] * self._n_workers
            for existing in self.legs.values():
                loads[existing.worker] += 1
            worker = loads.index(min(loads))
            if group is not None:
                self._groups[group] = worker
        leg_id = self._next_leg_id
        self._next_leg_id += 1
        self.legs[leg_id] = FakeLeg(leg_id, self._free_ports.pop(0), worker, group, bool(rtcp_mux))
        return leg_id

    def leg_port(self, leg: int) -> int:
        return self._leg(leg).port

    def leg_worker(self, leg: int) -> int:
        return self._leg(leg).worker

    def set_remote(
        self,
        leg: int,
        host: str,
        port: int,
        payload_type: int = 0,
        dtmf_payload_type: int | None = 101,
    ) -> None:
        target = self._leg(leg)
        if not isinstance(host, str):  # the engine's parse_ipv4 takes a typed str
            raise TypeError(f"Expected str, got {type(host).__name__}")
        _check_ipv4("host", host)
        _check_int("port", port, 1, 65535)
        _check_int("payload_type", payload_type, 0, 127)
        if dtmf_payload_type is not None:
            _check_int("dtmf_payload_type", dtmf_payload_type, 0, 127)
        self._command("set_remote", leg, host, port, payload_type, dtmf_payload_type)
        target.remote = (host, port)
        target.payload_type = payload_type
        target.dtmf_payload_type = dtmf_payload_type

    def bridge(self, a: int, b: int) -> None:
        leg_a, leg_b = self._leg(a), self._leg(b)
        if leg_a is leg_b:
            raise ValueError(f"cannot bridge leg {a} to itself")
        self._move(leg_b, leg_a.worker)
        self._command("bridge", a, b)
        for leg in (leg_a, leg_b):
            if leg.peer is not None and leg.peer in self.legs:
                self.legs[leg.peer].peer = None
        leg_a.peer, leg_b.peer = b, a

    def unbridge(self, leg: int) -> None:
        target = self._leg(leg)
        self._command("unbridge", leg)
        if target.peer is not None and target.peer in self.legs:
            self.legs[target.peer].peer = None
        target.peer = None

    def close_leg(self, leg: int) -> None:
        self._leg(leg)
        self._command("close_leg", leg)
        self._close(leg)

    def _close(self, leg_id: int) -> None:
        # As the engine's _release_media: the leg's recordings stop, it leaves its mix.
        for rec_id, legs in list(self.recordings.items()):
            if leg_id in legs:
                del self.recordings[rec_id]
                self.paused_recordings.discard(rec_id)
        for members in self.mixes.values():
            members.pop(leg_id, None)
        leg = self.legs.pop(leg_id)
        if leg.peer is not None and leg.peer in self.legs:
            self.legs[leg.peer].peer = None
        self._free_ports.append(leg.port)

    # -- what comes back

    @property
    def events_fd(self) -> int:
        return self._eventfd

    @property
    def events_dropped(self) -> int:
        return self._events_dropped

    @property
    def workers_count(self) -> int:
        return self._n_workers

    def drain_events(self) -> list[MediaEvent]:
        with contextlib.suppress(BlockingIOError):  # nothing emitted since the last drain
            os.eventfd_read(self._eventfd)
        events, self._events = self._events, []
        return events

    def leg_stats(self, leg: int) -> dict[str, int | float]:
        return dict(self._leg(leg).stats)

    def stats(self) -> dict[str, Any]:
        workers = [
            {
                "index": i,
                "legs": sum(1 for leg in self.legs.values() if leg.worker == i),
                "ticks": 0,
                "tick_overruns": 0,
                "commands_queued": 0,
            }
            for i in range(self._n_workers)
        ]
        return {
            "ticks": 0,
            "tick_overruns": 0,
            "events_dropped": self._events_dropped,
            "recordings": len(self.recordings),
            "recording_frames_dropped": 0,
            "mixes": len(self.mixes),
            "workers": workers,
        }

    # -- media

    def record(
        self,
        leg_a: int,
        leg_b: int | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        stereo: bool = True,
    ) -> int:
        a = self._leg(leg_a)
        b = None if leg_b is None else self._leg(leg_b)
        if not isinstance(path, str | os.PathLike):
            raise ValueError(f"path must be a str or os.PathLike, got {path!r}")
        if not isinstance(stereo, bool):
            raise ValueError(f"stereo must be a bool, got {stereo!r}")
        if b is a:
            raise ValueError(f"cannot record leg {leg_a} against itself")
        if b is not None:
            self._move(b, a.worker)
        self._command("record", leg_a, leg_b, path, stereo)
        rec_id = self._next_media_id
        self._next_media_id += 1
        self.recordings[rec_id] = (leg_a,) if leg_b is None else (leg_a, leg_b)
        return rec_id

    def stop_recording(self, recording_id: int) -> None:
        if recording_id not in self.recordings:
            raise MediaError(f"no such recording: {recording_id!r}")
        self._command("stop_recording", recording_id)
        del self.recordings[recording_id]
        self.paused_recordings.discard(recording_id)

    def retarget_recording(self, recording_id: int, leg_a: int,
                           leg_b: int | None = None, extra: Sequence[int] = ()) -> None:
        if recording_id not in self.recordings:
            raise MediaError(f"no such recording: {recording_id!r}")
        a = self._leg(leg_a)
        b = None if leg_b is None else self._leg(leg_b)
        fed = recording_feeders(leg_a, leg_b, extra)
        extra = tuple(fed[1 if leg_b is None else 2:])
        added = [self._leg(leg) for leg in extra]
        home = self._leg(self.recordings[recording_id][0]).worker
        legs = self.recordings.pop(recording_id)
        try:
            for leg in [a, *([] if b is None else [b]), *added]:
                self._move(leg, home)
        finally:
            self.recordings[recording_id] = legs
        # The command as call control gave it (extra only when there are some).
        self._command("retarget_recording", recording_id, leg_a, leg_b, *(
            (extra,) if extra else ()))
        self.recordings[recording_id] = fed

    def pause_recording(self, recording_id: int, paused: bool) -> None:
        if recording_id not in self.recordings:
            raise MediaError(f"no such recording: {recording_id!r}")
        if not isinstance(paused, bool):
            raise ValueError(f"paused must be a bool, got {paused!r}")
        self._command("pause_recording", recording_id, paused)
        if paused:
            self.paused_recordings.add(recording_id)
        else:
            self.paused_recordings.discard(recording_id)

    def play(
        self, leg: int, prompts: list[str | bytes | os.PathLike[str]], *, loop: bool = False
    ) -> None:
        target = self._leg(leg)
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str | bytes | os.PathLike) for p in prompts)
        ):
            raise ValueError(
                f"prompts must be a non-empty list of WAV paths or PCM bytes, got {prompts!r}"
            )
        self._command("play", leg, list(prompts), bool(loop))
        target.playing = "loop" if loop else "prompts"

    def play_tone(self, leg: int, name: Literal["dial", "ringback", "busy", "congestion"]) -> None:
        target = self._leg(leg)
        if name not in TONE_NAMES:
            raise ValueError(f"unknown tone {name!r}, expected one of {', '.join(TONE_NAMES)}")
        self._command("play_tone", leg, name)
        target.playing = "tone"

    def stop_playing(self, leg: int) -> None:
        target = self._leg(leg)
        self._command("stop_playing", leg)
        target.playing = None

    def send_dtmf(self, leg: int, digits: str, *, duration_ms: int = 100) -> None:
        target = self._leg(leg)
        if (
            not isinstance(digits, str)
            or not 1 <= len(digits) <= MAX_DTMF_DIGITS
            or any(d not in DTMF_DIGITS for d in digits)
        ):
            raise ValueError(f"digits must be 1-{MAX_DTMF_DIGITS} of 0-9 * # A-D, got {digits!r}")
        _check_int("duration_ms", duration_ms, 40, 2000)
        if target.dtmf_payload_type is None:
            raise MediaError(f"leg {leg} has no telephone-event payload type")
        self._command("send_dtmf", leg, digits, duration_ms)

    def set_inband_dtmf(self, leg: int, enabled: bool) -> None:
        target = self._leg(leg)
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be a bool, got {enabled!r}")
        self._command("set_inband_dtmf", leg, enabled)
        target.inband_dtmf = enabled

    def create_mix(self) -> int:
        self._command("create_mix")
        mix = self._next_media_id
        self._next_media_id += 1
        self.mixes[mix] = {}
        self.hearing[mix] = {}
        return mix

    def join_mix(self, mix: int, leg: int) -> None:
        members = self._mix(mix)
        target = self._leg(leg)
        if leg in members:
            return
        for other_id, other in self.mixes.items():
            if leg in other:
                raise MediaError(f"leg {leg} is already in mix {other_id}")
        if len(members) >= MIX_MAX_PARTIES:
            raise MediaError(f"mix {mix} is full ({MIX_MAX_PARTIES} participants)")
        if mix in self._mix_workers:  # a mix keeps its worker, even once emptied
            self._move(target, self._mix_workers[mix])
        self._command("join_mix", mix, leg)
        members[leg] = min(set(range(MIX_MAX_PARTIES)) - set(members.values()))
        self._mix_workers.setdefault(mix, target.worker)

    def leave_mix(self, mix: int, leg: int) -> None:
        members = self._mix(mix)
        self._leg(leg)
        if leg not in members:
            raise MediaError(f"leg {leg} is not in mix {mix}")
        self._command("leave_mix", mix, leg)
        del members[leg]

    def destroy_mix(self, mix: int) -> None:
        members = self._mix(mix)
        if members:
            raise MediaError(f"mix {mix} still has participants: {sorted(members)}")
        self._command("destroy_mix", mix)
        del self.mixes[mix]
        del self.hearing[mix]
        self._mix_workers.pop(mix, None)

    def set_hearing(self, mix: int, listener_leg: int, talker_leg: int, audible: bool) -> None:
        members = self._mix(mix)
        for leg in (listener_leg, talker_leg):
            if leg not in members:
                raise MediaError(f"leg {leg!r} is not in mix {mix}")
        if not isinstance(audible, bool):
            raise ValueError(f"audible must be a bool, got {audible!r}")
        self._command("set_hearing", mix, listener_leg, talker_leg, audible)
        self.hearing[mix][(listener_leg, talker_leg)] = audible

    def monitor(
        self,
        supervisor_leg: int,
        agent_leg: int,
        customer_leg: int,
        mode: Literal["listen", "whisper", "barge"],
    ) -> int:
        if mode not in MONITOR_MODES:
            raise ValueError(f"mode must be one of listen, whisper, barge, got {mode!r}")
        legs = (supervisor_leg, agent_leg, customer_leg)
        for leg in legs:
            self._leg(leg)
        if len(set(legs)) != 3:
            raise ValueError(f"monitor needs three different legs, got {legs!r}")
        # One command, as call control gave it; the mix bookkeeping follows the engine.
        self._command("monitor", supervisor_leg, agent_leg, customer_leg, mode)
        mix = next((m for m, members in self.mixes.items() if agent_leg in members), None)
        if mix is None:
            mix = self._next_media_id
            self._next_media_id += 1
            self.mixes[mix] = {}
            self.hearing[mix] = {}
        members = self.mixes[mix]
        self._mix_workers.setdefault(mix, self.legs[agent_leg].worker)
        for leg in (agent_leg, customer_leg, supervisor_leg):
            if leg not in members:
                members[leg] = min(set(range(MIX_MAX_PARTIES)) - set(members.values()))
        agent_hears, customer_hears = MONITOR_MODES[mode]
        hearing = self.hearing[mix]
        hearing[(agent_leg, customer_leg)] = True
        hearing[(customer_leg, agent_leg)] = True
        hearing[(supervisor_leg, agent_leg)] = True
        hearing[(supervisor_leg, customer_leg)] = True
        hearing[(agent_leg, supervisor_leg)] = agent_hears
        hearing[(customer_leg, supervisor_leg)] = customer_hears
        return mix
