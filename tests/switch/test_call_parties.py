"""Parties added to a call that is up (switch.calls.parties): a supervisor listening,
whispering and barging in, a colleague in a conference, a take-over. In memory over the
call-control harness (tests/switch/harness.py: real CallControl and SIP between transaction
layers, FakeMediaEngine for who hears whom). The audio itself is checked over real UDP
in tests/integration/test_party_calls.py."""

from __future__ import annotations

import pytest

from switch.calls import (
    Call,
    CallBridged,
    CallEnded,
    CallSettings,
    LegEnded,
    PartyDigit,
    PartyError,
    PartyJoined,
    PartyLeft,
    PartyModeChanged,
)
from switch.media import DtmfReceived, RtpTimedOut
from switch.sip import ByeReceived, InviteServer
from tests.switch.harness import Net
from tests.switch.harness_phones import DID, GW1, MOBILE, Party, route


class Floor:
    """A customer on the PSTN called the service number and agent 1002 answered;
    supervisor 1009 and colleague 1003 are registered."""

    def __init__(self, settings: CallSettings | None = None) -> None:
        self.net = Net([route(did=DID, extension="1002"), route(extension=True)],
                       settings=settings)
        self.agent = self.net.party("1002", "10.0.0.2")
        self.supervisor = self.net.party("1009", "10.0.0.8")
        self.colleague = self.net.party("1003", "10.0.0.3")
        for phone in (self.agent, self.supervisor, self.colleague):
            self.net.register(phone)
        self.customer = self.net.gateway(GW1)
        self.outgoing = self.net.dial(self.customer, DID, from_user=MOBILE)
        self.net.answer(self.agent)
        assert self.customer.answered(self.outgoing)
        self.call: Call = self.net.call()
        self.customer_leg, agent_leg = self.call.a, self.call.b
        assert agent_leg is not None
        self.agent_leg = agent_leg

    def add(self, number: str, mode: str = "listen", *, coached: int | None = None,
            answer: bool = True) -> int:
        index = self.net.control.add_party(self.call.call_id, number, self.net.now,
                                           mode=mode,  # type: ignore[arg-type]
                                           coached_index=coached)
        self.net.pump()
        phone = self.supervisor if number == "1009" else self.colleague
        if answer:
            self.net.answer(phone)
        return index

    def leg(self, index: int) -> int:
        """The engine leg of the call's leg `index`."""
        return next(leg.engine_leg for leg in self.call.all_legs if leg.index == index)

    def mix(self) -> tuple[dict[int, int], dict[tuple[int, int], bool]]:
        [(mix, members)] = self.net.engine.mixes.items()
        return members, self.net.engine.hearing[mix]

    def hears(self, listener: int, talker: int) -> bool:
        members, hearing = self.mix()
        assert listener in members and talker in members
        return hearing.get((listener, talker), True)  # a newcomer hears and is heard

    def reports(self, kind: type) -> list:
        return [r for r in self.net.reports if isinstance(r, kind)]

    def bye_from(self, phone: Party) -> None:
        session = phone.sessions[-1]
        session.bye(self.net.now)
        self.net.pump()


def engine_legs(floor: Floor) -> tuple[int, int]:
    return floor.customer_leg.engine_leg, floor.agent_leg.engine_leg


def test_a_listening_supervisor_hears_both_and_neither_hears_them() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    customer, agent = engine_legs(floor)
    supervisor = floor.leg(index)
    members, _ = floor.mix()
    assert set(members) == {customer, agent, supervisor}
    assert floor.hears(supervisor, customer) and floor.hears(supervisor, agent)
    assert not floor.hears(customer, supervisor) and not floor.hears(agent, supervisor)
    assert floor.hears(customer, agent) and floor.hears(agent, customer)
    assert floor.reports(PartyJoined) == [PartyJoined(floor.call.call_id, index, "listen",
                                                      None)]
    # The supervisor's phone was called by the switch, from the switch.
    [invite] = floor.supervisor.incoming
    assert invite.invite.uri.user == "1009"


def test_modes_change_on_the_same_call_without_a_new_invite() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    customer, agent = engine_legs(floor)
    supervisor = floor.leg(index)
    floor.net.control.set_party_mode(floor.call.call_id, index, "whisper", floor.net.now,
                                     coached_index=floor.agent_leg.index)
    assert floor.hears(agent, supervisor) and not floor.hears(customer, supervisor)
    floor.net.control.set_party_mode(floor.call.call_id, index, "whisper", floor.net.now,
                                     coached_index=floor.customer_leg.index)
    assert floor.hears(customer, supervisor) and not floor.hears(agent, supervisor)
    floor.net.control.set_party_mode(floor.call.call_id, index, "barge", floor.net.now)
    assert floor.hears(customer, supervisor) and floor.hears(agent, supervisor)
    floor.net.control.set_party_mode(floor.call.call_id, index, "listen", floor.net.now)
    assert not floor.hears(customer, supervisor) and not floor.hears(agent, supervisor)
    assert len(floor.supervisor.incoming) == 1  # one INVITE for the whole intervention
    assert len(floor.net.engine.mixes) == 1
    floor.net.pump()
    assert [(r.mode, r.coached_index) for r in floor.reports(PartyModeChanged)] == [
        ("whisper", floor.agent_leg.index), ("whisper", floor.customer_leg.index),
        ("barge", None), ("listen", None)]


