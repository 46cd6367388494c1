"""Applications (switch.applications): the async Channel API driving a call, over the
in-memory network of test_routing (real CallRouter and CallControl, SIP bytes between
transaction layers, FakeMediaEngine for key presses and prompts ending). The service
hooks are a few lines over that network, as SipService provides them in the switch.
Nothing waits on a real clock: a timeout passes when the test steps `net.now`
(Net.advance fires call control's timers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

import pytest

from switch.applications import (
    Application,
    ApplicationRunner,
    Channel,
    ChannelHungUp,
    DialResult,
    UnknownApplication,
    play_prompt,
)
from switch.calls import Call, CallSettings, LegKind
from switch.dialplan import RingGroup, ToApplication
from switch.media import DtmfReceived
from switch.pri_gateway import Direction
from switch.sip import ByeReceived, InviteClient
from tests.switch.test_routing import (
    DID,
    GW1,
    GW2,
    MOBILE,
    OUTSIDE_LINE,
    Net,
    cause_of,
    route,
)


class Hooks:
    """ServiceHooks over the in-memory network (SipService's now/pump/dial_number)."""

    def __init__(self, net: Net) -> None:
        self.net = net

    @property
    def now(self) -> float:
        return self.net.now

    def pump(self) -> None:
        self.net.pump()

    def dial_number(self, call: Call, number: str) -> bool:
        return self.net.router.dial_number(call, number, self.net.now)

    def dial_numbers(self, call: Call, numbers: Sequence[str], *, sequential: bool,
                     ring_timeout_s: float | None) -> bool:
        group = RingGroup("", "sequential" if sequential else "simultaneous",
                          tuple(numbers), ring_timeout_s)
        return self.net.router.ring(call, group, self.net.now)


class Desk:
    """A network whose DID starts `application`, an agent 1002 and a PSTN customer."""

    def __init__(self, applications: Mapping[str, Application], *, name: str = "desk",
                 prompt: str | None = None, prompts_dir: str | None = None,
                 settings: CallSettings | None = None, recording: str | None = None) -> None:
        self.runner = ApplicationRunner(applications, prompts_dir=prompts_dir)
        self.net = Net([route(did=DID, application=name, prompt=prompt, recording=recording),
                        OUTSIDE_LINE, route(extension=True)],
                       start_application=self.runner.start, settings=settings)
        self.runner.attach(Hooks(self.net))
        self.net.on_pump.append(
            lambda: self.runner.deliver(self.net.control.channel_events()))
        self.agent = self.net.party("1002", "10.0.0.2")
        self.net.register(self.agent)
        self.customer = self.net.gateway(GW1)
        self.outgoing: InviteClient | None = None

    def call_in(self) -> InviteClient:
        self.outgoing = self.net.dial(self.customer, DID, from_user=MOBILE)
        return self.outgoing

    @property
    def call(self) -> Call:
        return self.net.call()

    @property
    def caller_leg(self) -> int:
        return self.call.a.engine_leg

    def media(self) -> None:
        """What SipService.on_media_events does when the engine posts events."""
        self.net.control.handle_media(self.net.engine.drain_events(), self.net.now)
        self.net.pump()

    def press(self, digits: str) -> None:
        for digit in digits:
            self.net.engine.emit(DtmfReceived(self.caller_leg, digit, 100))
        self.media()

    def prompt_ends(self) -> None:
        self.net.engine.finish_playback(self.caller_leg)
        self.media()

    def playing(self) -> str | None:
        return self.net.engine.legs[self.caller_leg].playing

    def customer_got_bye(self) -> bool:
        assert self.outgoing is not None
        return any(isinstance(e, ByeReceived) for e in self.customer.events_of(self.outgoing))


async def settle(until: Callable[[], bool]) -> None:
    """Let the application task run (no time passes) until `until()` holds."""
    for _ in range(200):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the application never got there")


async def run_pending() -> None:
    """Let the application task run as far as it can without new input."""
    for _ in range(50):
        await asyncio.sleep(0)


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
