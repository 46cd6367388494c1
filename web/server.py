"""WebServer: uvicorn serving the app inside the caller's running event loop.

The composition root (callcenter.serve) owns SIGTERM/SIGINT: they stop and drain calls.
uvicorn's own signal capture is switched off, and the socket is bound here, so a bind
failure is an exception with a clear message rather than uvicorn's sys.exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from web.errors import WebError

GRACEFUL_SHUTDOWN_S = 5  # open requests and sockets get this long at shutdown


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.address: tuple[str, int] = (host, port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        """Bind and listen now (connections wait in the backlog until uvicorn accepts),
        then serve in a task of this loop."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise WebError(f"web UI cannot listen on {self._host}:{self._port}: "
                           f"{exc.strerror}") from None
        sock.setblocking(False)
        self.address = sock.getsockname()[:2]
        config = uvicorn.Config(
            self._app, lifespan="off", log_config=None, access_log=False,
            proxy_headers=False, server_header=False, ws="websockets-sansio",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None
