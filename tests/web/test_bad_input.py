"""Bad input is the caller's 400 or 404, never our 500: ids in paths past what a row can
have, JSON nested past the parser's recursion, VIP levels and ids in bodies that no
column holds; and, whatever JSON the write routes get, no 500 (Hypothesis)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from apps.audit import SYSTEM
from apps.queues import QueueService, QueueSettings
from tests.web.test_access import every_endpoint
from tests.web.test_customers import Stack, add_customer
from tests.web.test_customers import stack as stack_fixture
from web import admin as web_admin
from web import customers as customer_routes
from web.inputs import MAX_ID, MAX_JSON_DEPTH

stack = stack_fixture  # the whole web UI on a real database

HUGE_IDS = ("9" * 20, str(MAX_ID + 1), "1" + "0" * 5000)  # 5000: past int()'s limit
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


def id_routes() -> list[tuple[str, str]]:
    """(method, path) of every route with an id in its path."""
    routes = [*web_admin.routes(None), *customer_routes.routes(None)]  # type: ignore[arg-type]
    return [(method, route.path) for route in routes if isinstance(route, Route)
            and ":id}" in route.path for method in sorted(route.methods or ())
            if method != "HEAD"]


ID_ROUTES = id_routes()


def test_every_id_in_a_path_is_read_by_the_id_convertor(stack: Stack) -> None:
    paths = [path for _, path, _ in every_endpoint(stack.client.app)]  # type: ignore[arg-type]
    convertors = {match.group(2) for path in paths for match in _PARAM.finditer(path)}
    assert convertors == {"id", "str"}  # ids, and the import's random job names
    assert len(ID_ROUTES) >= 27  # users, groups, permissions, customers: pages and API


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_an_id_no_row_can_have_is_not_found(stack: Stack, method: str, path: str) -> None:
    token = stack.login_as("admin")
    for huge in HUGE_IDS:
        url = _PARAM.sub(huge, path.replace("{capability}", "calls.listen"))
        if path.startswith("/api/"):
            response = stack.client.request(method, url, json={"text": "x"},
                                            headers={"X-CSRF-Token": token})
            assert response.status_code == 404, (huge[:30], response.text)
            assert response.json()["error"] == "not_found"
            assert response.json()["message"] in ("用户不存在", "分组不存在", "客户不存在")
        else:
            response = stack.client.request(method, url,
                                            data={"csrf_token": token, "text": "x"})
            assert response.status_code == 404, (huge[:30], response.text)
            assert re.search("(用户|分组|客户)不存在", response.text)


def json_routes(stack: Stack) -> list[tuple[str, str]]:
    """(method, concrete path) of every API route that reads a JSON body, with ids that
    exist, so that the body is what is read."""
    group = stack.run(stack.groups.create, SYSTEM, "早班")
    customer = add_customer(stack, "李雷", "13900139000")
    queue = stack.run(QueueService(stack.db, stack.audit).create, SYSTEM, "service",
                      QueueSettings("服务台"))
    ids = {"user_id": stack.users["agent"].id, "group_id": group.id, "id": customer.id,
           "name": queue.name}
    found = []
    for method, path, _ in every_endpoint(stack.client.app):  # type: ignore[arg-type]
        if (method in ("POST", "PUT", "PATCH") and path.startswith("/api/")
                and "customer-imports" not in path):
            concrete = _PARAM.sub(lambda m: str(ids[m.group(1)]), path)
            found.append((method, concrete.replace("{capability}", "customers.import")))
    return found


def test_json_nested_past_the_parsers_recursion_or_our_depth_is_refused(stack: Stack) -> None:
    routes = json_routes(stack)
    assert len(routes) == 13
    token = stack.login_as("admin")
    headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    lists = "[" * 100_000 + "]" * 100_000
    objects = '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    for method, url in routes:
        for body, message in ((lists, "请求正文必须是一个 JSON 对象"),
                              (objects, "请求正文的 JSON 嵌套超过 32 层")):
            response = stack.client.request(method, url, content=body, headers=headers)
            assert response.status_code == 400, (method, url, response.text)
            if url != "/api/v1/session":  # login answers every malformed body alike
                assert response.json()["message"] == message, (method, url)
    english = stack.client.post("/api/v1/groups?lang=en", content=objects, headers=headers)
    assert english.json()["message"] == "The body's JSON is nested more than 32 levels deep"


def test_a_huge_vip_level_or_account_manager_id_is_a_clear_400(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    token = stack.login_as("admin")
    headers = {"X-CSRF-Token": token}
    url = f"/api/v1/customers/{customer.id}"
    names = "钻石卡、金卡、银卡、普通"
    tail = f"无效：请选择 {names} 之一，或填写 0 到 99 的整数"
    cases = [
        ({"vip_level": 10**30}, f"VIP等级“{10**30}”{tail}"),
        ({"vip_level": 100}, f"VIP等级“100”{tail}"),
        ({"vip_level": "x" * 100}, f"VIP等级“{'x' * 39}…”{tail}"),
        ({"vip_level": "白金卡"}, f"VIP等级“白金卡”{tail}"),
        ({"account_manager_id": 2**64},
         "“account_manager_id”必须是 1 到 2147483647 之间的编号"),
    ]
    for body, message in cases:
        response = stack.client.patch(url, json=body, headers=headers)
        assert (response.status_code, response.json()["message"]) == (400, message), body
    english = stack.client.patch(f"{url}?lang=en", json={"vip_level": -1}, headers=headers)
    assert english.json()["message"] == (
        f"The VIP level “-1” is unknown: choose one of {names}, or give a whole number "
        "from 0 to 99")
    form = stack.client.post(f"/customers/{customer.id}/edit", data={
        "csrf_token": token, "name": "王小明", "vip_level": "9" * 20,
        "account_manager_id": "9" * 20})
    assert form.status_code == 400
    assert (f"保存失败：VIP等级“{'9' * 20}”无效：请选择 {names} 之一，或填写 0 到 99 的整数"
            in form.text)
    group = stack.run(stack.groups.create, SYSTEM, "夜班")
    member = stack.client.post(f"/api/v1/groups/{group.id}/members",
                               json={"user_id": 2**63}, headers=headers)
    assert (member.status_code, member.json()["message"]) == (
        400, "“user_id”必须是 1 到 2147483647 之间的编号")
    after = stack.run(stack.customers.get_customer, customer.id)
    assert after is not None and after.vip_level == 0


_SCALARS = (st.none() | st.booleans() | st.text(max_size=20) | st.floats()
            | st.integers() | st.sampled_from([2**31, 2**63, 2**64, 10**30, -1, 0]))
JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
FIELDS = ("name", "title", "vip_level", "account_manager_id", "custom_fields",
          "add_phones", "remove_phones", "username", "password", "role", "extension",
          "disabled", "description", "user_id", "state", "channel", "text",
          "display_name", "strategy", "members", "ring_timeout_s", "wrap_up_s", "max_wait_s",
          "overflow_target")
BODIES = JSON | st.fixed_dictionaries({}, optional={name: JSON for name in FIELDS})


@pytest.fixture
def write_routes(stack: Stack) -> tuple[list[tuple[str, str]], str]:
    """The JSON write routes but login, and an administrator's CSRF token."""
    routes = [route for route in json_routes(stack) if route[1] != "/api/v1/session"]
    return routes, stack.login_as("admin")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_no_json_body_makes_a_write_route_fail(
    stack: Stack, write_routes: tuple[list[tuple[str, str]], str], data: st.DataObject
) -> None:
    routes, token = write_routes
    method, url = data.draw(st.sampled_from(routes))
    body = data.draw(BODIES)
    response = stack.client.request(method, url, content=json.dumps(body), headers={
        "X-CSRF-Token": token, "Content-Type": "application/json"})
    assert response.status_code in (200, 201, 204, 400, 404), (method, url, body,
                                                                response.text)
