"""The live channel: one WebSocket per open desktop at /api/v1/ws, fed by EventHub.

Server to browser only; the browser's messages are read (to notice it leaving) and
ignored. Auth is the session cookie plus the Origin check in ``requires``, or (a script,
not a browser) an ``Authorization: Bearer`` token; once open, the socket closes when its
session ends or its token stops working: at once when this process ended it (the hub
says so), otherwise (the command line, idling out) within SESSION_CHECK_S. A token's
check marks it used, as any request with it does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from web.auth import WS_POLICY_VIOLATION, bearer_token, requires, services_of, session_id_of
from web.hub import Event, EventHub, Overflowed, Subscription

WS_TRY_AGAIN_LATER = 1013  # RFC 6455 §7.4.1 (IANA registry): reconnect and reload
SESSION_CHECK_S = 60.0  # an open socket asks whether its session still lives this often


@requires()
async def events(websocket: WebSocket) -> None:
    services = services_of(websocket)
    hub: EventHub = services.hub
    still_valid = _credential_check(websocket)
    await websocket.accept()
    subscription = hub.subscribe(websocket.state.user.id, websocket.state.permissions)
    try:
        sender = asyncio.create_task(_send_events(websocket, subscription.get))
        receiver = asyncio.create_task(_drain(websocket))
        watcher = asyncio.create_task(_watch_credential(subscription, still_valid))
        done, pending = await asyncio.wait({sender, receiver, watcher},
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
        if sender in done and isinstance(sender.exception(), Overflowed):
            await websocket.close(code=WS_TRY_AGAIN_LATER)
        elif watcher in done:
            watcher.result()  # a failed check is an error, not a quiet close
            await websocket.close(code=WS_POLICY_VIOLATION)
    finally:
        subscription.close()


def _credential_check(websocket: WebSocket) -> Callable[[], Awaitable[bool]]:
    """Whether what let the socket in (its bearer token or its session) still would."""
    services = services_of(websocket)
    token = bearer_token(websocket)
    if token is not None:
        async def token_works() -> bool:
            return await services.tokens.authenticate(token) is not None
        return token_works
    session_id = session_id_of(websocket)
    assert session_id is not None  # requires() let a logged-in session in

    async def session_lives() -> bool:
        # An open socket is no activity of the user's: it does not keep the session alive.
        return await services.sessions.resume(session_id, touch=False) is not None
    return session_lives


async def _watch_credential(subscription: Subscription,
                            still_valid: Callable[[], Awaitable[bool]]) -> None:
    """Return once the socket's session has ended or its token stopped working."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscription.session_check.wait(), SESSION_CHECK_S)
        subscription.session_check.clear()
        if not await still_valid():
            return


async def _send_events(websocket: WebSocket, get: Callable[[], Awaitable[Event]]) -> None:
    while True:
        await websocket.send_json(await get())


async def _drain(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/api/v1/ws", events)]
