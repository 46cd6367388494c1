"""Demo accounts for a fresh install, so that `make run` has people to log in as."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from apps.users import Role, UserService

DEMO_PASSWORD_LENGTH = 12
# Letters and digits without the look-alikes 0/O/o, 1/l/I: passwords are read off a
# terminal and typed into phones.
PASSWORD_ALPHABET = "".join(
    c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" if c not in "0Oo1lI"
)

# (username, name, role, extension)
DEMO_USERS: tuple[tuple[str, str, Role, str | None], ...] = (
    ("admin", "系统管理员", Role.admin, None),
    ("lina", "李娜", Role.supervisor, "1000"),
    ("zhangwei", "张伟", Role.agent, "1001"),
    ("wangfang", "王芳", Role.agent, "1002"),
    ("liuyang", "刘洋", Role.agent, "1003"),
    ("chenjing", "陈静", Role.agent, "1004"),
)


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
