"""Agent groups (分组): named sets of users that permissions are granted or revoked for.

Changing groups needs ``groups.manage``. Membership carries permissions, so it follows the
rule of ``apps.permissions`` that nobody hands out what they do not hold: adding a member
needs every capability the group grants, removing one needs every capability the group
revokes (leaving it gives them back), deleting a group needs both. Every change, and every
refused attempt, is audited in the change's transaction, with the ``source_ip`` the caller
names (the web request's client address, or ``apps.audit.COMMAND_LINE``).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.audit import Actor, AuditLog
from apps.db import Database
from apps.models import AgentGroup, AgentGroupMember, GroupPermission, User
from apps.permissions import AccessError, demand, group_or_error, group_target

MAX_NAME_LENGTH = 64  # agent_groups.name
MAX_DESCRIPTION_LENGTH = 255


class GroupError(AccessError):
    """A group request that cannot be done; the message is shown as is."""


@dataclass(frozen=True)
class GroupRecord:
    id: int
    name: str
    description: str | None
    member_count: int


@dataclass(frozen=True)
class GroupMember:
    user_id: int
    username: str
    name: str | None


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise GroupError("group name must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise GroupError(f"group name must be at most {MAX_NAME_LENGTH} characters")
    return cleaned


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise GroupError(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")


async def _overrides(session: AsyncSession, group_id: int, granted: bool) -> Set[str]:
    rows = await session.scalars(
        select(GroupPermission.capability).where(
            GroupPermission.group_id == group_id, GroupPermission.granted == granted
        )
    )
    return set(rows)


async def _check_name_free(session: AsyncSession, name: str, group_id: int | None) -> None:
    owner = await session.scalar(select(AgentGroup.id).where(AgentGroup.name == name))
    if owner is not None and owner != group_id:
        raise GroupError(f"agent group '{name}' already exists")


async def _member_count(session: AsyncSession, group_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(AgentGroupMember)
        .where(AgentGroupMember.group_id == group_id)
    )
    return count or 0


class GroupService:
    """Agent groups and their members on ``db``, audited to ``audit``."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def create(
        self, actor: Actor, name: str, description: str | None = None, *,
        source_ip: str | None = None,
    ) -> GroupRecord:
        name = _clean_name(name)
        _check_description(description)
        async with self._db.session() as session:
            await demand(session, self._audit, actor, {"groups.manage"},
                         "create agent groups", f"agent_group:{name}", source_ip=source_ip)
            await _check_name_free(session, name, None)
            group = AgentGroup(name=name, description=description)
            session.add(group)
            await session.flush()
            self._audit.add_by(session, actor, "group.create", target=group_target(group.id),
                               detail={"name": name},
                               source_ip=source_ip)
            await self._commit(session, name)
            return GroupRecord(group.id, group.name, group.description, 0)

    async def rename(self, actor: Actor, group_id: int, name: str, *,
                     source_ip: str | None = None) -> GroupRecord:
        name = _clean_name(name)
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            await demand(session, self._audit, actor, {"groups.manage"},
                         "rename agent groups", group_target(group_id),
                         source_ip=source_ip)
            old_name = group.name
            if old_name != name:
                await _check_name_free(session, name, group_id)
                group.name = name
                self._audit.add_by(session, actor, "group.rename",
                                   target=group_target(group_id),
                                   detail={"name": name, "before": old_name},
                                   source_ip=source_ip)
                await self._commit(session, name)
            return GroupRecord(group.id, group.name, group.description,
                               await _member_count(session, group_id))

    async def set_description(
        self, actor: Actor, group_id: int, description: str | None, *,
        source_ip: str | None = None,
    ) -> GroupRecord:
        _check_description(description)
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            await demand(session, self._audit, actor, {"groups.manage"},
                         "describe agent groups", group_target(group_id),
                         source_ip=source_ip)
            if group.description != description:
                self._audit.add_by(session, actor, "group.describe",
                                   target=group_target(group_id),
                                   detail={"description": description,
                                           "before": group.description},
                                   source_ip=source_ip)
                group.description = description
                await session.commit()
            return GroupRecord(group.id, group.name, group.description,
                               await _member_count(session, group_id))

    async def delete(self, actor: Actor, group_id: int, *,
                     source_ip: str | None = None) -> None:
        """Delete the group with its memberships and grants/revokes."""
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            overrides = (await _overrides(session, group_id, True)
                         | await _overrides(session, group_id, False))
            await demand(session, self._audit, actor, {"groups.manage", *overrides},
                         f"delete agent group '{group.name}'", group_target(group_id),
                         source_ip=source_ip)
            members = await _member_count(session, group_id)
            # Explicit rather than relying on ON DELETE CASCADE, which SQLite applies only
            # with its foreign_keys pragma on.
            await session.execute(
                delete(GroupPermission).where(GroupPermission.group_id == group_id))
            await session.execute(
                delete(AgentGroupMember).where(AgentGroupMember.group_id == group_id))
            await session.execute(delete(AgentGroup).where(AgentGroup.id == group_id))
            self._audit.add_by(session, actor, "group.delete", target=group_target(group_id),
                               detail={"name": group.name, "members": members,
                                       "overrides": sorted(overrides)},
                               source_ip=source_ip)
            await session.commit()

    async def add_member(self, actor: Actor, group_id: int, user_id: int, *,
                         source_ip: str | None = None) -> bool:
        """Put the user in the group; False if they already were (nothing changes)."""
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            grants = await _overrides(session, group_id, True)
            await demand(session, self._audit, actor, {"groups.manage", *grants},
                         f"add members to agent group '{group.name}'", group_target(group_id),
                         source_ip=source_ip)
            username = await session.scalar(select(User.username).where(User.id == user_id))
            if username is None:
                raise GroupError(f"no such user {user_id}")
            if await session.get(AgentGroupMember, (group_id, user_id)) is not None:
                return False
            session.add(AgentGroupMember(group_id=group_id, user_id=user_id))
            self._audit.add_by(session, actor, "group.add_member", target=group_target(group_id),
                               detail={"group": group.name, "user_id": user_id,
                                       "username": username},
                               source_ip=source_ip)
            try:
                await session.commit()
            except IntegrityError:
                # Added by someone else since the check: the wanted state is there.
                await session.rollback()
                return False
            return True

    async def remove_member(self, actor: Actor, group_id: int, user_id: int, *,
                            source_ip: str | None = None) -> bool:
        """Take the user out of the group; False if they were not in it."""
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            revokes = await _overrides(session, group_id, False)
            await demand(session, self._audit, actor, {"groups.manage", *revokes},
                         f"remove members from agent group '{group.name}'",
                         group_target(group_id),
                         source_ip=source_ip)
            result = await session.execute(
                delete(AgentGroupMember).where(
                    AgentGroupMember.group_id == group_id, AgentGroupMember.user_id == user_id
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            username = await session.scalar(select(User.username).where(User.id == user_id))
            self._audit.add_by(session, actor, "group.remove_member",
                               target=group_target(group_id),
                               detail={"group": group.name, "user_id": user_id,
                                       "username": username},
                               source_ip=source_ip)
            await session.commit()
            return True

    async def get(self, group_id: int) -> GroupRecord:
        async with self._db.session() as session:
            group = await group_or_error(session, group_id)
            return GroupRecord(group.id, group.name, group.description,
                               await _member_count(session, group_id))

    async def list_groups(self) -> list[GroupRecord]:
        """Every group by name, with how many members it has."""
        return await self._summaries(None)

    async def members(self, group_id: int) -> list[GroupMember]:
        """The group's members by username."""
        async with self._db.session() as session:
            await group_or_error(session, group_id)
            rows = await session.execute(
                select(User.id, User.username, User.name)
                .join(AgentGroupMember, AgentGroupMember.user_id == User.id)
                .where(AgentGroupMember.group_id == group_id)
                .order_by(User.username)
            )
            return [GroupMember(user_id, username, name) for user_id, username, name in rows]

    async def groups_of(self, user_id: int) -> list[GroupRecord]:
        """The groups ``user_id`` belongs to, by name."""
        return await self._summaries(user_id)

    async def _summaries(self, member_id: int | None) -> list[GroupRecord]:
        counts = (
            select(AgentGroupMember.group_id, func.count().label("n"))
            .group_by(AgentGroupMember.group_id)
            .subquery()
        )
        query = (
            select(AgentGroup, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.group_id == AgentGroup.id)
            .order_by(AgentGroup.name)
        )
        if member_id is not None:
            query = query.where(AgentGroup.id.in_(
                select(AgentGroupMember.group_id).where(AgentGroupMember.user_id == member_id)
            ))
        async with self._db.session() as session:
            rows = await session.execute(query)
            return [GroupRecord(g.id, g.name, g.description, int(n)) for g, n in rows]

    @staticmethod
    async def _commit(session: AsyncSession, name: str) -> None:
        try:
            await session.commit()
        except IntegrityError:
            # Another request took the name between the check and the write.
            await session.rollback()
            raise GroupError(f"agent group '{name}' already exists") from None
