from __future__ import annotations

from datetime import datetime

import pytest

from apps.audit import SYSTEM, AuditLog
from apps.db import Database
from apps.demo import seed_demo_data, seed_demo_queue
from apps.permissions import PermissionDenied
from apps.queues import (
    QueueError,
    QueueMemberRecord,
    QueueService,
    QueueSettings,
    Strategy,
)
from apps.users import Role, UserRecord, UserService


@pytest.fixture
def audit(db: Database, fixed_now: datetime) -> AuditLog:
    return AuditLog(db, clock=lambda: fixed_now)


@pytest.fixture
def queues(db: Database, audit: AuditLog, fixed_now: datetime) -> QueueService:
    return QueueService(db, audit, clock=lambda: fixed_now)


@pytest.fixture
async def manager(service: UserService) -> UserRecord:
    return await service.add_user("wang", "password-w", role=Role.service_manager)


@pytest.fixture
async def agents(service: UserService) -> list[UserRecord]:
    return [await service.add_user(f"agent{n}", "password-x", extension=f"100{n}", name=name)
            for n, name in enumerate(["张伟", "李娜", "王芳"], start=1)]


async def test_a_queue_is_created_with_its_members_and_audited(
    queues: QueueService, audit: AuditLog, manager: UserRecord, agents: list[UserRecord],
    fixed_now: datetime,
) -> None:
    queue = await queues.create(
        manager, "service", QueueSettings("服务台", Strategy.round_robin, ring_timeout_s=20,
                                          max_wait_s=120, overflow_target="voicemail"),
        {"agent2": 1, "agent1": 0}, source_ip="192.0.2.7")

    assert (queue.name, queue.display_name, queue.strategy) == (
        "service", "服务台", Strategy.round_robin)
    assert (queue.ring_timeout_s, queue.wrap_up_s, queue.max_wait_s) == (20, 30, 120)
    assert queue.overflow_target == "voicemail"
    assert queue.created_at == queue.updated_at == fixed_now
    assert queue.members == (QueueMemberRecord("agent1", "张伟", 0),
                             QueueMemberRecord("agent2", "李娜", 1))
    assert await queues.list_queues() == [queue]
    assert await queues.get("service") == queue
    [entry] = await audit.recent(action="queue.create")
    assert (entry.actor, entry.target, entry.source_ip) == ("wang", "queue:service",
                                                            "192.0.2.7")
    assert entry.detail["members"] == ["agent1", "agent2"]
    assert entry.detail["strategy"] == "round_robin"


async def test_update_changes_settings_and_members_in_one_audited_entry(
    queues: QueueService, audit: AuditLog, manager: UserRecord, agents: list[UserRecord],
) -> None:
    await queues.create(manager, "sales", QueueSettings("销售"), {"agent1": 0})
    queue = await queues.update(
        manager, "sales", QueueSettings("销售", Strategy.ring_all, wrap_up_s=10),
        {"agent2": 0, "agent3": 2}, source_ip="192.0.2.8")

    assert queue.strategy is Strategy.ring_all
    assert queue.wrap_up_s == 10
    assert [m.username for m in queue.members] == ["agent2", "agent3"]
    [entry] = await audit.recent(action="queue.update")
    assert entry.detail == {"name": "sales", "changes": {
        "strategy": {"before": "longest_idle", "after": "ring_all"},
        "wrap_up_s": {"before": 30, "after": 10},
        "members": {"before": ["agent1"], "after": ["agent2", "agent3"]},
    }}
    # Nothing changed: nothing audited.
    await queues.set_members(manager, "sales", {"agent2": 0, "agent3": 2})
    assert len(await audit.recent(action="queue.update")) == 1
    # A penalty alone is a change too.
    await queues.set_members(manager, "sales", {"agent2": 0, "agent3": 1})
    assert len(await audit.recent(action="queue.update")) == 2


