"""The authoritative record of every agent: status, state, the call they hold, their
timers and today's counts. Sans-I/O: each input is a method call with the `now` it
happened at (monotonic seconds); what changed is drained with `events()`; the one timer
to arm is `next_deadline()`, fired with `handle_timer(now)`.

Two kinds of input, treated differently on purpose:
* decisions by our own callers (log in, set a status, offer a call) raise `AcdError`
  when they make no sense, with a message the web can show;
* reports of what happened (ringing, answered, ended, failed, unregistered, timers,
  restarts) never raise and never wedge: one for an unknown or old call, a duplicate,
  or one that arrives out of order is absorbed and counted in `ignored`.

Reports about one agent's leg name the agent and the call, so a stale report about an
offer the agent no longer holds cannot touch the call they hold now, and a call rung on
several agents at once (ring all) keeps each agent's offer apart.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import NamedTuple

from acd.agent_events import AgentEvent, AgentStateChanged, AgentStatusChanged
from acd.agent_states import (
    CALL_STATES,
    MISS_REASONS,
    OFFER_GUARD_S,
    TIMED_STATES,
    Action,
    OfferFailure,
    State,
    Status,
    Trigger,
    apply,
)
from acd.errors import AcdError

__all__ = ["Agent", "AgentBook", "AgentConfig", "Counts", "Offer"]

_OFFER_STATES = (State.RESERVED, State.RINGING)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    not_ready_reasons: tuple[str, ...] = ("小休", "培训", "就餐")
    max_missed_offers: int = 3  # in a row, then not ready automatically; 0: never
    logout_on_unregister: bool = True  # a phone that unregisters logs its agent out


@dataclass(slots=True)
class Counts:
    """Today's figures for the desktop (reports are computed from the events)."""

    answered: int = 0
    missed: int = 0  # offers that failed: no answer, rejected, unreachable
    outbound: int = 0
    talk_s: float = 0.0  # answered queue calls, answer to end


class Offer(NamedTuple):
    call_id: str
    queue: str | None
    wrap_up_s: float


@dataclass(slots=True)
class Agent:
    """One agent as the book knows them. Read it; change it only through the book."""

    agent_id: str
    status: Status = Status.LOGGED_OUT
    reason: str | None = None  # the not-ready reason
    status_since: float | None = None
    state: State = State.IDLE
    state_since: float | None = None
    extension: str | None = None  # the phone they logged in at
    call_id: str | None = None  # held in a call state; in wrap-up, the call wrapped up
    queue: str | None = None  # the queue that offered that call
    wrap_up_s: float = 0.0  # travels with the offer: no queue reload can lose it
    deadline: float | None = None  # the offer guard or the wrap-up's end
    # When the agent last became free to take a call; None while they are not free.
    idle_since: float | None = None
    missed_in_row: int = 0
    counts: Counts = field(default_factory=Counts)
    answered_at: float | None = None
    last_offer: Offer | None = None  # the last offer that ended unanswered (a late answer)
    place: float | None = None  # idle_since when the offer came, for an offer withdrawn

    @property
    def is_free(self) -> bool:
        return self.status is Status.AVAILABLE and self.state is State.IDLE


