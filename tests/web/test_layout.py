"""The layout every page shares: Bootstrap and our stylesheet from our origin, the
favicon, the current page marked in the navigation, toasts after a saved form, and the
macros of web/templates/_macros.html."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.web.conftest import TestClient, World, login
from web import NavItem, flash, render, requires
from web.i18n import MESSAGES
from web.templating import current_nav_path, environment

STATES = ("idle", "ringing", "talking", "busy", "wrap_up", "offline")


def test_every_page_loads_bootstrap_our_style_and_the_favicon(client: TestClient) -> None:
    html = client.get("/login").text
    for link in ('<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">',
                 '<link rel="stylesheet" href="/static/vendor/bootstrap/css/bootstrap.min.css">',
                 '<link rel="stylesheet" href="/static/style.css">',
                 '<script src="/static/vendor/bootstrap/js/bootstrap.bundle.min.js">'):
        assert link in html
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"


def test_the_current_page_is_marked_in_the_navigation(client: TestClient) -> None:
    login(client, "zhangwei")
    html = client.get("/desktop").text
    assert 'class="nav-link active" href="/desktop" aria-current="page"' in html


def test_a_page_under_an_entry_marks_that_entry() -> None:
    nav = [NavItem("/customers", "k", "c"), NavItem("/customers/import", "k", "c"),
           NavItem("/admin/users", "k", "c")]
    assert current_nav_path(nav, "/customers") == "/customers"
    assert current_nav_path(nav, "/customers/7/edit") == "/customers"
    assert current_nav_path(nav, "/customers/import/abc") == "/customers/import"
    assert current_nav_path(nav, "/customersx") is None
    assert current_nav_path(nav, "/admin") is None


def saving_app(world: World) -> TestClient:
    @requires()
    async def save(request: Request) -> Response:
        flash(request, "已保存")
        flash(request, "注意：号码重复", "warning")
        return RedirectResponse("/saved", status_code=303)

    @requires()
    async def saved(request: Request) -> Response:
        return render(request, "home.html")

    app = world.app(routes=[Route("/save", save, methods=["POST"]),
                            Route("/saved", saved)])
    return TestClient(app, follow_redirects=False)


def test_a_flashed_message_is_a_toast_on_the_next_page_only(world: World) -> None:
    with saving_app(world) as client:
        token = login(client, "zhangwei")
        assert client.post("/save", data={"csrf_token": token}).status_code == 303
        html = client.get("/saved").text
        assert 'text-bg-success" role="status" aria-atomic="true" data-autoshow>' in html
        assert '<div class="toast-body">已保存</div>' in html
        assert 'text-bg-warning" role="status"' in html
        assert "注意：号码重复" in html
        assert "已保存" not in client.get("/saved").text  # shown once


def macro(call: str, lang: str = "zh") -> str:
    source = '{% import "_macros.html" as ui with context %}' + call
    return environment.from_string(source).render(
        t=lambda key, **params: MESSAGES[key][lang].format(**params))


def test_agent_state_badges_are_worded_in_the_pages_language() -> None:
    assert macro('{{ ui.badge("idle") }}') == \
        '<span class="badge state-idle" data-state="idle">空闲</span>'
    words = {state: macro(f'{{{{ ui.badge("{state}") }}}}') for state in STATES}
    assert [words[state].split(">")[1].split("<")[0] for state in STATES] == \
        ["空闲", "振铃", "通话", "示忙", "话后", "离线"]
    assert ">Wrap-up<" in macro('{{ ui.badge("wrap_up") }}', "en")


def test_empty_state_toast_and_card() -> None:
    assert '<p class="empty mb-0">暂无数据</p>' in macro(
        '{{ ui.empty_state(t("empty.nothing")) }}')
    assert 'id="saved"' in macro('{{ ui.toast("已保存", id="saved") }}')
    card = macro('{% call ui.card("通话", id="calls") %}<p>x</p>{% endcall %}')
    assert 'id="calls" aria-labelledby="calls-title"' in card
    assert '<h2 class="card-title" id="calls-title">通话</h2>' in card and "<p>x</p>" in card


def test_pagination_keeps_the_lists_parameters() -> None:
    html = macro('{{ ui.pagination(2, 9, {"q": "王 小"}) }}')
    assert 'href="?q=%E7%8E%8B+%E5%B0%8F&amp;page=1"' in html  # previous
    assert 'href="?q=%E7%8E%8B+%E5%B0%8F&amp;page=2" aria-current="page"' in html
    assert "page=6" not in html and "page=5" in html  # a window around the page
    assert "第 2 页，共 9 页" in html
    assert macro("{{ ui.pagination(1, 1) }}").strip() == ""
