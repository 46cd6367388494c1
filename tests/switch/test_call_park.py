"""Parking (switch.calls.park through Channel.park/unpark): the caller hears looping
music in the switch until the application takes them off park, or dials a party whose
answer ends the music and bridges them in one go. In memory: the Desk of the call-control
harness (tests/switch/harness) over FakeMediaEngine, whose commands say what the engine
was asked."""

from __future__ import annotations

from switch.applications import Channel
from tests.switch.harness import Desk, sdp, settle

MUSIC = "/prompts/queue_music.wav"


async def test_a_parked_caller_hears_music_through_the_ringing_until_the_agent_answers(
) -> None:
    results: list[object] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.park([MUSIC])
        results.append(channel.call.parked)
        results.append(await channel.dial("1002"))  # an agent became free

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    caller = desk.caller_leg
    assert results == [True]
    assert ("play", caller, [MUSIC], True) in desk.net.engine.commands
    parked_at = len(desk.net.engine.commands)
    desk.agent.incoming[0].ring(desk.net.now)
    desk.net.pump()
    assert desk.playing() == "loop"  # no ringback over the music
    assert desk.net.engine.commands[parked_at:] == []
    desk.net.answer(desk.agent)
    await settle(lambda: len(results) == 2)
    call = desk.call
    assert call.b is not None and not call.parked
    # The music stops and the bridge is made in one batch of commands (one tick).
    [stop] = [n for n, c in enumerate(desk.net.engine.commands) if c == ("stop_playing", caller)]
    bridge = desk.net.engine.commands.index(("bridge", caller, call.b.engine_leg))
    assert stop > parked_at
    assert [c[0] for c in desk.net.engine.commands[stop:bridge]] == ["stop_playing",
                                                                     "set_remote"]
    assert desk.net.engine.legs[caller].peer == call.b.engine_leg


async def test_early_media_from_the_agents_phone_does_not_cut_the_music() -> None:
    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.park([MUSIC])
        await channel.dial("1002")

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    incoming = desk.agent.incoming[0]
    incoming.early_media(sdp(desk.agent.peer.host, 6000), desk.net.now)
    desk.net.pump()
    assert desk.playing() == "loop"
    assert desk.net.engine.legs[desk.caller_leg].peer is None


async def test_unpark_stops_the_music_and_a_failed_dial_keeps_the_caller_parked() -> None:
    results: list[object] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        await channel.park([MUSIC])
        results.append(await channel.dial("1002"))
        results.append(channel.call.parked)  # still hearing the music
        await channel.unpark()
        results.append(channel.call.parked)
        await channel.hang_up()

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    caller = desk.caller_leg
    desk.agent.incoming[0].reject(486, desk.net.now)
    desk.net.pump()
    await settle(lambda: len(results) == 3)
    assert results[1:] == [True, False]
    assert ("stop_playing", caller) in desk.net.engine.commands
