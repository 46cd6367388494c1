"""API tokens on the database (SQLite and PostgreSQL): a token is shown once and only
its hash is stored; it acts as its user until revoked or the user is disabled; last
used is written at most once a minute; making and revoking are audited."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from apps import (
    SYSTEM,
    ApiTokenError,
    ApiTokenService,
    AuditLog,
    Database,
    PermissionDenied,
    Role,
    UserRecord,
    UserService,
)
from apps.audit import COMMAND_LINE
from apps.models import ApiToken, AuditLogEntry, User
from tests.apps.conftest import FIXED_NOW
from tests.apps.test_audit import FakeClock as Clock
from tests.apps.test_audit import audit, clock

__all__ = ["audit", "clock"]  # the fixtures


@pytest.fixture
def tokens(db: Database, audit: AuditLog, clock: Clock) -> ApiTokenService:
    return ApiTokenService(db, audit, clock=clock)


@pytest.fixture
async def alice(service: UserService) -> UserRecord:
    return await service.add_user("alice", "password-a", extension="1001")


async def _rows(db: Database) -> list[ApiToken]:
    async with db.session() as session:
        return list(await session.scalars(select(ApiToken).order_by(ApiToken.id)))


async def test_a_token_acts_as_its_user(tokens: ApiTokenService, alice: UserRecord) -> None:
    issued = await tokens.create(SYSTEM, "alice", label="CRM sync", source_ip=COMMAND_LINE)
    assert issued.token.startswith("cc_")
    assert len(issued.token) == 3 + 43  # 256 random bits in URL-safe base64
    assert (issued.record.username, issued.record.label, issued.record.created_at,
            issued.record.last_used_at, issued.record.revoked) == (
        "alice", "CRM sync", FIXED_NOW, None, False)
    assert await tokens.authenticate(issued.token) == alice


async def test_only_the_hash_is_stored_and_tokens_differ(
    db: Database, tokens: ApiTokenService, alice: UserRecord
) -> None:
    first = (await tokens.create(SYSTEM, "alice")).token
    second = (await tokens.create(SYSTEM, "alice")).token
    assert first != second
    rows = await _rows(db)
    assert [row.token_sha256 for row in rows] == [
        hashlib.sha256(first.encode()).hexdigest(), hashlib.sha256(second.encode()).hexdigest()]
    stored = [str(value) for row in rows for value in vars(row).values()]
    assert not any(first in value or second in value for value in stored)
    assert await tokens.authenticate(rows[0].token_sha256) is None  # the hash is no token


async def test_unknown_and_malformed_tokens_act_as_nobody(
    tokens: ApiTokenService, alice: UserRecord
) -> None:
    issued = await tokens.create(SYSTEM, "alice")
    for token in ("", "cc_", "cc_" + "A" * 43, issued.token[3:], issued.token + "x",
                  "cc_" + "A" * 10_000, issued.token.upper()):
        assert await tokens.authenticate(token) is None


async def test_a_revoked_token_stops_working(
    tokens: ApiTokenService, alice: UserRecord, clock: Clock
) -> None:
    issued = await tokens.create(SYSTEM, "alice")
    clock.advance(30)
    revoked = await tokens.revoke(SYSTEM, issued.record.id, source_ip=COMMAND_LINE)
    assert revoked.revoked_at == FIXED_NOW + timedelta(seconds=30)
    assert await tokens.authenticate(issued.token) is None
    with pytest.raises(ApiTokenError, match=rf"^token {issued.record.id} is already revoked$"):
        await tokens.revoke(SYSTEM, issued.record.id)
    with pytest.raises(ApiTokenError, match=r"^no such token 999$"):
        await tokens.revoke(SYSTEM, 999)


async def test_a_disabled_users_tokens_are_revoked_and_stay_so(
    tokens: ApiTokenService, service: UserService, alice: UserRecord
) -> None:
    issued = await tokens.create(SYSTEM, "alice")
    await service.set_disabled("alice", True)
    assert await tokens.authenticate(issued.token) is None
    [listed] = await tokens.list_tokens("alice")
    assert listed.revoked
    await service.set_disabled("alice", False)
    assert await tokens.authenticate(issued.token) is None
    await service.set_disabled("alice", True)
    with pytest.raises(ApiTokenError, match=r"^user 'alice' is disabled$"):
        await tokens.create(SYSTEM, "alice")


async def test_a_token_of_a_user_disabled_by_any_means_acts_as_nobody(
    db: Database, tokens: ApiTokenService, alice: UserRecord
) -> None:
    # Not through set_disabled (which also revokes): the row says disabled, that is enough.
    issued = await tokens.create(SYSTEM, "alice")
    async with db.session() as session:
        await session.execute(update(User).where(User.id == alice.id)
                              .values(disabled_at=FIXED_NOW))
        await session.commit()
    assert await tokens.authenticate(issued.token) is None
    [listed] = await tokens.list_tokens()
    assert not listed.revoked


async def test_last_used_is_written_at_most_once_a_minute(
    tokens: ApiTokenService, alice: UserRecord, clock: Clock
) -> None:
    issued = await tokens.create(SYSTEM, "alice")

    async def last_used() -> object:
        [record] = await tokens.list_tokens()
        return record.last_used_at

    clock.advance(5)
    assert await tokens.authenticate(issued.token) == alice
    first_use = clock.now
    assert await last_used() == first_use
    clock.advance(59)
    assert await tokens.authenticate(issued.token) == alice
    assert await last_used() == first_use  # not written
    clock.advance(1)
    assert await tokens.authenticate(issued.token) == alice
    assert await last_used() == clock.now  # written


async def test_a_token_answers_with_the_user_as_they_are_now(
    tokens: ApiTokenService, service: UserService, alice: UserRecord
) -> None:
    issued = await tokens.create(SYSTEM, "alice")
    await service.update_user("alice", name="张伟", role=Role.supervisor, extension="1001",
                              password="password-b")
    found = await tokens.authenticate(issued.token)
    assert found is not None and (found.name, found.role) == ("张伟", Role.supervisor)


async def test_list_shows_every_token_or_one_users(
    tokens: ApiTokenService, service: UserService, alice: UserRecord
) -> None:
    await service.add_user("bob", "password-b")
    await tokens.create(SYSTEM, "alice", label="CRM")
    await tokens.create(SYSTEM, "bob")
    assert [(r.username, r.label) for r in await tokens.list_tokens()] == [
        ("alice", "CRM"), ("bob", None)]
    assert [r.username for r in await tokens.list_tokens("bob")] == ["bob"]
    with pytest.raises(ApiTokenError, match=r"^no such user 'nobody'$"):
        await tokens.list_tokens("nobody")
    with pytest.raises(ApiTokenError, match=r"^no such user 'nobody'$"):
        await tokens.create(SYSTEM, "nobody")
    with pytest.raises(ApiTokenError, match=r"^label must be at most 100 characters$"):
        await tokens.create(SYSTEM, "alice", label="x" * 101)


async def test_making_and_revoking_are_audited_without_the_token(
    db: Database, tokens: ApiTokenService, alice: UserRecord, audit: AuditLog
) -> None:
    issued = await tokens.create(SYSTEM, "alice", label="CRM", source_ip=COMMAND_LINE)
    await tokens.authenticate(issued.token)  # use is not audited
    await tokens.revoke(SYSTEM, issued.record.id, source_ip=COMMAND_LINE)
    entries = await audit.recent(10)
    assert [(e.action, e.actor, e.target, dict(e.detail), e.source_ip)
            for e in reversed(entries)] == [
        ("token.create", "system", "user:alice", {"token_id": issued.record.id,
                                                  "label": "CRM"}, "command-line"),
        ("token.revoke", "system", "user:alice", {"token_id": issued.record.id,
                                                  "label": "CRM"}, "command-line"),
    ]
    async with db.session() as session:
        rows = list(await session.scalars(select(AuditLogEntry)))
    assert not any(issued.token in str(vars(row)) for row in rows)


async def test_a_user_needs_users_manage_to_make_or_revoke_tokens(
    db: Database, tokens: ApiTokenService, service: UserService, alice: UserRecord,
    audit: AuditLog,
) -> None:
    admin = await service.add_user("root", "password-r", role=Role.admin)
    issued = await tokens.create(admin, "alice", source_ip="10.0.0.1")
    with pytest.raises(PermissionDenied):
        await tokens.create(alice, "alice", source_ip="10.0.0.2")
    with pytest.raises(PermissionDenied):
        await tokens.revoke(alice, issued.record.id, source_ip="10.0.0.2")
    assert len(await _rows(db)) == 1
    assert await tokens.authenticate(issued.token) == alice
    assert [e.action for e in reversed(await audit.recent(10))] == [
        "token.create", "permission.denied", "permission.denied"]
