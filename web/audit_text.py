"""Audit entries as people read them: the action's name and a one-line summary of its
detail in the page's language (「修改用户 zhangsan：角色 普通座席 → 班长座席」), and
where it came from (a client address, 「命令行」, or 「—」 for an entry written before
every writer recorded one). The stored entry and the API's raw fields are unchanged.

Each action's summary is a template of ``AUDIT_MESSAGES`` filled from the detail by a
small function of ``SUMMARIES``; an action without one (written by a newer feature)
shows its detail as ``key: value`` pairs rather than JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apps.audit import COMMAND_LINE, AuditEntry
from apps.permissions import CAPABILITIES
from web.i18n import add_messages, role_label, translate
from web.queue_messages import QUEUE_MESSAGES

__all__ = ["ACTIONS", "action_label", "source_label", "summary"]

_QUEUE_STRINGS = QUEUE_MESSAGES  # the queue fields and strategies are named from these

_ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("登录", "Logged in"),
    "login_failed": ("登录失败", "Failed login"),
    "logout": ("退出登录", "Logged out"),
    "logout_all": ("退出所有设备", "Logged out everywhere"),
    "permission.grant": ("授予权限", "Granted a capability"),
    "permission.revoke": ("撤销权限", "Revoked a capability"),
    "permission.clear": ("恢复默认权限", "Returned a capability to the role default"),
    "permission.update": ("修改分组权限", "Changed a group's permissions"),
    "permission.denied": ("操作被拒绝", "Refused"),
    "group.create": ("新建分组", "Created an agent group"),
    "group.rename": ("重命名分组", "Renamed an agent group"),
    "group.describe": ("修改分组说明", "Changed a group's description"),
    "group.delete": ("删除分组", "Deleted an agent group"),
    "group.add_member": ("添加分组成员", "Added a group member"),
    "group.remove_member": ("移除分组成员", "Removed a group member"),
    "user.create": ("新建用户", "Created a user"),
    "user.update": ("修改用户", "Changed a user"),
    "user.disable": ("停用账号", "Disabled an account"),
    "user.enable": ("启用账号", "Enabled an account"),
    "user.password_reset": ("重置密码", "Reset a password"),
    "user.sessions_end": ("结束用户会话", "Ended a user's sessions"),
    "token.create": ("新建 API 令牌", "Created an API token"),
    "token.revoke": ("撤销 API 令牌", "Revoked an API token"),
    "queue.create": ("新建队列", "Created a queue"),
    "queue.update": ("修改队列", "Changed a queue"),
    "queue.delete": ("删除队列", "Deleted a queue"),
    "customers.import": ("导入客户", "Imported customers"),
    "export": ("导出文件", "Downloaded a file"),
}

ACTIONS: tuple[str, ...] = tuple(_ACTIONS)  # every action this module names, for filters

AUDIT_MESSAGES: dict[str, dict[str, str]] = {
    **{f"audit.action.{action}": {"zh": zh, "en": en}
       for action, (zh, en) in _ACTIONS.items()},
    "audit.source.command_line": {"zh": "命令行", "en": "command line"},
    "audit.source.unknown": {"zh": "—", "en": "—"},
    "audit.sep": {"zh": "；", "en": "; "},
    "audit.none": {"zh": "（空）", "en": "(none)"},
    "audit.field.name": {"zh": "姓名", "en": "name"},
    "audit.field.role": {"zh": "角色", "en": "role"},
    "audit.field.extension": {"zh": "分机", "en": "extension"},
    "audit.change": {"zh": "{field} {before} → {after}", "en": "{field} {before} → {after}"},
    "audit.password_changed": {"zh": "已设置新密码", "en": "new password set"},
    "audit.s.login_failed.bad_credentials": {
        "zh": "用户名或密码错误", "en": "wrong username or password"},
    "audit.s.login_failed.throttled": {
        "zh": "失败次数过多，已暂时禁止登录", "en": "too many failures, held back"},
    "audit.s.logout_all": {"zh": "结束 {sessions} 个会话", "en": "{sessions} sessions ended"},
    "audit.s.user.create": {
        "zh": "新建用户 {user}：角色 {role}，分机 {extension}",
        "en": "created user {user}: role {role}, extension {extension}"},
    "audit.s.user.update": {
        "zh": "修改用户 {user}：{changes}", "en": "changed user {user}: {changes}"},
    "audit.s.user.disable": {"zh": "停用账号 {user}", "en": "disabled {user}"},
    "audit.s.user.enable": {"zh": "启用账号 {user}", "en": "enabled {user}"},
    "audit.s.user.password_reset": {
        "zh": "重置 {user} 的密码", "en": "reset the password of {user}"},
    "audit.s.user.sessions_end": {
        "zh": "结束 {user} 的 {sessions} 个会话", "en": "ended {sessions} sessions of {user}"},
    "audit.s.token.create": {
        "zh": "为 {user} 新建 API 令牌 {token_id}（{label}）",
        "en": "created API token {token_id} for {user} ({label})"},
    "audit.s.token.revoke": {
        "zh": "撤销 {user} 的 API 令牌 {token_id}（{label}）",
        "en": "revoked API token {token_id} of {user} ({label})"},
    "audit.s.group.create": {"zh": "新建分组 {name}", "en": "created group {name}"},
    "audit.s.group.rename": {
        "zh": "分组 {before} 改名为 {name}", "en": "renamed group {before} to {name}"},
    "audit.s.group.describe": {
        "zh": "分组说明：{before} → {description}",
        "en": "group description: {before} → {description}"},
    "audit.s.group.delete": {
        "zh": "删除分组 {name}（{members} 名成员）",
        "en": "deleted group {name} ({members} members)"},
    "audit.s.group.add_member": {
        "zh": "将 {username} 加入分组 {group}", "en": "added {username} to group {group}"},
    "audit.s.group.remove_member": {
        "zh": "将 {username} 移出分组 {group}", "en": "took {username} out of group {group}"},
    "audit.s.permission.one": {
        "zh": "分组 {group}：{capability} {before} → {after}",
        "en": "group {group}: {capability} {before} → {after}"},
    "audit.s.permission.update": {
        "zh": "分组 {group}：{changes}", "en": "group {group}: {changes}"},
    "audit.s.permission.denied": {
        "zh": "{attempted}（缺少权限：{missing}）", "en": "{attempted} (lacks {missing})"},
    "audit.s.queue.create": {
        "zh": "新建队列 {name}（{display_name}）：策略 {strategy}，成员 {members}",
        "en": "created queue {name} ({display_name}): strategy {strategy}, members {members}"},
    "audit.s.queue.update": {
        "zh": "修改队列 {name}：{changes}", "en": "changed queue {name}: {changes}"},
    "audit.s.queue.delete": {
        "zh": "删除队列 {name}（{display_name}，{members} 名成员）",
        "en": "deleted queue {name} ({display_name}, {members} members)"},
    "audit.s.customers.import": {
        "zh": "导入 {file}：新增 {imported}，更新 {updated}，未变 {unchanged}，"
              "跳过 {skipped}，拒绝 {rejected}",
        "en": "imported {file}: {imported} added, {updated} updated, {unchanged} unchanged, "
              "{skipped} skipped, {rejected} rejected"},
    "audit.s.export": {
        "zh": "下载 {file}（{source_file}）", "en": "downloaded {file} ({source_file})"},
}

add_messages("audit log", AUDIT_MESSAGES)

# Stored override states (apps.permissions) as the matrix page names them.
_STATE_KEYS = {"granted": "permissions.state.granted", "revoked": "permissions.state.revoked",
               "default": "permissions.state.default"}
_AFTER = {"permission.grant": "granted", "permission.revoke": "revoked",
          "permission.clear": "default"}


def action_label(lang: str, action: str) -> str:
    """The action's name in ``lang``; the code itself for an action this module does not
    know."""
    key = f"audit.action.{action}"
    return translate(lang, key) if key in AUDIT_MESSAGES else action


def source_label(lang: str, source_ip: str | None) -> str:
    if source_ip is None:
        return translate(lang, "audit.source.unknown")
    if source_ip == COMMAND_LINE:
        return translate(lang, "audit.source.command_line")
    return source_ip


def summary(lang: str, entry: AuditEntry) -> str:
    """The entry's detail as one line in ``lang``."""
    detail = dict(entry.detail)
    write = SUMMARIES.get(entry.action)
    if write is not None:
        try:
            return write(lang, entry, detail)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an older or odd detail: shown plainly below rather than not at all
    return translate(lang, "audit.sep").join(
        f"{key}: {_text(lang, value)}" for key, value in sorted(detail.items()))


