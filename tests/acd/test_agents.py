"""The agent book: each transition with its event and timestamp, the odd endings that
leave other ACDs' agents stuck, automatic not-ready, and what idle time means."""

from __future__ import annotations

import pytest

from acd import (
    OFFER_GUARD_S,
    AcdError,
    Agent,
    AgentBook,
    AgentConfig,
    AgentStateChanged,
    AgentStatusChanged,
    OfferFailure,
    State,
    Status,
    Trigger,
)

S = State


def book_with(*agents: str, now: float = 0.0, **config) -> AgentBook:
    book = AgentBook(AgentConfig(**config))
    for n, agent_id in enumerate(agents):
        book.log_in(agent_id, now, extension=f"80{n + 1:02d}")
    book.events()
    return book


def offer(book: AgentBook, agent_id: str, call_id: str, now: float, *,
          queue: str = "service", wrap_up_s: float = 10.0, ring_timeout_s: float = 15.0):
    book.offer(agent_id, call_id, now, queue=queue, wrap_up_s=wrap_up_s,
               ring_timeout_s=ring_timeout_s)


def on_call(book: AgentBook, agent_id: str, call_id: str, now: float, **kw) -> None:
    offer(book, agent_id, call_id, now, **kw)
    book.ringing(agent_id, call_id, now + 0.5)
    book.answered(agent_id, call_id, now + 2)


def states(book: AgentBook) -> list[tuple[float, State, str | None, Trigger, str]]:
    return [(e.at, e.state, e.call_id, e.trigger, e.detail) for e in book.events()
            if isinstance(e, AgentStateChanged)]


def agent(book: AgentBook, agent_id: str = "bob") -> Agent:
    found = book.get(agent_id)
    assert found is not None
    return found


def state(book: AgentBook, agent_id: str = "bob") -> State:
    return agent(book, agent_id).state


# -- status


def test_log_in_is_available_from_that_moment():
    book = AgentBook()
    book.log_in("bob", 100.0, extension="8001")
    assert book.events() == [AgentStatusChanged("bob", 100.0, Status.AVAILABLE, None,
                                                Status.LOGGED_OUT, None, "agent")]
    bob = agent(book)
    assert (bob.status, bob.state, bob.idle_since) == (Status.AVAILABLE, S.IDLE, 100.0)
    assert book.by_extension("8001") is bob


def test_log_in_not_ready_with_a_reason_then_ready():
    book = AgentBook()
    book.log_in("bob", 1.0, extension="8001", reason="培训")
    book.set_status("bob", 5.0, "available")
    assert book.events() == [
        AgentStatusChanged("bob", 1.0, Status.NOT_READY, "培训", Status.LOGGED_OUT, None,
                           "agent"),
        AgentStatusChanged("bob", 5.0, Status.AVAILABLE, None, Status.NOT_READY, "培训",
                           "agent"),
    ]


def test_a_repeated_status_is_no_event_but_a_new_reason_is():
    book = book_with("bob")
    book.set_status("bob", 1.0, Status.NOT_READY, "小休")
    book.set_status("bob", 2.0, Status.NOT_READY, "小休")
    book.set_status("bob", 3.0, Status.NOT_READY, "就餐", by="supervisor:alice")
    book.log_in("bob", 4.0, extension="8001")  # pressed twice: nothing changes
    assert [(e.at, e.reason, e.cause) for e in book.events()] == [
        (1.0, "小休", "agent"), (3.0, "就餐", "supervisor:alice")]


@pytest.mark.parametrize(("call", "message"), [
    (lambda b: b.set_status("bob", 1, "not_ready", "咖啡"),
     "unknown not-ready reason '咖啡'; configured: 小休, 培训, 就餐"),
    (lambda b: b.set_status("bob", 1, "not_ready"), "not ready needs a reason"),
    (lambda b: b.set_status("bob", 1, "available", "小休"), "available takes no reason"),
    (lambda b: b.set_status("bob", 1, "away"), "unknown status 'away'"),
    (lambda b: b.set_status("eve", 1, "available"), "unknown agent eve"),
    (lambda b: b.log_in("amy", 1, extension="8001"), "extension 8001 is in use by agent bob"),
    (lambda b: offer(b, "bob", "c1", 1) or offer(b, "bob", "c2", 1),
     "agent bob cannot take a call: available, reserved"),
])
def test_mistaken_decisions_raise_with_exact_messages(call, message):
    book = book_with("bob")
    with pytest.raises(AcdError) as raised:
        call(book)
    assert str(raised.value) == message


