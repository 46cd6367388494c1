"""What the agent book reports: one record per change, stamped with the `now` it
happened at (monotonic, as every input's). The agent-event table and the wallboard are
made of these; the caller that stores them maps `at` to wall time (publishing them on
the bus at `at` does: the bus stamps its wall clock).

Frozen and self-validating, like h11's events: a record that could not describe a
real agent cannot be made.
"""

from __future__ import annotations

from dataclasses import dataclass

from acd.agent_states import CALL_STATES, State, Status, Trigger

__all__ = ["AgentEvent", "AgentStateChanged", "AgentStatusChanged"]


@dataclass(frozen=True, slots=True)
class AgentStatusChanged:
    """The agent's status or not-ready reason changed."""

    agent_id: str
    at: float
    status: Status
    reason: str | None  # the not-ready reason; None for the other statuses
    previous: Status
    previous_reason: str | None
    # Who or what changed it: "agent", "supervisor:NAME", "auto" (too many missed
    # offers), "phone_unregistered".
    cause: str

    def __post_init__(self) -> None:
        for status, reason in ((self.status, self.reason), (self.previous, self.previous_reason)):
            if (status is Status.NOT_READY) != (reason is not None):
                raise ValueError(f"{status.value} with reason {reason!r}")


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """The agent's state changed, or (same state, new call) a late answer took them
    onto another call."""

    agent_id: str
    at: float
    state: State
    previous: State
    call_id: str | None  # the call the change is about (the one left, for an idle)
    queue: str | None  # the queue that offered that call; None for outbound calls
    trigger: Trigger
    detail: str = ""  # how the call ended ("bye", "cancel", "transferred" ...), why it failed

    def __post_init__(self) -> None:
        if self.state in CALL_STATES and self.call_id is None:
            raise ValueError(f"{self.state.value} without a call")


AgentEvent = AgentStatusChanged | AgentStateChanged
