"""A call's one recording (switch.calls.recording): from the first answer, across blind
and attended transfers into the same file, paused and resumed, and per route "always",
"never" or "on_demand". In memory: the call-control harness's phones (DirectNet) and its
Desk (tests/switch/harness) over FakeMediaEngine, whose commands say what the engine
was asked."""

from __future__ import annotations

from switch.applications import Channel
from switch.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallSettings,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
)
from tests.switch.harness import (
    MOH,
    Desk,
    DirectNet,
    Party,
    attended_transfer,
    connected_call,
    sdp,
    settle,
)

RECORDINGS = CallSettings(session_expires_s=None, music_on_hold=MOH,
                          recording_path=lambda call_id: f"/rec/{call_id}.wav")


def recording_commands(net: DirectNet | Desk) -> list[tuple[object, ...]]:
    engine = net.engine if isinstance(net, DirectNet) else net.net.engine
    return [c for c in engine.commands if "recording" in c[0] or c[0] == "record"]


def recording_events(reports: list[CallEvent]) -> list[CallEvent]:
    return [r for r in reports
            if isinstance(r, RecordingStarted | RecordingPaused | RecordingResumed
                          | CallAnswered | CallEnded)]


def agent_call(settings: CallSettings = RECORDINGS) -> tuple[DirectNet, Party, Party, Party]:
    net = DirectNet(settings)
    customer = net.phone("pstn", "10.0.0.1", trunk=True)
    agent, expert = net.phone("1001", "10.0.0.2"), net.phone("1002", "10.0.0.3")
    return net, customer, agent, expert


def test_the_agent_answering_starts_one_stereo_recording_of_both_parties() -> None:
    net, customer, agent, _ = agent_call()
    assert recording_commands(net) == []
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    path = f"/rec/{call.call_id}.wav"
    assert recording_commands(net) == [("record", call.a.engine_leg, call.b.engine_leg,  # type: ignore[union-attr]
                                        path, True)]
    agent_leg.bye(net.now)
    net.pump()
    assert recording_commands(net)[1:] == [("stop_recording", 1)]
    assert recording_events(net.reports) == [
        CallAnswered(call.call_id), RecordingStarted(call.call_id, path),
        CallEnded(call.call_id, "answered", 16, None, "callee-bye")]


def test_a_blind_transfer_goes_on_in_the_same_file_with_the_target() -> None:
    net, customer, agent, expert = agent_call()
    customer_out, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    customer_leg, agent_engine_leg = call.a.engine_leg, call.b.engine_leg  # type: ignore[union-attr]
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", "<sip:1002@10.0.0.9>")])
    net.pump()
    net.answer(expert)
    assert call.b is not None and call.b.kind.name == "1002"
    # Fed from the target before the transferor's leg closes; never stopped meanwhile.
    assert recording_commands(net) == [
        ("record", customer_leg, agent_engine_leg, f"/rec/{call.call_id}.wav", True),
        ("retarget_recording", 1, customer_leg, call.b.engine_leg)]
    assert net.engine.recordings == {1: (customer_leg, call.b.engine_leg)}
    customer_out.bye(net.now)
    net.pump()
    assert recording_commands(net)[2:] == [("stop_recording", 1)]
    assert sum(isinstance(r, RecordingStarted) for r in net.reports) == 1


def test_a_transferor_leaving_after_202_leaves_the_customer_alone_in_the_file() -> None:
    net, customer, agent, expert = agent_call()
    _, agent_leg = connected_call(net, customer, agent)
    call = net.call()
    customer_leg = call.a.engine_leg
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", "<sip:1002@10.0.0.9>")])
    net.pump()
    agent_leg.bye(net.now)
    net.pump()
    assert net.engine.recordings == {1: (customer_leg,)}
    net.answer(expert)
    assert call.b is not None
    assert recording_commands(net)[1:] == [
        ("retarget_recording", 1, customer_leg, None),
        ("retarget_recording", 1, customer_leg, call.b.engine_leg)]


def test_an_attended_transfer_takes_the_consulted_party_into_the_customers_file() -> None:
    net, customer, agent, expert = agent_call()
    _, agent_leg = connected_call(net, customer, agent)
    first, _, _, expert_leg = attended_transfer(net, agent, expert, agent_leg)
    assert first.b is expert_leg
    # The consultation's own recording (2) ends with it; the customer's (1) goes on.
    assert ("stop_recording", 2) in recording_commands(net)
    assert ("retarget_recording", 1, first.a.engine_leg, expert_leg.engine_leg) \
        in recording_commands(net)
    assert net.engine.recordings == {1: (first.a.engine_leg, expert_leg.engine_leg)}


