"""Demo accounts for a fresh install, so that `make run` has people to log in as."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from apps.audit import SYSTEM
from apps.contacts import ContactRecordService
from apps.customers import CustomerService
from apps.queues import QueueService, QueueSettings, Strategy
from apps.users import Role, UserService

DEMO_PASSWORD_LENGTH = 12
# Letters and digits without the look-alikes 0/O/o, 1/l/I: passwords are read off a
# terminal and typed into phones.
PASSWORD_ALPHABET = "".join(
    c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" if c not in "0Oo1lI"
)

# (username, name, role, extension)
# One of each role, so a newcomer can see what each is allowed.
DEMO_USERS: tuple[tuple[str, str, Role, str | None], ...] = (
    ("admin", "系统管理员", Role.admin, None),
    ("lina", "李娜", Role.supervisor, "1000"),
    ("zhangwei", "张伟", Role.agent, "1001"),
    ("wangfang", "王芳", Role.agent, "1002"),
    ("liuyang", "刘洋", Role.agent, "1003"),
    ("chenjing", "陈静", Role.agent, "1004"),
    ("zhaomin", "赵敏", Role.service_manager, None),
    ("sunli", "孙丽", Role.shift_leader, "1005"),
    ("zhouqiang", "周强", Role.account_manager, None),
)

# Enterprise groups (集团) and their members for the demo: (code, name, VIP level,
# members as (name, title, phones)). The numbers are in ranges no subscriber has.
DEMO_GROUPS: tuple[tuple[str, str, int, tuple[tuple[str, str, tuple[str, ...]], ...]], ...] = (
    ("G0001", "华信科技集团", 3, (
        ("刘建国", "总经理", ("13900000001", "01088880001")),
        ("黄晓明", "IT主管", ("13900000002",)),
    )),
    ("G0002", "远航物流集团", 2, (
        ("何丽", "行政经理", ("13900000003",)),
        ("郑海", "采购", ("13900000004", "075566660004")),
    )),
)
DEMO_ACCOUNT_MANAGER = "zhouqiang"

# The service-desk queue (服务台) the demo's service number will lead to, with the demo
# agents as members.
DEMO_QUEUE = "service"
DEMO_QUEUE_SETTINGS = QueueSettings("服务台", Strategy.longest_idle, ring_timeout_s=15,
                                    wrap_up_s=30)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    name: str
    role: Role
    extension: str | None
    password: str  # shown once to whoever seeded; only its hashes are stored


def demo_password(choice: Callable[[str], str] = secrets.choice) -> str:
    return "".join(choice(PASSWORD_ALPHABET) for _ in range(DEMO_PASSWORD_LENGTH))


async def seed_demo_data(
    service: UserService, *, choice: Callable[[str], str] = secrets.choice
) -> list[DemoAccount]:
    """Create the demo admin, supervisor (extension 1000) and agents (1001-1004) when there
    are no users at all; return them with their passwords, or [] if users already exist."""
    if await service.list_users():
        return []
    accounts = []
    for username, name, role, extension in DEMO_USERS:
        password = demo_password(choice)
        await service.add_user(username, password, extension=extension, role=role, name=name)
        accounts.append(DemoAccount(username, name, role, extension, password))
    return accounts


async def seed_demo_customers(customers: CustomerService, contacts: ContactRecordService,
                              users: UserService) -> int:
    """Demo enterprise groups with their members, numbers and a first contact record,
    managed by the demo account manager; run right after seed_demo_data created the
    accounts. Returns how many customers were created."""
    manager_id = next((u.id for u in await users.list_users()
                       if u.username == DEMO_ACCOUNT_MANAGER), None)
    created = 0
    for code, name, vip_level, members in DEMO_GROUPS:
        group = await customers.create_group(code, name, vip_level=vip_level,
                                             account_manager_id=manager_id)
        for member, title, phones in members:
            customer = await customers.create_customer(member, phones=phones,
                                                       group_id=group.id, title=title)
            await contacts.add(customer.id, "phone", f"{name}{title}，演示数据：首次来电登记。")
            created += 1
    return created


async def seed_demo_queue(queues: QueueService) -> str:
    """The service-desk queue with every demo agent as a member; run right after
    seed_demo_data created the accounts. Returns the queue's name."""
    agents = {username: 0 for username, _, role, _ in DEMO_USERS if role is Role.agent}
    await queues.create(SYSTEM, DEMO_QUEUE, DEMO_QUEUE_SETTINGS, agents)
    return DEMO_QUEUE