def test_a_whisper_never_reaches_the_recording() -> None:
    floor = Floor(CallSettings(session_expires_s=None, recording_path=lambda c: f"/r/{c}"))
    floor.add("1009", "whisper", coached=floor.agent_leg.index)
    [fed_from] = floor.net.engine.recordings.values()
    assert set(fed_from) == set(engine_legs(floor))


def test_a_barge_in_and_a_conference_member_are_recorded_a_listener_is_not() -> None:
    floor = Floor(CallSettings(session_expires_s=None, recording_path=lambda c: f"/r/{c}"))
    customer, agent = engine_legs(floor)
    index = floor.add("1009", "listen")
    [recording] = floor.net.engine.recordings
    assert floor.net.engine.recordings[recording] == (customer, agent)
    floor.net.control.set_party_mode(floor.call.call_id, index, "barge", floor.net.now)
    assert floor.net.engine.recordings[recording] == (customer, agent, floor.leg(index))
    colleague = floor.add("1003", "conference")
    assert floor.net.engine.recordings[recording] == (
        customer, agent, floor.leg(index), floor.leg(colleague))
    # Leaving lets go of the recording before the leg closes: the file goes on.
    floor.net.control.remove_party(floor.call.call_id, index, floor.net.now)
    floor.bye_from(floor.colleague)
    assert floor.net.engine.recordings == {recording: (customer, agent)}
    assert floor.net.ended() == []


def test_removing_the_supervisor_leaves_the_call_as_it_was() -> None:
    floor = Floor()
    index = floor.add("1009", "barge")
    customer, agent = engine_legs(floor)
    floor.net.control.remove_party(floor.call.call_id, index, floor.net.now)
    floor.net.pump()
    assert any(isinstance(e, ByeReceived) for e in floor.supervisor.events_of(
        floor.supervisor.incoming[0]))
    assert floor.net.engine.mixes == {}  # freed, not just emptied
    assert floor.net.engine.legs[customer].peer == agent  # the bridge carries the call
    assert floor.reports(PartyLeft) == [PartyLeft(floor.call.call_id, index, "removed")]
    assert floor.net.ended() == []
    assert floor.call.added_parties == []


def test_the_supervisor_hanging_up_leaves_the_call_up() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    floor.bye_from(floor.supervisor)
    assert floor.reports(PartyLeft) == [PartyLeft(floor.call.call_id, index, "hung-up")]
    assert floor.net.engine.mixes == {}
    assert floor.net.ended() == []
    supervisor_end = [r for r in floor.reports(LegEnded) if r.leg_index == index]
    assert len(supervisor_end) == 1


@pytest.mark.parametrize("status", [486, 603])
def test_a_party_that_refuses_leaves_no_trace_on_the_call(status: int) -> None:
    floor = Floor()
    index = floor.add("1009", "listen", answer=False)
    floor.supervisor.incoming[0].reject(status, floor.net.now)
    floor.net.pump()
    assert floor.reports(PartyLeft) == [PartyLeft(floor.call.call_id, index,
                                                  f"rejected-{status}")]
    assert floor.net.engine.mixes == {}
    assert floor.net.ended() == []
    assert [r.sip_status for r in floor.reports(LegEnded) if r.leg_index == index] == [status]


def test_an_unanswered_party_is_cancelled_at_its_ring_timeout_not_the_calls() -> None:
    floor = Floor()
    start = floor.net.now
    index = floor.net.control.add_party(floor.call.call_id, "1009", floor.net.now,
                                        mode="listen", ring_timeout_s=15)
    floor.net.pump()
    floor.net.advance(start + 14.9)
    assert floor.reports(PartyLeft) == []
    floor.net.advance(start + 15.1)
    assert floor.reports(PartyLeft) == [PartyLeft(floor.call.call_id, index, "no-answer")]
    assert floor.supervisor.incoming[0].final_status == 487  # CANCELled
    assert floor.net.ended() == []