def test_pause_and_resume_are_sent_to_the_engine_and_reported_once_each() -> None:
    net, customer, agent, _ = agent_call()
    connected_call(net, customer, agent)
    call = net.call()
    assert call.pause_recording(net.now)
    assert not call.pause_recording(net.now)  # already paused
    net.now = 5.0
    assert call.resume_recording(net.now)
    assert not call.resume_recording(net.now)
    net.pump()
    assert recording_commands(net)[1:] == [("pause_recording", 1, True),
                                           ("pause_recording", 1, False)]
    assert [type(r) for r in recording_events(net.reports)] == [
        CallAnswered, RecordingStarted, RecordingPaused, RecordingResumed]


def test_never_records_nothing_and_cannot_be_started_or_paused() -> None:
    net, customer, agent, _ = agent_call(CallSettings(
        session_expires_s=None, recording_path=RECORDINGS.recording_path, recording="never"))
    connected_call(net, customer, agent)
    call = net.call()
    assert not call.start_recording(net.now)
    assert not call.pause_recording(net.now)
    assert recording_commands(net) == []
    assert not any(isinstance(r, RecordingStarted) for r in net.reports)


def test_no_recording_configured_records_nothing() -> None:
    net, customer, agent, _ = agent_call(CallSettings(session_expires_s=None))
    connected_call(net, customer, agent)
    assert not net.call().start_recording(net.now)
    assert recording_commands(net) == []


# -- applications: the IVR answering is the first answer; on_demand routes


async def test_an_application_answering_starts_the_recording_which_then_takes_the_agent() -> None:
    results: list[object] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.pause_recording())
        results.append(await channel.resume_recording())
        results.append(await channel.dial("1002"))

    desk = Desk({"desk": app}, settings=RECORDINGS)
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    call = desk.call
    caller = call.a.engine_leg
    assert recording_commands(desk)[0] == ("record", caller, None,
                                           f"/rec/{call.call_id}.wav", True)
    desk.net.answer(desk.agent)
    await settle(lambda: len(results) == 3)
    assert results[:2] == [True, True]
    assert call.b is not None
    assert recording_commands(desk)[1:] == [
        ("pause_recording", 1, True), ("pause_recording", 1, False),
        ("retarget_recording", 1, caller, call.b.engine_leg)]


async def test_an_agent_that_does_not_answer_leaves_the_caller_recorded() -> None:
    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.dial("1002")
        await channel.wait_hung_up()

    desk = Desk({"desk": app}, settings=RECORDINGS)
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    desk.agent.incoming[0].reject(486, desk.net.now)
    desk.net.pump()
    assert desk.net.engine.recordings == {1: (desk.call.a.engine_leg,)}


async def test_an_on_demand_route_records_once_the_application_starts_it() -> None:
    results: list[bool] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.pause_recording())  # nothing to pause yet
        results.append(await channel.start_recording())
        results.append(await channel.start_recording())  # already recording
        await channel.hang_up()

    desk = Desk({"desk": app}, settings=RECORDINGS, recording="on_demand")
    desk.call_in()
    await settle(lambda: len(results) == 3)
    assert results == [False, True, False]
    assert [c[0] for c in recording_commands(desk)] == ["record", "stop_recording"]


async def test_a_never_route_overrides_the_default() -> None:
    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.hang_up()

    desk = Desk({"desk": app}, settings=RECORDINGS, recording="never")
    desk.call_in()
    await settle(lambda: bool(desk.net.ended()))
    assert recording_commands(desk) == []


async def test_a_party_still_ringing_is_not_fed_into_the_recording() -> None:
    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.dial("1002")

    desk = Desk({"desk": app}, settings=RECORDINGS)
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    desk.agent.incoming[0].early_media(sdp(desk.agent.peer.host, 6000), desk.net.now)
    desk.net.pump()
    call = desk.call
    assert call.b is not None and not call.b.answered
    call._media.follow(call.a, call.b)  # as a transfer or a leg leaving would
    assert desk.net.engine.recordings == {1: (call.a.engine_leg,)}
    assert [c[0] for c in recording_commands(desk)] == ["record"]
