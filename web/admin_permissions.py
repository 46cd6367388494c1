"""Permissions per agent group (permissions.manage; the service manager's page): for each
capability that is offered (apps.permissions.OFFERED: those whose features are built),
what every role has by default and whether the group grants it, revokes it or leaves it
to the role. The whole matrix is saved in one action (one form, one ``PUT``), which
apps.permissions checks (nobody grants or revokes what they do not hold themselves) and
audits as one entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.agent_groups import GroupRecord
from apps.permissions import (
    BUILT,
    CAPABILITIES,
    OFFERED,
    ROLE_DEFAULTS,
    AccessError,
    Capability,
    PermissionDenied,
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
    source_ip,
    text_field,
)
from web.admin_groups import group_json
from web.auth import requires
from web.i18n import add_messages, role_label, translate
from web.inputs import BadInput, json_object
from web.openapi import documented
from web.templating import NavItem, flash, language_of, render

CAPABILITY = "permissions.manage"
NAV = NavItem("/admin/permissions", "nav.admin_permissions", CAPABILITY)

# A group's setting of one capability: the stored override (None: none stored).
STATES: Mapping[str, bool | None] = {"default": None, "granted": True, "revoked": False}
STATE_NAMES: Mapping[bool | None, str] = {value: name for name, value in STATES.items()}
FIELD_PREFIX = "cap:"  # the matrix form's select of capability X is named "cap:X"

PERMISSION_MESSAGES: dict[str, dict[str, str]] = {
    "permissions.save": {"zh": "保存全部更改", "en": "Save all changes"},
    "permissions.saved": {
        "zh": "已保存：{count} 项权限已更改", "en": "Saved: {count} changed"},
    "permissions.unchanged": {"zh": "已保存：没有更改", "en": "Saved: nothing changed"},
    "permissions.not_offered": {
        "zh": "权限“{name}”对应的功能尚未上线，不能设置",
        "en": "'{name}' belongs to a feature that is not built yet and cannot be set"},
    "permissions.unknown": {"zh": "未知的权限“{name}”", "en": "unknown capability '{name}'"},
    "permissions.bad_state": {
        "zh": "“{name}”的设置必须是 default、granted 或 revoked 之一",
        "en": "the setting of '{name}' must be one of default, granted, revoked"},
    "permissions.missing": {
        "zh": "整张权限表必须包含每一项权限，缺少：{names}",
        "en": "the matrix must set every capability; missing: {names}"},
    "permissions.not_a_matrix": {
        "zh": "“capabilities”必须是“权限名: 设置”的对象",
        "en": "'capabilities' must be an object of capability name to setting"},
}

add_messages("permission admin", PERMISSION_MESSAGES)


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
        # up front instead of offering a control that can only fail.
        "changeable": capability.name in held,
    }


def offered(name: str) -> str:
    """``name`` if the matrix offers it; BadInput (not built, or unknown) if not."""
    if name in BUILT:
        return name
    if name in CAPABILITIES:
        raise BadInput.of("permissions.not_offered", name=name)
    raise BadInput.of("permissions.unknown", name=name)


def wanted_matrix(states: Mapping[str, Any]) -> dict[str, bool | None]:
    """The settings of a whole matrix (capability name to state name), checked: every
    offered capability once, nothing else, each a known state."""
    wanted: dict[str, bool | None] = {}
    for name, state in states.items():
        if not isinstance(state, str) or state not in STATES:
            raise BadInput.of("permissions.bad_state", name=name)
        wanted[offered(name)] = STATES[state]
    missing = [c.name for c in OFFERED if c.name not in wanted]
    if missing:
        raise BadInput.of("permissions.missing", names=", ".join(missing))
    return wanted


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
                for capability in OFFERED]

    async def _actor(self, request: Request) -> UserRecord:
        actor = await acting_user(request, self._services)
        if actor is None:
            raise PermissionDenied("the acting user no longer exists", CAPABILITY)
        return actor

    async def _save(self, request: Request, group_id: int,
                    wanted: Mapping[str, bool | None]) -> dict[str, bool | None]:
        """Store the matrix in one change (one audit entry); what changed."""
        return await self._services.permissions.set_overrides(
            await self._actor(request), group_id, wanted, source_ip=source_ip(request))

    # -- JSON API ------------------------------------------------------------------------

    @documented(responses={"404": {"description": "No such agent group"}})
    async def api_matrix(self, request: Request) -> Response:
        """An agent group's capabilities: role defaults and the group's grant or revoke.

        Only capabilities whose features are built are listed. ``state`` is default,
        granted or revoked; ``changeable`` is whether the caller may change it (only what
        the caller holds)."""
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

    @documented(request_body={"type": "object", "required": ["capabilities"], "properties": {
                    "capabilities": {
                        "type": "object", "description": "every listed capability's state",
                        "additionalProperties": {"type": "string", "enum": list(STATES)}}}},
                responses={"200": {"description": "Saved: what changed, and the matrix"},
                           "400": {"description": "Refused: the message says why"},
                           "403": {"description": "A change of a capability the caller "
                                                  "lacks; nothing is saved"},
                           "404": {"description": "No such agent group"}})
    async def api_save(self, request: Request) -> Response:
        """Save a group's whole permission matrix in one change (audited once).

        ``capabilities`` names every capability the matrix lists with its state (default,
        granted or revoked); all or nothing."""
        group = await self._group(request.path_params["group_id"])
        if group is None:
            return not_found(request, "groups.not_found")
        try:
            data = await json_object(request)
            states = data.get("capabilities")
            if not isinstance(states, dict):
                raise BadInput.of("permissions.not_a_matrix")
            changed = await self._save(request, group.id, wanted_matrix(states))
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return invalid(request, reason(request, exc))
        return JSONResponse({
            "changed": {name: STATE_NAMES[granted] for name, granted in changed.items()},
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
        if capability not in BUILT:
            key = "permissions.not_offered" if capability in CAPABILITIES else (
                "permissions.unknown")
            return JSONResponse({"error": "not_found", "message": translate(
                language_of(request), key, name=capability)}, status_code=404)
        try:
            data = await json_object(request)
            state = text_field(data, "state", required=True)
            if state is None or state not in STATES:
                raise BadInput(f"state must be one of {', '.join(STATES)}")
            service = self._services.permissions
            change = {"default": service.clear, "granted": service.grant,
                      "revoked": service.revoke}[state]
            changed = await change(await self._actor(request), group.id, capability,
                                   source_ip=source_ip(request))
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
            "field_prefix": FIELD_PREFIX,
            "error": error,
        }, status_code=400 if error else 200)

    async def page_save(self, request: Request) -> Response:
        group = await self._group(request.path_params["group_id"])
        if group is None:
            return not_found(request, "groups.not_found")
        form = await request.form()
        # A capability the user may not change has a disabled select, which the browser
        # does not send: it keeps its setting.
        current = await self._services.permissions.group_overrides(group.id)
        states: dict[str, Any] = {c.name: STATE_NAMES[current.get(c.name)] for c in OFFERED}
        states.update({key.removeprefix(FIELD_PREFIX): value for key, value in form.items()
                       if key.startswith(FIELD_PREFIX)})
        try:
            changed = await self._save(request, group.id, wanted_matrix(states))
        except PermissionDenied:
            return forbidden(request)
        except (AccessError, BadInput) as exc:
            return await self.page_matrix(request, error=reason(request, exc))
        lang = language_of(request)
        flash(request, translate(lang, "permissions.saved", count=len(changed)) if changed
              else translate(lang, "permissions.unchanged"))
        return RedirectResponse(f"/admin/permissions/{group.id}", status_code=303)


def routes(services: AdminServices) -> list[BaseRoute]:
    admin = PermissionsAdmin(services)
    guard = requires(CAPABILITY)
    group = "{group_id:id}"
    return [
        Route(f"{API}/groups/{group}/permissions", guard(admin.api_matrix), methods=["GET"]),
        Route(f"{API}/groups/{group}/permissions", guard(admin.api_save), methods=["PUT"]),
        Route(f"{API}/groups/{group}/permissions/{{capability}}", guard(admin.api_set),
              methods=["PUT"]),
        Route("/admin/permissions", guard(admin.page_groups), methods=["GET"]),
        Route(f"/admin/permissions/{group}", guard(admin.page_matrix), methods=["GET"]),
        Route(f"/admin/permissions/{group}", guard(admin.page_save), methods=["POST"]),
    ]
