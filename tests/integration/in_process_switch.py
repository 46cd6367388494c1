"""The switch in the test's own process, for tests that drive SipService directly
(originate, add_party): SipService with a real MediaEngine, SIP and RTP over real UDP on
127.0.0.1, the engine's events fed to call control from the running loop; trunk group
"pstn" is one PRI gateway, "gw1" on GATEWAY_HOST. switch_process.py runs the whole
`callcenter serve` instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from switch.calls import CallSettings
from switch.dialplan import Dialplan, Reject, Route
from switch.media import MediaEngine
from switch.pri_gateway import Gateway, TrunkGroup, Trunks
from switch.signalling import CredentialLookup, SipService, SipSettings
from tests.integration.test_pri_calls import GATEWAY_HOST


@asynccontextmanager
async def in_process_switch(lookup: CredentialLookup, *, realm: str,
                            rtp_ports: tuple[int, int], gateway_port: int,
                            routes: list[Route],
                            call_settings: CallSettings) -> AsyncIterator[SipService]:
    """A started SipService (digest with MD5 for phones, `routes` then 404), stopped on
    the way out with its engine."""
    engine = MediaEngine(workers=1, port_range=rtp_ports, bind_host="127.0.0.1")
    engine.start()
    loop = asyncio.get_running_loop()
    service = SipService(
        SipSettings(listen=(("127.0.0.1", 0),), realm=realm, auth_algorithms=("MD5",)),
        lookup, engine=engine,
        trunks=Trunks([TrunkGroup("pstn", [Gateway("gw1", GATEWAY_HOST, gateway_port)])]),
        dialplan=Dialplan(routes, Reject(404, "Not Found")), call_settings=call_settings)
    loop.add_reader(engine.events_fd, service.on_media_events)
    try:
        await service.start()
        yield service
    finally:
        await service.stop()
        loop.remove_reader(engine.events_fd)
        engine.stop()
