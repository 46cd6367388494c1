"""The live channel: one WebSocket per open desktop at /api/v1/ws, fed by EventHub.

Server to browser only; the browser's messages are read (to notice it leaving) and
ignored. Auth is the session cookie plus the Origin check in ``requires``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from web.auth import requires
from web.hub import Event, EventHub, Overflowed

WS_TRY_AGAIN_LATER = 1013  # RFC 6455 §7.4.1 (IANA registry): reconnect and reload


@requires()
async def events(websocket: WebSocket) -> None:
    hub: EventHub = websocket.app.state.services.hub
    await websocket.accept()
    subscription = hub.subscribe(websocket.state.user.id, websocket.state.permissions)
    try:
        sender = asyncio.create_task(_send_events(websocket, subscription.get))
        receiver = asyncio.create_task(_drain(websocket))
        done, pending = await asyncio.wait({sender, receiver},
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
        if sender in done and isinstance(sender.exception(), Overflowed):
            await websocket.close(code=WS_TRY_AGAIN_LATER)
    finally:
        subscription.close()


async def _send_events(websocket: WebSocket, get: Callable[[], Awaitable[Event]]) -> None:
    while True:
        await websocket.send_json(await get())


async def _drain(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/api/v1/ws", events)]
