"""The live channel: what is published to a user reaches their sockets; broadcasts reach
those holding the capability; anonymous and cross-site sockets are refused."""

from __future__ import annotations

import asyncio

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.web.conftest import TestClient, World, login, other_browser
from web import EventHub, ws
from web.hub import Overflowed

ORIGIN = {"origin": "http://testserver"}


def test_a_logged_in_user_receives_what_is_published_to_them(client: TestClient,
                                                             world: World) -> None:
    hub = world.services.hub
    login(client, "zhangwei")
    with client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        # The server subscribes right after accepting; let its task get there.
        assert client.portal is not None
        client.portal.call(asyncio.sleep, 0)
        assert hub.connected_users() == {1}
        assert hub.publish(2, {"type": "screen_pop", "for": "admin"}) == 0
        assert hub.publish(1, {"type": "screen_pop", "caller": "13800138000"}) == 1
        assert socket.receive_json() == {"type": "screen_pop", "caller": "13800138000"}
        assert hub.broadcast("users.manage", {"type": "admins only"}) == 0
        assert hub.broadcast("calls.handle", {"type": "queue", "waiting": 3}) == 1
        assert socket.receive_json() == {"type": "queue", "waiting": 3}
    assert hub.connected_users() == frozenset()  # the socket closed, the app noticed


def test_an_anonymous_socket_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/api/v1/ws", headers=ORIGIN):
        pass
    assert refused.value.code == 1008


@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://testserver.evil",
                                    "null", "ftp://testserver"])
def test_a_socket_from_another_origin_is_refused(client: TestClient,
                                                 origin: str | None) -> None:
    login(client, "zhangwei")
    headers = {} if origin is None else {"origin": origin}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/api/v1/ws", headers=headers):
        pass
    assert refused.value.code == 1008


async def test_hub_delivers_to_every_socket_of_a_user_in_order() -> None:
    hub = EventHub()
    first, second = hub.subscribe(1, frozenset()), hub.subscribe(1, frozenset())
    other = hub.subscribe(2, frozenset({"reports.view"}))
    assert hub.publish(1, {"n": 1}) == 2
    assert hub.publish(1, {"n": 2}) == 2
    assert [await first.get(), await first.get()] == [{"n": 1}, {"n": 2}]
    assert await second.get() == {"n": 1}
    assert hub.broadcast("reports.view", {"n": 3}) == 1
    assert await other.get() == {"n": 3}
    first.close()
    assert hub.publish(1, {"n": 4}) == 1
    second.close()
    other.close()
    assert hub.connected_users() == frozenset()


async def test_a_subscriber_that_falls_behind_is_cut_off() -> None:
    hub = EventHub(queue_limit=3)
    slow = hub.subscribe(1, frozenset())
    assert [hub.publish(1, {"n": n}) for n in range(5)] == [1, 1, 1, 0, 0]
    with pytest.raises(Overflowed):
        await slow.get()


async def test_get_waits_for_the_next_event() -> None:
    hub = EventHub()
    subscription = hub.subscribe(1, frozenset())
    waiting = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.publish(1, {"type": "late"})
    assert await waiting == {"type": "late"}


def test_a_socket_of_an_ended_session_is_refused(client: TestClient) -> None:
    token = login(client, "zhangwei")
    before_logout = client.cookies["callcenter_session"]
    client.delete("/api/v1/session", headers={"X-CSRF-Token": token})
    client.cookies.set("callcenter_session", before_logout)
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/api/v1/ws", headers=ORIGIN):
        pass
    assert refused.value.code == 1008


def test_an_open_socket_closes_when_its_session_ends_and_only_then(client: TestClient,
                                                                   world: World) -> None:
    hub = world.services.hub
    desk = other_browser(client, "zhangwei")
    phone_token = login(client, "zhangwei")
    phone = client.cookies["callcenter_session"]
    client.cookies.set("callcenter_session", desk)
    with client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        assert client.portal is not None
        client.portal.call(asyncio.sleep, 0)
        # Another session of the same user logs out: this socket checks, and stays.
        client.cookies.set("callcenter_session", phone)
        client.delete("/api/v1/session", headers={"X-CSRF-Token": phone_token})
        client.portal.call(asyncio.sleep, 0)
        assert hub.publish(1, {"type": "screen_pop"}) == 1
        assert socket.receive_json() == {"type": "screen_pop"}
        # Then log out everywhere from yet another session: this socket's session ends.
        client.cookies.clear()
        token = login(client, "zhangwei")
        client.delete("/api/v1/sessions", headers={"X-CSRF-Token": token})
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1008
    assert hub.connected_users() == frozenset()


async def test_the_hub_tells_a_users_sockets_to_check_their_sessions() -> None:
    hub = EventHub()
    first, second, other = (hub.subscribe(1, frozenset()), hub.subscribe(1, frozenset()),
                            hub.subscribe(2, frozenset()))
    assert hub.sessions_ended(1) == 2
    assert first.session_check.is_set() and second.session_check.is_set()
    assert not other.session_check.is_set()
    assert hub.sessions_ended(3) == 0


def test_an_open_socket_notices_a_session_ended_elsewhere_on_its_own(
        client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ended by another process (`callcenter user passwd`): no hub tells this one, the
    # socket's own periodic check finds out (every 60 s; here at once).
    monkeypatch.setattr(ws, "SESSION_CHECK_S", 0)
    login(client, "zhangwei")
    with client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        assert client.portal is not None
        client.portal.call(world.sessions.end_all, 1)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1008
