from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.engine import make_url

from apps import (
    Database,
    DemoAccount,
    Role,
    SipCredentials,
    UserError,
    UserRecord,
    UserService,
    seed_demo_data,
)
from apps.models import User


async def test_added_users_are_listed_by_username(
    service: UserService, fixed_now: datetime
) -> None:
    await service.add_user("carol", "password-c", extension="1003", role="supervisor")
    await service.add_user("alice", "password-a", extension="1001", name="张伟")
    await service.add_user("bob", "password-b", role=Role.admin)

    users = await service.list_users()

    assert [(u.username, u.name, u.role, u.extension) for u in users] == [
        ("alice", "张伟", Role.agent, "1001"),
        ("bob", None, Role.admin, None),
        ("carol", None, Role.supervisor, "1003"),
    ]
    assert all(u.created_at == fixed_now and u.created_at.tzinfo is UTC for u in users)
    assert len({u.id for u in users}) == 3


async def test_add_user_returns_what_list_users_shows(service: UserService) -> None:
    added = await service.add_user("alice", "password-a", extension="1001")
    assert isinstance(added, UserRecord)
    assert await service.list_users() == [added]


async def test_created_at_is_stored_as_utc(db: Database, fast_hasher: PasswordHasher) -> None:
    beijing = timezone(timedelta(hours=8))
    local_now = datetime(2024, 5, 6, 15, 8, 9, tzinfo=beijing)
    service = UserService(db, "r", password_hasher=fast_hasher, clock=lambda: local_now)
    await service.add_user("alice", "password-a")
    [user] = await service.list_users()
    assert user.created_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert user.created_at.tzinfo is UTC


def test_roles_carry_their_chinese_labels() -> None:
    assert {role.value: role.label for role in Role} == {
        "admin": "系统管理员",
        "service_manager": "集团服务营销经理",
        "shift_leader": "值班长",
        "supervisor": "班长座席",
        "agent": "普通座席",
        "account_manager": "客户经理",
    }


async def test_duplicate_username_is_refused(service: UserService) -> None:
    await service.add_user("alice", "password-a", extension="1001")
    with pytest.raises(UserError) as raised:
        await service.add_user("alice", "password-x", extension="1009")
    assert str(raised.value) == "user 'alice' already exists"
    assert [u.extension for u in await service.list_users()] == ["1001"]


async def test_duplicate_extension_is_refused_naming_its_owner(service: UserService) -> None:
    await service.add_user("bob", "password-b", extension="1001")
    with pytest.raises(UserError) as raised:
        await service.add_user("alice", "password-a", extension="1001")
    assert str(raised.value) == "extension 1001 is already used by 'bob'"
    assert [u.username for u in await service.list_users()] == ["bob"]


async def test_users_without_extension_do_not_collide(service: UserService) -> None:
    await service.add_user("alice", "password-a")
    await service.add_user("bob", "password-b")
    assert [u.extension for u in await service.list_users()] == [None, None]


async def test_concurrent_adds_of_one_name_create_it_once(service: UserService) -> None:
    results = await asyncio.gather(
        service.add_user("alice", "password-1", extension="1001"),
        service.add_user("alice", "password-2", extension="1002"),
        return_exceptions=True,
    )
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    assert errors == ["user 'alice' already exists"]
    assert len(await service.list_users()) == 1


async def test_unknown_role_lists_the_choices(service: UserService) -> None:
    with pytest.raises(UserError) as raised:
        await service.add_user("alice", "password-a", role="boss")
    assert str(raised.value) == (
        "unknown role 'boss' (choose from admin, service_manager, shift_leader, supervisor, "
        "agent, account_manager)"
    )


async def test_password_needs_eight_characters(service: UserService) -> None:
    with pytest.raises(UserError) as raised:
        await service.add_user("alice", "1234567")
    assert str(raised.value) == "password must be at least 8 characters"
    await service.add_user("alice", "12345678")
    with pytest.raises(UserError) as raised:
        await service.set_password("alice", "short")
    assert str(raised.value) == "password must be at least 8 characters"


@pytest.mark.parametrize("extension", ["1", "123456789", "10a1", " 1001", "", "١٠٠١", "+1001"])
async def test_bad_extensions_are_refused(service: UserService, extension: str) -> None:
    with pytest.raises(UserError) as raised:
        await service.add_user("alice", "password-a", extension=extension)
    assert str(raised.value) == "extension must be 2 to 8 digits"
    assert await service.list_users() == []


@pytest.mark.parametrize("extension", ["10", "12345678", "0800"])
async def test_two_to_eight_digit_extensions_are_accepted(
    service: UserService, extension: str
) -> None:
    record = await service.add_user("alice", "password-a", extension=extension)
    assert record.extension == extension


