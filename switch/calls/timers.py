"""Application timers on call control's clock (as `Call` offers them, switch.calls.call).

A digit timeout, a ring timeout chosen by an application, a wrap-up, a queue's maximum
wait: each is a deadline on the call, so it fires from the same `now` the SIP stack and
call control run on (the service's loop clock in production, a stepped clock in tests)
instead of an asyncio timer of its own. When one passes, the call's application is told
`TimerFired` with the token it chose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switch.calls.events import TimerFired

if TYPE_CHECKING:
    from switch.calls.host import CallHost

__all__ = ["AppTimed"]


class AppTimed:
    """What `Call` needs to have for these (it has them)."""

    control: CallHost
    call_id: str
    _app_timers: dict[int, float]  # token -> deadline
    _next_timer_token: int

    def start_timer(self, delay_s: float, now: float) -> int:
        """A deadline `delay_s` from `now`; returns its token (TimerFired names it)."""
        self._next_timer_token += 1
        token = self._next_timer_token
        self._app_timers[token] = now + max(0.0, delay_s)
        return token

    def cancel_timer(self, token: int) -> None:
        self._app_timers.pop(token, None)

    @property
    def app_deadline(self) -> float | None:
        return min(self._app_timers.values(), default=None)

    def fire_app_timers(self, now: float) -> None:
        due = sorted((deadline, token) for token, deadline in self._app_timers.items()
                     if deadline <= now)
        for _, token in due:
            del self._app_timers[token]
            self.control.tell(TimerFired(self.call_id, token))
