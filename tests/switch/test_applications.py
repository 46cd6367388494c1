"""Applications (switch.applications): the async Channel API driving a call, on the
call-control harness's Desk (tests/switch/harness: real CallRouter and CallControl, SIP
bytes between transaction layers, FakeMediaEngine for key presses and prompts ending,
and the service hooks SipService provides, in a few lines over that network).
Nothing waits on a real clock: a timeout passes when the test steps `net.now`
(Net.advance fires call control's timers)."""

from __future__ import annotations

import logging

import pytest

from switch.applications import (
    ApplicationRunner,
    Channel,
    ChannelHungUp,
    DialResult,
    UnknownApplication,
    play_prompt,
)
from switch.calls import LegKind
from switch.dialplan import ToApplication
from switch.pri_gateway import Direction
from tests.switch.harness import (
    GW1,
    GW2,
    MOBILE,
    Desk,
    cause_of,
    run_pending,
    settle,
)


async def test_an_application_answers_plays_collects_and_bridges_the_caller() -> None:
    results: list[object] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.play(["welcome.wav"])
        results.append("played")
        number = await channel.collect_digits(8)
        results.append(number)
        results.append(await channel.dial(number))

    desk = Desk({"desk": app})
    outgoing = desk.call_in()
    await settle(lambda: desk.customer.answered(outgoing))
    await settle(lambda: desk.playing() == "prompts")
    leg = desk.caller_leg
    assert ("play", leg, ["welcome.wav"], False) in desk.net.engine.commands
    desk.press("10")  # type-ahead: pressed while the prompt still plays
    await run_pending()
    assert results == []  # the prompt has not ended
    desk.prompt_ends()
    await settle(lambda: results == ["played"])
    desk.press("02#")
    await settle(lambda: len(desk.agent.incoming) == 1)
    assert results == ["played", "1002"]
    desk.agent.incoming[0].ring(desk.net.now)
    desk.net.pump()
    assert desk.playing() == "tone"  # ringback for the caller, who is answered
    assert desk.net.engine.commands[-1] == ("play_tone", leg, "ringback")
    desk.net.answer(desk.agent)
    await settle(lambda: len(results) == 3)
    assert results[2] == DialResult(True)
    call = desk.call
    assert call.b is not None and call.b.kind == LegKind(trunk=False, name="1002")
    assert desk.net.engine.legs[leg].peer == call.b.engine_leg
    assert desk.playing() is None
    # The application is done but the bridged call stays up until a party leaves.
    await run_pending()
    assert not desk.customer_got_bye()
    assert list(desk.runner.channels) == [call.call_id]
    assert outgoing is desk.outgoing
    outgoing.bye(desk.net.now)
    desk.net.pump()
    await settle(lambda: not desk.runner.channels)
    [ended] = desk.net.ended()
    assert (ended.disposition, ended.cause) == ("answered", "caller-bye")


async def test_collect_digits_stops_at_the_terminator_and_keeps_what_follows() -> None:
    results: list[str] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.collect_digits(8))
        results.append(await channel.collect_digits(2, terminator=None))
        await channel.hang_up()

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: desk.net.control.calls != {} and desk.call.answered_at is not None)
    desk.press("12#345")
    await settle(lambda: len(results) == 2)
    assert results == ["12", "34"]


async def test_collect_digits_returns_what_it_has_when_the_caller_stops_pressing() -> None:
    results: list[str] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.collect_digits(4, timeout_s=0.01))
        results.append(await channel.collect_digits(4, timeout_s=0.01))

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: desk.net.control.calls != {} and desk.call.answered_at is not None)
    desk.press("7")
    await run_pending()
    desk.net.advance(desk.net.now + 0.01)
    await settle(lambda: len(results) == 1)
    await run_pending()
    desk.net.advance(desk.net.now + 0.01)
    await settle(lambda: len(results) == 2)
    assert results == ["7", ""]
    await settle(lambda: desk.customer_got_bye())  # done without a bridge: hung up