async def test_set_password_of_unknown_user(service: UserService) -> None:
    with pytest.raises(UserError) as raised:
        await service.set_password("zed", "password-z")
    assert str(raised.value) == "no such user 'zed'"


def _expected(extension: str, realm: str, password: str) -> SipCredentials:
    a1 = f"{extension}:{realm}:{password}".encode()
    return SipCredentials(
        username=extension,
        realm=realm,
        ha1_md5=hashlib.md5(a1).hexdigest(),
        ha1_sha256=hashlib.sha256(a1).hexdigest(),
    )


async def test_sip_ha1_is_over_extension_realm_and_password(service: UserService) -> None:
    await service.add_user("alice", "s3cret-pw", extension="1001")
    assert await service.sip_credentials("1001") == _expected("1001", service.realm, "s3cret-pw")


async def test_sip_credentials_are_found_by_extension_only(service: UserService) -> None:
    await service.add_user("alice", "password-a", extension="1001")
    await service.add_user("bob", "password-b")  # web only: no phone account
    assert await service.sip_credentials("alice") is None
    assert await service.sip_credentials("bob") is None
    assert await service.sip_credentials("1002") is None


async def test_set_password_changes_web_and_sip_secrets(service: UserService) -> None:
    await service.add_user("alice", "old-password", extension="1001")
    await service.set_password("alice", "new-password")

    assert await service.verify_web_password("alice", "old-password") is None
    assert await service.verify_web_password("alice", "new-password") is not None
    assert await service.sip_credentials("1001") == _expected("1001", service.realm, "new-password")