def test_the_call_ending_takes_the_supervisor_with_it() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    floor.outgoing.bye(floor.net.now)  # the customer hangs up
    floor.net.pump()
    assert len(floor.net.ended()) == 1
    assert any(isinstance(e, ByeReceived) for e in floor.supervisor.events_of(
        floor.supervisor.incoming[0]))
    assert PartyLeft(floor.call.call_id, index, "call-ended") in floor.reports(PartyLeft)
    assert floor.net.engine.mixes == {}
    assert floor.net.engine.legs == {}  # every engine leg closed
    assert floor.net.control.calls == {}


def test_an_agent_who_conferenced_a_colleague_may_leave_the_customer_with_them() -> None:
    floor = Floor()
    index = floor.add("1003", "conference")
    customer, _ = engine_legs(floor)
    colleague = floor.leg(index)
    floor.bye_from(floor.agent)
    assert floor.net.ended() == []
    assert floor.call.b is not None and floor.call.b.index == index
    assert floor.net.engine.mixes == {}
    assert floor.net.engine.legs[customer].peer == colleague
    assert PartyLeft(floor.call.call_id, index, "took-over") in floor.reports(PartyLeft)
    assert floor.reports(CallBridged)[-1].leg_indexes == (floor.customer_leg.index, index)
    # And the call ends normally later.
    floor.bye_from(floor.colleague)
    assert [e.cause for e in floor.net.ended()] == ["callee-bye"]


def test_with_only_a_listener_left_the_call_ends_when_the_agent_hangs_up() -> None:
    floor = Floor()
    floor.add("1009", "listen")
    floor.bye_from(floor.agent)
    assert [e.cause for e in floor.net.ended()] == ["callee-bye"]
    assert floor.net.engine.legs == {}


def test_the_supervisor_takes_over_and_the_agents_leg_ends() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    customer, _ = engine_legs(floor)
    floor.net.control.take_over(floor.call.call_id, index, floor.agent_leg.index,
                                floor.net.now)
    floor.net.pump()
    assert any(isinstance(e, ByeReceived)
               for e in floor.agent.events_of(floor.agent.incoming[0]))
    assert floor.net.engine.legs[customer].peer == floor.leg(index)
    assert floor.net.ended() == []


def test_digits_from_the_supervisor_are_reported_not_given_to_the_application() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    floor.net.engine.emit(DtmfReceived(floor.leg(index), "5", 100))
    floor.net.control.handle_media(floor.net.engine.drain_events(), floor.net.now)
    floor.net.pump()
    assert floor.reports(PartyDigit) == [PartyDigit(floor.call.call_id, index, "5")]


def test_a_supervisor_whose_media_dies_is_dropped_and_the_call_goes_on() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    floor.net.engine.emit(RtpTimedOut(floor.leg(index), 30.0))
    floor.net.control.handle_media(floor.net.engine.drain_events(), floor.net.now)
    floor.net.pump()
    assert floor.reports(PartyLeft) == [PartyLeft(floor.call.call_id, index, "rtp-timeout")]
    assert floor.net.ended() == []


def test_two_supervisors_one_mix() -> None:
    floor = Floor()
    first = floor.add("1009", "listen")
    second = floor.add("1003", "barge")
    customer, agent = engine_legs(floor)
    members, _ = floor.mix()
    assert set(members) == {customer, agent, floor.leg(first), floor.leg(second)}
    assert floor.hears(floor.leg(first), floor.leg(second))  # a listener hears a barger
    assert not floor.hears(floor.leg(second), floor.leg(first))
    floor.net.control.remove_party(floor.call.call_id, first, floor.net.now)
    members, _ = floor.mix()
    assert set(members) == {customer, agent, floor.leg(second)}


@pytest.mark.parametrize(("call_id", "number", "mode", "coached", "message"), [
    ("nope", "1009", "listen", None, "no call 'nope' is up"),
    (None, "1009", "shout", None, "mode must be one of"),
    (None, "1009", "whisper", None, "a whisper goes to one of the call's two parties"),
    (None, "1777", "listen", None, "cannot ring '1777' \\(SIP 480\\)"),
    (None, "1009", "listen", 42, "has no leg 42 up"),
])
def test_what_cannot_be_added_says_why_and_rings_nobody(
        call_id: str | None, number: str, mode: str, coached: int | None,
        message: str) -> None:
    floor = Floor()
    with pytest.raises(PartyError, match=message):
        floor.net.control.add_party(call_id or floor.call.call_id, number, floor.net.now,
                                    mode=mode,  # type: ignore[arg-type]
                                    coached_index=coached)
    floor.net.pump()
    assert floor.supervisor.incoming == []
    assert floor.net.engine.mixes == {}


def test_a_call_not_yet_answered_takes_no_party() -> None:
    net = Net([route(did=DID, extension="1002"), route(extension=True)])
    agent, supervisor = net.party("1002", "10.0.0.2"), net.party("1009", "10.0.0.8")
    net.register(agent)
    net.register(supervisor)
    net.dial(net.gateway(GW1), DID, from_user=MOBILE)
    with pytest.raises(PartyError, match="is not answered"):
        net.control.add_party(net.call().call_id, "1009", net.now, mode="listen")
    assert isinstance(agent.incoming[0], InviteServer)
    assert supervisor.incoming == []