async def test_play_with_stop_on_digit_returns_the_key_and_stops_the_prompt() -> None:
    results: list[str | None] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.play(["menu.wav"], stop_on_digit=True))
        results.append(await channel.collect_digits(1))

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: desk.net.control.calls != {} and desk.playing() == "prompts")
    leg = desk.caller_leg
    desk.press("2")
    await settle(lambda: len(results) == 2)
    assert results == ["2", "2"]  # the key also stays for collect_digits
    assert ("stop_playing", leg) in desk.net.engine.commands


async def test_a_busy_extension_fails_the_dial_and_the_application_keeps_the_caller() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial("1002"))
        await channel.play(["sorry.wav"])
        await channel.hang_up()

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    desk.agent.incoming[0].reject(486, desk.net.now)
    desk.net.pump()
    await settle(lambda: len(results) == 1)
    assert (results[0].answered, results[0].status) == (False, 486)
    assert not desk.customer_got_bye()
    assert desk.call.b is None
    await settle(lambda: desk.playing() == "prompts")
    desk.prompt_ends()
    await settle(desk.customer_got_bye)
    [ended] = desk.net.ended()
    assert (ended.disposition, ended.cause) == ("answered", "application")


async def test_a_busy_extension_tells_the_application_cause_17() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial("1002"))

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    desk.agent.incoming[0].reject(486, desk.net.now)
    desk.net.pump()
    await settle(lambda: len(results) == 1)
    assert results == [DialResult(False, 486, 17)]


async def test_dialling_an_unregistered_extension_gives_480_cause_20() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial("1009"))

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(results) == 1)
    assert results == [DialResult(False, 480, 20)]


async def test_a_failed_dial_does_not_spoil_the_next_one() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial("1009"))
        results.append(await channel.dial("1002"))

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1 or len(results) == 2)
    desk.net.answer(desk.agent)
    await settle(lambda: len(results) == 2)
    assert results[1] == DialResult(True)


async def test_an_application_dials_out_through_the_trunk_group() -> None:
    results: list[DialResult] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.dial("0" + MOBILE))

    desk = Desk({"desk": app})
    desk.call_in()
    # gw1 carries the customer's call, so gw2 is the least busy gateway.
    far = desk.net.gateway(GW2)
    await settle(lambda: len(far.incoming) == 1)
    invite = far.incoming[0].invite
    assert str(invite.uri) == f"sip:{MOBILE}@10.0.0.52:5060"
    assert invite.headers.get("P-Asserted-Identity") == f"<sip:{MOBILE}@10.0.0.9>"
    desk.net.answer(far)
    await settle(lambda: len(results) == 1)
    assert results == [DialResult(True)]
    assert desk.net.busy(GW1, Direction.INBOUND) == desk.net.busy(GW2, Direction.OUTBOUND) == 1
    assert desk.outgoing is not None
    desk.outgoing.bye(desk.net.now)
    desk.net.pump()
    assert desk.net.busy(GW1) == desk.net.busy(GW2) == 0


async def test_the_caller_hanging_up_ends_a_waiting_application() -> None:
    seen: list[str] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        try:
            await channel.play(["welcome.wav"])
        except ChannelHungUp as exc:
            seen.append(str(exc))
            raise
        seen.append("played")  # never: the caller left

    desk = Desk({"desk": app})
    outgoing = desk.call_in()
    await settle(lambda: desk.net.control.calls != {} and desk.playing() == "prompts")
    outgoing.bye(desk.net.now)
    desk.net.pump()
    await settle(lambda: bool(seen))
    assert seen == ["caller-bye"]
    await settle(lambda: not desk.runner.channels)
    assert desk.net.control.calls == {}
    assert desk.net.busy(GW1) == 0


