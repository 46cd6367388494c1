"""The application interface: IVR, queues and the dialer drive calls through `Channel`,
an async API (answer, play, collect digits, park, dial and bridge, start, pause and
resume the call's recording, hand the call to another application and back, wait,
hang up), and never see SIP.

Call control is sans-I/O; this is its asyncio face. A `Channel` command calls into
the call at once and asks the SIP service to send what it queued; results arrive as
`ChannelEvent`s (switch.calls.events) that `ApplicationRunner.deliver` routes to the
channel waiting for them. Every await ends with `ChannelHungUp` if the caller hangs up.

Waits for time (the inter-digit timeout, `sleep`) are timers on the call
(`Call.start_timer`), not asyncio timers: they pass on the same `now` as SIP and call
control, so a test steps that clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from switch.calls import (
    Call,
    CallState,
    ChannelEvent,
    DigitReceived,
    HungUp,
    PeerAnswered,
    PeerFailed,
    PlaybackDone,
    TimerFired,
)
from switch.dialplan import ToApplication

__all__ = [
    "Application", "ApplicationRunner", "Channel", "ChannelHungUp", "DialResult",
    "UnknownApplication", "play_prompt",
]

log = logging.getLogger("callcenter.apps")

DTMF_DIGITS = frozenset("0123456789*#ABCD")


class ChannelHungUp(Exception):
    """The call ended while the application was waiting on it."""


class ServiceHooks(Protocol):
    """What a channel needs from the SIP service that owns call control."""

    @property
    def now(self) -> float: ...
    def pump(self) -> None: ...
    def dial_number(self, call: Call, number: str) -> bool: ...
    def dial_numbers(self, call: Call, numbers: Sequence[str], *, sequential: bool,
                     ring_timeout_s: float | None) -> bool: ...


@dataclass(frozen=True, slots=True)
class DialResult:
    answered: bool
    status: int | None = None  # the SIP status when not answered
    q850_cause: int | None = None


Application = Callable[["Channel"], Awaitable[None]]


class UnknownApplication(LookupError):
    """A hand-off named an application the runner does not have."""


Lookup = Callable[[str, Mapping[str, str]], "tuple[Application, dict[str, str]] | None"]


class Channel:
    def __init__(self, hooks: ServiceHooks, call: Call, params: Mapping[str, str],
                 lookup: Lookup | None = None) -> None:
        self._hooks = hooks
        self.call = call
        self.params = params
        self._lookup = lookup  # the runner's applications, for hand_off
        self._events: asyncio.Queue[ChannelEvent] = asyncio.Queue()
        self._digits: list[str] = []
        self.hung_up = False

    def __repr__(self) -> str:
        return f"<Channel {self.call_id}>"

    @property
    def call_id(self) -> str:
        return self.call.call_id

    @property
    def caller(self) -> str:
        return self.call.origin.caller

    @property
    def callee(self) -> str:
        return self.call.origin.callee

    @property
    def variables(self) -> dict[str, object]:
        """The call's variables: set by one application, read by the next (and by what
        follows the call: screen pops, records)."""
        return self.call.variables

    async def hand_off(self, name: str, **params: str) -> None:
        """Pass the call to the application `name` (an IVR menu to a queue to a voice
        message) with its own `params`; it drives this same channel, sees the same
        variables, and when it returns the call comes back here. ChannelHungUp if the
        caller hangs up meanwhile; UnknownApplication (nothing changes) for a name the
        runner does not have."""
        found = self._lookup(name, params) if self._lookup is not None else None
        if found is None:
            raise UnknownApplication(f"no application named {name!r}")
        application, own_params = found
        before = (self.call.application, self.params)
        self.call.application, self.params = name, own_params
        try:
            await application(self)
        finally:
            self.call.application, self.params = before

    def deliver(self, event: ChannelEvent) -> None:
        if isinstance(event, DigitReceived):
            self._digits.append(event.digit)
        if isinstance(event, HungUp):
            self.hung_up = True
        self._events.put_nowait(event)

    # -- commands

    async def answer(self) -> None:
        self._check_up()
        self.call.answer(self._hooks.now)
        self._flush()

    async def play(self, prompts: list[str | bytes | os.PathLike[str]], *,
                   stop_on_digit: bool = False) -> str | None:
        """Play to the caller until the list ends; with `stop_on_digit` a key press
        stops it and is returned (and stays buffered for collect_digits)."""
        self._check_up()
        if stop_on_digit and self._digits:
            return self._digits[0]
        self.call.play(prompts)
        self._flush()
        while True:
            event = await self._next()
            if isinstance(event, PlaybackDone):
                return None
            if stop_on_digit and isinstance(event, DigitReceived):
                self.call.stop_playing()
                self._flush()
                return event.digit

    async def play_tone(self, name: Literal["dial", "ringback", "busy", "congestion"]) -> None:
        """Start a call-progress tone; it plays until the next play or stop_playing."""
        self._check_up()
        self.call.play_tone(name)
        self._flush()

    async def park(self, prompts: list[str | bytes | os.PathLike[str]], *,
                   loop: bool = True) -> None:
        """Hold the caller in the switch with looping music or a prompt, at once (no
        waiting): until unpark, or a dial whose party answers (the music plays on while
        it rings, then gives way to them without a gap)."""
        self._check_up()
        self.call.park(prompts, loop=loop)
        self._flush()

    async def unpark(self) -> None:
        self.call.unpark()
        self._flush()

    async def stop_playing(self) -> None:
        self.call.stop_playing()
        self._flush()

    async def send_dtmf(self, digits: str) -> None:
        """Key `digits` (RFC 4733 events) toward the party the caller is connected to:
        an IVR working its way through another system's menu. ValueError when nobody
        has answered the dial yet or a digit is not one of 0-9 * # A-D."""
        self._check_up()
        if not digits or not set(digits) <= DTMF_DIGITS:
            raise ValueError(f"digits must be 1 or more of 0-9 * # A-D, got {digits!r}")
        peer = self.call.b
        if peer is None or not peer.answered or peer.engine_closed:
            raise ValueError("no answered party to send digits to")
        self.call.send_dtmf(peer, digits)

    async def collect_digits(self, max_digits: int, *, timeout_s: float = 5.0,
                             terminator: str | None = "#") -> str:
        """Up to `max_digits` DTMF digits; stops early at `terminator` (not returned)
        or when `timeout_s` passes on the call's clock with no new digit (each digit
        starts it again). Digits pressed during an earlier prompt count (type-ahead)."""
        collected = ""
        while len(collected) < max_digits:
            if self._digits:
                digit = self._digits.pop(0)
                if digit == terminator:
                    break
                collected += digit
                continue
            if not await self._next_digit(timeout_s):
                break
        return collected

    async def sleep(self, delay_s: float) -> None:
        """Wait `delay_s` on the call's clock (the one SIP and call control run on):
        a wrap-up, a queue's maximum wait, a pause between prompts. Key presses
        meanwhile stay buffered for collect_digits; ChannelHungUp if the caller
        hangs up first."""
        token = self._start_timer(delay_s)
        try:
            while True:
                event = await self._next()
                if isinstance(event, TimerFired) and event.token == token:
                    return
        finally:
            self.call.cancel_timer(token)

    async def dial(self, number: str) -> DialResult:
        """Ring `number` (an extension or an outbound number through the dialplan) and
        bridge the caller to it when it answers; the caller hears ringback meanwhile.
        Returns when it answers or fails; ChannelHungUp if the caller hangs up first."""
        self._check_up()
        # A dial that fails at once (no route, not registered) has queued its PeerFailed:
        # the flush delivers it, so both ways end in the loop below.
        self._hooks.dial_number(self.call, number)
        return await self._dialled()

    async def dial_all(self, numbers: Sequence[str], *, sequential: bool = False,
                       ring_timeout_s: float | None = None) -> DialResult:
        """Ring several numbers, like a ring group: all at once (the first to answer is
        bridged, the others are cancelled) or, `sequential`, one after another, each for
        `ring_timeout_s` (default: the switch's ring timeout). When all fail the result
        is the best failure (RFC 3261 §16.7)."""
        self._check_up()
        self._hooks.dial_numbers(self.call, numbers, sequential=sequential,
                                 ring_timeout_s=ring_timeout_s)
        return await self._dialled()

    async def _dialled(self) -> DialResult:
        self._flush()
        while True:
            event = await self._next()
            if isinstance(event, PeerAnswered):
                return DialResult(True)
            if isinstance(event, PeerFailed):
                return DialResult(False, event.status, event.q850_cause)

    async def start_recording(self) -> bool:
        """Record the call from now on (a route with recording = "on_demand"); False
        when it already records or may not ("never", no recording configured)."""
        self._check_up()
        started = self.call.start_recording(self._hooks.now)
        self._flush()
        return started

    async def pause_recording(self) -> bool:
        """Silence into the recording (a card number is read out) until resumed."""
        self._check_up()
        paused = self.call.pause_recording(self._hooks.now)
        self._flush()
        return paused

    async def resume_recording(self) -> bool:
        self._check_up()
        resumed = self.call.resume_recording(self._hooks.now)
        self._flush()
        return resumed

    async def hang_up(self) -> None:
        if not self.hung_up and self.call.state is not CallState.ENDED:
            self.call.hang_up(self._hooks.now, cause="application")
            self._flush()

    async def wait_hung_up(self) -> str:
        """Wait until the call ends (the application keeps it, bridged, until then)."""
        while True:
            event = await self._events.get()
            if isinstance(event, HungUp):
                return event.cause

    # -- plumbing

    def _flush(self) -> None:
        # Deliver what the command made the call's legs do (and re-arm its timers),
        # then send it.
        self.call.control.drain(self.call, self._hooks.now)
        self._hooks.pump()

    def _check_up(self) -> None:
        if self.hung_up or self.call.state is CallState.ENDED:
            raise ChannelHungUp(self.call.cause or "ended")

    async def _next(self) -> ChannelEvent:
        event = await self._events.get()
        if isinstance(event, HungUp):
            raise ChannelHungUp(event.cause)
        return event

    def _start_timer(self, delay_s: float) -> int:
        # A timer on the call, not on asyncio: it fires from call control's handle_timer
        # as TimerFired with this token. The flush re-arms call control's timer.
        self._check_up()
        token = self.call.start_timer(delay_s, self._hooks.now)
        self._flush()
        return token

    async def _next_digit(self, timeout_s: float) -> bool:
        """Wait until a digit is buffered (True) or `timeout_s` passes (False). Other
        events (a dial's, a timer fired for an earlier wait) are passed over."""
        token = self._start_timer(timeout_s)
        try:
            while not self._digits:
                event = await self._next()
                if isinstance(event, TimerFired) and event.token == token:
                    return False
            return True
        finally:
            self.call.cancel_timer(token)


