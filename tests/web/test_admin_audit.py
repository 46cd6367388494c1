"""The audit log from the admin API and page: newest first, filtered by action or user."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apps.audit import MAX_RECENT_LIMIT
from tests.web.test_admin_access import Site, site
from web.admin_audit import DEFAULT_LIMIT, AuditFilter, BadFilter

__all__ = ["site"]


def make_history(site: Site) -> None:
    """Logins of three users, a failed one, and a group the service manager creates."""
    site.login("agent")
    site.client.post("/api/v1/session", json={"username": "agent", "password": "wrong pw"},
                     headers={"X-CSRF-Token": site.login("supervisor")})
    token = site.login("service_manager")
    site.client.post("/api/v1/groups", json={"name": "早班"}, headers={"X-CSRF-Token": token})


def test_entries_come_newest_first_with_who_what_and_where(site: Site) -> None:
    make_history(site)
    entries = site.client.get("/api/v1/audit").json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("service_manager", "group.create"),
        ("service_manager", "login"),
        ("agent", "login_failed"),
        ("supervisor", "login"),
        ("agent", "login"),
    ]
    newest = entries[0]
    assert newest["actor_id"] == site.ids["service_manager"]
    assert newest["target"].startswith("agent_group:")
    assert newest["detail"] == {"name": "早班"}
    assert entries[1]["source_ip"] == "testclient"
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert entries[0]["at"].endswith("+00:00")


def test_filters_by_action_and_by_user(site: Site) -> None:
    make_history(site)

    def actions(query: str) -> list[tuple[str, str]]:
        response = site.client.get(f"/api/v1/audit?{query}")
        assert response.status_code == 200, response.text
        return [(e["actor"], e["action"]) for e in response.json()["entries"]]

    assert actions("action=login") == [("service_manager", "login"), ("supervisor", "login"),
                                       ("agent", "login")]
    assert actions("user=service_manager") == [("service_manager", "group.create"),
                                               ("service_manager", "login")]
    assert actions("user=service_manager&action=login") == [("service_manager", "login")]
    assert actions("user=nobody") == []
    assert actions("limit=2") == [("service_manager", "group.create"),
                                  ("service_manager", "login")]
    response = site.client.get("/api/v1/audit?limit=0")
    assert response.json() == {"error": "invalid",
                               "message": "limit must be a whole number from 1 to 1000"}


def test_audit_page_shows_and_filters_entries_in_both_languages(site: Site) -> None:
    make_history(site)
    page = site.client.get("/admin/audit")
    assert "<h1>审计日志</h1>" in page.text
    assert page.text.index('data-action="group.create"') < page.text.index(
        'data-action="login_failed"')
    assert "{&#34;name&#34;: &#34;早班&#34;" in page.text  # detail as JSON, escaped
    filtered = site.client.get("/admin/audit?action=login_failed&lang=en")
    assert "<h1>Audit log</h1>" in filtered.text
    assert filtered.text.count("<tr data-action=") == 1
    assert 'value="login_failed"' in filtered.text
    empty = site.client.get("/admin/audit?user=nobody&lang=zh")
    assert "没有符合条件的记录" in empty.text
    bad = site.client.get("/admin/audit?limit=abc")
    assert bad.status_code == 400
    assert "limit must be a whole number from 1 to 1000" in bad.text


@given(st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 2000).map(str)))
def test_the_limit_filter_is_a_whole_number_in_range_or_a_clear_error(raw: str | None) -> None:
    query = {} if raw is None else {"limit": raw}
    try:
        wanted = AuditFilter.parse(query)
    except BadFilter as exc:
        assert str(exc) == "limit must be a whole number from 1 to 1000"
        assert raw is not None and not (raw.isascii() and raw.isdigit()
                                        and 1 <= int(raw) <= MAX_RECENT_LIMIT)
    else:
        assert wanted.limit == (DEFAULT_LIMIT if not raw else int(raw))
        assert 1 <= wanted.limit <= MAX_RECENT_LIMIT
