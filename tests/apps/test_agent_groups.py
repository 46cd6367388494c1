from __future__ import annotations

from datetime import datetime

import pytest

from apps.agent_groups import GroupError, GroupMember, GroupRecord, GroupService
from apps.audit import SYSTEM, AuditLog
from apps.db import Database
from apps.permissions import ROLE_DEFAULTS, AccessError, PermissionDenied, PermissionService
from apps.users import Role, UserRecord, UserService


@pytest.fixture
def audit(db: Database, fixed_now: datetime) -> AuditLog:
    return AuditLog(db, clock=lambda: fixed_now)


@pytest.fixture
def groups(db: Database, audit: AuditLog) -> GroupService:
    return GroupService(db, audit)


@pytest.fixture
def permissions(db: Database, audit: AuditLog) -> PermissionService:
    return PermissionService(db, audit)


@pytest.fixture
async def manager(service: UserService) -> UserRecord:
    return await service.add_user("wang", "password-w", role=Role.service_manager)


@pytest.fixture
async def admin(service: UserService) -> UserRecord:
    return await service.add_user("root", "password-r", role=Role.admin)


@pytest.fixture
async def agents(service: UserService) -> list[UserRecord]:
    return [await service.add_user(f"agent{n}", "password-x", extension=f"100{n}", name=name)
            for n, name in enumerate(["张伟", "李娜", "王芳"], start=1)]


async def test_groups_are_listed_by_name_with_member_counts(
    groups: GroupService, manager: UserRecord, agents: list[UserRecord]
) -> None:
    night = await groups.create(manager, "夜班", "22:00-06:00")
    day = await groups.create(manager, "day shift")
    empty = await groups.create(manager, "vip desk")
    for agent in agents[:2]:
        await groups.add_member(manager, night.id, agent.id)
    await groups.add_member(manager, day.id, agents[2].id)

    assert await groups.list_groups() == [
        GroupRecord(day.id, "day shift", None, 1),
        GroupRecord(empty.id, "vip desk", None, 0),
        GroupRecord(night.id, "夜班", "22:00-06:00", 2),
    ]
    assert await groups.get(night.id) == GroupRecord(night.id, "夜班", "22:00-06:00", 2)
    assert await groups.members(night.id) == [
        GroupMember(agents[0].id, "agent1", "张伟"), GroupMember(agents[1].id, "agent2", "李娜")]
    assert await groups.members(empty.id) == []


async def test_groups_of_a_user(
    groups: GroupService, manager: UserRecord, agents: list[UserRecord]
) -> None:
    a = await groups.create(manager, "a")
    b = await groups.create(manager, "b")
    await groups.create(manager, "c")
    await groups.add_member(manager, b.id, agents[0].id)
    await groups.add_member(manager, a.id, agents[0].id)
    await groups.add_member(manager, a.id, agents[1].id)

    assert [(g.name, g.member_count) for g in await groups.groups_of(agents[0].id)] == [
        ("a", 2), ("b", 1)]
    assert await groups.groups_of(agents[2].id) == []


async def test_names_are_trimmed_and_must_be_unique_and_not_empty(
    groups: GroupService, manager: UserRecord
) -> None:
    night = await groups.create(manager, "  夜班 ")
    assert night.name == "夜班"
    with pytest.raises(GroupError, match=r"^agent group '夜班' already exists$"):
        await groups.create(manager, "夜班")
    with pytest.raises(GroupError, match=r"^group name must not be empty$"):
        await groups.create(manager, "   ")
    with pytest.raises(GroupError, match=r"^group name must be at most 64 characters$"):
        await groups.create(manager, "x" * 65)
    assert [g.name for g in await groups.list_groups()] == ["夜班"]


async def test_rename_and_describe(
    groups: GroupService, manager: UserRecord, agents: list[UserRecord]
) -> None:
    night = await groups.create(manager, "night")
    await groups.create(manager, "day")
    await groups.add_member(manager, night.id, agents[0].id)

    assert await groups.rename(manager, night.id, "夜班") == GroupRecord(night.id, "夜班",
                                                                          None, 1)
    with pytest.raises(GroupError, match=r"^agent group 'day' already exists$"):
        await groups.rename(manager, night.id, "day")
    described = await groups.set_description(manager, night.id, "22:00-06:00")
    assert described == GroupRecord(night.id, "夜班", "22:00-06:00", 1)
    assert [g.name for g in await groups.list_groups()] == ["day", "夜班"]


async def test_deleting_a_group_drops_its_members_and_their_grants(
    groups: GroupService, permissions: PermissionService, manager: UserRecord,
    agents: list[UserRecord],
) -> None:
    team = await groups.create(manager, "sms team")
    await groups.add_member(manager, team.id, agents[0].id)
    await permissions.grant(manager, team.id, "sms.send")
    assert "sms.send" in await permissions.effective(agents[0].id)

    await groups.delete(manager, team.id)

    assert await groups.list_groups() == []
    assert await groups.groups_of(agents[0].id) == []
    assert await permissions.effective(agents[0].id) == ROLE_DEFAULTS[Role.agent]
    with pytest.raises(AccessError, match=r"^no such agent group \d+$"):
        await groups.get(team.id)


async def test_membership_is_given_and_taken_once(
    groups: GroupService, manager: UserRecord, agents: list[UserRecord]
) -> None:
    team = await groups.create(manager, "team")
    assert await groups.add_member(manager, team.id, agents[0].id) is True
    assert await groups.add_member(manager, team.id, agents[0].id) is False
    assert (await groups.get(team.id)).member_count == 1
    assert await groups.remove_member(manager, team.id, agents[0].id) is True
    assert await groups.remove_member(manager, team.id, agents[0].id) is False
    assert (await groups.get(team.id)).member_count == 0


