"""The agent state table: complete where it must be, strict where it must be."""

from __future__ import annotations

import pytest

from acd import AcdError
from acd.agent_states import CALL_STATES, TABLE, TIMED_STATES, State, Trigger, apply

REPORTS = [t for t in Trigger if t is not Trigger.OFFERED]


def test_every_report_is_defined_in_every_state():
    for state in State:
        for trigger in REPORTS:
            assert (state, trigger) in TABLE, (state, trigger)


def test_only_an_idle_agent_can_be_offered_a_call():
    assert [s for s in State if (s, Trigger.OFFERED) in TABLE] == [State.IDLE]
    with pytest.raises(AcdError) as raised:
        apply(State.ON_CALL, Trigger.OFFERED)
    assert str(raised.value) == "no transition for offered in state on_call"


@pytest.mark.parametrize("state", sorted(CALL_STATES, key=lambda s: s.value))
@pytest.mark.parametrize("trigger", [Trigger.CALL_ENDED, Trigger.CALL_LOST, Trigger.RESTARTED])
def test_every_call_state_leaves_its_call_however_the_call_goes(state, trigger):
    transition = TABLE[state, trigger]
    assert not transition.absorbed
    assert transition.next not in CALL_STATES


@pytest.mark.parametrize("state", [State.RESERVED, State.RINGING])
def test_an_offer_ends_every_way_it_can(state):
    for trigger in (Trigger.OFFER_FAILED, Trigger.OFFER_EXPIRED, Trigger.LOGGED_OUT):
        assert TABLE[state, trigger].next is State.IDLE
    assert TABLE[state, Trigger.ANSWERED].next is State.ON_CALL


def test_every_timed_state_has_a_timer_that_leaves_it():
    timer_exits = {State.RESERVED: Trigger.OFFER_EXPIRED, State.RINGING: Trigger.OFFER_EXPIRED,
                   State.WRAP_UP: Trigger.WRAP_UP_EXPIRED}
    assert set(timer_exits) == TIMED_STATES
    for state, trigger in timer_exits.items():
        assert TABLE[state, trigger].next is State.IDLE


def test_a_call_does_not_end_by_logging_out():
    # The call goes on; its end completes the bookkeeping.
    assert TABLE[State.ON_CALL, Trigger.LOGGED_OUT].absorbed
    assert TABLE[State.OUTBOUND, Trigger.LOGGED_OUT].absorbed
