from __future__ import annotations

import itertools
import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from apps.agent_groups import GroupService
from apps.audit import SYSTEM, AuditLog
from apps.db import Database
from apps.models import GroupPermission
from apps.permissions import (
    ALL,
    CAPABILITIES,
    ROLE_DEFAULTS,
    AccessError,
    PermissionDenied,
    PermissionService,
    Scope,
    UnknownCapability,
    check_capability,
    resolve,
)
from apps.users import Role, UserRecord, UserService

CONTRACT_NAMES = {
    "calls.listen", "calls.whisper", "calls.barge", "calls.force_hangup",
    "agents.force_not_ready", "agents.view", "tickets.create", "tickets.process",
    "reports.view", "reports.export", "dialer.import", "dialer.run", "customers.view",
    "customers.edit", "customers.import", "contacts.write", "recordings.listen",
    "recordings.download", "sms.send", "sms.templates", "users.manage", "groups.manage",
    "permissions.manage", "audit.view",
}
SUPERVISION = {"calls.listen", "calls.whisper", "calls.barge", "calls.force_hangup",
               "agents.force_not_ready"}
ADMIN_ONLY = {"users.manage", "system.config"}

# (role, what it must have, what it must not have by default)
ROLE_TABLE = [
    (Role.admin, ALL, set()),
    (Role.service_manager,
     {"permissions.manage", "groups.manage", "audit.view", "customers.import",
      "reports.export", "recordings.download", "dialer.run", *SUPERVISION},
     ADMIN_ONLY),
    (Role.shift_leader,
     {"tickets.process", "reports.view", "reports.export", "agents.view", *SUPERVISION,
      "calls.handle", "customers.view"},
     {"permissions.manage", "groups.manage", "customers.import", "recordings.download",
      "audit.view", *ADMIN_ONLY}),
    (Role.supervisor,
     {*SUPERVISION, "agents.view", "reports.view", "calls.handle", "customers.view",
      "contacts.write", "tickets.create"},
     {"tickets.process", "reports.export", "recordings.download", "permissions.manage",
      "customers.edit", *ADMIN_ONLY}),
    (Role.agent,
     {"calls.handle", "customers.view", "contacts.write", "tickets.create"},
     {*SUPERVISION, "agents.view", "reports.view", "customers.edit", "customers.import",
      "recordings.listen", "recordings.download", "sms.send", "permissions.manage",
      "groups.manage", "audit.view", *ADMIN_ONLY}),
    (Role.account_manager,
     {"customers.view", "customers.edit_own", "contacts.write", "sms.send"},
     {"customers.edit", "customers.import", *SUPERVISION, "agents.view",
      "permissions.manage", *ADMIN_ONLY}),
]


# --- The catalogue and role defaults (pure) --------------------------------------------


def test_catalogue_holds_every_contract_name() -> None:
    assert set(CAPABILITIES) >= CONTRACT_NAMES


def test_every_capability_is_labelled_in_chinese_and_english_and_described() -> None:
    for name, capability in CAPABILITIES.items():
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", name), name
        assert capability.name == name
        assert re.search(r"[\u4e00-\u9fff]", capability.label_zh), name
        assert capability.label_en.isascii() and capability.label_en, name
        assert capability.description.endswith("."), name
    assert check_capability("calls.barge").label("zh") == "强插"
    assert check_capability("calls.barge").label("en") == "Barge in"


def test_unknown_capability_is_named_in_the_error() -> None:
    with pytest.raises(UnknownCapability) as raised:
        check_capability("calls.bargе")  # Cyrillic e
    assert str(raised.value) == "unknown capability 'calls.bargе'"


@pytest.mark.parametrize(
    ("role", "has", "lacks"), ROLE_TABLE, ids=[r.value for r, *_ in ROLE_TABLE]
)
def test_role_defaults(role: Role, has: set[str], lacks: set[str]) -> None:
    assert has <= ROLE_DEFAULTS[role]
    assert not lacks & ROLE_DEFAULTS[role]
    assert resolve(role, []) == ROLE_DEFAULTS[role]


def test_role_table_covers_every_role() -> None:
    assert {role for role, *_ in ROLE_TABLE} == set(Role)


