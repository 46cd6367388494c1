"""Pages: the desktop shell, the language switch, the catalogue, static files."""

from __future__ import annotations

import re
import string
from pathlib import Path

from apps import Role
from tests.web.conftest import TestClient, World, login
from web.i18n import LANGUAGES, MESSAGES, role_label

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


def test_every_string_exists_in_both_languages_with_the_same_placeholders() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        fields = [{f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f}
                  for lang in LANGUAGES]
        assert all(texts.values()), key
        assert fields[0] == fields[1], key


def test_every_key_the_templates_use_is_in_the_catalogue() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\(["']([\w.]+)["']""", template.read_text()))
    assert "desktop.screen_pop" in used
    assert used <= set(MESSAGES)


def test_role_labels_are_the_customers_chinese_names() -> None:
    for role in Role:
        assert role_label("zh", role.value) == role.label
        assert role_label("en", role.value) != role.label


def test_desktop_shell_in_chinese(client: TestClient) -> None:
    login(client, "zhangwei")
    page = client.get("/desktop")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="zh-CN">' in html
    for text in ("来电弹屏", "沟通记录", "通话", "张伟", "普通座席", "退出", "座席工作台"):
        assert text in html, text
    for panel in ('id="screen-pop"', 'id="contact-notes"', 'id="calls"'):
        assert panel in html
    token = client.get("/api/v1/session").json()["csrf_token"]
    assert f'name="csrf_token" value="{token}"' in html  # the logout form
    assert f'<meta name="csrf-token" content="{token}">' in html
    # Nothing loaded from elsewhere: no CDN at run time.
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)


def test_language_switch_sticks(client: TestClient) -> None:
    login(client, "zhangwei")
    english = client.get("/desktop?lang=en")
    assert '<html lang="en">' in english.text
    for text in ("Screen pop", "Contact notes", "Agent", "Log out"):
        assert text in english.text
    assert "来电弹屏" not in english.text
    assert "lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in client.get("/desktop").text
    assert '<html lang="zh-CN">' in client.get("/desktop?lang=zh").text
    assert '<html lang="zh-CN">' in client.get("/desktop").text


def test_unknown_language_means_chinese(client: TestClient) -> None:
    page = client.get("/login?lang=fr")
    assert '<html lang="zh-CN">' in page.text
    assert "set-cookie" not in page.headers or "lang=" not in page.headers["set-cookie"]


def test_login_page_in_english(client: TestClient) -> None:
    page = client.get("/login?lang=en")
    assert "Username" in page.text and "Password" in page.text
    assert 'id="logout"' not in page.text  # no header controls before logging in


def test_forbidden_page_is_a_page(client: TestClient, world: World) -> None:
    world.permissions.by_user[1] = frozenset()
    login(client, "zhangwei")
    page = client.get("/desktop")
    assert page.status_code == 403
    assert "您没有权限执行此操作" in page.text
    assert 'href="/desktop"' not in page.text  # no link the user cannot follow


def test_static_files_are_public_and_local(client: TestClient) -> None:
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert "/api/v1/ws" in script.text
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_health_is_public(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