async def test_an_application_that_raises_is_logged_and_the_call_hung_up(
        caplog: pytest.LogCaptureFixture) -> None:
    async def app(channel: Channel) -> None:
        await channel.answer()
        raise RuntimeError("boom")

    desk = Desk({"desk": app})
    caplog.set_level(logging.ERROR, logger="callcenter.apps")
    desk.call_in()
    await settle(desk.customer_got_bye)
    [record] = [r for r in caplog.records if r.name == "callcenter.apps"]
    assert record.getMessage() == f"application desk failed on call {desk.net.ended()[0].call_id}"
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"
    [ended] = desk.net.ended()
    assert ended.cause == "application"
    assert desk.runner.channels == {}


async def test_an_unknown_application_is_not_started_and_the_caller_gets_503() -> None:
    desk = Desk({"desk": play_prompt}, name="nowhere")
    outgoing = desk.call_in()
    rejected = desk.customer.rejected(outgoing)
    assert rejected.status == 503 and cause_of(rejected.reason_header) == "41"
    assert desk.runner.channels == {}


async def test_start_returns_false_for_an_unknown_application_or_before_attach() -> None:
    desk = Desk({"desk": play_prompt})
    agent = desk.agent
    alice = desk.net.party("1001", "10.0.0.1")
    desk.net.dial(alice, "1002")
    call = desk.call
    assert desk.runner.start(call, ToApplication("nowhere"), desk.net.now) is False
    assert call.application is None
    detached = ApplicationRunner({"desk": play_prompt})
    assert detached.start(call, ToApplication("desk"), desk.net.now) is False
    assert len(agent.incoming) == 1


async def test_the_prompt_application_plays_the_routes_prompt_and_hangs_up() -> None:
    desk = Desk({"prompt": play_prompt}, name="prompt", prompt="closed.wav",
                prompts_dir="/var/lib/callcenter/prompts")
    outgoing = desk.call_in()
    await settle(lambda: desk.customer.answered(outgoing) and desk.playing() == "prompts")
    assert ("play", desk.caller_leg, ["/var/lib/callcenter/prompts/closed.wav"], False) \
        in desk.net.engine.commands
    assert not desk.customer_got_bye()
    desk.prompt_ends()
    await settle(desk.customer_got_bye)
    [ended] = desk.net.ended()
    assert ended.cause == "application"


async def test_an_application_hands_the_call_on_and_gets_it_back_with_the_variables() -> None:
    """An IVR menu passes the caller to a queue application and back: the queue drives
    the same call with its own params, reads what the menu learned and adds its own."""
    seen: list[tuple[str | None, dict[str, object], dict[str, str]]] = []

    async def menu(channel: Channel) -> None:
        await channel.answer()
        channel.variables.update(customer_id=42, vip_level="金卡", ivr_path=["menu:1"])
        await channel.hand_off("queue", prompt="hold.wav")
        seen.append((channel.call.application, dict(channel.variables), dict(channel.params)))
        with pytest.raises(UnknownApplication, match="no application named 'voicemail'"):
            await channel.hand_off("voicemail")
        await channel.hang_up()

    async def queue(channel: Channel) -> None:
        seen.append((channel.call.application, dict(channel.variables), dict(channel.params)))
        await channel.play([channel.params["prompt"]])
        channel.variables["queue_result"] = "timeout"

    desk = Desk({"desk": menu, "queue": queue}, prompts_dir="/prompts")
    outgoing = desk.call_in()
    await settle(lambda: desk.customer.answered(outgoing) and desk.playing() == "prompts")
    assert ("play", desk.caller_leg, ["/prompts/hold.wav"], False) in desk.net.engine.commands
    desk.prompt_ends()
    await settle(desk.customer_got_bye)
    learned = {"customer_id": 42, "vip_level": "金卡", "ivr_path": ["menu:1"]}
    assert seen == [("queue", learned, {"prompt": "/prompts/hold.wav"}),
                    ("desk", {**learned, "queue_result": "timeout"}, {})]