def test_ended_calls_report_the_party_in_the_cdr_legs() -> None:
    floor = Floor()
    index = floor.add("1009", "listen")
    floor.bye_from(floor.customer)
    [ended] = floor.net.ended()
    assert isinstance(ended, CallEnded)
    assert index in {r.leg_index for r in floor.reports(LegEnded)}


# -- consultation: the agent talks with a colleague while the customer waits


def consulting(floor: Floor, *, answer: bool = True) -> int:
    return floor.add("1003", "consult", coached=floor.agent_leg.index, answer=answer)


def test_a_consultation_keeps_the_customer_out_with_music_and_rings_back_to_the_agent(
        ) -> None:
    floor = Floor()
    customer, agent = engine_legs(floor)
    index = consulting(floor, answer=False)
    legs = floor.net.engine.legs
    assert legs[customer].playing == "tone"  # music on hold (the built-in tune)
    assert legs[agent].playing == "tone"  # ringback while the colleague rings
    assert not floor.hears(agent, customer) and not floor.hears(customer, agent)
    floor.net.answer(floor.colleague)
    colleague = floor.leg(index)
    assert legs[agent].playing is None  # the ringback stopped at the answer
    assert legs[customer].playing == "tone"  # the customer still waits
    assert floor.hears(agent, colleague) and floor.hears(colleague, agent)
    assert not floor.hears(customer, colleague) and not floor.hears(colleague, customer)
    assert not floor.hears(customer, agent) and not floor.hears(agent, customer)


def test_a_consultation_becomes_a_conference() -> None:
    floor = Floor()
    customer, agent = engine_legs(floor)
    index = consulting(floor)
    floor.net.control.set_party_mode(floor.call.call_id, index, "conference", floor.net.now)
    colleague = floor.leg(index)
    assert floor.net.engine.legs[customer].playing is None
    for listener, talker in [(customer, agent), (agent, customer), (customer, colleague),
                             (colleague, customer), (agent, colleague), (colleague, agent)]:
        assert floor.hears(listener, talker)


def test_a_consultation_ends_in_a_transfer_to_the_colleague() -> None:
    floor = Floor()
    customer, _ = engine_legs(floor)
    index = consulting(floor)
    floor.net.control.take_over(floor.call.call_id, index, floor.agent_leg.index,
                                floor.net.now)
    floor.net.pump()
    legs = floor.net.engine.legs
    assert legs[customer].peer == floor.leg(index) and legs[customer].playing is None
    assert floor.net.engine.mixes == {}
    assert any(isinstance(e, ByeReceived)
               for e in floor.agent.events_of(floor.agent.incoming[0]))


def test_ending_a_consultation_returns_the_customer_to_the_agent() -> None:
    floor = Floor()
    customer, agent = engine_legs(floor)
    index = consulting(floor)
    floor.net.control.remove_party(floor.call.call_id, index, floor.net.now)
    legs = floor.net.engine.legs
    assert legs[customer].playing is None and legs[customer].peer == agent
    assert floor.net.engine.mixes == {}


def test_a_consultation_refused_returns_the_customer_to_the_agent() -> None:
    floor = Floor()
    customer, agent = engine_legs(floor)
    consulting(floor, answer=False)
    floor.colleague.incoming[0].reject(486, floor.net.now)
    floor.net.pump()
    legs = floor.net.engine.legs
    assert legs[customer].playing is None and legs[agent].playing is None
    assert floor.net.engine.mixes == {}


def test_an_agent_hanging_up_during_a_consultation_leaves_the_customer_with_the_colleague(
        ) -> None:
    floor = Floor()
    customer, _ = engine_legs(floor)
    index = consulting(floor)
    floor.bye_from(floor.agent)
    assert floor.net.ended() == []
    assert floor.net.engine.legs[customer].peer == floor.leg(index)
    assert floor.net.engine.legs[customer].playing is None


def test_the_customer_hanging_up_during_a_consultation_ends_the_call() -> None:
    floor = Floor()
    consulting(floor)
    floor.bye_from(floor.customer)
    assert [e.cause for e in floor.net.ended()] == ["caller-bye"]
    assert any(isinstance(e, ByeReceived)
               for e in floor.colleague.events_of(floor.colleague.incoming[0]))
    assert floor.net.engine.legs == {}


def test_a_consultation_must_name_the_consulting_party() -> None:
    floor = Floor()
    with pytest.raises(PartyError, match="a consultation names the consulting one"):
        floor.net.control.add_party(floor.call.call_id, "1003", floor.net.now,
                                    mode="consult")