async def test_unknown_users_and_groups_are_refused_clearly(
    groups: GroupService, manager: UserRecord
) -> None:
    team = await groups.create(manager, "team")
    with pytest.raises(GroupError, match=r"^no such user 4242$"):
        await groups.add_member(manager, team.id, 4242)
    for call in (groups.add_member(manager, 4242, 1), groups.rename(manager, 4242, "x"),
                 groups.delete(manager, 4242), groups.members(4242)):
        with pytest.raises(AccessError, match=r"^no such agent group 4242$"):
            await call


async def test_an_agent_may_not_manage_groups_and_the_attempt_is_audited(
    groups: GroupService, manager: UserRecord, agents: list[UserRecord], audit: AuditLog
) -> None:
    team = await groups.create(manager, "team")
    agent = agents[0]
    refusals = [
        (groups.create(agent, "mine"), "agent1 may not create agent groups: lacks groups.manage"),
        (groups.add_member(agent, team.id, agent.id),
         "agent1 may not add members to agent group 'team': lacks groups.manage"),
        (groups.rename(agent, team.id, "x"),
         "agent1 may not rename agent groups: lacks groups.manage"),
        (groups.delete(agent, team.id),
         "agent1 may not delete agent group 'team': lacks groups.manage"),
    ]
    for call, message in refusals:
        with pytest.raises(PermissionDenied) as raised:
            await call
        assert str(raised.value) == message

    assert [(g.name, g.member_count) for g in await groups.list_groups()] == [("team", 0)]
    denied = await audit.recent(10, action="permission.denied")
    assert len(denied) == 4 and all(e.actor_id == agent.id for e in denied)


async def test_joining_a_group_that_grants_what_the_actor_lacks_is_refused(
    groups: GroupService, permissions: PermissionService, manager: UserRecord,
    admin: UserRecord, agents: list[UserRecord],
) -> None:
    # The admin made a group that may manage users; a service manager (who may not)
    # cannot get into it, nor put anyone else in it.
    it = await groups.create(admin, "it")
    await permissions.grant(admin, it.id, "users.manage")

    for user in (manager, agents[0]):
        with pytest.raises(PermissionDenied) as raised:
            await groups.add_member(manager, it.id, user.id)
        assert str(raised.value) == (
            "wang may not add members to agent group 'it': lacks users.manage")
    assert "users.manage" not in await permissions.effective(manager.id)
    with pytest.raises(PermissionDenied):
        await groups.delete(manager, it.id)

    assert await groups.add_member(admin, it.id, agents[0].id) is True


async def test_leaving_a_group_that_revokes_what_the_actor_lacks_is_refused(
    groups: GroupService, permissions: PermissionService, manager: UserRecord,
    admin: UserRecord, agents: list[UserRecord],
) -> None:
    locked = await groups.create(admin, "locked")
    await permissions.revoke(admin, locked.id, "system.config")
    await groups.add_member(admin, locked.id, agents[0].id)

    with pytest.raises(PermissionDenied) as raised:
        await groups.remove_member(manager, locked.id, agents[0].id)
    assert str(raised.value) == (
        "wang may not remove members from agent group 'locked': lacks system.config")
    assert (await groups.get(locked.id)).member_count == 1


async def test_every_change_is_audited(
    groups: GroupService, permissions: PermissionService, manager: UserRecord,
    agents: list[UserRecord], audit: AuditLog, fixed_now: datetime,
) -> None:
    team = await groups.create(manager, "night")
    await groups.rename(manager, team.id, "夜班")
    await groups.rename(manager, team.id, "夜班")  # no change, no entry
    await groups.set_description(manager, team.id, "22-06")
    await groups.add_member(manager, team.id, agents[0].id)
    await groups.add_member(manager, team.id, agents[0].id)  # no change, no entry
    await groups.remove_member(manager, team.id, agents[0].id)
    await groups.add_member(manager, team.id, agents[1].id)
    await permissions.grant(manager, team.id, "sms.send")
    await groups.delete(manager, team.id)

    entries = list(reversed(await audit.recent(20)))
    assert [(e.action, e.detail) for e in entries] == [
        ("group.create", {"name": "night"}),
        ("group.rename", {"name": "夜班", "before": "night"}),
        ("group.describe", {"description": "22-06", "before": None}),
        ("group.add_member", {"group": "夜班", "user_id": agents[0].id, "username": "agent1"}),
        ("group.remove_member",
         {"group": "夜班", "user_id": agents[0].id, "username": "agent1"}),
        ("group.add_member", {"group": "夜班", "user_id": agents[1].id, "username": "agent2"}),
        ("permission.grant", {"group": "夜班", "capability": "sms.send", "before": "default"}),
        ("group.delete", {"name": "夜班", "members": 1, "overrides": ["sms.send"]}),
    ]
    assert all(e.actor_id == manager.id and e.actor == "wang" and e.at == fixed_now
               and e.target == f"agent_group:{team.id}" for e in entries)


async def test_the_system_may_manage_groups(
    groups: GroupService, audit: AuditLog, agents: list[UserRecord]
) -> None:
    team = await groups.create(SYSTEM, "imported")
    assert await groups.add_member(SYSTEM, team.id, agents[0].id)
    [add, create] = await audit.recent(2)
    assert (create.action, create.actor_id, create.actor) == ("group.create", None, "system")
    assert add.action == "group.add_member"
