"""Call control features with several in-memory phones (tests/switch/harness.DirectNet):
transfers (blind, attended), hold with music on hold, Reason headers across legs, ring
timeout, maximum duration, and the CDR events. Real SIP bytes cross between the
parties' transaction layers; time moves only when told (no sockets, no clock)."""

from __future__ import annotations

from switch.calls import (
    CallAnswered,
    CallSettings,
    CallStarted,
    LegAdded,
    LegEnded,
)
from switch.media import RtpTimedOut
from switch.sip import (
    Answered,
    ByeReceived,
    EarlyMedia,
    Ended,
    ReinviteFailed,
    Rejected,
    Resumed,
    Ringing,
)
from switch.sip.offer_answer import Direction
from switch.sip.refer import Replaces
from tests.switch.harness import MOH, DirectNet, attended_transfer, connected_call, sdp


def test_blind_transfer_rings_the_target_then_bridges_it_and_releases_the_transferor() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent, expert = net.phone("1001", "10.0.0.2"), net.phone("1002", "10.0.0.3")
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    customer_engine = call.a.engine_leg

    agent_leg.send_request("REFER", net.now, headers=[
        ("Refer-To", "<sip:1002@10.0.0.9>"), ("Referred-By", "<sip:1001@10.0.0.9>")])
    net.pump()
    # 202, then "100 Trying" while 1002 rings; the customer hears ringback meanwhile.
    assert agent.notifies == [100]
    assert len(expert.incoming) == 1
    assert net.engine.legs[customer_engine].playing == "tone"
    assert net.engine.commands[-1] == ("play_tone", customer_engine, "ringback")

    net.answer(expert)
    assert agent.notifies == [100, 200]
    assert ByeReceived() in agent.events_of(agent_leg) or \
        Ended("bye-received") in agent.events_of(agent_leg)
    # The customer is bridged to the expert's leg now, and hears no tone.
    new_leg = call.b
    assert new_leg is not None and new_leg.kind.name == "1002"
    assert net.peer_of(customer_engine) == new_leg.engine_leg
    assert net.engine.legs[customer_engine].playing is None
    assert call.state.value == "answered"
    legs = [(r.leg_index, r.peer) for r in net.reports if isinstance(r, LegAdded)]
    assert legs == [(0, "pstn"), (1, "1001"), (2, "1002")]
    assert [r.leg_index for r in net.reports if isinstance(r, LegEnded)] == [1]


def test_transferor_hanging_up_after_202_does_not_end_the_call() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent, expert = net.phone("1001", "10.0.0.2"), net.phone("1002", "10.0.0.3")
    customer_out, agent_leg = connected_call(net, customer, agent)
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", "<sip:1002@10.0.0.9>")])
    net.pump()
    agent_leg.bye(net.now)  # most phones leave at once
    net.pump()
    assert not any(isinstance(e, ByeReceived) for e in customer.events_of(customer_out))
    net.answer(expert)
    call = net.call()
    assert call.b is not None and call.b.kind.name == "1002"
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg
    assert net.ended() == []


def test_blind_transfer_to_nobody_gives_the_customer_back_to_the_transferor() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", "<sip:1999@10.0.0.9>")])
    net.pump()
    assert agent.notifies == [100, 480]
    assert call.b is not None and call.b.kind.name == "1001"
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg


def test_blind_transfer_target_busy_reports_486_and_keeps_the_call() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent, expert = net.phone("1001", "10.0.0.2"), net.phone("1002", "10.0.0.3")
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", "<sip:1002@10.0.0.9>")])
    net.pump()
    expert.incoming[0].reject(486, net.now)
    net.pump()
    assert agent.notifies == [100, 486]
    assert net.engine.legs[call.a.engine_leg].playing is None  # ringback stopped
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg  # type: ignore[union-attr]


def test_attended_transfer_joins_the_customer_and_the_consulted_party() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent, expert = net.phone("1001", "10.0.0.2"), net.phone("1002", "10.0.0.3")
    customer_out, agent_leg = connected_call(net, customer, agent)
    first, second, consultation, expert_leg = attended_transfer(net, agent, expert, agent_leg)
    assert agent.notifies == [100, 200]
    # The customer now talks to the expert's leg, which moved into the first call.
    assert first.b is expert_leg and second.b is None
    assert net.peer_of(first.a.engine_leg) == expert_leg.engine_leg
    # Both of the agent's dialogs end; the expert's stays up.
    assert any(isinstance(e, Ended) for e in agent.events_of(agent_leg))
    assert any(isinstance(e, Ended) for e in agent.events_of(consultation))
    assert not any(isinstance(e, ByeReceived) for e in expert.events_of(expert.incoming[0]))
    assert not any(isinstance(e, ByeReceived) for e in customer.events_of(customer_out))
    [ended] = net.ended()
    assert ended.call_id == second.call_id and ended.cause == "transferred"
    assert list(net.control.calls) == [first.call_id]
    # The expert hanging up now ends the customer's call.
    expert.incoming[0].bye(net.now)
    net.pump()
    assert any(isinstance(e, ByeReceived) for e in customer.events_of(customer_out))


