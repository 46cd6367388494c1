from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Column, Connection, MetaData, String, inspect, text

from apps import Database, UserService, upgrade_database
from apps.db import alembic_config, async_url
from apps.models import Base


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as connection:
        return await connection.run_sync(_table_names)


async def _revision(db: Database) -> str | None:
    async with db.engine.connect() as connection:
        return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()


def test_migrations_have_one_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == ["0009"]


def test_plain_urls_get_the_async_drivers() -> None:
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


async def test_upgrade_creates_a_new_sqlite_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    await upgrade_database(f"sqlite:///{path}")
    assert path.is_file()
    db = await Database.connect(f"sqlite:///{path}")
    try:
        assert {"users", "alembic_version"} <= await _tables(db)
        assert await _revision(db) == "0009"
    finally:
        await db.close()


async def test_upgrade_again_is_a_no_op_that_keeps_the_data(db_url: str) -> None:
    await upgrade_database(db_url)
    db = await Database.connect(db_url)
    try:
        await UserService(db, "r").add_user("alice", "password-1")
        await upgrade_database(db_url)
        assert await _revision(db) == "0009"
        assert [u.username for u in await UserService(db, "r").list_users()] == ["alice"]
    finally:
        await db.close()


def _diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_match_the_migrations(db: Database) -> None:
    # What `alembic check` does: a model change without a migration shows up here.
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_diffs) == []


async def test_compare_would_notice_a_model_change_without_migration(db: Database) -> None:
    # The check above can fail: a model column that no migration creates is reported.
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    users = changed.tables["users"]
    users.append_column(Column("nickname", String(20)))

    def diffs(connection: Connection) -> list[tuple[Any, ...]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [tuple(d) for d in compare_metadata(context, changed)]

    async with db.engine.connect() as connection:
        found = await connection.run_sync(diffs)
    assert [(op, column.name) for op, _, _, column in found] == [("add_column", "nickname")]


def _downgrade_to_base(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_downgrade_to_base_then_upgrade_again(db: Database, db_url: str) -> None:
    async with db.engine.begin() as connection:
        await connection.run_sync(_downgrade_to_base)
    assert "users" not in await _tables(db)
    await upgrade_database(db_url)
    assert "users" in await _tables(db)


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite:///{tmp_path / 'a' / 'b.db'}")
    try:
        # Two connections at once: the settings hold for every pooled connection.
        async with db.engine.connect() as first, db.engine.connect() as second:
            for connection in (first, second):
                pragma = connection.exec_driver_sql
                assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
                assert (await pragma("PRAGMA busy_timeout")).scalar() == 5000
                assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
        assert (tmp_path / "a").is_dir()
    finally:
        await db.close()


def test_alembic_commands_work_without_an_ini_file(tmp_path: Path) -> None:
    # The path an operator takes with alembic's own commands: env.py opens its own async
    # engine from sqlalchemy.url (no event loop is running in a plain function).
    config = alembic_config(f"sqlite:///{tmp_path / 'cli' / 'callcenter.db'}")
    command.upgrade(config, "head")
    command.check(config)  # raises when the models differ from the migrations
    command.downgrade(config, "base")
    with pytest.raises(CommandError, match="Target database is not up to date"):
        command.check(config)