async def test_realm_change_disables_sip_until_password_reset(
    db: Database,
    service: UserService,
    fast_hasher: PasswordHasher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await service.add_user("alice", "password-a", extension="1001")
    moved = UserService(db, "new.realm", password_hasher=fast_hasher)

    with caplog.at_level(logging.WARNING, logger="apps.users"):
        assert await moved.sip_credentials("1001") is None
    [warning] = caplog.records
    assert f"'{service.realm}'" in warning.getMessage()
    assert "'new.realm'" in warning.getMessage()
    assert "reset the user's password" in warning.getMessage()

    await moved.set_password("alice", "password-b")
    assert await moved.sip_credentials("1001") == _expected("1001", "new.realm", "password-b")


async def _stored_bytes(db: Database, db_url: str) -> bytes:
    """Everything the database holds about users, as bytes."""
    if db.dialect == "sqlite":
        # The raw files, WAL included: a plaintext password would show up here even if it
        # sat in a column nobody reads.
        path = Path(make_url(db_url).database or "")
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    async with db.session() as session:
        users = (await session.scalars(select(User))).all()
    columns = User.__table__.columns.keys()
    return repr([[getattr(u, c) for c in columns] for u in users]).encode()


async def test_plaintext_passwords_are_never_stored(
    db: Database, db_url: str, service: UserService
) -> None:
    await service.add_user("alice", "Plain-Pass-One", extension="1001")
    await service.add_user("bob", "Plain-Pass-Two")
    await service.set_password("alice", "Plain-Pass-Three")
    assert await service.verify_web_password("bob", "Plain-Pass-Two") is not None

    stored = await _stored_bytes(db, db_url)

    assert b"alice" in stored and b"bob" in stored  # the bytes are the real data
    for password in ("Plain-Pass-One", "Plain-Pass-Two", "Plain-Pass-Three"):
        assert password.encode() not in stored
        assert password.encode("utf-16-le") not in stored


async def test_web_password_is_verified_with_argon2(db: Database, service: UserService) -> None:
    alice = await service.add_user("alice", "password-a", extension="1001")

    assert await service.verify_web_password("alice", "password-a") == alice
    assert await service.verify_web_password("alice", "password-A") is None
    assert await service.verify_web_password("alice", "") is None
    assert await service.verify_web_password("nobody", "password-a") is None
    async with db.session() as session:
        stored = await session.scalar(select(User.web_password_hash))
    assert stored is not None and stored.startswith("$argon2id$")


async def test_login_rehashes_a_hash_with_old_parameters(
    db: Database, service: UserService
) -> None:
    await service.add_user("alice", "password-a")  # cheap parameters (m=1024,t=1)
    hasher = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    stronger = UserService(db, service.realm, password_hasher=hasher)

    async def stored_hash() -> str | None:
        async with db.session() as session:
            return await session.scalar(select(User.web_password_hash))

    assert await stronger.verify_web_password("alice", "wrong-password") is None
    assert "m=1024,t=1" in (await stored_hash() or "")  # no rehash on a failed login

    assert await stronger.verify_web_password("alice", "password-a") is not None
    assert "m=2048,t=2" in (await stored_hash() or "")
    assert await stronger.verify_web_password("alice", "password-a") is not None


AMBIGUOUS = set("0Oo1lI")


async def test_seed_creates_demo_accounts_once(service: UserService) -> None:
    accounts = await seed_demo_data(service)

    assert [(a.username, a.role, a.extension) for a in accounts] == [
        ("admin", Role.admin, None),
        ("lina", Role.supervisor, "1000"),
        ("zhangwei", Role.agent, "1001"),
        ("wangfang", Role.agent, "1002"),
        ("liuyang", Role.agent, "1003"),
        ("chenjing", Role.agent, "1004"),
        ("zhaomin", Role.service_manager, None),
        ("sunli", Role.shift_leader, "1005"),
        ("zhouqiang", Role.account_manager, None),
    ]
    assert {a.role for a in accounts} == set(Role)  # one of each role to try
    assert all(isinstance(a, DemoAccount) and a.name for a in accounts)
    assert len({a.password for a in accounts}) == len(accounts)
    for account in accounts:
        assert len(account.password) == 12
        assert account.password.isascii() and account.password.isalnum()
        assert not AMBIGUOUS & set(account.password)
        assert await service.verify_web_password(account.username, account.password)
        if account.extension:
            creds = await service.sip_credentials(account.extension)
            assert creds == _expected(account.extension, service.realm, account.password)

    assert await seed_demo_data(service) == []
    assert len(await service.list_users()) == len(accounts)


async def test_seed_does_nothing_when_any_user_exists(service: UserService) -> None:
    await service.add_user("boss", "password-b", role="admin")
    assert await seed_demo_data(service) == []
    assert [u.username for u in await service.list_users()] == ["boss"]


# -- disabling accounts (staff who left) ----------------------------------------------------


class CountingHasher(PasswordHasher):
    """A fast hasher that counts verifications: each costs the same argon2 work."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


async def test_a_disabled_user_can_neither_log_in_nor_register_until_enabled(
    service: UserService,
) -> None:
    await service.add_user("leaver", "password-l", extension="1007", name="离职")
    disabled = await service.set_disabled("leaver", True)
    assert disabled.disabled
    assert await service.verify_web_password("leaver", "password-l") is None
    assert await service.sip_credentials("1007") is None
    assert not await service.is_active(disabled.id)
    # History kept: the account is still listed, with its extension, marked disabled.
    assert [(u.username, u.extension, u.disabled) for u in await service.list_users()] == [
        ("leaver", "1007", True)]

    enabled = await service.set_disabled("leaver", False)
    assert not enabled.disabled
    assert await service.verify_web_password("leaver", "password-l") == enabled
    assert await service.sip_credentials("1007") is not None
    assert await service.is_active(enabled.id)


async def test_disabling_twice_changes_nothing_the_second_time(
    db: Database, fast_hasher: PasswordHasher
) -> None:
    times = iter(datetime(2024, 5, 6, 7, minute, tzinfo=UTC) for minute in range(10))
    service = UserService(db, "r", password_hasher=fast_hasher, clock=lambda: next(times))
    await service.add_user("leaver", "password-l")
    await service.set_disabled("leaver", True)
    async with db.session() as session:
        first = await session.scalar(select(User.disabled_at))
    await service.set_disabled("leaver", True)
    async with db.session() as session:
        assert await session.scalar(select(User.disabled_at)) == first
    assert first == datetime(2024, 5, 6, 7, 1, tzinfo=UTC)


async def test_disabling_an_unknown_user_is_refused(service: UserService) -> None:
    with pytest.raises(UserError) as raised:
        await service.set_disabled("nobody", True)
    assert str(raised.value) == "no such user 'nobody'"
    assert not await service.is_active(12345)


async def test_a_disabled_login_is_refused_like_any_other_with_the_same_work(
    db: Database,
) -> None:
    hasher = CountingHasher()
    service = UserService(db, "r", password_hasher=hasher)
    await service.add_user("leaver", "password-l")
    await service.add_user("stayer", "password-s")
    await service.set_disabled("leaver", True)
    await service.verify_web_password("nobody", "warm-up")  # makes the dummy hash once
    attempts = [("leaver", "password-l"), ("leaver", "wrong-pass"), ("nobody", "password-l"),
                ("stayer", "wrong-pass")]
    for username, password in attempts:
        before = hasher.verifications
        assert await service.verify_web_password(username, password) is None
        assert hasher.verifications - before == 1, username


async def test_a_disabled_user_holds_no_capabilities(db: Database, service: UserService) -> None:
    from apps import AuditLog, PermissionService

    admin = await service.add_user("boss", "password-b", role=Role.admin)
    permissions = PermissionService(db, AuditLog(db))
    assert "users.manage" in await permissions.effective(admin.id)
    await service.set_disabled("boss", True)
    assert await permissions.effective(admin.id) == frozenset()