def test_a_logged_out_agent_must_log_in_before_choosing_a_status():
    book = book_with("bob")
    book.log_out("bob", 1.0)
    with pytest.raises(AcdError) as raised:
        book.set_status("bob", 2.0, "available")
    assert str(raised.value) == "agent bob is logged out: log in first"
    book.log_out("bob", 3.0)  # twice is once
    assert [e.at for e in book.events()] == [1.0]
    assert book.by_extension("8001") is None


def test_a_not_ready_agent_is_not_offered_a_call():
    book = book_with("bob")
    book.set_status("bob", 1.0, "not_ready", "小休")
    with pytest.raises(AcdError) as raised:
        offer(book, "bob", "c1", 2.0)
    assert str(raised.value) == "agent bob cannot take a call: not_ready, idle"


# -- the queue call, step by step


def test_offer_ring_answer_end_wrap_up_idle():
    book = book_with("bob")
    offer(book, "bob", "c1", 10.0, wrap_up_s=30.0)
    book.ringing("bob", "c1", 10.2)
    book.answered("bob", "c1", 14.0)
    book.call_ended("c1", 74.0, "caller-bye")
    assert book.next_deadline() == 104.0
    book.handle_timer(103.9)
    book.handle_timer(104.0)
    assert states(book) == [
        (10.0, S.RESERVED, "c1", Trigger.OFFERED, ""),
        (10.2, S.RINGING, "c1", Trigger.RANG, ""),
        (14.0, S.ON_CALL, "c1", Trigger.ANSWERED, ""),
        (74.0, S.WRAP_UP, "c1", Trigger.CALL_ENDED, "caller-bye"),
        (104.0, S.IDLE, "c1", Trigger.WRAP_UP_EXPIRED, ""),
    ]
    bob = agent(book)
    assert (bob.counts.answered, bob.counts.talk_s, bob.idle_since) == (1, 60.0, 104.0)
    assert book.next_deadline() is None


def test_the_state_event_names_the_queue_of_the_call():
    book = book_with("bob")
    on_call(book, "bob", "c1", 1.0, queue="vip")
    assert {e.queue for e in book.events()} == {"vip"}


def test_saving_the_note_ends_wrap_up_before_the_timer():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, wrap_up_s=60.0)
    book.call_ended("c1", 30.0)
    book.wrap_up_done("bob", 45.0)
    book.wrap_up_done("bob", 46.0)  # saved twice
    assert states(book)[-1] == (45.0, S.IDLE, "c1", Trigger.WRAP_UP_DONE, "")
    assert book.next_deadline() is None
    book.handle_timer(90.0)
    assert states(book) == []


def test_no_wrap_up_time_means_idle_at_once():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, wrap_up_s=0.0)
    book.call_ended("c1", 30.0)
    assert states(book)[-1] == (30.0, S.IDLE, "c1", Trigger.CALL_ENDED, "bye")


def test_answer_without_ringing_first():
    book = book_with("bob")
    offer(book, "bob", "c1", 0.0)
    book.answered("bob", "c1", 1.0)  # an auto-answering phone sends no 180
    book.ringing("bob", "c1", 1.1)  # a 180 arriving after the 200 changes nothing
    assert [s for _, s, *_ in states(book)] == [S.RESERVED, S.ON_CALL]


def test_outbound_call_and_its_wrap_up():
    book = book_with("bob")
    book.outbound_started("bob", "o1", 5.0, wrap_up_s=20.0)
    book.call_ended("o1", 65.0)
    book.handle_timer(85.0)
    assert states(book) == [
        (5.0, S.OUTBOUND, "o1", Trigger.OUTBOUND_STARTED, ""),
        (65.0, S.WRAP_UP, "o1", Trigger.CALL_ENDED, "bye"),
        (85.0, S.IDLE, "o1", Trigger.WRAP_UP_EXPIRED, ""),
    ]
    bob = agent(book)
    assert (bob.counts.outbound, bob.counts.answered) == (1, 0)


def test_a_consultation_call_while_on_a_call_changes_nothing():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0)
    book.events()
    book.outbound_started("bob", "consult", 10.0)
    book.call_ended("consult", 20.0)
    assert states(book) == [] and state(book) is S.ON_CALL


