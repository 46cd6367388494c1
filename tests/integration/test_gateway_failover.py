"""A trunk group of two PRI gateways (two emulators, 127.0.0.2 and 127.0.0.3) behind the
real switch: outbound calls take the least busy live gateway, a gateway that stops
answering OPTIONS leaves the rotation and comes back when it answers again, and with
every gateway down a phone is told 503 with Q.850 cause 38.

The phone is a third emulator on 127.0.0.1 that authenticates like a phone (digest);
the switch's log lines about gateway health are the events waited on."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from switch.pri_gateway.emulator import EmulatedCall, GatewayEmulator
from switch.sip import build_authorization
from tests.integration.switch_process import SwitchProcess
from tests.integration.test_pri_calls import ended, free_udp_port, until, wait

pytestmark = pytest.mark.integration

PHONE, PASSWORD = "2001", "phone-pass-2001"
CONFIG = """\
[rtp]
ports = "44000-44199"
[sip.auth]
algorithms = ["MD5"]
[[gateways]]
name = "gw1"
host = "127.0.0.2"
port = {gw1_port}
keepalive_s = 1
[[gateways]]
name = "gw2"
host = "127.0.0.3"
port = {gw2_port}
keepalive_s = 1
[[trunk_groups]]
name = "pstn"
gateways = ["gw1", "gw2"]
[[routes]]
prefix = "9"
strip = 1
trunk_group = "pstn"
"""


@dataclass
class Trunk:
    switch: SwitchProcess
    gw1: GatewayEmulator
    gw2: GatewayEmulator
    phone: GatewayEmulator

    async def dial(self, number: str) -> EmulatedCall:
        """The phone dials `number`, answering the digest challenge."""
        first = await self.phone.place_call(PHONE, number)
        await wait(first.ended.wait(), "the challenge")
        assert first.response is not None and first.response.status == 401
        challenge = first.response.headers.get("WWW-Authenticate")
        assert challenge is not None
        uri = f"sip:{number}@127.0.0.1:{self.switch.udp_port}"
        authorization = build_authorization(challenge, "INVITE", uri, PHONE,
                                            password=PASSWORD,
                                            cnonce=uuid.uuid4().hex[:8], nc=1)
        return await self.phone.place_call(PHONE, number,
                                           headers=[("Authorization", authorization)])

    def received(self, gateway: GatewayEmulator) -> int:
        return len([c for c in gateway.calls.values() if not c.placed])

    async def logged(self, pattern: str) -> None:
        await until(lambda: re.search(pattern, self.switch.log()) is not None,
                    f"the log line {pattern!r}", timeout_s=15.0)


@pytest.fixture
async def trunk(tmp_path: Path) -> AsyncIterator[Trunk]:
    ports = free_udp_port("127.0.0.2"), free_udp_port("127.0.0.3")
    switch = SwitchProcess(tmp_path / "switch",
                           CONFIG.format(gw1_port=ports[0], gw2_port=ports[1]))
    (tmp_path / "switch").mkdir()
    await asyncio.to_thread(switch.add_user, "phone", PASSWORD, PHONE)
    await asyncio.to_thread(switch.start)
    try:
        address = ("127.0.0.1", switch.udp_port)
        gw1 = GatewayEmulator("127.0.0.2", ports[0], switch=address, spans=1,
                              media_ports=(44200, 44299), recordings_dir=tmp_path / "gw1")
        gw2 = GatewayEmulator("127.0.0.3", ports[1], switch=address, spans=1,
                              media_ports=(44300, 44399), recordings_dir=tmp_path / "gw2")
        phone = GatewayEmulator("127.0.0.1", 0, switch=address, spans=1,
                                media_ports=(44400, 44499),
                                recordings_dir=tmp_path / "phone")
        async with gw1, gw2, phone:
            yield Trunk(switch, gw1, gw2, phone)
            for emulator in (gw1, gw2, phone):
                for call in list(emulator.calls.values()):
                    if call.answered.is_set() and not call.ended.is_set():
                        call.hangup()
    finally:
        await asyncio.to_thread(switch.stop)


async def test_calls_spread_over_live_gateways_and_avoid_a_dead_one(trunk: Trunk) -> None:
    # Both up: the least busy gateway takes each new call, so two calls use both.
    first = await trunk.dial("913800138001")
    await wait(first.answered.wait(), "the first call's answer")
    second = await trunk.dial("913800138002")
    await wait(second.answered.wait(), "the second call's answer")
    assert (trunk.received(trunk.gw1), trunk.received(trunk.gw2)) == (1, 1)
    first.hangup()
    second.hangup()
    await ended(first, second)

    # gw1 stops answering: after its missed keepalives it is out of the rotation ...
    trunk.gw1.set_down(True)
    await trunk.logged(r"gateway gw1 is out of service")
    calls = [await trunk.dial(f"91390013900{n}") for n in range(2)]
    await wait(asyncio.gather(*(c.answered.wait() for c in calls)), "two answers")
    assert (trunk.received(trunk.gw1), trunk.received(trunk.gw2)) == (1, 3)
    for call in calls:
        call.hangup()
    await ended(*calls)

    # ... and back once it answers again.
    trunk.gw1.set_down(False)
    await trunk.logged(r"gateway gw1 is back in service")
    again = await trunk.dial("913700137000")
    await wait(again.answered.wait(), "the call after recovery")
    assert trunk.received(trunk.gw1) == 2
    again.hangup()
    await ended(again)


async def test_all_gateways_down_gives_503_with_cause_38(trunk: Trunk) -> None:
    trunk.gw1.set_down(True)
    trunk.gw2.set_down(True)
    await trunk.logged(r"gateway gw1 is out of service")
    await trunk.logged(r"gateway gw2 is out of service")
    call = await trunk.dial("913800138000")
    await ended(call)
    assert call.response is not None and call.response.status == 503
    assert call.remote_reason == 38
    assert trunk.received(trunk.gw1) == trunk.received(trunk.gw2) == 0
