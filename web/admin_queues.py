"""Queues 队列管理 (queues.manage): list, create, change (settings and members) and delete
queues, on the admin pages and the JSON API. apps.queues checks and audits every change.

The API has no live figures yet (the queue engine comes later): each queue's
``"waiting"`` is null until it does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.permissions import AccessError, PermissionDenied
from apps.queues import (
    DEFAULT_RING_TIMEOUT_S,
    DEFAULT_WRAP_UP_S,
    LIMITS,
    QueueError,
    QueueRecord,
    QueueService,
    QueueSettings,
    Strategy,
    check_range,
    parse_strategy,
)
from apps.users import UserRecord
from web.admin_common import (
    API,
    AdminServices,
    acting_user,
    forbidden,
    invalid,
    not_found,
    reason,
    source_ip,
)
from web.auth import requires
from web.i18n import translate
from web.inputs import BadInput, json_object
from web.openapi import documented
from web.queue_messages import QUEUE_MESSAGES
from web.templating import NavItem, flash, language_of, render

CAPABILITY: Final = "queues.manage"
NAV: Final = NavItem("/admin/queues", "nav.admin_queues", CAPABILITY)
_STRINGS: Final = QUEUE_MESSAGES  # importing web.queue_messages registers the UI strings

_MEMBER_SCHEMA: Final[dict[str, Any]] = {"oneOf": [
    {"type": "string", "description": "a username (penalty 0)"},
    {"type": "object", "required": ["username"],
     "properties": {"username": {"type": "string"}, "penalty": {"type": "integer"}}},
]}
_QUEUE_PROPERTIES: Final[dict[str, Any]] = {
    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
    "display_name": {"type": "string"},
    "strategy": {"enum": [s.value for s in Strategy]},
    "ring_timeout_s": {"type": "integer"},
    "wrap_up_s": {"type": "integer"},
    "max_wait_s": {"type": ["integer", "null"]},
    "overflow_target": {"type": ["string", "null"]},
    "members": {"type": "array", "items": _MEMBER_SCHEMA},
}
_REFUSED: Final = {"description": "Refused: the message says why, in the caller's language"}


def queue_json(queue: QueueRecord) -> dict[str, Any]:
    return {
        "name": queue.name, "display_name": queue.display_name,
        "strategy": queue.strategy.value, "ring_timeout_s": queue.ring_timeout_s,
        "wrap_up_s": queue.wrap_up_s, "max_wait_s": queue.max_wait_s,
        "overflow_target": queue.overflow_target,
        "members": [{"username": m.username, "name": m.name, "penalty": m.penalty}
                    for m in queue.members],
        "waiting": None,  # live counts come with the queue engine
        "created_at": queue.created_at.isoformat(timespec="seconds"),
        "updated_at": queue.updated_at.isoformat(timespec="seconds"),
    }


def refusal(request: Request, error: Exception) -> str:
    """Why a queue request was refused, in the caller's language."""
    if isinstance(error, QueueError):
        return translate(language_of(request), f"queues.error.{error.code}", **error.params)
    return reason(request, error)


def _integer(value: object, field: str) -> int:
    """A JSON integer or a form's digits, in the field's range."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() \
            and len(value.strip()) <= 9:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        low, high = LIMITS[field]
        raise QueueError("out_of_range", field=field, low=low, high=high)
    return check_range(field, value)


def _text(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInput.of("queues.error.bad_text", field=field)
    return value


def settings_of(data: Mapping[str, Any], current: QueueRecord | None) -> QueueSettings:
    """The settings ``data`` asks for; a field it leaves out keeps ``current``'s value
    (or the default, for a new queue)."""
    base = QueueSettings(current.display_name, current.strategy, current.ring_timeout_s,
                         current.wrap_up_s, current.max_wait_s, current.overflow_target
                         ) if current is not None else None
    display_name = _text(data, "display_name") if "display_name" in data else (
        base.display_name if base else None)
    if display_name is None:
        raise QueueError("display_name_required")
    values: dict[str, Any] = {}
    if "strategy" in data:
        strategy = data["strategy"]
        values["strategy"] = parse_strategy(strategy if isinstance(strategy, str)
                                            else repr(strategy))
    for field in ("ring_timeout_s", "wrap_up_s"):
        if field in data:
            values[field] = _integer(data[field], field)
    if "max_wait_s" in data:
        raw = data["max_wait_s"]
        values["max_wait_s"] = None if raw in (None, "") else _integer(raw, "max_wait_s")
    if "overflow_target" in data:
        values["overflow_target"] = _text(data, "overflow_target")
    if base is None:
        return QueueSettings(display_name, **values)
    return QueueSettings(**{**{f: getattr(base, f) for f in (
        "strategy", "ring_timeout_s", "wrap_up_s", "max_wait_s", "overflow_target")},
        **values, "display_name": display_name})


def members_of(value: object) -> dict[str, int]:
    """The API's ``members``: usernames, or {"username", "penalty"} objects."""
    if not isinstance(value, list):
        raise BadInput.of("queues.error.bad_members")
    members: dict[str, int] = {}
    for item in value:
        penalty = 0
        if isinstance(item, dict):
            penalty = _integer(item.get("penalty", 0), "penalty")
            item = item.get("username")
        if not isinstance(item, str) or not item:
            raise BadInput.of("queues.error.bad_members")
        if item in members:
            raise BadInput.of("queues.error.duplicate_member", username=item)
        members[item] = penalty
    return members


