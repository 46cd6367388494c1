"""Application timers (issue 10): the inter-digit timeout and Channel.sleep are timers on
the call (Call.start_timer), so they pass when call control's clock does. The tests step
that clock (Net.advance fires call control's timers) over the call-control harness's
Desk (tests/switch/harness); nothing sleeps, and every deadline is asserted exactly."""

from __future__ import annotations

from switch.applications import Application, Channel, ChannelHungUp, DialResult
from tests.switch.harness import Desk, run_pending, settle


def collecting(results: list[str], *max_digits: int) -> Application:
    """Answer, then collect digits (5 s between them) once for each of `max_digits`."""
    async def app(channel: Channel) -> None:
        await channel.answer()
        for count in max_digits:
            results.append(await channel.collect_digits(count, timeout_s=5.0))
    return app


async def answered(desk: Desk) -> None:
    desk.call_in()
    await settle(lambda: desk.net.control.calls != {} and desk.call.answered_at is not None)
    await run_pending()


async def test_the_digit_timeout_passes_when_the_clock_reaches_it_and_not_before() -> None:
    results: list[str] = []
    desk = Desk({"desk": collecting(results, 4)})
    await answered(desk)
    assert desk.call.app_deadline == 5.0
    desk.net.advance(4.999)
    await run_pending()
    assert results == []
    desk.net.advance(5.0)
    await settle(lambda: results == [""])
    await settle(desk.customer_got_bye)  # done without a bridge: hung up


async def test_each_digit_starts_the_timeout_again() -> None:
    results: list[str] = []
    desk = Desk({"desk": collecting(results, 4)})
    await answered(desk)
    desk.net.advance(3.0)
    desk.press("1")
    await run_pending()
    assert desk.call.app_deadline == 8.0  # 5 s from the key press, not from the start
    desk.net.advance(7.5)
    await run_pending()
    assert results == []
    desk.press("2")
    await run_pending()
    assert desk.call.app_deadline == 12.5
    desk.net.advance(12.499)
    await run_pending()
    assert results == []
    desk.net.advance(12.5)
    await settle(lambda: results == ["12"])


async def test_sleep_returns_when_the_clock_passes_and_keeps_key_presses() -> None:
    results: list[str] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.sleep(30.0)  # a wrap-up, a queue's maximum wait
        results.append("woke")
        results.append(await channel.collect_digits(1))

    desk = Desk({"desk": app})
    await answered(desk)
    assert desk.call.app_deadline == 30.0
    desk.net.advance(29.999)
    desk.press("9")  # pressed while it sleeps: type-ahead for what follows
    await run_pending()
    assert results == []
    desk.net.advance(30.0)
    await settle(lambda: results == ["woke", "9"])


async def test_the_caller_hanging_up_during_sleep_raises_channel_hung_up() -> None:
    seen: list[str] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        try:
            await channel.sleep(30.0)
        except ChannelHungUp as exc:
            seen.append(str(exc))
        try:
            await channel.sleep(1.0)  # no waiting on a call that has ended
        except ChannelHungUp as exc:
            seen.append(str(exc))

    desk = Desk({"desk": app})
    await answered(desk)
    desk.net.advance(10.0)
    assert desk.outgoing is not None
    desk.outgoing.bye(desk.net.now)
    desk.net.pump()
    await settle(lambda: len(seen) == 2)
    assert seen == ["caller-bye", "caller-bye"]
    await settle(lambda: not desk.runner.channels)
    assert desk.net.control.calls == {}
    [ended] = desk.net.ended()
    assert ended.cause == "caller-bye"


async def test_a_timer_that_fired_for_an_earlier_collect_does_not_end_the_next() -> None:
    """A key press and the timeout in the same round: the first collect takes the key,
    and the TimerFired it leaves behind is stale for the second collect."""
    results: list[str] = []
    desk = Desk({"desk": collecting(results, 1, 2)})
    await answered(desk)
    desk.press("4")
    desk.net.advance(5.0)  # the first timer fires before the application runs again
    await settle(lambda: results == ["4"])
    await run_pending()
    assert results == ["4"]  # the second collect still waits, for its own timer
    assert desk.call.app_deadline == 10.0
    desk.net.advance(7.0)
    desk.press("5")
    await run_pending()
    assert desk.call.app_deadline == 12.0
    desk.net.advance(11.999)
    await run_pending()
    assert results == ["4"]
    desk.net.advance(12.0)
    await settle(lambda: results == ["4", "5"])


async def test_a_dial_passes_over_a_timer_that_fired_for_a_collect() -> None:
    results: list[object] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        results.append(await channel.collect_digits(4, timeout_s=5.0))
        results.append(await channel.dial("1002"))

    desk = Desk({"desk": app})
    await answered(desk)
    desk.press("1002")
    desk.net.advance(5.0)  # fired too, while the collect had already got its digits
    await settle(lambda: len(desk.agent.incoming) == 1)
    await run_pending()
    assert results == ["1002"]
    desk.net.answer(desk.agent)
    await settle(lambda: len(results) == 2)
    assert results[1] == DialResult(True)