def test_a_call_back_during_wrap_up_keeps_the_wrap_up_time_left():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, wrap_up_s=60.0)
    book.call_ended("c1", 10.0)
    book.outbound_started("bob", "o1", 20.0)  # 50 s of wrap-up left
    book.call_ended("o1", 30.0)
    assert book.next_deadline() == 80.0
    assert state(book) is S.WRAP_UP


# -- odd endings: each leaves the agent in a defined state


def test_caller_hangs_up_while_reserved_cancel():
    book = book_with("bob")
    offer(book, "bob", "c1", 1.0)
    book.call_ended("c1", 2.0, "cancel")
    assert states(book)[-1] == (2.0, S.IDLE, "c1", Trigger.CALL_ENDED, "cancel")
    bob = agent(book)
    assert (bob.counts.missed, bob.missed_in_row, book.next_deadline()) == (0, 0, None)


def test_no_answer_then_a_late_answer_puts_the_agent_on_that_call():
    # mod_callcenter 2540 in spirit: the 200 OK crosses our CANCEL.
    book = book_with("bob")
    offer(book, "bob", "c1", 0.0, wrap_up_s=15.0)
    book.ringing("bob", "c1", 0.5)
    book.offer_failed("bob", "c1", 15.0, "no_answer")
    book.answered("bob", "c1", 15.1)
    book.answered("bob", "c1", 15.2)  # retransmitted 200 OK
    book.call_ended("c1", 40.0)
    assert states(book)[2:] == [
        (15.0, S.IDLE, "c1", Trigger.OFFER_FAILED, "no_answer"),
        (15.1, S.ON_CALL, "c1", Trigger.ANSWERED_LATE, ""),
        (40.0, S.WRAP_UP, "c1", Trigger.CALL_ENDED, "bye"),
    ]
    assert book.next_deadline() == 55.0  # the offer's wrap-up time came along
    book.handle_timer(55.0)
    book.answered("bob", "c1", 56.0)  # a stale 200 OK once more: no call to be on
    assert state(book) is S.IDLE


def test_a_late_answer_to_an_older_offer_is_ignored():
    book = book_with("bob", max_missed_offers=0)
    offer(book, "bob", "c1", 0.0)
    book.offer_failed("bob", "c1", 15.0, "no_answer")
    offer(book, "bob", "c2", 16.0)
    book.answered("bob", "c1", 16.5)
    assert state(book) is S.RESERVED and agent(book).call_id == "c2"
    assert book.ignored["unknown call"] == 1


def test_offer_failure_reasons_are_closed():
    book = book_with("bob")
    offer(book, "bob", "c1", 0.0)
    with pytest.raises(ValueError):
        book.offer_failed("bob", "c1", 1.0, "bored")


def test_phone_unregisters_mid_call_logs_out_and_the_end_completes_the_books():
    # mod_callcenter 1973 in spirit.
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, wrap_up_s=30.0)
    book.phone_unregistered("8001", 10.0)
    assert state(book) is S.ON_CALL
    book.call_ended("c1", 50.0)
    assert book.events()[-2:] == [
        AgentStatusChanged("bob", 10.0, Status.LOGGED_OUT, None, Status.AVAILABLE, None,
                           "phone_unregistered"),
        AgentStateChanged("bob", 50.0, S.IDLE, S.ON_CALL, "c1", "service", Trigger.CALL_ENDED,
                          "bye"),
    ]
    bob = agent(book)
    # Logged out: nothing holds them in wrap-up; the talk time is counted.
    assert (bob.status, bob.state, bob.counts.talk_s) == (Status.LOGGED_OUT, S.IDLE, 48.0)


def test_phone_unregisters_while_ringing_ends_the_offer():
    book = book_with("bob")
    offer(book, "bob", "c1", 0.0)
    book.ringing("bob", "c1", 0.5)
    book.phone_unregistered("8001", 3.0)
    book.offer_failed("bob", "c1", 3.5, "unreachable")  # the leg's end, after
    assert states(book)[-1] == (3.0, S.IDLE, "c1", Trigger.LOGGED_OUT, "phone_unregistered")
    assert agent(book).counts.missed == 0


def test_unregister_can_be_configured_not_to_log_out():
    book = book_with("bob", logout_on_unregister=False)
    book.phone_unregistered("8001", 3.0)
    book.phone_unregistered("9999", 3.0)
    assert book.events() == [] and agent(book).status is Status.AVAILABLE
    assert book.ignored["unregistered"] == 2