def test_service_manager_has_all_business_and_access_but_no_system_capability() -> None:
    expected = {c.name for c in CAPABILITIES.values() if c.scope is not Scope.system}
    assert ROLE_DEFAULTS[Role.service_manager] == expected
    assert {c.name for c in CAPABILITIES.values() if c.scope is Scope.system} == ADMIN_ONLY


def test_a_shift_leader_can_do_what_a_supervisor_can() -> None:
    assert ROLE_DEFAULTS[Role.supervisor] < ROLE_DEFAULTS[Role.shift_leader]
    assert ROLE_DEFAULTS[Role.agent] < ROLE_DEFAULTS[Role.supervisor]


_names = st.sampled_from([*sorted(ALL), "old.removed", "calls.Barge"])


@given(st.sampled_from(list(Role)), st.lists(st.tuples(_names, st.booleans()), max_size=30))
def test_resolve_revoke_wins_over_grants_and_defaults(
    role: Role, overrides: list[tuple[str, bool]]
) -> None:
    result = resolve(role, overrides)
    if role is Role.admin:
        assert result == ALL
        return
    granted = {name for name, is_grant in overrides if is_grant}
    revoked = {name for name, is_grant in overrides if not is_grant}
    for name in ALL:
        expected = name not in revoked and (name in ROLE_DEFAULTS[role] or name in granted)
        assert (name in result) == expected, name
    assert result <= ALL


# --- The service on a database -------------------------------------------------------------


@pytest.fixture
def audit(db: Database, fixed_now: datetime) -> AuditLog:
    return AuditLog(db, clock=lambda: fixed_now)


@pytest.fixture
def permissions(db: Database, audit: AuditLog) -> PermissionService:
    return PermissionService(db, audit)


@pytest.fixture
def groups(db: Database, audit: AuditLog) -> GroupService:
    return GroupService(db, audit)


@pytest.fixture
async def people(service: UserService) -> dict[Role, UserRecord]:
    return {role: await service.add_user(f"{role.value}-1", "password-x", role=role)
            for role in Role}


async def _group(groups: GroupService, name: str, *members: UserRecord) -> int:
    group = await groups.create(SYSTEM, name)
    for member in members:
        await groups.add_member(SYSTEM, group.id, member.id)
    return group.id


async def test_a_user_in_no_group_has_the_role_defaults(
    permissions: PermissionService, people: dict[Role, UserRecord]
) -> None:
    for role, user in people.items():
        assert await permissions.effective(user.id) == ROLE_DEFAULTS[role]


async def test_an_unknown_user_may_do_nothing(permissions: PermissionService) -> None:
    assert await permissions.effective(999) == frozenset()


async def test_a_grant_reaches_the_members_of_the_group_only(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    service: UserService,
) -> None:
    agent = people[Role.agent]
    other = await service.add_user("agent-2", "password-x")
    night = await _group(groups, "夜班", agent)
    manager = people[Role.service_manager]

    assert await permissions.grant(manager, night, "recordings.listen") is True

    assert await permissions.effective(agent.id) == ROLE_DEFAULTS[Role.agent] | {
        "recordings.listen"}
    assert await permissions.effective(other.id) == ROLE_DEFAULTS[Role.agent]
    assert await permissions.has(agent.id, "recordings.listen")
    assert await permissions.group_overrides(night) == {"recordings.listen": True}


