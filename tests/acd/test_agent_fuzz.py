"""Random sequences of everything that can happen to agents (Hypothesis stateful).

Whatever call control reports, in whatever order, duplicated, late or about calls long
gone, and whatever agents, queues and timers do: no agent holds a call state without a
call, none holds two calls, every waiting state has its timer, the events replay to
exactly the book's state, and once all calls end and the timers pass every agent is
idle. Settings are the suite's (tests/conftest.py: derandomized in the test command).
"""

from __future__ import annotations

import copy

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from acd import (
    AcdError,
    AgentBook,
    AgentConfig,
    AgentStateChanged,
    AgentStatusChanged,
    OfferFailure,
    State,
    Status,
)
from acd.agent_states import CALL_STATES, TIMED_STATES

AGENTS = ["amy", "bob", "cai"]
EXTENSIONS = {"amy": "8001", "bob": "8002", "cai": "8003"}
CALLS = [f"c{n}" for n in range(5)]
REASONS = ["小休", "培训", "就餐"]

agents = st.sampled_from(AGENTS)
calls = st.sampled_from(CALLS)


class AgentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = AgentBook(AgentConfig(max_missed_offers=2))
        self.now = 0.0
        # What the events say, replayed: must always equal the book.
        self.seen: dict[str, tuple[Status, str | None, State]] = {}

    # -- the agents' choices

    @rule(agent=agents, reason=st.none() | st.sampled_from(REASONS))
    def log_in(self, agent, reason):
        self.book.log_in(agent, self.now, extension=EXTENSIONS[agent], reason=reason)

    @rule(agent=agents, status=st.sampled_from(Status), reason=st.sampled_from(REASONS))
    def set_status(self, agent, status, reason):
        known = self.book.get(agent)
        try:
            self.book.set_status(agent, self.now, status,
                                 reason if status is Status.NOT_READY else None)
        except AcdError:
            assert known is None or (known.status is Status.LOGGED_OUT
                                     and status is not Status.LOGGED_OUT)

    @rule(agent=agents)
    def log_out(self, agent):
        if self.book.get(agent) is not None:
            self.book.log_out(agent, self.now)

    @rule(agent=agents)
    def wrap_up_done(self, agent):
        if self.book.get(agent) is not None:
            self.book.wrap_up_done(agent, self.now)

    # -- the queue's decision

    @rule(agent=agents, call=calls, ring_s=st.sampled_from([5.0, 15.0]),
          wrap_up_s=st.sampled_from([0.0, 10.0, 30.0]))
    def offer(self, agent, call, ring_s, wrap_up_s):
        known = self.book.get(agent)
        try:
            self.book.offer(agent, call, self.now, queue="q", wrap_up_s=wrap_up_s,
                            ring_timeout_s=ring_s)
        except AcdError:
            assert known is None or not known.is_free
        else:
            assert known is not None and known.state is State.RESERVED

    # -- what call control reports, right or stale

    @rule(agent=agents, call=calls)
    def ringing(self, agent, call):
        self.book.ringing(agent, call, self.now)

    @rule(agent=agents, call=calls)
    def answered(self, agent, call):
        self.book.answered(agent, call, self.now)

    @rule(agent=agents, call=calls, why=st.sampled_from(OfferFailure))
    def offer_failed(self, agent, call, why):
        self.book.offer_failed(agent, call, self.now, why)

    @rule(call=calls, agent=st.none() | agents, how=st.sampled_from(["bye", "cancel"]))
    def call_ended(self, call, agent, how):
        self.book.call_ended(call, self.now, how, agent_id=agent)

    @rule(agent=agents, call=calls)
    def outbound_started(self, agent, call):
        if self.book.get(agent) is not None:
            self.book.outbound_started(agent, call, self.now, wrap_up_s=5.0)

    @rule(agent=agents)
    def phone_unregistered(self, agent):
        self.book.phone_unregistered(EXTENSIONS[agent], self.now)

    @rule(live=st.sets(calls))
    def reconcile(self, live):
        self.book.reconcile(live, self.now)

    @rule()
    def restart(self):
        self.book.restart(self.now)

    @rule(dt=st.sampled_from([0.0, 0.5, 3.0, 12.0, 40.0]))
    def advance(self, dt):
        self.now += dt
        deadline = self.book.next_deadline()
        if deadline is not None and deadline <= self.now:
            self.book.handle_timer(self.now)

    # -- invariants

    @invariant()
    def events_replay_to_the_book(self):
        for event in self.book.events():
            assert event.at <= self.now
            status, reason, state = self.seen.get(
                event.agent_id, (Status.LOGGED_OUT, None, State.IDLE))
            if isinstance(event, AgentStatusChanged):
                assert (event.previous, event.previous_reason) == (status, reason)
                assert (event.status, event.reason) != (status, reason)
                status, reason = event.status, event.reason
            else:
                assert isinstance(event, AgentStateChanged)
                assert event.previous is state
                state = event.state
            self.seen[event.agent_id] = (status, reason, state)
        for agent in self.book.agents():
            assert self.seen[agent.agent_id] == (agent.status, agent.reason, agent.state)

    @invariant()
    def every_call_state_has_its_call_and_one_only(self):
        held: dict[str, list[str]] = {}
        for call in CALLS:
            for agent in self.book.holding(call):
                held.setdefault(agent.agent_id, []).append(call)
        for agent in self.book.agents():
            if agent.state in CALL_STATES:
                assert held.get(agent.agent_id) == [agent.call_id]
            else:
                assert agent.agent_id not in held
            assert (agent.call_id is None) == (agent.state is State.IDLE)

    @invariant()
    def waiting_states_have_a_timer_to_leave_them(self):
        deadlines = []
        for agent in self.book.agents():
            assert (agent.deadline is not None) == (agent.state in TIMED_STATES)
            if agent.deadline is not None:
                assert agent.deadline > self.now
                deadlines.append(agent.deadline)
        assert self.book.next_deadline() == min(deadlines, default=None)

    @invariant()
    def idle_since_only_while_free(self):
        for agent in self.book.agents():
            assert (agent.idle_since is not None) == agent.is_free
            assert agent.idle_since is None or agent.idle_since <= self.now
            assert (agent.status is Status.NOT_READY) == (agent.reason is not None)
            assert (agent.extension is not None and self.book.by_extension(agent.extension)
                    is agent) == (agent.status is not Status.LOGGED_OUT)

    @invariant()
    def every_agent_comes_free_once_the_calls_end_and_time_passes(self):
        book = copy.deepcopy(self.book)
        later = self.now
        for call in CALLS:
            book.call_ended(call, later)
        while (deadline := book.next_deadline()) is not None:
            later = deadline
            book.handle_timer(later)
        for agent in book.agents():
            assert agent.state is State.IDLE and agent.call_id is None
            assert agent.is_free == (agent.status is Status.AVAILABLE)


TestAgentFuzz = AgentMachine.TestCase