def _form_members(form: FormData) -> dict[str, int]:
    return {username: _integer(form.get(f"penalty.{username}") or "0", "penalty")
            for username in form.getlist("members") if isinstance(username, str)}


_FORM_FIELDS: Final = ("name", "display_name", "strategy", "ring_timeout_s", "wrap_up_s",
                       "max_wait_s", "overflow_target")


def _form_state(queue: QueueRecord | None, form: FormData | None) -> dict[str, Any]:
    """What the queue form shows: what was sent (the page came back with an error), else
    the queue's values, else a new queue's defaults."""
    if form is not None:
        values = {field: str(form.get(field) or "") for field in _FORM_FIELDS}
        chosen = {m for m in form.getlist("members") if isinstance(m, str)}
        penalties = {key.removeprefix("penalty."): str(value) for key, value in form.items()
                     if key.startswith("penalty.")}
    elif queue is not None:
        values = {"name": queue.name, "display_name": queue.display_name,
                  "strategy": queue.strategy.value,
                  "ring_timeout_s": str(queue.ring_timeout_s),
                  "wrap_up_s": str(queue.wrap_up_s),
                  "max_wait_s": "" if queue.max_wait_s is None else str(queue.max_wait_s),
                  "overflow_target": queue.overflow_target or ""}
        chosen = {m.username for m in queue.members}
        penalties = {m.username: str(m.penalty) for m in queue.members}
    else:
        values = {"name": "", "display_name": "", "strategy": Strategy.longest_idle.value,
                  "ring_timeout_s": str(DEFAULT_RING_TIMEOUT_S),
                  "wrap_up_s": str(DEFAULT_WRAP_UP_S), "max_wait_s": "",
                  "overflow_target": ""}
        chosen, penalties = set(), {}
    return {"values": values, "chosen": chosen, "penalties": penalties}


T = TypeVar("T")
# A change made as the acting user from the request's client address.
Change = Callable[[UserRecord, str | None], Awaitable[T]]


class _Missing(Exception):
    """The queue the path names does not exist (answered 404)."""