async def test_a_revoke_takes_away_a_role_default_and_clear_gives_it_back(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    supervisor = people[Role.supervisor]
    trainees = await _group(groups, "trainees", supervisor)
    manager = people[Role.service_manager]

    await permissions.revoke(manager, trainees, "calls.barge")
    assert "calls.barge" not in await permissions.effective(supervisor.id)
    assert "calls.listen" in await permissions.effective(supervisor.id)

    await permissions.clear(manager, trainees, "calls.barge")
    assert await permissions.effective(supervisor.id) == ROLE_DEFAULTS[Role.supervisor]
    assert await permissions.group_overrides(trainees) == {}


async def test_when_groups_disagree_the_revoke_wins(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    agent = people[Role.agent]
    granting = await _group(groups, "sms team", agent)
    revoking = await _group(groups, "probation", agent)
    manager = people[Role.service_manager]

    await permissions.grant(manager, granting, "sms.send")
    await permissions.revoke(manager, revoking, "sms.send")

    assert "sms.send" not in await permissions.effective(agent.id)
    await permissions.clear(manager, revoking, "sms.send")
    assert "sms.send" in await permissions.effective(agent.id)


async def test_a_revoke_replaces_a_grant_in_the_same_group(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    agent = people[Role.agent]
    team = await _group(groups, "team", agent)
    manager = people[Role.service_manager]
    await permissions.grant(manager, team, "sms.send")
    await permissions.revoke(manager, team, "sms.send")
    assert await permissions.group_overrides(team) == {"sms.send": False}
    assert "sms.send" not in await permissions.effective(agent.id)


async def test_an_admin_keeps_everything_whatever_the_groups_revoke(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    admin = people[Role.admin]
    team = await _group(groups, "it", admin)
    await permissions.revoke(admin, team, "permissions.manage")
    assert await permissions.effective(admin.id) == ALL


async def test_an_agent_may_not_change_permissions_and_the_attempt_is_audited(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    audit: AuditLog,
) -> None:
    agent = people[Role.agent]
    team = await _group(groups, "team", agent)

    with pytest.raises(PermissionDenied) as raised:
        await permissions.grant(agent, team, "calls.handle")

    assert str(raised.value) == (
        "agent-1 may not grant calls.handle: lacks permissions.manage")
    assert raised.value.capability == "permissions.manage"
    assert await permissions.group_overrides(team) == {}
    [entry] = await audit.recent(10, action="permission.denied")
    assert (entry.actor_id, entry.actor, entry.target) == (agent.id, "agent-1",
                                                           f"agent_group:{team}")
    assert entry.detail == {"attempted": "grant calls.handle",
                            "missing": ["permissions.manage"]}


async def test_nobody_hands_out_a_capability_they_do_not_hold(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    manager = people[Role.service_manager]
    team = await _group(groups, "managers", manager)

    with pytest.raises(PermissionDenied) as raised:
        await permissions.grant(manager, team, "users.manage")

    assert str(raised.value) == (
        "service_manager-1 may not grant users.manage: lacks users.manage")
    assert "users.manage" not in await permissions.effective(manager.id)
    # The admin can, and then the manager can pass it on.
    await permissions.grant(people[Role.admin], team, "users.manage")
    assert "users.manage" in await permissions.effective(manager.id)


async def test_losing_permissions_manage_takes_effect_at_once(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    manager = people[Role.service_manager]
    team = await _group(groups, "managers", manager)
    await permissions.revoke(people[Role.admin], team, "permissions.manage")
    with pytest.raises(PermissionDenied):
        await permissions.grant(manager, team, "sms.send")


async def test_every_change_is_audited_with_what_it_replaced(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    audit: AuditLog, fixed_now: datetime,
) -> None:
    manager = people[Role.service_manager]
    team = await _group(groups, "夜班")

    await permissions.grant(manager, team, "sms.send")
    await permissions.revoke(manager, team, "sms.send")
    await permissions.clear(manager, team, "sms.send")

    entries = [e for e in await audit.recent(10) if e.action.startswith("permission.")]
    assert [(e.action, e.detail) for e in reversed(entries)] == [
        ("permission.grant", {"group": "夜班", "capability": "sms.send", "before": "default"}),
        ("permission.revoke", {"group": "夜班", "capability": "sms.send", "before": "granted"}),
        ("permission.clear", {"group": "夜班", "capability": "sms.send", "before": "revoked"}),
    ]
    assert all(e.actor_id == manager.id and e.actor == "service_manager-1"
               and e.target == f"agent_group:{team}" and e.at == fixed_now for e in entries)


async def test_a_change_that_changes_nothing_is_not_audited(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    audit: AuditLog,
) -> None:
    manager = people[Role.service_manager]
    team = await _group(groups, "team")
    assert await permissions.grant(manager, team, "sms.send") is True
    assert await permissions.grant(manager, team, "sms.send") is False
    assert await permissions.clear(manager, team, "dialer.run") is False
    assert len(await audit.recent(10, action="permission.grant")) == 1
    assert await audit.recent(10, action="permission.clear") == []


async def test_unknown_capabilities_and_groups_are_refused_clearly(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    audit: AuditLog, db: Database,
) -> None:
    admin = people[Role.admin]
    team = await _group(groups, "team")
    with pytest.raises(UnknownCapability, match=r"^unknown capability 'calls\.spy'$"):
        await permissions.grant(admin, team, "calls.spy")
    with pytest.raises(UnknownCapability):
        await permissions.has(admin.id, "calls.spy")
    with pytest.raises(AccessError, match=r"^no such agent group 4242$"):
        await permissions.revoke(admin, 4242, "calls.barge")
    with pytest.raises(AccessError, match=r"^no such agent group 4242$"):
        await permissions.group_overrides(4242)
    async with db.session() as session:
        assert list(await session.scalars(select(GroupPermission))) == []
    assert [e.action for e in await audit.recent(10)] == ["group.create"]


_OVERRIDE_CALLS = {"grant": PermissionService.grant, "revoke": PermissionService.revoke}


async def test_the_stored_rules_give_what_resolve_gives_for_every_combination(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord]
) -> None:
    agent = people[Role.agent]
    admin = people[Role.admin]
    first = await _group(groups, "first", agent)
    second = await _group(groups, "second", agent)
    # calls.handle is an agent default, sms.send is not.
    for a, b in itertools.product([None, "grant", "revoke"], repeat=2):
        overrides = []
        for group, verb in ((first, a), (second, b)):
            for capability in ("calls.handle", "sms.send"):
                if verb is None:
                    await permissions.clear(admin, group, capability)
                else:
                    await _OVERRIDE_CALLS[verb](permissions, admin, group, capability)
                    overrides.append((capability, verb == "grant"))
        effective = await permissions.effective(agent.id)
        assert effective == resolve(Role.agent, overrides), (a, b)
        assert ("sms.send" in effective) == ("grant" in (a, b) and "revoke" not in (a, b))
        assert ("calls.handle" in effective) == ("revoke" not in (a, b))


async def test_a_stored_override_of_a_capability_no_longer_known_counts_for_nothing(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    db: Database,
) -> None:
    agent = people[Role.agent]
    team = await _group(groups, "team", agent)
    async with db.session() as session:
        session.add(GroupPermission(group_id=team, capability="fax.send", granted=True))
        await session.commit()
    assert await permissions.effective(agent.id) == ROLE_DEFAULTS[Role.agent]


async def test_a_matrix_is_set_in_one_change_audited_once_from_its_source(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    audit: AuditLog,
) -> None:
    agent = people[Role.agent]
    team = await _group(groups, "team", agent)
    manager = people[Role.service_manager]
    await permissions.grant(manager, team, "sms.send")

    changed = await permissions.set_overrides(manager, team, {
        "customers.import": True, "contacts.write": False, "sms.send": None,
        "customers.view": None,  # already the role default: no change
    }, source_ip="192.0.2.7")

    assert changed == {"customers.import": True, "contacts.write": False, "sms.send": None}
    assert await permissions.group_overrides(team) == {
        "contacts.write": False, "customers.import": True}
    [entry] = await audit.recent(1, action="permission.update")
    assert (entry.actor, entry.source_ip) == (manager.username, "192.0.2.7")
    assert entry.detail == {"group": "team", "changes": {
        "contacts.write": {"before": "default", "after": "revoked"},
        "customers.import": {"before": "default", "after": "granted"},
        "sms.send": {"before": "granted", "after": "default"}}}
    assert await permissions.set_overrides(manager, team, changed) == {}
    assert len(await audit.recent(10, action="permission.update")) == 1


async def test_a_matrix_with_one_forbidden_change_changes_nothing(
    permissions: PermissionService, groups: GroupService, people: dict[Role, UserRecord],
    audit: AuditLog,
) -> None:
    team = await _group(groups, "team", people[Role.agent])
    manager = people[Role.service_manager]
    with pytest.raises(PermissionDenied):
        await permissions.set_overrides(
            manager, team, {"customers.import": True, "users.manage": True},
            source_ip="192.0.2.8")
    assert await permissions.group_overrides(team) == {}
    [denied] = await audit.recent(1, action="permission.denied")
    assert denied.detail["missing"] == ["users.manage"]
    assert denied.source_ip == "192.0.2.8"
    with pytest.raises(UnknownCapability):
        await permissions.set_overrides(manager, team, {"calls.teleport": True})