def test_refer_with_unknown_replaces_is_answered_481_in_a_notify() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    _, agent_leg = connected_call(net, customer, agent)
    stale = Replaces("gone@x", to_tag="a", from_tag="b")
    agent_leg.send_request("REFER", net.now, headers=[
        ("Refer-To", f"<sip:1002@10.0.0.9?{stale.as_uri_header()}>")])
    net.pump()
    assert agent.notifies == [100, 481]


def test_gateway_cannot_transfer_our_call() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out, _ = connected_call(net, customer, agent)
    transaction = customer_out.send_request("REFER", net.now,
                                            headers=[("Refer-To", "<sip:1003@10.0.0.9>")])
    net.pump()
    assert transaction.last_response is not None  # type: ignore[attr-defined]
    assert transaction.last_response.status == 403  # type: ignore[attr-defined]


def test_hold_plays_music_to_the_other_party_and_resume_restores_the_bridge() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 2, Direction.SENDONLY), net.now)
    net.pump()
    assert net.engine.legs[call.a.engine_leg].playing == "loop"
    assert ("play", call.a.engine_leg, [MOH], True) in net.engine.commands
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 3), net.now)
    net.pump()
    assert net.engine.legs[call.a.engine_leg].playing is None
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg  # type: ignore[union-attr]


def test_a_gateway_reason_reaches_the_agent_and_the_cdr() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out, agent_leg = connected_call(net, customer, agent)
    reason = 'Q.850;cause=16;text="Normal call clearing"'
    customer_out.bye(net.now, headers=[("Reason", reason)])
    net.pump()
    assert ByeReceived(reason) in agent.events_of(agent_leg)
    [ended] = net.ended()
    assert (ended.disposition, ended.q850_cause, ended.cause) == ("answered", 16, "caller-bye")
    kinds = [type(r) for r in net.reports]
    assert kinds[:2] == [CallStarted, LegAdded] and CallAnswered in kinds


def test_agent_busy_gives_the_gateway_486_with_cause_17() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out = net.dial(customer, "1001")
    agent.incoming[0].reject(486, net.now)
    net.pump()
    [rejected] = [e for e in customer.events_of(customer_out) if isinstance(e, Rejected)]
    assert rejected.status == 486
    assert rejected.reason_header is not None and "cause=17" in rejected.reason_header
    [ended] = net.ended()
    assert (ended.disposition, ended.sip_status, ended.q850_cause) == ("busy", 486, 17)


def test_ring_timeout_cancels_the_agent_and_tells_the_caller_no_answer() -> None:
    net = DirectNet(CallSettings(ring_timeout_s=20.0, session_expires_s=None))
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out = net.dial(customer, "1001")
    agent.incoming[0].ring(net.now)
    net.pump()
    net.advance(25.0)
    assert agent.incoming[0].final_status == 487  # CANCELled
    [rejected] = [e for e in customer.events_of(customer_out) if isinstance(e, Rejected)]
    assert rejected.status == 480 and "cause=19" in (rejected.reason_header or "")
    [ended] = net.ended()
    assert ended.disposition == "no_answer"


def test_max_duration_cuts_an_answered_call() -> None:
    net = DirectNet(CallSettings(max_duration_s=100.0, session_expires_s=None))
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out, agent_leg = connected_call(net, customer, agent)
    net.advance(99.0)
    assert net.ended() == []
    net.advance(101.0)
    [ended] = net.ended()
    assert (ended.cause, ended.q850_cause, ended.disposition) == ("max-duration", 102,
                                                                   "answered")
    assert any(isinstance(e, ByeReceived) for e in customer.events_of(customer_out))
    assert any(isinstance(e, ByeReceived) for e in agent.events_of(agent_leg))
    assert net.engine.legs == {}


