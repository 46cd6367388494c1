"""Permissions per agent group (permissions.manage; the service manager's page): for each
capability of the catalogue, what every role has by default and whether the group grants
it, revokes it or leaves it to the role. apps.permissions checks and audits each change
(nobody grants or revokes what they do not hold themselves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.agent_groups import GroupRecord
from apps.permissions import (
    CATALOGUE,
    ROLE_DEFAULTS,
    AccessError,
    Capability,
    PermissionDenied,
    PermissionService,
    UnknownCapability,
)
from apps.users import Role, UserRecord
from web.admin_common import (
    API,
    AdminServices,
    acting_user,
    forbidden,
    invalid,
    not_found,
    reason,
    text_field,
)
from web.admin_groups import group_json
from web.auth import requires
from web.i18n import role_label
from web.inputs import BadInput, json_object
from web.openapi import documented
from web.templating import NavItem, language_of, render

CAPABILITY = "permissions.manage"
NAV = NavItem("/admin/permissions", "nav.admin_permissions", CAPABILITY)

# A group's setting of one capability: the stored override (None: none stored).
STATES: Mapping[str, bool | None] = {"default": None, "granted": True, "revoked": False}
STATE_NAMES: Mapping[bool | None, str] = {value: name for name, value in STATES.items()}


async def _apply(service: PermissionService, actor: UserRecord, group_id: int,
                 capability: str, state: str) -> bool:
    change = {"default": service.clear, "granted": service.grant, "revoked": service.revoke}
    return await change[state](actor, group_id, capability)


def matrix_row(lang: str, capability: Capability, override: bool | None,
               held: frozenset[str]) -> dict[str, Any]:
    return {
        "name": capability.name,
        "label": capability.label(lang),
        "description": capability.description,
        "scope": capability.scope.value,
        "defaults": {role.value: capability.name in ROLE_DEFAULTS[role] for role in Role},
        "state": STATE_NAMES[override],
        # The service refuses changes to what the actor does not hold; the page says so
        # up front instead of offering a button that can only fail.
        "changeable": capability.name in held,
    }


class PermissionsAdmin:
    def __init__(self, services: AdminServices) -> None:
        self._services = services

    async def _group(self, group_id: int) -> GroupRecord | None:
        try:
            return await self._services.groups.get(group_id)
        except AccessError:
            return None

    async def _matrix(self, request: Request, group_id: int) -> list[dict[str, Any]]:
        overrides = await self._services.permissions.group_overrides(group_id)
        held: frozenset[str] = request.state.permissions
        lang = language_of(request)
        return [matrix_row(lang, capability, overrides.get(capability.name), held)
                for capability in CATALOGUE]

    async def _change(self, request: Request, group_id: int, capability: str,
                      state: str | None) -> bool:
        if state is None or state not in STATES:
            raise BadInput(f"state must be one of {', '.join(STATES)}")
        actor = await acting_user(request, self._services)
        if actor is None:
            raise PermissionDenied("the acting user no longer exists", CAPABILITY)
        return await _apply(self._services.permissions, actor, group_id, capability, state)

    # -- JSON API ------------------------------------------------------------------------

    @documented(responses={"404": {"description": "No such agent group"}})
    async def api_matrix(self, request: Request) -> Response:
        """An agent group's capabilities: role defaults and the group's grant or revoke.

        ``state`` is default, granted or revoked; ``changeable`` is whether the caller
        may change it (only what the caller holds)."""
        group = await self._group(request.path_params["group_id"])
        if group is None:
            return not_found(request, "groups.not_found")
        lang = language_of(request)
        return JSONResponse({
            "group": group_json(group),
            "roles": [{"role": role.value, "label": role_label(lang, role.value)}
                      for role in Role],
            "capabilities": await self._matrix(request, group.id),
        })

    @documented(request_body={"type": "object", "required": ["state"], "properties": {
                    "state": {"type": "string", "enum": list(STATES)}}},
                responses={"400": {"description": "Refused: the message says why"},
                           "404": {"description": "No such agent group or capability"}})
    async def api_set(self, request: Request) -> Response:
        """Grant, revoke, or return to the role default one capability for a group."""
        group = await self._group(request.path_params["group_id"])
        if group is None:
            return not_found(request, "groups.not_found")
        capability: str = request.path_params["capability"]
        try:
            data = await json_object(request)
            state = text_field(data, "state", required=True)
            changed = await self._change(request, group.id, capability, state)
        except UnknownCapability as exc:
            return JSONResponse({"error": "not_found", "message": str(exc)}, status_code=404)
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return invalid(request, reason(request, exc))
        return JSONResponse({"capability": capability, "state": state, "changed": changed})

    # -- pages ---------------------------------------------------------------------------

    async def page_groups(self, request: Request) -> Response:
        groups = await self._services.groups.list_groups()
        return render(request, "admin/permissions.html", {"groups": groups})

    async def page_matrix(self, request: Request, *, error: str | None = None) -> Response:
        group = await self._group(request.path_params["group_id"])
        if group is None:
            return not_found(request, "groups.not_found")
        lang = language_of(request)
        return render(request, "admin/permission_matrix.html", {
            "group": group,
            "roles": [(role.value, role_label(lang, role.value)) for role in Role],
            "rows": await self._matrix(request, group.id),
            "states": list(STATES),
            "error": error,
        }, status_code=400 if error else 200)

    async def page_set(self, request: Request) -> Response:
        group = await self._group(request.path_params["group_id"])
        if group is None:
            return not_found(request, "groups.not_found")
        form = await request.form()
        try:
            capability = text_field(form, "capability", required=True)
            assert capability is not None
            await self._change(request, group.id, capability, text_field(form, "state"))
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return await self.page_matrix(request, error=reason(request, exc))
        return RedirectResponse(f"/admin/permissions/{group.id}#cap-{capability}",
                                status_code=303)


def routes(services: AdminServices) -> list[BaseRoute]:
    admin = PermissionsAdmin(services)
    guard = requires(CAPABILITY)
    group = "{group_id:id}"
    return [
        Route(f"{API}/groups/{group}/permissions", guard(admin.api_matrix), methods=["GET"]),
        Route(f"{API}/groups/{group}/permissions/{{capability}}", guard(admin.api_set),
              methods=["PUT"]),
        Route("/admin/permissions", guard(admin.page_groups), methods=["GET"]),
        Route(f"/admin/permissions/{group}", guard(admin.page_matrix), methods=["GET"]),
        Route(f"/admin/permissions/{group}", guard(admin.page_set), methods=["POST"]),
    ]