def _text(lang: str, value: Any) -> str:
    if value is None or value == "":
        return translate(lang, "audit.none")
    if isinstance(value, list | tuple):
        return ", ".join(_text(lang, item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(lang, v)}" for k, v in value.items())
    return str(value)


def _target_name(entry: AuditEntry) -> str:
    """``user:zhangsan`` -> zhangsan."""
    return (entry.target or "").partition(":")[2] or (entry.target or "")


def _capability(lang: str, name: str) -> str:
    capability = CAPABILITIES.get(name)
    return name if capability is None else capability.label(lang)


def _state(lang: str, state: str) -> str:
    return translate(lang, _STATE_KEYS[state])


def _user_field(lang: str, field: str, value: Any) -> str:
    if field == "role" and isinstance(value, str):
        return role_label(lang, value)
    return _text(lang, value)


Summary = Callable[[str, AuditEntry, dict[str, Any]], str]


def _login_failed(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    return translate(lang, f"audit.s.login_failed.{detail['reason']}")


def _user_create(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    return translate(lang, "audit.s.user.create", user=_target_name(entry),
                     role=role_label(lang, detail["role"]),
                     extension=_text(lang, detail.get("extension")))


def _user_update(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    changes = [translate(lang, "audit.change", field=translate(lang, f"audit.field.{field}"),
                         before=_user_field(lang, field, detail[field]["before"]),
                         after=_user_field(lang, field, detail[field]["after"]))
               for field in ("name", "role", "extension") if field in detail]
    if detail.get("password_changed"):
        changes.append(translate(lang, "audit.password_changed"))
    return translate(lang, "audit.s.user.update", user=_target_name(entry),
                     changes=translate(lang, "audit.sep").join(changes))


def _about_user(key: str) -> Summary:
    def write(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
        return translate(lang, key, user=_target_name(entry), **detail)
    return write


def _about_token(key: str) -> Summary:
    def write(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
        return translate(lang, key, user=_target_name(entry), token_id=detail["token_id"],
                         label=_text(lang, detail.get("label")))
    return write


def _from_detail(key: str) -> Summary:
    def write(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
        return translate(lang, key, **{k: _text(lang, v) for k, v in detail.items()})
    return write


def _queue_value(lang: str, field: str, value: Any) -> str:
    if field == "strategy" and isinstance(value, str):
        return translate(lang, f"queues.strategy.{value}")
    return _text(lang, value)


def _queue_create(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    return translate(lang, "audit.s.queue.create", name=detail["name"],
                     display_name=detail["display_name"],
                     strategy=_queue_value(lang, "strategy", detail["strategy"]),
                     members=_text(lang, detail["members"]))


def _queue_update(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    changes = [translate(lang, "audit.change", field=translate(lang, f"queues.{field}"),
                         before=_queue_value(lang, field, change["before"]),
                         after=_queue_value(lang, field, change["after"]))
               for field, change in detail["changes"].items()]
    return translate(lang, "audit.s.queue.update", name=detail["name"],
                     changes=translate(lang, "audit.sep").join(changes))


def _permission_one(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    return translate(lang, "audit.s.permission.one", group=detail["group"],
                     capability=_capability(lang, detail["capability"]),
                     before=_state(lang, detail["before"]),
                     after=_state(lang, _AFTER[entry.action]))


def _permission_update(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    changes = [translate(lang, "audit.change", field=_capability(lang, name),
                         before=_state(lang, change["before"]),
                         after=_state(lang, change["after"]))
               for name, change in detail["changes"].items()]
    return translate(lang, "audit.s.permission.update", group=detail["group"],
                     changes=translate(lang, "audit.sep").join(changes))


def _permission_denied(lang: str, entry: AuditEntry, detail: dict[str, Any]) -> str:
    return translate(lang, "audit.s.permission.denied", attempted=detail["attempted"],
                     missing=", ".join(_capability(lang, name) for name in detail["missing"]))


SUMMARIES: Mapping[str, Summary] = {
    "login_failed": _login_failed,
    "logout_all": _from_detail("audit.s.logout_all"),
    "user.create": _user_create,
    "user.update": _user_update,
    "user.disable": _about_user("audit.s.user.disable"),
    "user.enable": _about_user("audit.s.user.enable"),
    "user.password_reset": _about_user("audit.s.user.password_reset"),
    "user.sessions_end": _about_user("audit.s.user.sessions_end"),
    "token.create": _about_token("audit.s.token.create"),
    "token.revoke": _about_token("audit.s.token.revoke"),
    "group.create": _from_detail("audit.s.group.create"),
    "group.rename": _from_detail("audit.s.group.rename"),
    "group.describe": _from_detail("audit.s.group.describe"),
    "group.delete": _from_detail("audit.s.group.delete"),
    "group.add_member": _from_detail("audit.s.group.add_member"),
    "group.remove_member": _from_detail("audit.s.group.remove_member"),
    "permission.grant": _permission_one,
    "permission.revoke": _permission_one,
    "permission.clear": _permission_one,
    "permission.update": _permission_update,
    "permission.denied": _permission_denied,
    "queue.create": _queue_create,
    "queue.update": _queue_update,
    "queue.delete": _from_detail("audit.s.queue.delete"),
    "customers.import": _from_detail("audit.s.customers.import"),
    "export": _from_detail("audit.s.export"),
}
