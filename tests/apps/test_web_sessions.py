"""Web sessions on the server (SQLite and PostgreSQL): only a hash of the id is stored;
expiry slides with use but is written at most once a minute; logout, "log out
everywhere", a password or role change and disabling the account end sessions."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from apps import Database, UserRecord, UserService, WebSessionStore
from apps.models import WebSession
from tests.apps.conftest import FIXED_NOW
from tests.apps.test_audit import FakeClock as Clock
from tests.apps.test_audit import clock

IDLE_S = 3600

__all__ = ["clock"]  # the fixture: wall-clock UTC that moves only when told


@pytest.fixture
def store(db: Database, clock: Clock) -> WebSessionStore:
    return WebSessionStore(db, idle_timeout_s=IDLE_S, clock=clock)


@pytest.fixture
async def alice(service: UserService) -> UserRecord:
    return await service.add_user("alice", "password-a", extension="1001", name="张伟")


async def _rows(db: Database) -> list[WebSession]:
    async with db.session() as session:
        return list(await session.scalars(select(WebSession).order_by(WebSession.created_at)))


async def test_a_session_resumes_as_its_user(store: WebSessionStore, alice: UserRecord) -> None:
    session_id = await store.start(alice.id, source_ip="10.0.0.7", user_agent="Firefox")
    found = await store.resume(session_id)
    assert found is not None
    assert found.user == alice
    assert (found.created_at, found.last_seen_at, found.expires_at) == (
        FIXED_NOW, FIXED_NOW, FIXED_NOW + timedelta(seconds=IDLE_S))
    assert (found.source_ip, found.user_agent) == ("10.0.0.7", "Firefox")


async def test_the_id_is_random_and_only_its_hash_is_stored(
    db: Database, store: WebSessionStore, alice: UserRecord
) -> None:
    first = await store.start(alice.id)
    second = await store.start(alice.id)
    assert first != second
    assert len(first) >= 22  # at least 128 bits in URL-safe base64 (it is 256)
    rows = await _rows(db)
    assert [row.id_sha256 for row in rows] == [
        hashlib.sha256(first.encode()).hexdigest(), hashlib.sha256(second.encode()).hexdigest()]
    stored = [str(value) for row in rows for value in vars(row).values()]
    assert not any(first in value or second in value for value in stored)
    # The hash is no key to the session: only the id is.
    assert await store.resume(rows[0].id_sha256) is None


async def test_unknown_and_malformed_ids_resume_nothing(
    store: WebSessionStore, alice: UserRecord
) -> None:
    await store.start(alice.id)
    for session_id in ("", "x", "A" * 43, "A" * 10_000):
        assert await store.resume(session_id) is None


async def test_expiry_slides_with_use(
    db: Database, store: WebSessionStore, clock: Clock, alice: UserRecord
) -> None:
    session_id = await store.start(alice.id)
    for _ in range(5):  # a day of requests an hour apart, less a second
        clock.advance(IDLE_S - 1)
        found = await store.resume(session_id)
        assert found is not None and found.expires_at == clock.now + timedelta(seconds=IDLE_S)
    clock.advance(IDLE_S)
    assert await store.resume(session_id) is None
    assert await _rows(db) == []  # an expired session found is deleted at once


async def test_last_seen_is_written_at_most_once_a_minute(
    store: WebSessionStore, clock: Clock, alice: UserRecord
) -> None:
    session_id = await store.start(alice.id)
    clock.advance(59)
    found = await store.resume(session_id)
    assert found is not None and found.last_seen_at == FIXED_NOW  # not written
    clock.advance(1)
    found = await store.resume(session_id)
    assert found is not None and found.last_seen_at == clock.now  # written
    # So the idle time counts from the last write, up to a minute early.
    clock.advance(59)
    assert await store.resume(session_id) is not None
    clock.advance(IDLE_S - 59)
    assert await store.resume(session_id) is None


async def test_a_background_check_does_not_keep_a_session_alive(
    store: WebSessionStore, clock: Clock, alice: UserRecord
) -> None:
    session_id = await store.start(alice.id)
    clock.advance(IDLE_S - 1)
    found = await store.resume(session_id, touch=False)
    assert found is not None and found.last_seen_at == FIXED_NOW
    clock.advance(1)
    assert await store.resume(session_id, touch=False) is None


async def test_logout_ends_one_session_and_log_out_everywhere_all(
    store: WebSessionStore, service: UserService, alice: UserRecord
) -> None:
    bob = await service.add_user("bob", "password-b")
    laptop, phone, other = (await store.start(alice.id), await store.start(alice.id),
                            await store.start(bob.id))
    assert await store.count_live(alice.id) == 2
    assert await store.end(laptop) is True
    assert await store.end(laptop) is False
    assert await store.resume(laptop) is None
    assert await store.resume(phone) is not None
    assert await store.end_all(alice.id) == 1
    assert await store.resume(phone) is None
    assert await store.count_live(alice.id) == 0
    assert await store.resume(other) is not None  # someone else's stays


async def test_a_password_change_ends_the_users_sessions(
    store: WebSessionStore, service: UserService, alice: UserRecord
) -> None:
    bob = await service.add_user("bob", "password-b")
    session_id, bobs = await store.start(alice.id), await store.start(bob.id)
    await service.set_password("alice", "new password")
    assert await store.resume(session_id) is None
    assert await store.resume(bobs) is not None


async def test_a_role_or_password_change_by_update_ends_sessions_a_name_change_not(
    store: WebSessionStore, service: UserService, alice: UserRecord
) -> None:
    session_id = await store.start(alice.id)
    await service.update_user("alice", name="李娜", role="agent", extension="1001")
    found = await store.resume(session_id)
    assert found is not None and found.user.name == "李娜"  # read fresh, not remembered
    await service.update_user("alice", name="李娜", role="supervisor", extension="1001")
    assert await store.resume(session_id) is None
    session_id = await store.start(alice.id)
    await service.update_user("alice", name="李娜", role="supervisor", extension="1001",
                              password="another password")
    assert await store.resume(session_id) is None


async def test_disabling_ends_sessions_and_enabling_does_not_bring_them_back(
    store: WebSessionStore, service: UserService, alice: UserRecord
) -> None:
    session_id = await store.start(alice.id)
    await service.set_disabled("alice", True)
    assert await store.resume(session_id) is None
    await service.set_disabled("alice", False)
    assert await store.resume(session_id) is None


async def test_a_refused_update_ends_nothing(
    store: WebSessionStore, service: UserService, alice: UserRecord
) -> None:
    await service.add_user("bob", "password-b", extension="1002")
    session_id = await store.start(alice.id)
    with pytest.raises(Exception, match="already used"):
        await service.update_user("alice", name=None, role="admin", extension="1002",
                                  password="another password")
    assert await store.resume(session_id) is not None


async def test_expired_rows_are_purged_at_login(
    db: Database, store: WebSessionStore, clock: Clock, alice: UserRecord
) -> None:
    stale = [await store.start(alice.id) for _ in range(3)]
    clock.advance(IDLE_S)
    fresh = await store.start(alice.id)
    assert [row.id_sha256 for row in await _rows(db)] == [
        hashlib.sha256(fresh.encode()).hexdigest()]
    assert all([await store.resume(s) is None for s in stale])
    clock.advance(IDLE_S)
    assert await store.purge_expired() == 1
    assert await _rows(db) == []


async def test_ids_come_from_the_injected_source(db: Database, alice: UserRecord) -> None:
    numbers = itertools.count()
    store = WebSessionStore(db, idle_timeout_s=60, new_session_id=lambda: f"id-{next(numbers)}")
    assert [await store.start(alice.id), await store.start(alice.id)] == ["id-0", "id-1"]
    assert await store.resume("id-1") is not None


async def test_long_user_agents_and_addresses_are_cut_to_their_columns(
    store: WebSessionStore, alice: UserRecord
) -> None:
    session_id = await store.start(alice.id, source_ip="f" * 100, user_agent="u" * 1000)
    found = await store.resume(session_id)
    assert found is not None
    assert (found.source_ip, found.user_agent) == ("f" * 64, "u" * 255)


def test_nonsense_timeouts_are_refused() -> None:
    with pytest.raises(ValueError):
        WebSessionStore(None, idle_timeout_s=0)  # type: ignore[arg-type]