class QueuesAdmin:
    def __init__(self, services: AdminServices) -> None:
        self._services = services

    @property
    def _queues(self) -> QueueService:
        return self._services.queues

    async def _queue(self, name: str) -> QueueRecord | None:
        try:
            return await self._queues.get(name)
        except QueueError:
            return None

    # -- JSON API ------------------------------------------------------------------------

    @documented(responses={"200": {"description": "Every queue with its members; "
                                                  "\"waiting\" is null (no live counts yet)"}})
    async def api_list(self, request: Request) -> Response:
        """List queues (队列)."""
        queues = await self._queues.list_queues()
        return JSONResponse({"queues": [queue_json(queue) for queue in queues]})

    @documented(responses={"404": {"description": "No such queue"}})
    async def api_get(self, request: Request) -> Response:
        """One queue with its members."""
        queue = await self._queue(request.path_params["name"])
        if queue is None:
            return not_found(request, "queues.not_found")
        return JSONResponse(queue_json(queue))

    @documented(request_body={"type": "object", "required": ["name", "display_name"],
                              "properties": _QUEUE_PROPERTIES},
                responses={"201": {"description": "Created"}, "400": _REFUSED})
    async def api_create(self, request: Request) -> Response:
        """Create a queue: strategy longest_idle, ring timeout 15 s and wrap-up 30 s unless
        given; members are usernames (or objects with a penalty)."""
        async def create(actor: UserRecord, source: str | None) -> QueueRecord:
            data = await json_object(request)
            name = data.get("name")
            if not isinstance(name, str):
                raise QueueError("bad_name")
            return await self._queues.create(actor, name, settings_of(data, None),
                                             members_of(data.get("members", [])),
                                             source_ip=source)
        return await self._api(request, create,
                               lambda queue: JSONResponse(queue_json(queue), status_code=201))

    @documented(request_body={"type": "object", "properties": _QUEUE_PROPERTIES},
                responses={"400": _REFUSED, "404": {"description": "No such queue"}})
    async def api_update(self, request: Request) -> Response:
        """Change a queue: fields left out keep their values; ``members``, when given,
        is the whole new set. The name cannot change."""
        async def update(actor: UserRecord, source: str | None) -> QueueRecord:
            name, current = request.path_params["name"], await self._found(request)
            data = await json_object(request)
            if data.get("name", name) != name:
                raise BadInput.of("queues.error.name_fixed")
            members = members_of(data["members"]) if "members" in data else None
            return await self._queues.update(actor, name, settings_of(data, current),
                                             members, source_ip=source)
        return await self._api(request, update, lambda queue: JSONResponse(queue_json(queue)))

    @documented(responses={"204": {"description": "Deleted with its members"},
                           "404": {"description": "No such queue"}})
    async def api_delete(self, request: Request) -> Response:
        """Delete a queue."""
        async def delete(actor: UserRecord, source: str | None) -> None:
            await self._found(request)
            await self._queues.delete(actor, request.path_params["name"], source_ip=source)
        return await self._api(request, delete, lambda _: Response(status_code=204))

    async def _found(self, request: Request) -> QueueRecord:
        """The queue the path names; ``_Missing`` (a 404) if there is none."""
        queue = await self._queue(request.path_params["name"])
        if queue is None:
            raise _Missing
        return queue

    async def _act(self, request: Request, change: Change[T]) -> T:
        actor = await acting_user(request, self._services)
        if actor is None:
            raise PermissionDenied("the acting user no longer exists", CAPABILITY)
        return await change(actor, source_ip(request))

    async def _api(self, request: Request, change: Change[T],
                   answer: Callable[[T], Response]) -> Response:
        try:
            return answer(await self._act(request, change))
        except _Missing:
            return not_found(request, "queues.not_found")
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return invalid(request, refusal(request, exc))

    # -- pages ---------------------------------------------------------------------------

    async def _page(self, request: Request, template: str, context: dict[str, Any],
                    queue: QueueRecord | None, form: FormData | None,
                    error: str | None) -> Response:
        users = [user for user in await self._services.users.list_users()
                 if not user.disabled]
        return render(request, template, {
            **context, **_form_state(queue, form), "users": users,
            "strategies": [s.value for s in Strategy], "limits": LIMITS, "error": error,
        }, status_code=400 if error else 200)

    async def page_list(self, request: Request, *, error: str | None = None,
                        form: FormData | None = None) -> Response:
        queues = await self._queues.list_queues()
        return await self._page(request, "admin/queues.html", {"queues": queues},
                                None, form, error)

    async def page_view(self, request: Request, *, error: str | None = None,
                        form: FormData | None = None) -> Response:
        queue = await self._queue(request.path_params["name"])
        if queue is None:
            return not_found(request, "queues.not_found")
        return await self._page(request, "admin/queue.html", {"queue": queue},
                                queue, form, error)

    async def page_create(self, request: Request) -> Response:
        form = await request.form()

        async def create(actor: UserRecord, source: str | None) -> QueueRecord:
            return await self._queues.create(actor, str(form.get("name") or ""),
                                             settings_of(form, None), _form_members(form),
                                             source_ip=source)
        return await self._page_change(
            request, create, lambda queue: f"/admin/queues/{queue.name}", "admin.saved",
            lambda error: self.page_list(request, error=error, form=form))

    async def page_update(self, request: Request) -> Response:
        form = await request.form()

        async def update(actor: UserRecord, source: str | None) -> QueueRecord:
            current = await self._found(request)
            return await self._queues.update(actor, current.name, settings_of(form, current),
                                             _form_members(form), source_ip=source)
        return await self._page_change(
            request, update, lambda queue: f"/admin/queues/{queue.name}", "admin.saved",
            lambda error: self.page_view(request, error=error, form=form))

    async def page_delete(self, request: Request) -> Response:
        async def delete(actor: UserRecord, source: str | None) -> None:
            await self._found(request)
            await self._queues.delete(actor, request.path_params["name"], source_ip=source)
        return await self._page_change(request, delete, lambda _: "/admin/queues",
                                       "queues.deleted",
                                       lambda error: self.page_view(request, error=error))

    async def _page_change(self, request: Request, change: Change[T],
                           done: Callable[[T], str], saved_key: str,
                           refused: Callable[[str], Awaitable[Response]]) -> Response:
        try:
            result = await self._act(request, change)
        except _Missing:
            return not_found(request, "queues.not_found")
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return await refused(refusal(request, exc))
        flash(request, translate(language_of(request), saved_key))
        return RedirectResponse(done(result), status_code=303)


def routes(services: AdminServices) -> list[BaseRoute]:
    admin = QueuesAdmin(services)
    guard = requires(CAPABILITY)
    queue = "{name:str}"
    return [
        Route(f"{API}/queues", guard(admin.api_list), methods=["GET"]),
        Route(f"{API}/queues", guard(admin.api_create), methods=["POST"]),
        Route(f"{API}/queues/{queue}", guard(admin.api_get), methods=["GET"]),
        Route(f"{API}/queues/{queue}", guard(admin.api_update), methods=["PUT"]),
        Route(f"{API}/queues/{queue}", guard(admin.api_delete), methods=["DELETE"]),
        Route("/admin/queues", guard(admin.page_list), methods=["GET"]),
        Route("/admin/queues", guard(admin.page_create), methods=["POST"]),
        Route(f"/admin/queues/{queue}", guard(admin.page_view), methods=["GET"]),
        Route(f"/admin/queues/{queue}", guard(admin.page_update), methods=["POST"]),
        Route(f"/admin/queues/{queue}/delete", guard(admin.page_delete), methods=["POST"]),
    ]
