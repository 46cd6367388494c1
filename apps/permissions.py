"""Permissions: named capabilities, role defaults, and per-agent-group grants and revokes.

What a user may do (their *effective* capabilities):

1. an admin may do everything, whatever the groups say: the system can never lose the
   last account able to repair its permissions;
2. anyone else starts from their role's defaults (``ROLE_DEFAULTS``);
3. every agent group (分组) the user belongs to adds its grants;
4. then every group's revokes are taken away. **A revoke wins**: a capability revoked in
   any one of the user's groups is gone, even if another group grants it or the role
   has it by default. When groups disagree the user gets less, never more.

Who may change them: an actor holding ``permissions.manage`` may grant, revoke or clear a
capability *that the actor holds*. Nobody hands out (or takes back) what they do not
have, so a service manager cannot give anyone ``users.manage``. The same rule guards
memberships (``apps.agent_groups``). Every change, and every refused attempt, is audited
in the transaction of the change.

The capability names are a contract with the web pages, the API and stored grants:
rename one only with a migration of ``group_permissions``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.audit import Actor, AuditLog, SystemActor
from apps.db import Database
from apps.models import AgentGroup, AgentGroupMember, GroupPermission, User
from apps.users import Role

logger = logging.getLogger(__name__)


class AccessError(Exception):
    """An access-control request that cannot be done; the message is shown as is."""


class UnknownCapability(AccessError):
    """A capability name that is not in the catalogue (a typo must not silently deny)."""


class PermissionDenied(AccessError):
    """The actor lacks a capability the request needs."""

    def __init__(self, message: str, capability: str) -> None:
        super().__init__(message)
        self.capability = capability


class Scope(enum.Enum):
    business = "business"  # the call-center work itself
    access = "access"  # who may do that work: groups, permissions, the audit log
    system = "system"  # accounts and switch configuration: admins only by default


@dataclass(frozen=True)
class Capability:
    name: str
    label_zh: str
    label_en: str
    description: str
    scope: Scope = Scope.business

    def label(self, language: str) -> str:
        """The label in ``language`` ("zh" or "en"); Chinese for anything else."""
        return self.label_en if language == "en" else self.label_zh


_B, _A, _S = Scope.business, Scope.access, Scope.system

CATALOGUE: tuple[Capability, ...] = (
    Capability("calls.handle", "接听来电", "Handle calls",
               "Take calls at the agent desktop and set one's own ready / not-ready state."),
    Capability("calls.dial", "外呼", "Dial out", "Place calls to outside numbers."),
    Capability("calls.listen", "监听", "Listen in",
               "Hear an agent's call without being heard."),
    Capability("calls.whisper", "密语", "Whisper",
               "Speak to the agent in a call; the customer does not hear."),
    Capability("calls.barge", "强插", "Barge in",
               "Join an agent's call; both parties hear."),
    Capability("calls.force_hangup", "强拆", "Force hang-up", "End an agent's call."),
    Capability("agents.view", "查看座席状态", "View agents",
               "See every agent's state and current call."),
    Capability("agents.force_not_ready", "强制示忙", "Force not ready",
               "Put an agent into not-ready, or back to ready."),
    Capability("queues.manage", "队列管理", "Manage queues",
               "Configure queues, skills and their agents."),
    Capability("ivr.manage", "语音导航管理", "Manage IVR",
               "Edit IVR menus and voice prompts."),
    Capability("blacklist.manage", "黑名单管理", "Manage blacklist",
               "Block or unblock calling numbers."),
    Capability("tickets.create", "创建工单", "Create tickets", "Open a ticket for a customer."),
    Capability("tickets.process", "处理工单", "Process tickets",
               "Assign, work on and close tickets."),
    Capability("reports.view", "查看报表", "View reports", "See call and agent reports."),
    Capability("reports.export", "导出报表", "Export reports",
               "Download reports as files (audited)."),
    Capability("dialer.import", "导入外呼名单", "Import dialer lists",
               "Upload the numbers of an outbound campaign."),
    Capability("dialer.run", "运行外呼任务", "Run campaigns",
               "Start, pause and stop outbound campaigns."),
    Capability("customers.view", "查看客户", "View customers",
               "Look up customers, their numbers and contact records."),
    Capability("customers.edit", "编辑客户", "Edit customers", "Change any customer."),
    Capability("customers.edit_own", "编辑名下客户", "Edit own customers",
               "Change the customers one is the account manager of."),
    Capability("customers.import", "导入客户", "Import customers",
               "Import customers from a spreadsheet."),
    Capability("customers.export", "导出客户", "Export customers",
               "Download the customer list as a file (audited)."),
    Capability("contacts.write", "填写沟通记录", "Write contact records",
               "Add contact records (沟通记录) to customers."),
    Capability("recordings.listen", "听取录音", "Listen to recordings",
               "Play call recordings in the browser."),
    Capability("recordings.download", "下载录音", "Download recordings",
               "Save call recordings as files (audited)."),
    Capability("sms.send", "发送短信", "Send SMS", "Send text messages to customers."),
    Capability("sms.templates", "短信模板管理", "Manage SMS templates",
               "Write the templates agents send from."),
    Capability("groups.manage", "分组管理", "Manage agent groups",
               "Create, rename and delete agent groups and choose their members.", _A),
    Capability("permissions.manage", "权限管理", "Manage permissions",
               "Grant or revoke capabilities per agent group.", _A),
    Capability("audit.view", "查看审计日志", "View audit log",
               "Read who did what security-relevant thing, and when.", _A),
    Capability("users.manage", "用户管理", "Manage users",
               "Create users, set their passwords, roles and extensions.", _S),
    Capability("system.config", "系统配置", "System configuration",
               "Change trunks, routes and switch settings.", _S),
)

CAPABILITIES: Mapping[str, Capability] = MappingProxyType({c.name: c for c in CATALOGUE})
ALL: frozenset[str] = frozenset(CAPABILITIES)
_BUSINESS = frozenset(c.name for c in CATALOGUE if c.scope is _B)
_ACCESS = frozenset(c.name for c in CATALOGUE if c.scope is _A)

_AGENT = frozenset({
    "calls.handle", "calls.dial", "customers.view", "contacts.write", "tickets.create",
})
_SUPERVISOR = _AGENT | {
    "calls.listen", "calls.whisper", "calls.barge", "calls.force_hangup",
    "agents.view", "agents.force_not_ready", "reports.view", "recordings.listen",
}

# Row-level limits ("their customers") are not capabilities: customers.edit_own lets an
# account manager edit only customers whose account_manager_id is theirs, which the
# customer pages check against the row.
ROLE_DEFAULTS: Mapping[Role, frozenset[str]] = MappingProxyType({
    Role.admin: ALL,
    # The business lead runs the floor and decides who may do what, but does not own
    # accounts (roles and passwords, from which admin rights follow) or switch settings.
    Role.service_manager: _BUSINESS | _ACCESS,
    Role.shift_leader: _SUPERVISOR | {"tickets.process", "reports.export"},
    Role.supervisor: _SUPERVISOR,
    Role.agent: _AGENT,
    Role.account_manager: frozenset({
        "calls.dial", "customers.view", "customers.edit_own", "contacts.write",
        "tickets.create", "sms.send",
    }),
})

# The capabilities whose features are built: the permission pages and their API offer
# only these. The others stay in the catalogue, the role defaults and any stored grants,
# so the issue that builds a feature switches its capability on by adding it here.
BUILT: frozenset[str] = frozenset({
    "calls.handle",  # the agent desktop
    "customers.view", "customers.edit", "customers.edit_own", "customers.import",
    "contacts.write",
    "groups.manage", "permissions.manage", "audit.view", "users.manage",
    "queues.manage",  # queues as data (issue 12)
})
OFFERED: tuple[Capability, ...] = tuple(c for c in CATALOGUE if c.name in BUILT)

# Checked at import (not with assert, which -O strips): a typo here would otherwise
# surface as a role silently lacking a capability.
if set(ROLE_DEFAULTS) != set(Role) or set().union(*ROLE_DEFAULTS.values()) - ALL:
    raise RuntimeError("ROLE_DEFAULTS must cover every role with catalogue names only")
if BUILT - ALL:
    raise RuntimeError(f"BUILT names capabilities not in the catalogue: {BUILT - ALL}")


def check_capability(name: str) -> Capability:
    """The catalogue entry of ``name``; ``UnknownCapability`` if there is none."""
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise UnknownCapability(f"unknown capability '{name}'") from None


def resolve(role: Role, overrides: Iterable[tuple[str, bool]]) -> frozenset[str]:
    """Effective capabilities of a user with ``role`` in groups whose grants (True) and
    revokes (False) are ``overrides``; the rules are in the module docstring.

    Names no longer in the catalogue (a stored grant from an older version) count for
    nothing."""
    if role is Role.admin:
        return ALL
    granted: set[str] = set()
    revoked: set[str] = set()
    for capability, is_grant in overrides:
        (granted if is_grant else revoked).add(capability)
    return ((ROLE_DEFAULTS[role] | granted) - revoked) & ALL


async def effective_in(session: AsyncSession, user_id: int) -> frozenset[str]:
    """``PermissionService.effective`` inside an open session (for the group service)."""
    row = (await session.execute(
        select(User.role, User.disabled_at).where(User.id == user_id))).first()
    if row is None or row.disabled_at is not None:
        # A session that outlived its user (deleted or disabled since) may do nothing.
        return frozenset()
    role = row.role
    rows = await session.execute(
        select(GroupPermission.capability, GroupPermission.granted)
        .join(AgentGroupMember, AgentGroupMember.group_id == GroupPermission.group_id)
        .where(AgentGroupMember.user_id == user_id)
    )
    overrides = [(capability, granted) for capability, granted in rows]
    for capability, _ in overrides:
        if capability not in ALL:
            logger.warning("ignoring a stored override of unknown capability %r", capability)
    return resolve(Role(role), overrides)


async def actor_capabilities(session: AsyncSession, actor: Actor) -> frozenset[str]:
    if isinstance(actor, SystemActor):
        return ALL
    return await effective_in(session, actor.id)


async def demand(
    session: AsyncSession,
    audit: AuditLog,
    actor: Actor,
    needed: Iterable[str],
    attempted: str,
    target: str,
    *,
    source_ip: str | None = None,
) -> None:
    """Raise ``PermissionDenied`` unless ``actor`` holds every capability in ``needed``;
    the refusal is audited (as ``permission.denied``, from ``source_ip``) and committed
    on ``session``."""
    held = await actor_capabilities(session, actor)
    missing = sorted(set(needed) - held)
    if not missing:
        return
    await session.rollback()
    audit.add_by(session, actor, "permission.denied", target=target,
                 detail={"attempted": attempted, "missing": missing}, source_ip=source_ip)
    await session.commit()
    raise PermissionDenied(
        f"{actor.username} may not {attempted}: lacks {', '.join(missing)}", missing[0]
    )


def group_target(group_id: int) -> str:
    """How audit entries name an agent group."""
    return f"agent_group:{group_id}"


async def group_or_error(session: AsyncSession, group_id: int) -> AgentGroup:
    group = await session.get(AgentGroup, group_id)
    if group is None:
        raise AccessError(f"no such agent group {group_id}")
    return group


class PermissionService:
    """Effective capabilities and per-group overrides on ``db``, audited to ``audit``."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def effective(self, user_id: int) -> frozenset[str]:
        """What ``user_id`` may do now (nothing if there is no such user)."""
        async with self._db.session() as session:
            return await effective_in(session, user_id)

    async def has(self, user_id: int, capability: str) -> bool:
        check_capability(capability)
        return capability in await self.effective(user_id)

    async def group_overrides(self, group_id: int) -> dict[str, bool]:
        """The group's grants (True) and revokes (False), by capability name."""
        async with self._db.session() as session:
            await group_or_error(session, group_id)
            rows = await session.execute(
                select(GroupPermission.capability, GroupPermission.granted)
                .where(GroupPermission.group_id == group_id)
                .order_by(GroupPermission.capability)
            )
            return {capability: granted for capability, granted in rows}

    async def grant(self, actor: Actor, group_id: int, capability: str, *,
                    source_ip: str | None = None) -> bool:
        """Grant ``capability`` to the members of the group (over a revoke there); False
        when it was already granted, which changes and audits nothing."""
        return await self._set(actor, group_id, capability, True, source_ip)

    async def revoke(self, actor: Actor, group_id: int, capability: str, *,
                     source_ip: str | None = None) -> bool:
        """Revoke ``capability`` from the members of the group (see "a revoke wins")."""
        return await self._set(actor, group_id, capability, False, source_ip)

    async def clear(self, actor: Actor, group_id: int, capability: str, *,
                    source_ip: str | None = None) -> bool:
        """Drop the group's grant or revoke of ``capability``: role defaults apply again."""
        return await self._set(actor, group_id, capability, None, source_ip)

    async def set_overrides(
        self, actor: Actor, group_id: int, wanted: Mapping[str, bool | None], *,
        source_ip: str | None = None,
    ) -> dict[str, bool | None]:
        """Set many capabilities of the group at once (True grant, False revoke, None the
        role default): one transaction and one ``permission.update`` audit entry listing
        each change. All or nothing: refused (and audited) if the actor lacks any
        capability whose setting would change. Returns what changed, with its new setting;
        capabilities not named keep theirs."""
        for capability in wanted:
            check_capability(capability)
        target = group_target(group_id)
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            stored = {row.capability: row for row in await session.scalars(
                select(GroupPermission).where(GroupPermission.group_id == group_id))}
            before = {name: None if name not in stored else stored[name].granted
                      for name in wanted}
            changed = {name: granted for name, granted in wanted.items()
                       if before[name] != granted}
            if not changed:
                return {}
            await demand(session, self._audit, actor, {"permissions.manage", *changed},
                         f"change {', '.join(sorted(changed))}", target, source_ip=source_ip)
            for name, granted in changed.items():
                await _write(session, group_id, name, stored.get(name), granted)
            self._audit.add_by(session, actor, "permission.update", target=target, detail={
                "group": group.name,
                "changes": {name: {"before": _STATES[before[name]], "after": _STATES[granted]}
                            for name, granted in sorted(changed.items())},
            }, source_ip=source_ip)
            await _commit(session, group_id)
            return changed

    async def _set(
        self, actor: Actor, group_id: int, capability: str, granted: bool | None,
        source_ip: str | None,
    ) -> bool:
        check_capability(capability)
        verb = _VERBS[granted]
        target = group_target(group_id)
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            await demand(session, self._audit, actor, {"permissions.manage", capability},
                         f"{verb} {capability}", target, source_ip=source_ip)
            row = await session.get(GroupPermission, (group_id, capability))
            before = None if row is None else row.granted
            if before == granted:
                return False
            await _write(session, group_id, capability, row, granted)
            self._audit.add_by(session, actor, f"permission.{verb}", target=target, detail={
                "group": group.name,
                "capability": capability,
                "before": _STATES[before],
            }, source_ip=source_ip)
            await _commit(session, group_id)
            return True


async def _write(session: AsyncSession, group_id: int, capability: str,
                 row: GroupPermission | None, granted: bool | None) -> None:
    """Store the group's setting of ``capability`` (``row``: the stored one, if any)."""
    if granted is None:
        await session.execute(
            delete(GroupPermission).where(
                GroupPermission.group_id == group_id,
                GroupPermission.capability == capability,
            )
        )
    elif row is None:
        session.add(GroupPermission(group_id=group_id, capability=capability,
                                    granted=granted))
    else:
        row.granted = granted


async def _commit(session: AsyncSession, group_id: int) -> None:
    try:
        await session.commit()
    except IntegrityError:
        # Another request wrote these overrides, or deleted the group, since we read.
        await session.rollback()
        raise AccessError(
            f"agent group {group_id} was changed at the same time; try again"
        ) from None


_VERBS: Mapping[bool | None, str] = MappingProxyType(
    {True: "grant", False: "revoke", None: "clear"}
)
# How an override is described in audit entries.
_STATES: Mapping[bool | None, str] = MappingProxyType(
    {True: "granted", False: "revoked", None: "default"}
)
