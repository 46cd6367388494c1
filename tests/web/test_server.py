"""WebServer over a real socket in this test's event loop: HTTP login, the WebSocket
with the session cookie, refusals, and a clean stop with a socket still open."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.web.conftest import PASSWORD, World
from web import WebServer

pytestmark = pytest.mark.integration


async def test_login_and_live_events_over_a_real_socket(world: World) -> None:
    server = WebServer(world.app(), "127.0.0.1", 0)
    await server.start()
    try:
        _, port = server.address
        assert server.url == f"http://127.0.0.1:{port}" and port > 0
        async with httpx.AsyncClient(base_url=server.url) as client:
            token = (await client.get("/api/v1/session")).json()["csrf_token"]
            response = await client.post(
                "/api/v1/session", json={"username": "zhangwei", "password": PASSWORD},
                headers={"X-CSRF-Token": token})
            assert response.status_code == 200
            cookie = f"callcenter_session={client.cookies['callcenter_session']}"
        ws_url = f"ws://127.0.0.1:{port}/api/v1/ws"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url, origin=server.url):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            async with connect(ws_url, origin="http://evil.example",  # type: ignore[arg-type]
                               additional_headers={"Cookie": cookie}):
                pass
        socket = await connect(ws_url, origin=server.url,  # type: ignore[arg-type]
                               additional_headers={"Cookie": cookie})
        await socket.send("hello")  # ignored, but must not break the channel
        while not world.services.hub.connected_users():
            await (await socket.ping())  # a round trip lets the server finish subscribing
        world.services.hub.publish(1, {"type": "screen_pop", "caller": "01088886666"})
        assert json.loads(await socket.recv()) == {"type": "screen_pop",
                                                   "caller": "01088886666"}
    finally:
        await server.stop()  # with the socket still open: closes it and returns
    with pytest.raises(ConnectionClosed):
        await socket.recv()
    assert world.services.hub.connected_users() == frozenset()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{server.url}/health")