async def test_delete_takes_the_members_with_it(
    queues: QueueService, audit: AuditLog, manager: UserRecord, agents: list[UserRecord],
) -> None:
    await queues.create(manager, "sales", QueueSettings("销售"), {"agent1": 0, "agent2": 0})
    await queues.delete(manager, "sales", source_ip="192.0.2.9")

    assert await queues.list_queues() == []
    [entry] = await audit.recent(action="queue.delete")
    assert entry.detail == {"name": "sales", "display_name": "销售", "members": 2}
    # The name is free again.
    await queues.create(manager, "sales", QueueSettings("销售"))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: QueueSettings(" "), "display name is required"),
    (lambda: QueueSettings("x", ring_timeout_s=0),
     "'ring_timeout_s' must be an integer from 1 to 600"),
    (lambda: QueueSettings("x", wrap_up_s=3601), "'wrap_up_s' must be an integer from 0 to 3600"),
    (lambda: QueueSettings("x", max_wait_s=0), "'max_wait_s' must be an integer from 1 to 86400"),
    (lambda: QueueSettings("x" * 101), "display name must be at most 100 characters"),
])
def test_settings_refuse_bad_values(call: object, message: str) -> None:
    with pytest.raises(QueueError) as raised:
        call()  # type: ignore[operator]
    assert str(raised.value) == message


async def test_refusals_are_exact(
    queues: QueueService, manager: UserRecord, agents: list[UserRecord], service: UserService,
) -> None:
    settings = QueueSettings("销售")
    await queues.create(manager, "sales", settings)
    await service.set_disabled("agent3", True)
    cases = [
        (queues.create(manager, "Sales Desk", settings),
         "queue name must be 1 to 64 lowercase letters, digits, '-' or '_', "
         "starting with a letter or digit"),
        (queues.create(manager, "sales", settings), "queue 'sales' already exists"),
        (queues.create(manager, "support", settings, {"nobody": 0}), "no such user 'nobody'"),
        (queues.create(manager, "support", settings, {"agent3": 0}),
         "user 'agent3' is disabled and cannot be a queue member"),
        (queues.create(manager, "support", settings, {"agent1": 101}),
         "'penalty' must be an integer from 0 to 100"),
        (queues.update(manager, "nothere", settings), "no such queue 'nothere'"),
        (queues.delete(manager, "nothere"), "no such queue 'nothere'"),
    ]
    for call, message in cases:
        with pytest.raises(QueueError) as raised:
            await call
        assert str(raised.value) == message
    assert [q.name for q in await queues.list_queues()] == ["sales"]


def test_an_unknown_strategy_names_the_choices() -> None:
    from apps.queues import parse_strategy

    with pytest.raises(QueueError) as raised:
        parse_strategy("fastest")
    assert str(raised.value) == (
        "unknown strategy 'fastest' (choose from longest_idle, round_robin, fewest_calls, "
        "least_talk_time, ring_all, linear, random)")
    assert raised.value.code == "unknown_strategy"


async def test_changing_queues_needs_queues_manage_and_refusals_are_audited(
    queues: QueueService, audit: AuditLog, manager: UserRecord, agents: list[UserRecord],
) -> None:
    await queues.create(manager, "sales", QueueSettings("销售"))
    agent = agents[0]
    for call in (queues.create(agent, "support", QueueSettings("支持")),
                 queues.update(agent, "sales", QueueSettings("改")),
                 queues.delete(agent, "sales")):
        with pytest.raises(PermissionDenied):
            await call
    denied = await audit.recent(action="permission.denied")
    assert [(e.actor, e.target) for e in denied] == [
        ("agent1", "queue:sales"), ("agent1", "queue:sales"), ("agent1", "queue:support")]
    assert [q.display_name for q in await queues.list_queues()] == ["销售"]


async def test_the_demo_has_the_service_desk_queue(
    queues: QueueService, service: UserService,
) -> None:
    await seed_demo_data(service)
    assert await seed_demo_queue(queues) == "service"

    queue = await queues.get("service")
    assert (queue.display_name, queue.strategy, queue.ring_timeout_s, queue.wrap_up_s) == (
        "服务台", Strategy.longest_idle, 15, 30)
    assert [m.username for m in queue.members] == [
        "chenjing", "liuyang", "wangfang", "zhangwei"]


async def test_system_actor_may_create(queues: QueueService) -> None:
    queue = await queues.create(SYSTEM, "empty", QueueSettings("空"))
    assert queue.members == ()
