"""Channel.send_dtmf: an application keys digits toward the party it connected the caller
to (another system's IVR), over the call-control harness's Desk (tests/switch/harness)."""

from __future__ import annotations

import pytest

from switch.applications import Channel, DialResult
from tests.switch.harness import Desk, settle


async def test_digits_go_to_the_answered_party_as_telephone_events() -> None:
    sent: list[str] = []
    errors: list[str] = []

    async def app(channel: Channel) -> None:
        await channel.answer()
        try:
            await channel.send_dtmf("1")  # nobody to send to yet
        except ValueError as exc:
            errors.append(str(exc))
        assert await channel.dial("1002") == DialResult(True)
        with pytest.raises(ValueError, match="0-9 \\* # A-D"):
            await channel.send_dtmf("12x")
        await channel.send_dtmf("12#")
        sent.append("12#")

    desk = Desk({"desk": app})
    desk.call_in()
    await settle(lambda: len(desk.agent.incoming) == 1)
    desk.net.answer(desk.agent)
    await settle(lambda: sent == ["12#"])
    assert errors == ["no answered party to send digits to"]
    agent_leg = desk.call.b
    assert agent_leg is not None
    assert ("send_dtmf", agent_leg.engine_leg, "12#", 100) in desk.net.engine.commands
    # Nothing went toward the caller.
    assert not any(c[0] == "send_dtmf" and c[1] == desk.caller_leg
                   for c in desk.net.engine.commands)
