"""OPTIONS keepalive for one PRI gateway, as a sans-I/O state machine.

The adapter asks `due(now)` (or arms a timer at `next_deadline()`), sends an OPTIONS
through a non-INVITE client transaction and calls `probe_sent(now)`; the transaction
layer then reports exactly one outcome: `response_received(status, now)` for a final
response, or `probe_timed_out(now)` when timer F fires (RFC 3261 §17.1.2.2). At most
one probe is outstanding, so a probe that is slower than the interval never overlaps
the next one: the next probe is due `interval` after the previous one was sent, or at
once when its outcome arrives later than that.

Liveness is separate from "a probe is in flight": the states below say whether the
gateway is in the outbound rotation, the in-flight flag only gates `probe_sent`.

States: UP (answering), SUSPECT (missed fewer than `failures_to_down` probes in a
row), DOWN (missed that many), RECOVERING (answered again, fewer than
`successes_to_up` times in a row). A miss while RECOVERING goes back to DOWN: the
successes must be consecutive, so a flapping gateway stays out.
UP and SUSPECT are live (in the rotation); DOWN and RECOVERING are not. While not
live, probing continues at `down_interval_s` so a gateway that comes back is noticed
quickly and put back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from switch.pri_gateway.errors import PriGatewayError


class HealthError(PriGatewayError):
    """The caller drove the keepalive out of order (our bug, not the gateway's)."""


class HealthState(Enum):
    UP = "up"  # answering; in the outbound rotation
    SUSPECT = "suspect"  # missed fewer than failures_to_down probes; still in rotation
    DOWN = "down"  # out of the rotation; still probed
    RECOVERING = "recovering"  # answering again, fewer than successes_to_up times so far


class Outcome(Enum):
    SUCCESS = "success"  # the gateway answered a probe with a final response
    FAILURE = "failure"  # timer F fired, or the gateway answered that it cannot serve


LIVE_STATES = frozenset({HealthState.UP, HealthState.SUSPECT})


@dataclass(frozen=True, slots=True)
class GatewayWentDown:
    name: str
    at: float  # monotonic seconds


@dataclass(frozen=True, slots=True)
class GatewayCameBack:
    name: str
    at: float  # monotonic seconds


HealthEvent = GatewayWentDown | GatewayCameBack

# (state, outcome, the consecutive-count threshold is reached) -> next state.
# The threshold is failures_to_down for FAILURE and successes_to_up for SUCCESS; rows
# where it does not matter list both values so the table stays total and checkable.
_TRANSITIONS: dict[tuple[HealthState, Outcome, bool], HealthState] = {
    (HealthState.UP, Outcome.SUCCESS, False): HealthState.UP,
    (HealthState.UP, Outcome.SUCCESS, True): HealthState.UP,
    (HealthState.UP, Outcome.FAILURE, False): HealthState.SUSPECT,
    (HealthState.UP, Outcome.FAILURE, True): HealthState.DOWN,
    (HealthState.SUSPECT, Outcome.SUCCESS, False): HealthState.UP,
    (HealthState.SUSPECT, Outcome.SUCCESS, True): HealthState.UP,
    (HealthState.SUSPECT, Outcome.FAILURE, False): HealthState.SUSPECT,
    (HealthState.SUSPECT, Outcome.FAILURE, True): HealthState.DOWN,
    (HealthState.DOWN, Outcome.SUCCESS, False): HealthState.RECOVERING,
    (HealthState.DOWN, Outcome.SUCCESS, True): HealthState.UP,
    (HealthState.DOWN, Outcome.FAILURE, False): HealthState.DOWN,
    (HealthState.DOWN, Outcome.FAILURE, True): HealthState.DOWN,
    (HealthState.RECOVERING, Outcome.SUCCESS, False): HealthState.RECOVERING,
    (HealthState.RECOVERING, Outcome.SUCCESS, True): HealthState.UP,
    # One miss while recovering starts the count again: the successes must be in a row.
    (HealthState.RECOVERING, Outcome.FAILURE, False): HealthState.DOWN,
    (HealthState.RECOVERING, Outcome.FAILURE, True): HealthState.DOWN,
}

# Final responses that count as a failed probe. Any other final response proves that
# the gateway's SIP stack is up and reachable: an OPTIONS is answered by the element
# itself (RFC 3261 §11.2), and 404/405/501 only say it does not like *OPTIONS* (some
# gateways route it like a call, some do not implement it), which is no reason to stop
# sending it INVITEs. 503 is the exception: it is what a gateway answers when its
# E1 spans are out of service or it is in maintenance (RFC 3261 §21.5.4), and RFC 3263
# §4.3 has a client move to the next element on a 503, which is what taking the gateway
# out of the rotation does.
_FAILED_STATUSES = frozenset({503})


def _apply(state: HealthState, outcome: Outcome, threshold_reached: bool) -> HealthState:
    try:
        return _TRANSITIONS[(state, outcome, threshold_reached)]
    except KeyError:  # pragma: no cover - the table is total; a hole is a bug here
        raise HealthError(f"no transition from {state.name} on {outcome.name}") from None


class GatewayHealth:
    """Keepalive state of one gateway; see the module docstring for the machine."""

    def __init__(
        self,
        name: str,
        interval_s: float = 30.0,
        failures_to_down: int = 3,
        successes_to_up: int = 2,
        down_interval_s: float = 10.0,
    ) -> None:
        if interval_s <= 0 or down_interval_s <= 0:
            raise HealthError(f"gateway {name!r}: probe intervals must be positive")
        if failures_to_down < 1 or successes_to_up < 1:
            raise HealthError(f"gateway {name!r}: failure and success counts must be >= 1")
        self.name = name
        self.interval_s = interval_s
        self.down_interval_s = down_interval_s
        self.failures_to_down = failures_to_down
        self.successes_to_up = successes_to_up
        # A configured gateway starts in the rotation: calls may go out before the first
        # probe returns, as a gateway that is down will be found out within a few probes.
        self.state = HealthState.UP
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self.probe_outstanding = False
        self._last_sent_at: float | None = None

    def __repr__(self) -> str:
        return f"<GatewayHealth {self.name} {self.state.name}>"

    @property
    def is_live(self) -> bool:
        """Whether outbound calls may be sent to this gateway."""
        return self.state in LIVE_STATES

    def next_deadline(self) -> float | None:
        """When the next probe is due, or None while one is outstanding (its outcome,
        reported by the transaction layer, decides). Before the first probe this is 0.0:
        due at once."""
        if self.probe_outstanding:
            return None
        if self._last_sent_at is None:
            return 0.0
        interval_s = self.interval_s if self.is_live else self.down_interval_s
        return self._last_sent_at + interval_s

    def due(self, now: float) -> bool:
        deadline = self.next_deadline()
        return deadline is not None and now >= deadline

    def probe_sent(self, now: float) -> None:
        if self.probe_outstanding:
            raise HealthError(f"gateway {self.name!r}: a probe is already outstanding")
        self.probe_outstanding = True
        self._last_sent_at = now

    def response_received(self, status: int, now: float) -> HealthEvent | None:
        """A response to the outstanding probe. Provisional responses are ignored (the
        probe stays outstanding until its final response or timer F)."""
        self._check_outstanding()
        if not 100 <= status <= 699:
            raise HealthError(f"gateway {self.name!r}: status {status} is not a SIP status")
        if status < 200:
            return None
        outcome = Outcome.FAILURE if status in _FAILED_STATUSES else Outcome.SUCCESS
        return self._on_outcome(outcome, now)

    def probe_timed_out(self, now: float) -> HealthEvent | None:
        """Timer F fired for the outstanding probe: the gateway did not answer."""
        return self._on_outcome(Outcome.FAILURE, now)

    def _check_outstanding(self) -> None:
        if not self.probe_outstanding:
            raise HealthError(f"gateway {self.name!r}: no probe is outstanding")

    def _on_outcome(self, outcome: Outcome, now: float) -> HealthEvent | None:
        self._check_outstanding()
        self.probe_outstanding = False
        if outcome is Outcome.SUCCESS:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            reached = self.consecutive_successes >= self.successes_to_up
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            reached = self.consecutive_failures >= self.failures_to_down
        was_live = self.is_live
        self.state = _apply(self.state, outcome, reached)
        if was_live and not self.is_live:
            return GatewayWentDown(self.name, now)
        if self.is_live and not was_live:
            return GatewayCameBack(self.name, now)
        return None