def test_restart_mid_wrap_up_runs_the_wrap_up_out():
    # mod_callcenter 1221 in spirit; wrap-up is never skipped after a reload.
    book = book_with("amy", "bob", "cai", "dan")
    on_call(book, "amy", "c1", 0.0, wrap_up_s=30.0)
    book.call_ended("c1", 10.0)
    on_call(book, "bob", "c2", 0.0, wrap_up_s=30.0)
    offer(book, "cai", "c3", 19.0)
    book.events()
    book.restart(20.0)
    assert [(e.agent_id, e.state, e.trigger) for e in book.events()] == [
        ("bob", S.WRAP_UP, Trigger.RESTARTED), ("cai", S.IDLE, Trigger.RESTARTED)]
    assert [state(book, a) for a in ("amy", "bob", "cai", "dan")] == [
        S.WRAP_UP, S.WRAP_UP, S.IDLE, S.IDLE]
    assert book.next_deadline() == 40.0
    book.handle_timer(50.0)
    assert {state(book, a) for a in ("amy", "bob")} == {S.IDLE}
    assert all(a.status is Status.AVAILABLE for a in book.agents())  # nobody logged out


def test_the_wrap_up_time_travels_with_the_offer_from_another_queue():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, queue="service", wrap_up_s=10.0)
    book.call_ended("c1", 20.0)
    book.handle_timer(30.0)
    on_call(book, "bob", "c2", 40.0, queue="vip", wrap_up_s=45.0)
    book.call_ended("c2", 60.0)
    assert book.next_deadline() == 105.0


def test_duplicate_and_out_of_order_reports_are_absorbed():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, wrap_up_s=5.0)
    book.ringing("bob", "c1", 3.0)  # a 180 after the answer
    book.call_ended("c1", 10.0)
    book.call_ended("c1", 10.1)  # BYE and the call's end both
    book.answered("bob", "c1", 10.2)
    book.offer_failed("bob", "c1", 10.3, "no_answer")
    book.handle_timer(15.0)
    assert [s for _, s, *_ in states(book)] == [
        S.RESERVED, S.RINGING, S.ON_CALL, S.WRAP_UP, S.IDLE]
    assert book.ignored == {"ringing": 1, "unknown call": 3}
    assert agent(book).counts.missed == 0


def test_reports_for_unknown_calls_and_agents_are_ignored():
    book = book_with("bob")
    book.ringing("bob", "nope", 1.0)
    book.answered("eve", "nope", 1.0)
    book.call_ended("nope", 1.0)
    book.offer_failed("eve", "nope", 1.0, "rejected")
    assert book.events() == [] and book.ignored["unknown call"] == 4


def test_an_offer_whose_end_is_never_reported_expires():
    book = book_with("bob")
    offer(book, "bob", "c1", 0.0, ring_timeout_s=15.0)
    book.ringing("bob", "c1", 1.0)  # the guard runs from the offer, not the 180
    assert book.next_deadline() == 15.0 + OFFER_GUARD_S
    book.handle_timer(20.0)
    assert states(book)[-1] == (20.0, S.IDLE, "c1", Trigger.OFFER_EXPIRED, "")
    assert agent(book).counts.missed == 0


def test_reconcile_frees_agents_whose_calls_call_control_no_longer_has():
    book = book_with("amy", "bob")
    on_call(book, "amy", "c1", 0.0, wrap_up_s=0.0)
    on_call(book, "bob", "c2", 0.0, wrap_up_s=0.0)
    book.events()
    book.reconcile({"c2"}, 100.0)
    assert [(e.agent_id, e.state, e.trigger) for e in book.events()] == [
        ("amy", S.IDLE, Trigger.CALL_LOST)]


def test_after_an_attended_transfer_the_agent_is_free_at_once():
    # Asterisk 759: the agent's leg ends while the call goes on.
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0, wrap_up_s=0.0)
    book.call_ended("c1", 30.0, "transferred:attended", agent_id="bob")
    assert states(book)[-1] == (30.0, S.IDLE, "c1", Trigger.CALL_ENDED, "transferred:attended")
    assert book.holding("c1") == [] and agent(book).is_free
    book.call_ended("c1", 200.0, "caller-bye")  # the call's own end, later
    assert states(book) == []


def test_ring_all_keeps_each_agents_offer_apart():
    book = book_with("amy", "bob")
    offer(book, "amy", "c1", 0.0)
    offer(book, "bob", "c1", 0.0)
    book.answered("bob", "c1", 3.0)
    book.call_ended("c1", 3.0, "answered-elsewhere", agent_id="amy")
    assert (state(book, "amy"), state(book, "bob")) == (S.IDLE, S.ON_CALL)
    assert [a.agent_id for a in book.holding("c1")] == ["bob"]


