"""Database fixtures for apps tests: a fresh SQLite file per test, and the same tests on
PostgreSQL when CALLCENTER_TEST_PG_URL names a throwaway database (its apps tables are
dropped before and after every test). ./test.sh starts such a server and sets the
variable; under CI=true a missing variable fails the PostgreSQL variants instead of
skipping them, so that CI cannot pass without having run them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from apps import Database, UserService, upgrade_database
from apps.models import Base

PG_URL_ENV = "CALLCENTER_TEST_PG_URL"
NO_PG_HINT = "run ./test.sh, which starts a throwaway PostgreSQL server and sets it"
REALM = "callcenter.test"
FIXED_NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


async def _drop_apps_tables(url: str) -> None:
    db = await Database.connect(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        await db.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database URL with nothing in it yet (for SQLite: not even the directory)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'callcenter.db'}"
        return
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_URL_ENV} is not set under CI=true; {NO_PG_HINT}", pytrace=False)
        pytest.skip(f"{PG_URL_ENV} is not set; {NO_PG_HINT}")
    await _drop_apps_tables(url)
    yield url
    await _drop_apps_tables(url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade_database(db_url)
    database = await Database.connect(db_url)
    yield database
    await database.close()


@pytest.fixture
def fast_hasher() -> PasswordHasher:
    # Cheap argon2 parameters keep the tests quick; production uses the library defaults.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def fixed_now() -> datetime:
    """What the service's clock says: the created_at of every user it adds."""
    return FIXED_NOW


@pytest.fixture
def service(db: Database, fast_hasher: PasswordHasher, fixed_now: datetime) -> UserService:
    return UserService(db, REALM, password_hasher=fast_hasher, clock=lambda: fixed_now)