class AgentBook:
    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config if config is not None else AgentConfig()
        self._agents: dict[str, Agent] = {}
        self._by_call: dict[str, set[str]] = {}  # call id -> agents holding it
        self._by_extension: dict[str, Agent] = {}  # logged-in agents' phones
        self._events: list[AgentEvent] = []
        self._timers: list[tuple[float, int, str]] = []  # lazy heap; Agent.deadline decides
        self._order = itertools.count()
        self.ignored: Counter[str] = Counter()  # absorbed reports, by kind

    # -- reading

    def get(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def agents(self) -> list[Agent]:
        return list(self._agents.values())

    def by_extension(self, extension: str) -> Agent | None:
        return self._by_extension.get(extension)

    def holding(self, call_id: str) -> list[Agent]:
        """The agents whose offer or call this is."""
        return [self._agents[a] for a in sorted(self._by_call.get(call_id, ()))]

    def free_agents(self) -> list[Agent]:
        """Agents who can take a call now, longest idle first."""
        free = [a for a in self._agents.values() if a.is_free]
        return sorted(free, key=lambda a: (a.idle_since, a.agent_id))

    def events(self) -> list[AgentEvent]:
        """What changed since the last call, in order."""
        events, self._events = self._events, []
        return events

    # -- the agent's choices (web desktop, phone feature codes, a supervisor)

    def log_in(self, agent_id: str, now: float, *, extension: str,
               reason: str | None = None, by: str = "agent") -> Agent:
        """Log in at `extension`: available, or not ready with `reason`. Logging in
        again while logged in only moves the agent to another phone."""
        agent = self._agents.setdefault(agent_id, Agent(agent_id))
        other = self._by_extension.get(extension)
        if other is not None and other is not agent:
            raise AcdError(f"extension {extension} is in use by agent {other.agent_id}")
        if reason is not None:
            self._check_reason(reason)
        if agent.extension is not None and self._by_extension.get(agent.extension) is agent:
            del self._by_extension[agent.extension]
        agent.extension = extension
        self._by_extension[extension] = agent
        if agent.status is Status.LOGGED_OUT:
            status = Status.AVAILABLE if reason is None else Status.NOT_READY
            self._set_status(agent, now, status, reason, by)
        return agent

    def set_status(self, agent_id: str, now: float, status: Status | str,
                   reason: str | None = None, *, by: str = "agent") -> None:
        agent = self._agent(agent_id)
        try:
            status = Status(status)
        except ValueError:
            raise AcdError(f"unknown status {status!r}") from None
        if status is Status.LOGGED_OUT:
            self.log_out(agent_id, now, by=by)
            return
        if agent.status is Status.LOGGED_OUT:
            raise AcdError(f"agent {agent_id} is logged out: log in first")
        if status is Status.NOT_READY:
            if reason is None:
                raise AcdError("not ready needs a reason")
            self._check_reason(reason)
        elif reason is not None:
            raise AcdError(f"{status.value} takes no reason")
        self._set_status(agent, now, status, reason, by)

    def log_out(self, agent_id: str, now: float, *, by: str = "agent") -> None:
        """Log out (twice is once). An offer ends; a call goes on, and its end still
        completes the bookkeeping; a wrap-up ends."""
        agent = self._agent(agent_id)
        if agent.status is Status.LOGGED_OUT:
            return
        if agent.extension is not None and self._by_extension.get(agent.extension) is agent:
            del self._by_extension[agent.extension]
        self._set_status(agent, now, Status.LOGGED_OUT, None, by)
        self._fire(agent, Trigger.LOGGED_OUT, now, detail=by)

    def wrap_up_done(self, agent_id: str, now: float) -> None:
        """The contact note is saved: wrap-up ends (absorbed when not in wrap-up)."""
        self._fire(self._agent(agent_id), Trigger.WRAP_UP_DONE, now)

    def reset_counts(self) -> None:
        """A new day (the caller's wall clock decides when)."""
        for agent in self._agents.values():
            agent.counts = Counts()

    # -- the queue's decision

    def offer(self, agent_id: str, call_id: str, now: float, *, queue: str,
              wrap_up_s: float, ring_timeout_s: float) -> None:
        """Reserve a free agent for `call_id`; the offer's queue, wrap-up time and ring
        timeout go with it. AcdError if the agent cannot take a call now."""
        agent = self._agent(agent_id)
        if not agent.is_free:
            raise AcdError(f"agent {agent_id} cannot take a call: "
                           f"{agent.status.value}, {agent.state.value}")
        self._fire(agent, Trigger.OFFERED, now, call_id=call_id, queue=queue,
                   wrap_up_s=wrap_up_s, deadline=now + ring_timeout_s + OFFER_GUARD_S)

    # -- what call control reports

    def ringing(self, agent_id: str, call_id: str, now: float) -> None:
        self._report(agent_id, call_id, Trigger.RANG, now)

    def answered(self, agent_id: str, call_id: str, now: float) -> None:
        agent = self._agents.get(agent_id)
        late = agent.last_offer if agent is not None else None
        if agent is not None and late is not None and late.call_id == call_id \
                and agent.state is State.IDLE:
            agent.last_offer = None  # once: a repeated 200 OK is not another call
            self._fire(agent, Trigger.ANSWERED_LATE, now, call_id=call_id, queue=late.queue,
                       wrap_up_s=late.wrap_up_s)
            return
        self._report(agent_id, call_id, Trigger.ANSWERED, now)

    def offer_failed(self, agent_id: str, call_id: str, now: float,
                     why: OfferFailure | str) -> None:
        self._report(agent_id, call_id, Trigger.OFFER_FAILED, now,
                     detail=OfferFailure(why).value)

    def call_ended(self, call_id: str, now: float, how: str = "bye", *,
                   agent_id: str | None = None) -> None:
        """The call ended (every agent holding it), or with `agent_id` only that
        agent's part in it (their leg ended: after a transfer they are free at once).
        Before an answer this withdraws the offer (the caller hung up); it is no miss."""
        agent_ids = sorted(self._by_call.get(call_id, ())) if agent_id is None else [agent_id]
        if not agent_ids:
            self.ignored["unknown call"] += 1
        for each in agent_ids:
            self._report(each, call_id, Trigger.CALL_ENDED, now, detail=how)

    def outbound_started(self, agent_id: str, call_id: str, now: float, *,
                         wrap_up_s: float = 0.0) -> None:
        """The agent dialled out. Absorbed on a call (a consultation for a transfer)."""
        agent = self._agent(agent_id)
        if agent.state is State.WRAP_UP and agent.deadline is not None:
            # A call-back during wrap-up does not shorten it: the rest follows the call.
            wrap_up_s = max(wrap_up_s, agent.deadline - now)
        self._fire(agent, Trigger.OUTBOUND_STARTED, now, call_id=call_id, wrap_up_s=wrap_up_s)

    def phone_unregistered(self, extension: str, now: float) -> None:
        agent = self._by_extension.get(extension)
        if agent is None or not self.config.logout_on_unregister:
            self.ignored["unregistered"] += 1
            return
        self.log_out(agent.agent_id, now, by="phone_unregistered")

    def reconcile(self, live_call_ids: Collection[str], now: float) -> None:
        """Call control's calls now: any call an agent holds that is not among them
        ended without our hearing of it (an event lost to a full bus queue)."""
        for call_id in [c for c in self._by_call if c not in live_call_ids]:
            for agent_id in sorted(self._by_call.get(call_id, ())):
                self._fire(self._agents[agent_id], Trigger.CALL_LOST, now)

    def restart(self, now: float) -> None:
        """The switch restarted and every call is gone: offers end, calls go to wrap-up,
        wrap-ups run on, statuses stay (a restart logs nobody out)."""
        for agent in list(self._agents.values()):
            self._fire(agent, Trigger.RESTARTED, now)
            agent.last_offer = None  # no call survived to answer late

    # -- timers

    def next_deadline(self) -> float | None:
        heap = self._timers
        while heap and self._agents[heap[0][2]].deadline != heap[0][0]:
            heapq.heappop(heap)  # superseded, or the state that armed it is left
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        heap = self._timers
        while heap and heap[0][0] <= now:
            deadline, _, agent_id = heapq.heappop(heap)
            agent = self._agents[agent_id]
            if agent.deadline == deadline:
                trigger = (Trigger.WRAP_UP_EXPIRED if agent.state is State.WRAP_UP
                           else Trigger.OFFER_EXPIRED)
                self._fire(agent, trigger, now)

    # -- the machinery

    def _agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise AcdError(f"unknown agent {agent_id}")
        return agent

    def _check_reason(self, reason: str) -> None:
        if reason not in self.config.not_ready_reasons:
            raise AcdError(f"unknown not-ready reason {reason!r}; configured: "
                           + ", ".join(self.config.not_ready_reasons))

    def _report(self, agent_id: str, call_id: str, trigger: Trigger, now: float, *,
                detail: str = "") -> None:
        agent = self._agents.get(agent_id)
        if agent is None or agent.call_id != call_id or agent.state not in CALL_STATES:
            self.ignored["unknown call"] += 1  # old, foreign, or already ended
            return
        self._fire(agent, trigger, now, detail=detail)

    def _set_status(self, agent: Agent, now: float, status: Status, reason: str | None,
                    cause: str) -> None:
        if (status, reason) == (agent.status, agent.reason):
            return  # a duplicate: no event
        previous, previous_reason, was_free = agent.status, agent.reason, agent.is_free
        agent.status, agent.reason, agent.status_since = status, reason, now
        if status is Status.AVAILABLE:
            agent.missed_in_row = 0  # a fresh start, also after an automatic not-ready
        else:
            agent.place = None  # time away is not idle time
        self._idle_since(agent, now, was_free)
        self._events.append(AgentStatusChanged(agent.agent_id, now, status, reason,
                                               previous, previous_reason, cause))

    def _fire(self, agent: Agent, trigger: Trigger, now: float, *, detail: str = "",
              call_id: str | None = None, queue: str | None = None, wrap_up_s: float = 0.0,
              deadline: float | None = None) -> None:
        transition = apply(agent.state, trigger)
        if transition.absorbed:
            self.ignored[trigger.value] += 1
            return
        actions = transition.actions
        previous, was_free = agent.state, agent.is_free
        counts = agent.counts
        if Action.RELEASE_CALL in actions:
            assert agent.call_id is not None
            holders = self._by_call.get(agent.call_id, set())
            holders.discard(agent.agent_id)
            if not holders:
                self._by_call.pop(agent.call_id, None)
            if previous in _OFFER_STATES:
                agent.last_offer = Offer(agent.call_id, agent.queue, agent.wrap_up_s)
        if Action.HOLD_CALL in actions:
            assert call_id is not None
            agent.place = agent.idle_since
            agent.call_id, agent.queue, agent.wrap_up_s = call_id, queue, wrap_up_s
            self._by_call.setdefault(call_id, set()).add(agent.agent_id)
        if Action.COUNT_ANSWER in actions:
            counts.answered += 1
            agent.missed_in_row = 0
            agent.answered_at = now
        if Action.END_TALK in actions and agent.answered_at is not None:
            counts.talk_s += now - agent.answered_at
        if Action.COUNT_MISS in actions:
            counts.missed += 1
            agent.missed_in_row += 1
        if Action.COUNT_OUTBOUND in actions:
            counts.outbound += 1
        state = transition.next
        if state is State.WRAP_UP and (agent.wrap_up_s <= 0
                                       or agent.status is Status.LOGGED_OUT):
            state = State.IDLE  # nothing to wrap up, or nobody to do it
        call, call_queue = agent.call_id, agent.queue
        agent.state, agent.state_since = state, now
        if state is State.IDLE:
            agent.call_id = agent.queue = agent.answered_at = None
            agent.wrap_up_s = 0.0
        if Action.ARM_OFFER_GUARD in actions:
            self._arm(agent, deadline)
        elif Action.ARM_WRAP_UP in actions and state is State.WRAP_UP:
            self._arm(agent, now + agent.wrap_up_s)
        elif state not in TIMED_STATES:
            self._arm(agent, None)
        # otherwise the running timer stays: reserved -> ringing keeps the offer's guard
        place = agent.place if Action.KEEP_PLACE in actions else None
        self._idle_since(agent, now, was_free, place)
        self._events.append(AgentStateChanged(agent.agent_id, now, state, previous, call,
                                              call_queue, trigger, detail))
        limit = self.config.max_missed_offers
        if Action.COUNT_MISS in actions and limit and agent.missed_in_row >= limit \
                and agent.status is Status.AVAILABLE:
            self._set_status(agent, now, Status.NOT_READY, MISS_REASONS[OfferFailure(detail)],
                             "auto")

    def _idle_since(self, agent: Agent, now: float, was_free: bool,
                    place: float | None = None) -> None:
        """Idle time counts from when the agent became free to take a call: a login,
        the end of a wrap-up, coming back from not ready; an offer that never rang
        through (the caller hung up first) gives them back their place."""
        if not agent.is_free:
            agent.idle_since = None
        elif not was_free:
            agent.idle_since = place if place is not None else now

    def _arm(self, agent: Agent, deadline: float | None) -> None:
        agent.deadline = deadline
        if deadline is not None:
            heapq.heappush(self._timers, (deadline, next(self._order), agent.agent_id))
