"""Database bootstrap: one async engine per process, sessions, and schema upgrades.

SQLite (the embedded default, a file next to the switch) and PostgreSQL (production and
the active/standby pair) are driven by the same models and the same Alembic migrations.
Plain ``sqlite://`` and ``postgresql://`` URLs are accepted and given their async driver.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# How long a writer waits for SQLite's lock before failing with "database is locked";
# the web, the switch and the dialer share one file.
SQLITE_BUSY_TIMEOUT_MS = 5000

# Driverless URLs get the async driver we ship with; explicit drivers are left alone.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str | URL) -> URL:
    """``url`` with the async driver filled in (``sqlite://`` -> ``sqlite+aiosqlite://``)."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # URI filenames: leave them to SQLite
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _connection_record: Any) -> None:
    # Per-connection settings: SQLite forgets all but journal_mode when a connection
    # closes, so they are set on every new pooled connection, before any transaction.
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets the web pages read while the switch writes CDRs.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
        # SQLite ignores FOREIGN KEY clauses unless asked, PostgreSQL never does.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class Database:
    """The process's connection pool. Create with ``await Database.connect(url)``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def connect(cls, url: str) -> Database:
        """Open a pool on ``url``; for a SQLite file, create its directory first.

        Nothing is connected yet: the first session opens the first connection, so a
        wrong PostgreSQL password shows up there, not here.
        """
        parsed = async_url(url)
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        return cls(engine)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        """A new session; use as ``async with db.session() as session:``."""
        return self._sessions()

    async def close(self) -> None:
        await self.engine.dispose()


def migrations_dir() -> Path:
    """The Alembic script directory shipped inside the package."""
    return Path(str(importlib.resources.files("apps") / "migrations"))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` built in code: no alembic.ini is needed or read."""
    config = Config()
    # Config values go through configparser interpolation, where "%" is special.
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    if url is not None:
        rendered = async_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def _upgrade_to_head(connection: Connection) -> None:
    config = alembic_config()
    # env.py runs the migrations on this connection instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_database(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration (a no-op when it is current).

    Works on a SQLite file that does not exist yet: it is created, with its directory.
    """
    db = await Database.connect(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)
    finally:
        await db.close()