def test_early_media_from_the_callee_is_passed_through_anchored() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out = net.dial(customer, "1001")
    agent.incoming[0].early_media(sdp("10.0.0.2", 6000), net.now)
    net.pump()
    [early] = [e for e in customer.events_of(customer_out) if isinstance(e, EarlyMedia)]
    call = net.call()
    # The caller is given our leg's address, and the engine relays the early audio.
    assert f"m=audio {net.engine.leg_port(call.a.engine_leg)} ".encode() in early.sdp
    assert b"c=IN IP4 10.0.0.9" in early.sdp
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg  # type: ignore[union-attr]
    assert net.engine.legs[call.a.engine_leg].playing is None


def test_a_pstn_caller_hears_our_ringback_while_a_phone_rings() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    customer_out = net.dial(customer, "1001")
    agent.incoming[0].ring(net.now)
    net.pump()
    call = net.call()
    # ISDN callers hear nothing unless ringback is sent in-band: 183 with our SDP,
    # and the engine plays the ringback tone toward the gateway.
    assert any(isinstance(e, EarlyMedia) for e in customer.events_of(customer_out))
    assert net.engine.legs[call.a.engine_leg].playing == "tone"
    assert ("play_tone", call.a.engine_leg, "ringback") in net.engine.commands
    net.answer(agent)
    assert net.engine.legs[call.a.engine_leg].playing is None  # the agent, not the tone
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg  # type: ignore[union-attr]


def test_a_phone_caller_gets_180_and_rings_locally() -> None:
    net = DirectNet()
    caller = net.phone("1002", "10.0.0.4")
    agent = net.phone("1001", "10.0.0.2")
    outgoing = net.dial(caller, "1001")
    agent.incoming[0].ring(net.now)
    net.pump()
    assert Ringing(180) in caller.events_of(outgoing)
    assert net.engine.legs[net.call().a.engine_leg].playing is None


def test_a_vanished_phone_is_found_out_by_the_session_timer_and_the_call_ends() -> None:
    # RFC 4028: the switch refreshes the session at half the interval; a phone that
    # has gone (power cut, network gone) never answers, and the call is taken down
    # instead of holding the customer and the agent's seat for hours.
    net = DirectNet(CallSettings(session_expires_s=90, min_se_s=90))
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2", session_expires_s=90)
    customer_out, _ = connected_call(net, customer, agent)
    net.vanished.add(agent.peer)
    net.advance(44.0)
    assert net.ended() == []  # the refresh is due at 45 s
    net.advance(120.0)
    [ended] = net.ended()
    assert ended.disposition == "answered" and ended.cause.startswith("callee-")
    assert any(isinstance(e, ByeReceived) for e in customer.events_of(customer_out))
    assert net.engine.legs == {}


def test_a_party_on_hold_may_go_silent_without_the_call_being_cut() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 2, Direction.INACTIVE), net.now)
    net.pump()
    assert call.b is not None and call.b.held
    net.media(RtpTimedOut(call.b.engine_leg, 30.0))
    assert net.ended() == []
    # The customer going silent is still a dead far end.
    net.media(RtpTimedOut(call.a.engine_leg, 30.0))
    assert [e.cause for e in net.ended()] == ["rtp-timeout"]


def test_session_refreshes_meeting_glare_are_retried_after_the_rfc_pauses() -> None:
    # Both phones put the call on hold just as the switch refreshes both sessions
    # (45 s, half of 90): four re-INVITEs cross, all four get 491. The switch retries
    # its refreshes after the RFC 3261 §14.1 pause: 0-2 s toward the customer (the
    # customer's phone made the Call-ID), 2.1-4 s toward the agent (we did), in 10 ms.
    asked: list[int] = []

    def randbelow(n: int) -> int:
        if n == 2**31 - 1:
            return 0  # the first RSeq of a reliable provisional response (RFC 3262 §3)
        asked.append(n)
        return {201: 150, 191: 40}[n]  # 1.5 s and 2.1 + 0.4 = 2.5 s

    net = DirectNet(CallSettings(session_expires_s=90, min_se_s=90), randbelow=randbelow)
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2", session_expires_s=90)
    customer_out, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    net.advance(44.0)
    net.now = 45.0  # not pumped: the phones' re-INVITEs cross the refreshes due now
    customer_out.reinvite(sdp("10.0.0.1", 4000, 2, Direction.SENDONLY), net.now)
    agent_leg.reinvite(sdp("10.0.0.2", 6000, 2, Direction.SENDONLY), net.now)
    net.advance(45.0)
    assert sorted(asked) == [191, 201]
    assert call.a.session.next_deadline() == 46.5
    assert call.b is not None and call.b.session.next_deadline() == 47.5
    assert ReinviteFailed(491) in customer.events_of(customer_out)
    assert ReinviteFailed(491) in agent.events_of(agent_leg)
    net.advance(47.5)
    # Each phone got the refresh (a re-INVITE with the switch's SDP as before).
    assert [type(e) for e in customer.events_of(customer_out)][-1] is Resumed
    assert [type(e) for e in agent.events_of(agent_leg)][-1] is Resumed
    net.advance(200.0)  # and the sessions live on: refreshed again at 92 s, 139 s ...
    assert net.ended() == []


