"""What the admin pages and API share: their services, their UI strings, the acting
user as the apps services want them, and how service errors are answered.

The admin endpoints are methods of small classes holding ``AdminServices``; each route
wraps its method in ``requires(capability)`` where the route table is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apps.agent_groups import GroupService
from apps.audit import AuditLog
from apps.permissions import PermissionService
from apps.queues import QueueService
from apps.users import Role, UserRecord, UserService
from web.auth import client_ip, error_response
from web.i18n import add_messages, role_label, translate
from web.inputs import BadInput
from web.inputs import reason as reason  # the admin areas' answer to a refusal
from web.templating import language_of, render

API = "/api/v1"


# The extensions whose phones are registered now (the switch's registrar, read-only).
RegisteredExtensions = Callable[[], Set[str]]


@dataclass(frozen=True)
class AdminServices:
    users: UserService
    groups: GroupService
    permissions: PermissionService
    audit: AuditLog
    # None where no switch runs in the process: phones' registration is then unknown.
    registered_extensions: RegisteredExtensions | None = None
    _: KW_ONLY
    queues: QueueService


ADMIN_MESSAGES: dict[str, dict[str, str]] = {
    "nav.admin_users": {"zh": "用户管理", "en": "Users"},
    "nav.admin_groups": {"zh": "分组管理", "en": "Agent groups"},
    "nav.admin_permissions": {"zh": "权限管理", "en": "Permissions"},
    "nav.admin_audit": {"zh": "审计日志", "en": "Audit log"},
    "admin.username": {"zh": "用户名", "en": "Username"},
    "admin.name": {"zh": "姓名", "en": "Name"},
    "admin.role": {"zh": "角色", "en": "Role"},
    "admin.extension": {"zh": "分机号", "en": "Extension"},
    "admin.password": {"zh": "密码", "en": "Password"},
    "admin.new_password": {"zh": "新密码", "en": "New password"},
    "admin.new_password_hint": {
        "zh": "更换分机号时必须设置新密码", "en": "Required when the extension changes",
    },
    "admin.created_at": {"zh": "创建时间", "en": "Created"},
    "admin.actions": {"zh": "操作", "en": "Actions"},
    "admin.edit": {"zh": "编辑", "en": "Edit"},
    "admin.save": {"zh": "保存", "en": "Save"},
    "admin.create": {"zh": "新建", "en": "Create"},
    "admin.delete": {"zh": "删除", "en": "Delete"},
    "admin.back": {"zh": "返回", "en": "Back"},
    "admin.none": {"zh": "无", "en": "None"},
    "admin.saved": {"zh": "已保存", "en": "Saved"},
    "admin.colon": {"zh": "：", "en": ": "},  # between a heading and what it is about
    "users.title": {"zh": "用户管理", "en": "Users"},
    "users.new": {"zh": "新建用户", "en": "New user"},
    "users.edit": {"zh": "编辑用户", "en": "Edit user"},
    "users.reset_password": {"zh": "重置密码", "en": "Reset password"},
    "users.empty": {"zh": "暂无用户", "en": "No users"},
    "users.not_found": {"zh": "用户不存在", "en": "No such user"},
    "users.role_above_you": {
        "zh": "您不能管理权限比您多的用户或角色",
        "en": "You cannot manage a user or role that may do more than you",
    },
    "groups.title": {"zh": "分组管理", "en": "Agent groups"},
    "groups.name": {"zh": "分组名称", "en": "Group name"},
    "groups.description": {"zh": "说明", "en": "Description"},
    "groups.members": {"zh": "成员", "en": "Members"},
    "groups.member_count": {"zh": "成员数", "en": "Members"},
    "groups.new": {"zh": "新建分组", "en": "New group"},
    "groups.add_member": {"zh": "添加成员", "en": "Add member"},
    "groups.remove_member": {"zh": "移除", "en": "Remove"},
    "groups.empty": {"zh": "暂无分组", "en": "No agent groups"},
    "groups.no_members": {"zh": "暂无成员", "en": "No members"},
    "groups.deleted": {"zh": "分组已删除", "en": "Group deleted"},
    "groups.not_found": {"zh": "分组不存在", "en": "No such agent group"},
    "groups.delete_confirm": {
        "zh": "删除分组将同时删除其成员关系和权限设置", "en": "Deleting the group also drops "
        "its memberships and its permission settings",
    },
    "permissions.title": {"zh": "权限管理", "en": "Permissions"},
    "permissions.choose_group": {
        "zh": "选择分组以设置其权限", "en": "Choose an agent group to set its permissions",
    },
    "permissions.capability": {"zh": "权限", "en": "Capability"},
    "permissions.role_defaults": {"zh": "角色默认", "en": "Role defaults"},
    "permissions.group_setting": {"zh": "本分组设置", "en": "This group"},
    "permissions.state.default": {"zh": "按角色默认", "en": "Role default"},
    "permissions.state.granted": {"zh": "授予", "en": "Granted"},
    "permissions.state.revoked": {"zh": "撤销", "en": "Revoked"},
    "permissions.rule": {
        "zh": "撤销优先：成员在任一分组被撤销的权限即不再拥有；系统管理员始终拥有全部权限。",
        "en": "A revoke wins: a capability revoked in any of a member's groups is gone; "
        "administrators always keep everything.",
    },
    "audit.title": {"zh": "审计日志", "en": "Audit log"},
    "audit.at": {"zh": "时间", "en": "Time"},
    "audit.actor": {"zh": "操作人", "en": "Who"},
    "audit.action": {"zh": "动作", "en": "Action"},
    "audit.target": {"zh": "对象", "en": "Target"},
    "audit.detail": {"zh": "详情", "en": "Detail"},
    "audit.source_ip": {"zh": "来源地址", "en": "Source address"},
    "audit.filter": {"zh": "筛选", "en": "Filter"},
    "audit.all_actions": {"zh": "全部", "en": "All"},
    "audit.user": {"zh": "用户", "en": "User"},
    "audit.empty": {"zh": "没有符合条件的记录", "en": "No matching entries"},
}


add_messages("admin", ADMIN_MESSAGES)


async def acting_user(request: Request, services: AdminServices) -> UserRecord | None:
    """The logged-in user as the apps services take an actor: read afresh, so the role
    is today's and not the one in the session cookie."""
    return await services.users.get_user(request.state.user.id)


def timestamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def text_field(data: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    """``data[name]`` as text; None when absent or empty (unless ``required``)."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadInput(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise BadInput(f"'{name}' must be a string")
    return value


def invalid(request: Request, message: str, status_code: int = 400) -> JSONResponse:
    """A refused API request, with the service's own message."""
    return JSONResponse({"error": "invalid", "message": message}, status_code=status_code)



def not_found(request: Request, message_key: str) -> Response:
    message = translate(language_of(request), message_key)
    if request.url.path.startswith(API):
        return JSONResponse({"error": "not_found", "message": message}, status_code=404)
    return render(request, "error.html", {"message": message}, status_code=404)


def forbidden(request: Request) -> Response:
    return error_response(request, 403, "forbidden")


def role_choices(request: Request) -> list[tuple[str, str]]:
    lang = language_of(request)
    return [(role.value, role_label(lang, role.value)) for role in Role]


def source_ip(request: Request) -> str | None:
    return client_ip(request)
