"""The bus adapter: call control's and the registrar's events, as published on a real
EventBus, drive the agent book at the times the bus stamped."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from acd import AgentBook, AgentStateChanged, AgentStatusChanged, State, Status, Trigger
from acd.bus_adapter import KINDS, BusAdapter
from switch.calls import (
    CallEnded,
    CallRinging,
    CallStarted,
    CallTransferred,
    LegAdded,
    LegAnswered,
    LegEnded,
)
from switch.event_bus import EventBus, forward
from switch.sip import RegistrationChanged

S = State


class Wired:
    def __init__(self) -> None:
        self.bus = EventBus(lambda: datetime(2026, 12, 7, tzinfo=UTC))
        self.book = AgentBook()
        forward(self.bus.subscribe("acd", *KINDS), BusAdapter(self.book).feed)
        self.book.log_in("bob", 0.0, extension="8001")
        self.book.events()

    def offer(self, call_id: str, now: float, wrap_up_s: float = 0.0) -> None:
        self.book.offer("bob", call_id, now, queue="service", wrap_up_s=wrap_up_s,
                        ring_timeout_s=15.0)
        self.bus.publish(LegAdded(call_id, 1, "8001", "sip-" + call_id), now)

    def states(self) -> list[tuple[float, State, Trigger, str]]:
        return [(e.at, e.state, e.trigger, e.detail) for e in self.book.events()
                if isinstance(e, AgentStateChanged)]


@pytest.fixture
def wired() -> Wired:
    return Wired()


def test_a_queue_call_from_the_bus(wired):
    wired.offer("c1", 1.0, wrap_up_s=0.0)
    wired.bus.publish(LegAdded("c1", 2, "8002", "sip-x"), 1.0)  # someone else's leg
    wired.bus.publish(CallRinging("c1", 1, "8001"), 1.2)
    wired.bus.publish(LegAnswered("c1", 1), 4.0)
    wired.bus.publish(LegEnded("c1", 1, None, None), 64.0)
    wired.bus.publish(CallEnded("c1", "answered", 16, None, "callee-bye"), 64.0)
    assert wired.states() == [
        (1.0, S.RESERVED, Trigger.OFFERED, ""),
        (1.2, S.RINGING, Trigger.RANG, ""),
        (4.0, S.ON_CALL, Trigger.ANSWERED, ""),
        (64.0, S.IDLE, Trigger.CALL_ENDED, "leg_ended"),
    ]


@pytest.mark.parametrize(("status", "trigger", "detail"), [
    (480, Trigger.OFFER_FAILED, "no_answer"),
    (408, Trigger.OFFER_FAILED, "no_answer"),
    (486, Trigger.OFFER_FAILED, "rejected"),
    (603, Trigger.OFFER_FAILED, "rejected"),
    (503, Trigger.OFFER_FAILED, "unreachable"),
    (None, Trigger.OFFER_FAILED, "unreachable"),
    (487, Trigger.CALL_ENDED, "cancel"),
])
def test_an_unanswered_legs_final_status_says_how_the_offer_ended(wired, status, trigger,
                                                                   detail):
    wired.offer("c1", 1.0)
    wired.bus.publish(CallRinging("c1", 1, "8001"), 1.2)
    wired.bus.publish(LegEnded("c1", 1, status, None), 9.0)
    assert wired.states()[-1] == (9.0, S.IDLE, trigger, detail)


def test_the_caller_hanging_up_while_ringing_withdraws_the_offer(wired):
    wired.offer("c1", 1.0)
    wired.bus.publish(CallEnded("c1", "abandoned", 16, 487, "caller-cancel"), 5.0)
    wired.bus.publish(LegEnded("c1", 1, 487, None), 5.0)  # after: already forgotten
    assert wired.states()[-1] == (5.0, S.IDLE, Trigger.CALL_ENDED, "caller-cancel")
    assert [a.counts.missed for a in wired.book.agents()] == [0]


def test_attended_transfer_frees_the_agent_as_the_transfer_happens(wired):
    wired.offer("c1", 1.0, wrap_up_s=20.0)
    wired.bus.publish(LegAnswered("c1", 1), 3.0)
    wired.bus.publish_all([LegAdded("c1", 3, "8009", "sip-y"), LegAnswered("c1", 3),
                           CallTransferred("c1", "attended", "8001", "8009")], 50.0)
    wired.bus.publish(LegEnded("c1", 1, None, None), 50.2)
    assert wired.states()[-1] == (50.0, S.WRAP_UP, Trigger.CALL_ENDED, "transferred:attended")
    assert wired.book.next_deadline() == 70.0


def test_outbound_calls_from_the_agents_phone(wired):
    wired.bus.publish(CallStarted("o1", "outbound", "8001", "13800000000"), 10.0)
    wired.bus.publish(CallEnded("o1", "answered", 16, None, "caller-bye"), 70.0)
    wired.bus.publish(CallStarted("i1", "inbound", "8001", "400"), 80.0)  # not the agent's
    assert wired.states() == [(10.0, S.OUTBOUND, Trigger.OUTBOUND_STARTED, ""),
                              (70.0, S.IDLE, Trigger.CALL_ENDED, "caller-bye")]


def test_an_unregistering_phone_logs_its_agent_out(wired):
    wired.bus.publish(RegistrationChanged("8002", False, "expired"), 5.0)  # nobody's
    wired.bus.publish(RegistrationChanged("8001", True), 6.0)
    wired.bus.publish(RegistrationChanged("8001", False, "expired"), 7.0)
    assert wired.book.events() == [AgentStatusChanged(
        "bob", 7.0, Status.LOGGED_OUT, None, Status.AVAILABLE, None, "phone_unregistered")]


def test_the_agent_book_knows_nothing_of_the_switch():
    # Only this adapter may import call control; the book stays sans-bus.
    probe = "import sys, acd; print(sorted(m for m in sys.modules if m.startswith('switch')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "[]"
