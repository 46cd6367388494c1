"""User accounts (users.manage): list, create, edit name/role/extension, reset password,
disable and enable, end a user's sessions.

Nobody manages a user or hands out a role that may do more than they may: an actor
holding ``users.manage`` through a group grant cannot make anyone (themselves included)
an administrator, nor take over an administrator's account by resetting its password.
Disabling an account (staff who left) stops its web login, its open sessions and its
phone at once and keeps its history; nobody disables their own account. A password reset
and a role change end the user's sessions too (apps.UserService does), and "end this
user's sessions" ends them alone (a lost laptop).
Every change is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.permissions import ROLE_DEFAULTS
from apps.users import Role, UserError, UserRecord
from web.admin_common import (
    API,
    AdminServices,
    acting_user,
    forbidden,
    invalid,
    not_found,
    reason,
    role_choices,
    source_ip,
    text_field,
    timestamp,
)
from web.auth import requires, services_of
from web.i18n import add_messages, role_label, translate
from web.inputs import BadInput, json_object
from web.openapi import documented
from web.templating import NavItem, flash, language_of, render

CAPABILITY = "users.manage"
NAV = NavItem("/admin/users", "nav.admin_users", CAPABILITY)

USER_MESSAGES: dict[str, dict[str, str]] = {
    "users.disabled": {"zh": "已停用", "en": "Disabled"},
    "users.phone": {"zh": "话机", "en": "Phone"},
    "users.created": {"zh": "用户已创建", "en": "User created"},
    "users.registered": {"zh": "已注册", "en": "Registered"},
    "users.unregistered": {"zh": "未注册", "en": "Not registered"},
    "users.no_phone": {"zh": "无分机", "en": "No extension"},
    "users.phone_unknown": {"zh": "未知", "en": "Unknown"},
    "users.active": {"zh": "正常", "en": "Active"},
    "users.status": {"zh": "状态", "en": "Status"},
    "users.disable": {"zh": "停用账号", "en": "Disable account"},
    "users.enable": {"zh": "启用账号", "en": "Enable account"},
    "users.disable_hint": {
        "zh": "停用后该用户无法登录网页、话机无法注册，历史记录保留。",
        "en": "A disabled user can neither log in nor register a phone; "
              "their history is kept.",
    },
    "users.cannot_disable_self": {
        "zh": "不能停用自己的账号", "en": "You cannot disable your own account",
    },
    "users.sessions": {"zh": "登录会话", "en": "Sessions"},
    "users.live_sessions": {
        "zh": "当前登录会话：{count} 个", "en": "Open sessions: {count}",
    },
    "users.end_sessions": {"zh": "结束该用户的所有会话", "en": "End this user's sessions"},
    "users.end_sessions_hint": {
        "zh": "该用户在所有浏览器和设备上立即退出登录。"
              "重置密码、更改角色或停用账号也会结束其会话。",
        "en": "Logs the user out in every browser and on every device at once. Resetting "
              "the password, changing the role or disabling the account ends them too.",
    },
}


add_messages("user admin", USER_MESSAGES)

_USER_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "role": {"type": "string", "enum": [role.value for role in Role]},
        "extension": {"type": ["string", "null"], "description": "2 to 8 digits"},
        "password": {"type": "string", "minLength": 8},
        "disabled": {"type": "boolean",
                     "description": "true: no web login, sessions end, phone refused"},
    },
}


_FORM_FLAGS = {"true": True, "false": False}


class Refused(Exception):
    """The actor may not manage this user or hand out this role."""


class SelfDisable(Exception):
    """The actor tried to disable their own account (nobody would be left to undo it)."""


def phone_registered(user: UserRecord, registered: Set[str] | None) -> bool | None:
    """Whether the user's phone is registered now: False without an extension, None when
    the registrar cannot be asked (no switch in this process)."""
    if user.extension is None:
        return False
    return None if registered is None else user.extension in registered


def user_json(lang: str, user: UserRecord, registered: Set[str] | None) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "role": user.role.value,
        "role_label": role_label(lang, user.role.value),
        "extension": user.extension,
        "created_at": timestamp(user.created_at),
        "disabled": user.disabled,
        "registered": phone_registered(user, registered),
    }


def _role(data: Mapping[str, Any], default: Role | None = None) -> Role:
    value = text_field(data, "role", required=default is None)
    if value is None:
        assert default is not None
        return default
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise BadInput(f"unknown role '{value}' (choose from {choices})") from None


class UsersAdmin:
    def __init__(self, services: AdminServices) -> None:
        self._services = services

    # -- the operations, shared by the API and the pages --------------------------------

    async def _check_may_manage(
        self, request: Request, target: UserRecord | None, role: Role
    ) -> UserRecord:
        actor = await acting_user(request, self._services)
        if actor is None:
            raise Refused
        held: frozenset[str] = await self._services.permissions.effective(actor.id)
        needed = set(ROLE_DEFAULTS[role])
        if target is not None:
            # A disabled target holds nothing now; its role still says what it would hold
            # once enabled, so a lesser actor cannot enable (or edit) an administrator.
            needed |= ROLE_DEFAULTS[target.role]
            needed |= await self._services.permissions.effective(target.id)
        if not needed <= held:
            raise Refused
        return actor

    async def _create(self, request: Request, data: Mapping[str, Any]) -> UserRecord:
        username = text_field(data, "username", required=True)
        password = text_field(data, "password", required=True)
        assert username is not None and password is not None
        role = _role(data)
        actor = await self._check_may_manage(request, None, role)
        user = await self._services.users.add_user(
            username.strip(), password, extension=text_field(data, "extension"), role=role,
            name=text_field(data, "name"),
        )
        await self._audit(request, actor, "user.create", user,
                          {"role": user.role.value, "extension": user.extension})
        return user

    async def _update(
        self, request: Request, user: UserRecord, data: Mapping[str, Any]
    ) -> UserRecord:
        if "disabled" in data:
            disabled = data["disabled"]
            if not isinstance(disabled, bool):
                raise BadInput("'disabled' must be true or false")
            user = await self._set_disabled(request, user, disabled)
            if data.keys() == {"disabled"}:
                return user
        role = _role(data, user.role)
        actor = await self._check_may_manage(request, user, role)
        updated = await self._services.users.update_user(
            user.username,
            name=text_field(data, "name") if "name" in data else user.name,
            role=role,
            extension=text_field(data, "extension") if "extension" in data else user.extension,
            password=text_field(data, "password"),
        )
        before = {"name": user.name, "role": user.role.value, "extension": user.extension}
        after = {"name": updated.name, "role": updated.role.value,
                 "extension": updated.extension}
        changed = {key: {"before": before[key], "after": after[key]}
                   for key in before if before[key] != after[key]}
        if changed or text_field(data, "password") is not None:
            await self._audit(request, actor, "user.update", updated, {
                **changed, "password_changed": text_field(data, "password") is not None})
        services_of(request).hub.sessions_ended(user.id)  # a role or password change did
        return updated

    async def _set_disabled(
        self, request: Request, user: UserRecord, disabled: bool
    ) -> UserRecord:
        actor = await self._check_may_manage(request, user, user.role)
        if disabled and actor.id == user.id:
            raise SelfDisable
        if user.disabled == disabled:
            return user
        updated = await self._services.users.set_disabled(user.username, disabled)
        services_of(request).hub.sessions_ended(user.id)
        await self._audit(request, actor, "user.disable" if disabled else "user.enable",
                          updated, {})
        return updated

    async def _reset_password(
        self, request: Request, user: UserRecord, data: Mapping[str, Any]
    ) -> None:
        password = text_field(data, "password", required=True)
        assert password is not None
        actor = await self._check_may_manage(request, user, user.role)
        await self._services.users.set_password(user.username, password)
        services_of(request).hub.sessions_ended(user.id)
        await self._audit(request, actor, "user.password_reset", user, {})

    async def _end_sessions(
        self, request: Request, user: UserRecord, data: Mapping[str, Any]
    ) -> int:
        actor = await self._check_may_manage(request, user, user.role)
        ended = await services_of(request).sessions.end_all(user.id)
        services_of(request).hub.sessions_ended(user.id)
        await self._audit(request, actor, "user.sessions_end", user, {"sessions": ended})
        return ended

    async def _audit(self, request: Request, actor: UserRecord, action: str,
                     user: UserRecord, detail: Mapping[str, Any]) -> None:
        await self._services.audit.record(
            action, actor_id=actor.id, actor=actor.username, target=f"user:{user.username}",
            detail=detail, source_ip=source_ip(request))

    def _registered(self) -> Set[str] | None:
        ask = self._services.registered_extensions
        return None if ask is None else ask()

    async def _user(self, request: Request) -> UserRecord | None:
        return await self._services.users.get_user(request.path_params["user_id"])

    # -- JSON API ------------------------------------------------------------------------

    @documented(responses={"200": {"description": "Every user, by username"}})
    async def api_list(self, request: Request) -> Response:
        """List users, each with ``registered``: whether their phone (extension) is
        registered with the switch now (false without an extension)."""
        lang = language_of(request)
        users = await self._services.users.list_users()
        registered = self._registered()
        return JSONResponse({"users": [user_json(lang, user, registered) for user in users]})

    @documented(request_body={**_USER_BODY, "required": ["username", "role", "password"]},
                responses={"201": {"description": "Created"},
                           "400": {"description": "Refused: the message says why"}})
    async def api_create(self, request: Request) -> Response:
        """Create a user; with an extension, also a SIP phone account."""
        try:
            user = await self._create(request, await json_object(request))
        except Refused:
            return forbidden(request)
        except (BadInput, UserError) as exc:
            return invalid(request, reason(request, exc))
        return JSONResponse(user_json(language_of(request), user, self._registered()),
                            status_code=201)

    @documented(responses={"404": {"description": "No such user"}})
    async def api_get(self, request: Request) -> Response:
        """One user."""
        user = await self._user(request)
        if user is None:
            return not_found(request, "users.not_found")
        return JSONResponse(user_json(language_of(request), user, self._registered()))

    @documented(request_body=_USER_BODY,
                responses={"400": {"description": "Refused: the message says why"},
                           "404": {"description": "No such user"}})
    async def api_update(self, request: Request) -> Response:
        """Change a user's name, role or extension (a new extension needs a password), or
        disable or enable the account (``disabled``; not one's own, and not anyone above).

        Fields left out keep their values; null clears name or extension."""
        user = await self._user(request)
        if user is None:
            return not_found(request, "users.not_found")
        try:
            updated = await self._update(request, user, await json_object(request))
        except Refused:
            return forbidden(request)
        except SelfDisable:
            return invalid(request, translate(language_of(request), "users.cannot_disable_self"))
        except (BadInput, UserError) as exc:
            return invalid(request, reason(request, exc))
        return JSONResponse(user_json(language_of(request), updated, self._registered()))

    @documented(request_body={"type": "object", "required": ["password"],
                              "properties": {"password": {"type": "string", "minLength": 8}}},
                responses={"204": {"description": "Password replaced"},
                           "400": {"description": "Refused: the message says why"},
                           "404": {"description": "No such user"}})
    async def api_password(self, request: Request) -> Response:
        """Reset a user's password (web login and, with an extension, the phone's)."""
        user = await self._user(request)
        if user is None:
            return not_found(request, "users.not_found")
        try:
            await self._reset_password(request, user, await json_object(request))
        except Refused:
            return forbidden(request)
        except (BadInput, UserError) as exc:
            return invalid(request, reason(request, exc))
        return Response(status_code=204)

    @documented(responses={"200": {"description": "The user's sessions ended: how many"},
                           "404": {"description": "No such user"}})
    async def api_end_sessions(self, request: Request) -> Response:
        """End every session of a user at once (a lost laptop, a shared computer): their
        browsers are logged out on the next request and their live sockets close."""
        user = await self._user(request)
        if user is None:
            return not_found(request, "users.not_found")
        try:
            ended = await self._end_sessions(request, user, {})
        except Refused:
            return forbidden(request)
        return JSONResponse({"ended": ended})

    # -- pages ---------------------------------------------------------------------------

    async def page_list(self, request: Request, *, error: str | None = None,
                        form: Mapping[str, Any] | None = None) -> Response:
        users = await self._services.users.list_users()
        registered = self._registered()
        return render(request, "admin/users.html", {
            "users": [(user, phone_registered(user, registered)) for user in users],
            "roles": role_choices(request), "error": error,
            "form": dict(form or {}),
        }, status_code=400 if error else 200)

    async def page_create(self, request: Request) -> Response:
        form = await request.form()
        data = {key: value for key, value in form.items() if key != "csrf_token"}
        try:
            await self._create(request, data)
        except Refused:
            return await self.page_list(request, form=data, error=self._refusal(request))
        except (BadInput, UserError) as exc:
            return await self.page_list(request, form=data, error=reason(request, exc))
        flash(request, translate(language_of(request), "users.created"))
        return RedirectResponse("/admin/users", status_code=303)

    async def page_edit(self, request: Request, *, error: str | None = None,
                        user: UserRecord | None = None) -> Response:
        user = user or await self._user(request)
        if user is None:
            return not_found(request, "users.not_found")
        return render(request, "admin/user_edit.html", {
            "edited": user, "roles": role_choices(request), "error": error,
            "live_sessions": await services_of(request).sessions.count_live(user.id),
        }, status_code=400 if error else 200)

    async def page_update(self, request: Request) -> Response:
        return await self._page_change(request, self._update_from_form)

    async def page_password(self, request: Request) -> Response:
        return await self._page_change(request, self._reset_password)

    async def page_end_sessions(self, request: Request) -> Response:
        return await self._page_change(request, self._end_sessions)

    async def _update_from_form(self, request: Request, user: UserRecord,
                                data: Mapping[str, Any]) -> UserRecord:
        # The disable/enable buttons post only ``disabled``, as text.
        if "disabled" in data:
            flag = _FORM_FLAGS.get(str(data["disabled"]))
            if flag is None:
                raise BadInput("'disabled' must be true or false")
            data = {**data, "disabled": flag}
        return await self._update(request, user, data)

    async def _page_change(self, request: Request, change: Any) -> Response:
        user = await self._user(request)
        if user is None:
            return not_found(request, "users.not_found")
        form = await request.form()
        data = {key: value for key, value in form.items() if key != "csrf_token"}
        try:
            await change(request, user, data)
        except Refused:
            return await self.page_edit(request, user=user, error=self._refusal(request))
        except SelfDisable:
            return await self.page_edit(request, user=user, error=translate(
                language_of(request), "users.cannot_disable_self"))
        except (BadInput, UserError) as exc:
            return await self.page_edit(request, user=user, error=reason(request, exc))
        flash(request, translate(language_of(request), "admin.saved"))
        return RedirectResponse(f"/admin/users/{user.id}", status_code=303)

    @staticmethod
    def _refusal(request: Request) -> str:
        return translate(language_of(request), "users.role_above_you")


def routes(services: AdminServices) -> list[BaseRoute]:
    admin = UsersAdmin(services)
    guard = requires(CAPABILITY)
    user = "{user_id:id}"
    return [
        Route(f"{API}/users", guard(admin.api_list), methods=["GET"]),
        Route(f"{API}/users", guard(admin.api_create), methods=["POST"]),
        Route(f"{API}/users/{user}", guard(admin.api_get), methods=["GET"]),
        Route(f"{API}/users/{user}", guard(admin.api_update), methods=["PATCH"]),
        Route(f"{API}/users/{user}/password", guard(admin.api_password), methods=["POST"]),
        Route("/admin/users", guard(admin.page_list), methods=["GET"]),
        Route("/admin/users", guard(admin.page_create), methods=["POST"]),
        Route(f"/admin/users/{user}", guard(admin.page_edit), methods=["GET"]),
        Route(f"/admin/users/{user}", guard(admin.page_update), methods=["POST"]),
        Route(f"/admin/users/{user}/password", guard(admin.page_password), methods=["POST"]),
        Route(f"{API}/users/{user}/sessions", guard(admin.api_end_sessions),
              methods=["DELETE"]),
        Route(f"/admin/users/{user}/sessions/end", guard(admin.page_end_sessions),
              methods=["POST"]),
    ]