async def play_prompt(channel: Channel) -> None:
    """The placeholder application: answer, play the route's prompt, hang up."""
    await channel.answer()
    prompt = channel.params.get("prompt")
    if prompt:
        await channel.play([prompt])
    await channel.hang_up()


class ApplicationRunner:
    """Starts applications on calls the dialplan sends them and feeds them events."""

    def __init__(self, applications: Mapping[str, Application], *,
                 prompts_dir: str | None = None) -> None:
        self.applications = dict(applications)
        self.prompts_dir = prompts_dir  # where a route's relative prompt names are
        self.channels: dict[str, Channel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._hooks: ServiceHooks | None = None

    def attach(self, hooks: ServiceHooks) -> None:
        self._hooks = hooks

    def start(self, call: Call, decision: ToApplication, now: float) -> bool:
        found = self.lookup(decision.name, decision.params)
        if found is None or self._hooks is None:
            return False
        application, params = found
        channel = Channel(self._hooks, call, params, self.lookup)
        call.application = decision.name
        self.channels[call.call_id] = channel
        task = asyncio.get_running_loop().create_task(self._run(application, channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def lookup(self, name: str, params: Mapping[str, str],
               ) -> tuple[Application, dict[str, str]] | None:
        """The application `name` and its params, a relative prompt placed in
        prompts_dir; None for a name we do not have."""
        application = self.applications.get(name)
        if application is None:
            return None
        own = dict(params)
        prompt = own.get("prompt")
        if prompt and self.prompts_dir is not None and not os.path.isabs(prompt):
            own["prompt"] = os.path.join(self.prompts_dir, prompt)
        return application, own

    def deliver(self, events: list[ChannelEvent]) -> None:
        for event in events:
            channel = self.channels.get(event.call_id)
            if channel is not None:
                channel.deliver(event)

    async def _run(self, application: Application, channel: Channel) -> None:
        try:
            await application(channel)
        except ChannelHungUp:
            pass
        except Exception:
            log.exception("application %s failed on call %s", channel.call.application,
                          channel.call_id)
            await channel.hang_up()
        else:
            # Done without hanging up: a bridged call stays up until it ends; anything
            # else has nowhere to go.
            b = channel.call.b
            if b is None or not b.answered:
                await channel.hang_up()
            else:
                with contextlib.suppress(ChannelHungUp):
                    await channel.wait_hung_up()
        finally:
            self.channels.pop(channel.call_id, None)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
