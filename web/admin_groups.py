"""Agent groups 分组 (groups.manage): list with member counts, create, rename, delete,
add and remove members. apps.agent_groups checks and audits every change (membership
carries the group's grants, so it also demands those)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.agent_groups import GroupMember, GroupRecord
from apps.permissions import AccessError, PermissionDenied
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
    text_field,
)
from web.auth import requires
from web.i18n import translate
from web.inputs import BadInput, id_field, json_object
from web.openapi import documented
from web.templating import NavItem, flash, language_of, render

CAPABILITY = "groups.manage"
NAV = NavItem("/admin/groups", "nav.admin_groups", CAPABILITY)


def group_json(group: GroupRecord) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "description": group.description,
            "member_count": group.member_count}


def member_json(member: GroupMember) -> dict[str, Any]:
    return {"user_id": member.user_id, "username": member.username, "name": member.name}


# What a change does, given the actor, the group, the request's data and its client
# address (for the audit log); raises AccessError (PermissionDenied included) or BadInput.
Change = Callable[[UserRecord, int, Mapping[str, Any], str | None], Awaitable[Any]]


class GroupsAdmin:
    def __init__(self, services: AdminServices) -> None:
        self._services = services
        self._changes: dict[str, Change] = {
            "rename": self._rename,
            "delete": self._delete,
            "add_member": self._add_member,
            "remove_member": self._remove_member,
        }

    async def _delete(self, actor: UserRecord, group_id: int, _: Mapping[str, Any],
                      source: str | None) -> None:
        await self._services.groups.delete(actor, group_id, source_ip=source)

    async def _add_member(self, actor: UserRecord, group_id: int,
                          data: Mapping[str, Any], source: str | None) -> bool:
        return await self._services.groups.add_member(actor, group_id,
                                                      id_field(data, "user_id"),
                                                      source_ip=source)

    async def _remove_member(self, actor: UserRecord, group_id: int,
                             data: Mapping[str, Any], source: str | None) -> bool:
        return await self._services.groups.remove_member(actor, group_id,
                                                         id_field(data, "user_id"),
                                                         source_ip=source)

    async def _rename(self, actor: UserRecord, group_id: int,
                      data: Mapping[str, Any], source: str | None) -> GroupRecord:
        group = await self._services.groups.get(group_id)
        if "name" in data:
            name = text_field(data, "name", required=True)
            assert name is not None
            group = await self._services.groups.rename(actor, group_id, name,
                                                       source_ip=source)
        if "description" in data:
            group = await self._services.groups.set_description(
                actor, group_id, text_field(data, "description"), source_ip=source)
        return group

    async def _group(self, group_id: int) -> GroupRecord | None:
        try:
            return await self._services.groups.get(group_id)
        except AccessError:
            return None

    async def _run(self, request: Request, what: str, group_id: int,
                   data: Mapping[str, Any]) -> Any:
        actor = await acting_user(request, self._services)
        if actor is None:
            raise PermissionDenied("the acting user no longer exists", "groups.manage")
        return await self._changes[what](actor, group_id, data, source_ip(request))

    async def _api_change(self, request: Request, what: str, data: Mapping[str, Any],
                          answer: Callable[[Any], Response]) -> Response:
        group_id: int = request.path_params["group_id"]
        if await self._group(group_id) is None:
            return not_found(request, "groups.not_found")
        try:
            result = await self._run(request, what, group_id, data)
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return invalid(request, reason(request, exc))
        return answer(result)

    # -- JSON API ------------------------------------------------------------------------

    @documented(responses={"200": {"description": "Every agent group with its member count"}})
    async def api_list(self, request: Request) -> Response:
        """List agent groups (分组)."""
        groups = await self._services.groups.list_groups()
        return JSONResponse({"groups": [group_json(group) for group in groups]})

    @documented(request_body={"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "description": {"type": ["string", "null"]}}},
                responses={"201": {"description": "Created"},
                           "400": {"description": "Refused: the message says why"}})
    async def api_create(self, request: Request) -> Response:
        """Create an agent group."""
        actor = await acting_user(request, self._services)
        if actor is None:
            return forbidden(request)
        try:
            data = await json_object(request)
            name = text_field(data, "name", required=True)
            assert name is not None
            group = await self._services.groups.create(actor, name,
                                                       text_field(data, "description"),
                                                       source_ip=source_ip(request))
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return invalid(request, reason(request, exc))
        return JSONResponse(group_json(group), status_code=201)

    @documented(responses={"404": {"description": "No such agent group"}})
    async def api_get(self, request: Request) -> Response:
        """One agent group with its members."""
        group_id: int = request.path_params["group_id"]
        group = await self._group(group_id)
        if group is None:
            return not_found(request, "groups.not_found")
        members = await self._services.groups.members(group_id)
        return JSONResponse({**group_json(group),
                             "members": [member_json(member) for member in members]})

    @documented(request_body={"type": "object", "properties": {
                    "name": {"type": "string"}, "description": {"type": ["string", "null"]}}},
                responses={"400": {"description": "Refused: the message says why"},
                           "404": {"description": "No such agent group"}})
    async def api_update(self, request: Request) -> Response:
        """Rename an agent group or change its description."""
        try:
            data = await json_object(request)
        except BadInput as exc:
            return invalid(request, reason(request, exc))
        return await self._api_change(request, "rename", data,
                                      lambda group: JSONResponse(group_json(group)))

    @documented(responses={"204": {"description": "Deleted with its memberships and grants"},
                           "404": {"description": "No such agent group"}})
    async def api_delete(self, request: Request) -> Response:
        """Delete an agent group."""
        return await self._api_change(request, "delete", {},
                                      lambda _: Response(status_code=204))

    @documented(request_body={"type": "object", "required": ["user_id"],
                              "properties": {"user_id": {"type": "integer"}}},
                responses={"400": {"description": "Refused: the message says why"},
                           "404": {"description": "No such agent group"}})
    async def api_add_member(self, request: Request) -> Response:
        """Add a user to an agent group; ``added`` is false if they already were in it."""
        try:
            data = await json_object(request)
        except BadInput as exc:
            return invalid(request, reason(request, exc))
        return await self._api_change(request, "add_member", data,
                                      lambda added: JSONResponse({"added": added}))

    @documented(responses={"404": {"description": "No such agent group"}})
    async def api_remove_member(self, request: Request) -> Response:
        """Take a user out of an agent group; ``removed`` is false if they were not in it."""
        return await self._api_change(
            request, "remove_member", {"user_id": request.path_params["user_id"]},
            lambda removed: JSONResponse({"removed": removed}))

    # -- pages ---------------------------------------------------------------------------

    async def page_list(self, request: Request, *, error: str | None = None) -> Response:
        groups = await self._services.groups.list_groups()
        return render(request, "admin/groups.html", {"groups": groups, "error": error},
                      status_code=400 if error else 200)

    async def page_create(self, request: Request) -> Response:
        form = await request.form()
        actor = await acting_user(request, self._services)
        if actor is None:
            return forbidden(request)
        try:
            name = text_field(form, "name", required=True)
            assert name is not None
            group = await self._services.groups.create(actor, name,
                                                       text_field(form, "description"),
                                                       source_ip=source_ip(request))
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return await self.page_list(request, error=reason(request, exc))
        flash(request, translate(language_of(request), "admin.saved"))
        return RedirectResponse(f"/admin/groups/{group.id}", status_code=303)

    async def page_view(self, request: Request, *, error: str | None = None) -> Response:
        group_id: int = request.path_params["group_id"]
        group = await self._group(group_id)
        if group is None:
            return not_found(request, "groups.not_found")
        members = await self._services.groups.members(group_id)
        in_group = {member.user_id for member in members}
        candidates = [user for user in await self._services.users.list_users()
                      if user.id not in in_group]
        return render(request, "admin/group.html", {
            "group": group, "members": members, "candidates": candidates, "error": error,
        }, status_code=400 if error else 200)

    async def page_rename(self, request: Request) -> Response:
        return await self._page_change(request, "rename")

    async def page_delete(self, request: Request) -> Response:
        return await self._page_change(request, "delete", done="/admin/groups")

    async def page_add_member(self, request: Request) -> Response:
        return await self._page_change(request, "add_member")

    async def page_remove_member(self, request: Request) -> Response:
        return await self._page_change(request, "remove_member")

    async def _page_change(self, request: Request, what: str, done: str | None = None
                           ) -> Response:
        group_id: int = request.path_params["group_id"]
        if await self._group(group_id) is None:
            return not_found(request, "groups.not_found")
        form = await request.form()
        data: dict[str, Any] = {key: value for key, value in form.items()
                                if key != "csrf_token"}
        data.update(request.path_params)
        try:
            await self._run(request, what, group_id, data)
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return await self.page_view(request, error=reason(request, exc))
        flash(request, translate(language_of(request),
                                 "groups.deleted" if what == "delete" else "admin.saved"))
        return RedirectResponse(done or f"/admin/groups/{group_id}", status_code=303)


def routes(services: AdminServices) -> list[BaseRoute]:
    admin = GroupsAdmin(services)
    guard = requires(CAPABILITY)
    group = "{group_id:id}"
    member = f"{group}/members/{{user_id:id}}"
    return [
        Route(f"{API}/groups", guard(admin.api_list), methods=["GET"]),
        Route(f"{API}/groups", guard(admin.api_create), methods=["POST"]),
        Route(f"{API}/groups/{group}", guard(admin.api_get), methods=["GET"]),
        Route(f"{API}/groups/{group}", guard(admin.api_update), methods=["PATCH"]),
        Route(f"{API}/groups/{group}", guard(admin.api_delete), methods=["DELETE"]),
        Route(f"{API}/groups/{group}/members", guard(admin.api_add_member), methods=["POST"]),
        Route(f"{API}/groups/{member}", guard(admin.api_remove_member), methods=["DELETE"]),
        Route("/admin/groups", guard(admin.page_list), methods=["GET"]),
        Route("/admin/groups", guard(admin.page_create), methods=["POST"]),
        Route(f"/admin/groups/{group}", guard(admin.page_view), methods=["GET"]),
        Route(f"/admin/groups/{group}", guard(admin.page_rename), methods=["POST"]),
        Route(f"/admin/groups/{group}/delete", guard(admin.page_delete), methods=["POST"]),
        Route(f"/admin/groups/{group}/members", guard(admin.page_add_member),
              methods=["POST"]),
        Route(f"/admin/groups/{member}/remove", guard(admin.page_remove_member),
              methods=["POST"]),
    ]