# -- reliable provisional responses (RFC 3262) with a gateway that requires them

REQUIRE_100REL = {"reliable_provisional": True, "extra_headers": [("Require", "100rel")]}


def test_gateway_requiring_100rel_gets_a_reliable_183_and_the_200_after_its_prack() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    outgoing = net.dial(customer, "1001", **REQUIRE_100REL)
    agent.incoming[-1].ring(net.now)
    net.pump()
    # The agent rings: the PSTN caller gets our ringback as early media, reliably.
    call = net.call()
    events = customer.events_of(outgoing)
    assert events == [EarlyMedia(call.a.local_sdp)]
    assert net.engine.legs[call.a.engine_leg].playing == "tone"
    assert call.a.session.next_deadline() is None  # the PRACK came: nothing to resend
    net.answer(agent)
    assert isinstance(customer.events_of(outgoing)[-1], Answered)
    assert net.peer_of(call.a.engine_leg) == call.b.engine_leg  # type: ignore[union-attr]


def test_dialled_gateway_is_told_we_support_100rel_and_its_reliable_18x_are_pracked() -> None:
    net = DirectNet()
    agent = net.phone("1001", "10.0.0.2")
    gateway = net.phone("gw", "10.0.0.5", trunk=True)
    net.extensions["0800"] = gateway  # a number that rings the trunk in this test
    net.dial(agent, "0800")
    [incoming] = gateway.incoming
    assert incoming.invite.headers.get_all("Supported")[-1] == "100rel"
    incoming.early_media(sdp("10.0.0.5", 7000), net.now)  # reliable: the INVITE allows it
    net.pump()
    assert incoming.next_deadline() is None  # the switch PRACKed it
    incoming.answer(sdp("10.0.0.5", 7000), net.now)
    net.pump()
    assert net.call().state.value == "answered"


def test_late_offer_in_a_reliable_183_without_an_answer_in_the_prack_fails_the_call() -> None:
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    outgoing = net.dial(customer, "1001", offer=b"", **REQUIRE_100REL)
    agent.incoming[-1].ring(net.now)
    net.pump()  # our offer goes in a reliable 183; the PRACK carries no answer
    [ended] = net.ended()
    assert ended.cause == "caller-no-answer" and ended.q850_cause == 88
    assert isinstance(customer.events_of(outgoing)[1], Rejected)
    assert net.engine.legs == {}


def test_gateway_late_offer_without_100rel_hears_180_not_an_offer_in_a_183() -> None:
    # Our offer cannot go in an unreliable 183 (RFC 3261 §13.2.1): the gateway is told
    # the agent rings (it plays its own ringback) and gets the offer in the 200.
    net = DirectNet()
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent = net.phone("1001", "10.0.0.2")
    outgoing = net.dial(customer, "1001", offer=b"")
    agent.incoming[-1].ring(net.now)
    net.pump()
    assert customer.events_of(outgoing) == [Ringing(180)]
    assert net.engine.legs[net.call().a.engine_leg].playing is None
    net.answer(agent)
    answered = customer.events_of(outgoing)[1]
    assert isinstance(answered, Answered) and b"m=audio" in answered.sdp  # our offer


def test_phone_late_offer_requiring_100rel_gets_our_offer_in_a_reliable_183() -> None:
    net = DirectNet()
    agent = net.phone("1001", "10.0.0.2")
    desk = net.phone("1002", "10.0.0.3")
    outgoing = net.dial(desk, "1001", offer=b"", **REQUIRE_100REL)
    agent.incoming[-1].ring(net.now)
    net.pump()
    # RFC 3262 §5: not a 180 but our offer in the first reliable 18x. The phone's
    # PRACK carries no answer (InviteClient sends none): the call fails with cause 88.
    progress, rejected, _ = desk.events_of(outgoing)
    assert isinstance(progress, EarlyMedia) and b"m=audio 30000 RTP/AVP 0 8 101" in progress.sdp
    assert rejected == Rejected(480, "Temporarily Unavailable",
                                'Q.850;cause=88;text="Incompatible destination"')
    assert [e.cause for e in net.ended()] == ["caller-no-answer"]
    assert net.engine.legs == {}
