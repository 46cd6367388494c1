"""Alembic environment for apps: async engines, SQLite and PostgreSQL.

Two ways in:
- ``apps.upgrade_database(url)`` passes an open connection in
  ``config.attributes["connection"]`` (already inside ``AsyncConnection.run_sync``);
- the ``alembic`` command line, given ``sqlalchemy.url``, gets its own async engine here.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from apps.db import Database, async_url
from apps.models import Base

config = context.config
target_metadata = Base.metadata


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    # Through Database for the same SQLite set-up (directory, WAL, foreign keys) as the app.
    db = await Database.connect(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await db.close()


def _run_offline() -> None:
    url = async_url(config.get_main_option("sqlalchemy.url") or "")
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and sqlalchemy.url is not set")
    asyncio.run(_run_with_own_engine(url))


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
