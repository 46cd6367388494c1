"""Request bodies over the cap are refused with 413 before anything reads them (the CSRF
check would otherwise spool a huge upload to disk to look for its token)."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.web.conftest import TestClient, csrf_token
from web.body_limit import BodyLimitMiddleware


def test_a_body_over_the_cap_is_refused_with_413(client: TestClient) -> None:
    token = csrf_token(client)
    response = client.post("/login", content=b"x" * (22 * 1024 * 1024),
                           headers={"X-CSRF-Token": token,
                                    "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "larger than 21 MiB" in response.text


def test_a_body_without_a_declared_length_is_refused_with_411(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"username=a&password=b"

    response = client.post("/login", content=chunks(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 411


def test_a_body_at_the_cap_is_read_normally() -> None:
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = BodyLimitMiddleware(Starlette(routes=[Route("/", echo, methods=["POST"])]),
                              max_body_bytes=5000)
    with TestClient(app) as small:  # type: ignore[arg-type]
        assert small.post("/", content=b"y" * 5000).text == "5000"
        assert small.post("/", content=b"y" * 5001).status_code == 413
