"""The 404 and the 500: a page request gets the error page inside the layout, in the
visitor's language; an /api/ request gets JSON; static files keep plain answers."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from tests.web.conftest import TestClient, World, login
from web import public
from web.error_pages import PLAIN_500, server_error
from web.i18n import MESSAGES

NOT_FOUND = MESSAGES["error.not_found"]
INTERNAL = MESSAGES["error.internal"]


def test_an_unknown_page_is_the_404_page_in_chinese_inside_the_layout(
        client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="zh-CN">' in html
    assert f'id="error">{NOT_FOUND["zh"]}</p>' in html
    assert "页面不存在" in html and "返回首页" in html
    assert 'class="navbar ' in html and 'href="/static/vendor/bootstrap/css/' in html
    assert 'id="logout"' not in html  # nobody is logged in


def test_the_404_page_in_english(client: TestClient) -> None:
    html = client.get("/nowhere?lang=en").text
    assert f'id="error">{NOT_FOUND["en"]}</p>' in html
    assert "Page not found" in html and "页面不存在" not in html


def test_a_logged_in_user_keeps_their_navigation_on_the_404_page(client: TestClient) -> None:
    login(client, "zhangwei")
    html = client.get("/desktop/nothing-here").text
    assert 'href="/desktop"' in html and 'id="user-name">张伟<' in html
    assert 'id="logout"' in html


def test_an_unknown_api_address_is_json_in_the_callers_language(client: TestClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": NOT_FOUND["zh"]}
    english = client.get("/api/v1/no-such-thing?lang=en")
    assert english.json()["message"] == NOT_FOUND["en"]


def test_static_files_and_other_statuses_keep_plain_answers(client: TestClient) -> None:
    missing = client.get("/static/missing.css")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    wrong_method = client.put("/login")
    assert (wrong_method.status_code, wrong_method.text) == (405, "Method Not Allowed")


def _broken_app(world: World) -> TestClient:
    @public
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = world.app(routes=[Route("/broken", broken), Route("/api/v1/broken", broken)])
    return TestClient(app, raise_server_exceptions=False)


def test_a_failure_is_the_500_page_inside_the_layout(world: World) -> None:
    with _broken_app(world) as client:
        response = client.get("/broken")
        assert response.status_code == 500
        assert f'id="error">{INTERNAL["zh"]}</p>' in response.text
        assert "服务器错误" in response.text and 'class="navbar ' in response.text
        english = client.get("/broken?lang=en")
        assert f'id="error">{INTERNAL["en"]}</p>' in english.text


def test_a_failure_of_the_api_is_json(world: World) -> None:
    with _broken_app(world) as client:
        response = client.get("/api/v1/broken")
        assert response.status_code == 500
        assert response.json() == {"error": "internal", "message": INTERNAL["zh"]}


def test_when_even_the_500_page_cannot_be_drawn_the_answer_is_plain() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [],
             "query_string": b""}  # no app, no session: nothing to draw a page with
    asyncio.run(server_error(scope, receive, send))
    assert sent[0]["status"] == 500
    assert sent[1]["body"] == PLAIN_500.encode()