def test_log_out_during_wrap_up_ends_it():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0)
    book.call_ended("c1", 5.0)
    book.log_out("bob", 6.0)
    assert state(book) is S.IDLE and book.next_deadline() is None


# -- automatic not ready


def test_three_unanswered_offers_in_a_row_set_not_ready():
    book = book_with("bob")
    for n, why in enumerate(["no_answer", "rejected", "no_answer"]):
        offer(book, "bob", f"c{n}", n * 20.0)
        book.offer_failed("bob", f"c{n}", n * 20.0 + 15, why)
    events = book.events()
    assert events[-1] == AgentStatusChanged("bob", 55.0, Status.NOT_READY, "auto:no_answer",
                                            Status.AVAILABLE, None, "auto")
    assert agent(book).counts.missed == 3
    book.set_status("bob", 60.0, "available")
    offer(book, "bob", "c9", 61.0)
    book.offer_failed("bob", "c9", 62.0, OfferFailure.UNREACHABLE)
    assert agent(book).status is Status.AVAILABLE


def test_an_answered_call_resets_the_count():
    book = book_with("bob", max_missed_offers=2)
    offer(book, "bob", "c1", 0.0)
    book.offer_failed("bob", "c1", 1.0, "no_answer")
    on_call(book, "bob", "c2", 2.0, wrap_up_s=0.0)
    book.call_ended("c2", 10.0)
    offer(book, "bob", "c3", 11.0)
    book.offer_failed("bob", "c3", 12.0, "rejected")
    assert agent(book).status is Status.AVAILABLE
    offer(book, "bob", "c4", 13.0)
    book.offer_failed("bob", "c4", 14.0, "rejected")
    assert agent(book).reason == "auto:rejected"


def test_zero_disables_automatic_not_ready():
    book = book_with("bob", max_missed_offers=0)
    for n in range(5):
        offer(book, "bob", f"c{n}", n)
        book.offer_failed("bob", f"c{n}", n + 0.5, "no_answer")
    assert agent(book).status is Status.AVAILABLE


# -- idle time means what agents think it means


def test_a_fresh_login_is_idle_from_the_login():
    book = book_with("amy", now=0.0)
    book.log_in("bob", 500.0, extension="8002")
    assert [(a.agent_id, a.idle_since) for a in book.free_agents()] == [
        ("amy", 0.0), ("bob", 500.0)]


def test_not_ready_time_is_not_idle():
    book = book_with("amy", "bob", now=0.0)
    book.set_status("amy", 10.0, "not_ready", "小休")
    assert agent(book, "amy").idle_since is None
    book.set_status("amy", 100.0, "available")
    assert [(a.agent_id, a.idle_since) for a in book.free_agents()] == [
        ("bob", 0.0), ("amy", 100.0)]


def test_idle_counts_from_the_end_of_wrap_up():
    book = book_with("bob")
    on_call(book, "bob", "c1", 10.0, wrap_up_s=30.0)
    assert agent(book).idle_since is None
    book.call_ended("c1", 70.0)
    book.handle_timer(100.0)
    assert agent(book).idle_since == 100.0


def test_an_offer_the_caller_withdrew_keeps_the_agents_place():
    book = book_with("bob", now=5.0)
    offer(book, "bob", "c1", 50.0)
    book.call_ended("c1", 52.0, "cancel")
    assert agent(book).idle_since == 5.0


def test_a_failed_offer_sends_the_agent_to_the_back():
    book = book_with("bob", now=5.0)
    offer(book, "bob", "c1", 50.0)
    book.offer_failed("bob", "c1", 65.0, "no_answer")
    assert agent(book).idle_since == 65.0


def test_a_break_while_reserved_loses_the_place():
    book = book_with("bob", now=5.0)
    offer(book, "bob", "c1", 50.0)
    book.set_status("bob", 51.0, "not_ready", "小休")
    book.set_status("bob", 52.0, "available")
    book.call_ended("c1", 53.0, "cancel")
    assert agent(book).idle_since == 53.0


def test_counts_reset_for_a_new_day():
    book = book_with("bob")
    on_call(book, "bob", "c1", 0.0)
    book.reset_counts()
    assert agent(book).counts.answered == 0
