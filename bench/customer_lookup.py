"""Caller lookup at scale: CustomerService.lookup_by_number latency with 1,000,000
customers (1-3 numbers each, one in three in a group with its account manager), half
the lookups for existing numbers and half for missing ones, in the varied spellings
gateways send (13912345678, +86 139 1234 5678, 010-2xxxxxxx ...). The floor from
issue 5: under 1 ms per lookup at 1M customers.

    .venv/bin/python bench/customer_lookup.py                        # 1M customers, SQLite
    .venv/bin/python bench/customer_lookup.py --pg-url postgresql://u@127.0.0.1/db
    .venv/bin/python bench/customer_lookup.py --smoke                # 10,000 (tests)

PostgreSQL runs too when --pg-url or CALLCENTER_TEST_PG_URL names a database; its
customer tables are DROPPED first and after: give it a throwaway database.

Baselines in the same run, over the same numbers in the same order:
  - "raw probe": the driver alone (stdlib sqlite3 / asyncpg) selecting the customer id
    by the number index with the number already normalised: the floor of any lookup;
  - "raw same SQL": the driver running our lookup's own compiled SQL (joins for group,
    VIP level, account manager), again pre-normalised: the cost of the SQL itself.
"ours" adds normalising the number (any spelling), a lock, and on SQLite the hop to
aiosqlite's worker thread and back; x is a method's mean over the raw probe's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from apps.customers import _LOOKUP, CustomerService  # noqa: E402
from apps.db import Database, async_url, upgrade_database  # noqa: E402
from apps.models import Base, Customer, CustomerGroup, CustomerPhone, User  # noqa: E402

DEFAULT_CUSTOMERS = 1_000_000
DEFAULT_LOOKUPS = 10_000
SMOKE_CUSTOMERS = 10_000
SMOKE_LOOKUPS = 1_000
WARMUP_LOOKUPS = 500
FLOOR_MS = 1.0  # issue 5
CUSTOMERS_PER_GROUP = 50
MANAGERS = 20
BATCH_ROWS = 20_000
PG_URL_ENV = "CALLCENTER_TEST_PG_URL"
NOW = datetime(2024, 5, 6, tzinfo=UTC)

HEADER = (f"{'backend':10} {'customers':>9} {'method':<26} {'p50 µs':>8} {'p99 µs':>8} "
          f"{'mean µs':>8} {'max µs':>8} {'x':>6} {'found':>7}")


@dataclass(frozen=True)
class Result:
    backend: str
    customers: int
    method: str
    p50_us: float
    p99_us: float
    mean_us: float
    max_us: float
    found: int  # lookups that found a customer (the same for every method)
    ratio: float  # this method's mean over the raw probe's (1.0 for the probe itself)


# --- data --------------------------------------------------------------------------------
# Customer i's numbers: 139 + i (always), 138 + i (two in three), a Beijing fixed line
# 010 2xxxxxxx (one in three); missing numbers are 137 + i. All distinct, all valid.

def _numbers(i: int) -> list[str]:
    numbers = [f"139{i:08d}"]
    if i % 3:
        numbers.append(f"138{i:08d}")
    if i % 3 == 2:
        numbers.append(f"010{20_000_000 + i:08d}")
    return numbers


def _spell(national: str, variant: int) -> str:
    """One of the spellings a gateway or a person might use for ``national``."""
    if national.startswith("0"):
        nsn = national[1:]
        return [national, f"+86{nsn}", f"{national[:3]}-{national[3:]}"][variant % 3]
    return [national, f"+86{national}", f"+86 {national[:3]} {national[3:7]} {national[7:]}",
            f"86{national}"][variant % 4]


def _batches(n_rows: int, make: Callable[[int], list[dict[str, Any]]]) -> Iterator[list[Any]]:
    for start in range(1, n_rows + 1, BATCH_ROWS):
        rows: list[dict[str, Any]] = []
        for i in range(start, min(start + BATCH_ROWS, n_rows + 1)):
            rows.extend(make(i))
        yield rows


async def load(db: Database, n_customers: int, seed: int) -> float:
    """Bulk-insert the data set with Core executemany; returns the seconds it took."""
    rng = random.Random(seed)
    n_groups = max(1, n_customers // CUSTOMERS_PER_GROUP)
    started = time.perf_counter()
    async with db.engine.begin() as connection:
        await connection.execute(insert(User), [
            {"id": m, "username": f"mgr{m}", "name": f"经理{m}", "role": "account_manager",
             "extension": f"{8000 + m}", "web_password_hash": "-", "created_at": NOW,
             "updated_at": NOW} for m in range(1, MANAGERS + 1)])
        for rows in _batches(n_groups, lambda g: [{
                "id": g, "code": f"G{g:07d}", "name": f"集团{g}", "vip_level": rng.randint(0, 5),
                "account_manager_id": rng.randint(1, MANAGERS), "custom_fields": {},
                "created_at": NOW, "updated_at": NOW}]):
            await connection.execute(insert(CustomerGroup), rows)
        for rows in _batches(n_customers, lambda i: [{
                "id": i, "name": f"客户{i}", "vip_level": rng.randint(0, 3),
                "group_id": rng.randint(1, n_groups) if i % 3 == 0 else None,
                "account_manager_id": rng.randint(1, MANAGERS) if i % 7 == 0 else None,
                "custom_fields": {}, "created_at": NOW, "updated_at": NOW}]):
            await connection.execute(insert(Customer), rows)
        for rows in _batches(n_customers, lambda i: [
                {"customer_id": i, "number": n} for n in _numbers(i)]):
            await connection.execute(insert(CustomerPhone), rows)
    if db.dialect == "postgresql":
        # Planner statistics, as autovacuum would gather them soon after such a load.
        async with db.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def lookups(n_customers: int, n_lookups: int, seed: int) -> list[tuple[str, str]]:
    """(spelling, national) pairs: half existing numbers, half missing ones."""
    rng = random.Random(seed + 1)
    pairs = []
    for k in range(n_lookups):
        i = rng.randint(1, n_customers)
        national = rng.choice(_numbers(i)) if k % 2 == 0 else f"137{i:08d}"
        pairs.append((_spell(national, rng.randrange(12)), national))
    return pairs


# --- timing ------------------------------------------------------------------------------

async def _time(call: Callable[[str], Awaitable[object]], args: list[str]) -> tuple[
        list[int], int]:
    for arg in args[:WARMUP_LOOKUPS]:
        await call(arg)
    latencies: list[int] = []
    found = 0
    clock = time.perf_counter_ns
    for arg in args:
        started = clock()
        result = await call(arg)
        latencies.append(clock() - started)
        found += result is not None
    return latencies, found


def _result(backend: str, customers: int, method: str, latencies_ns: list[int], found: int,
            probe_mean_us: float | None) -> Result:
    ordered = sorted(latencies_ns)
    mean_us = statistics.fmean(ordered) / 1000
    return Result(backend, customers, method,
                  p50_us=ordered[len(ordered) // 2] / 1000,
                  p99_us=ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] / 1000,
                  mean_us=mean_us, max_us=ordered[-1] / 1000, found=found,
                  ratio=mean_us / probe_mean_us if probe_mean_us else 1.0)


def format_result(r: Result) -> str:
    return (f"{r.backend:10} {r.customers:>9,} {r.method:<26} {r.p50_us:>8.1f} "
            f"{r.p99_us:>8.1f} {r.mean_us:>8.1f} {r.max_us:>8.1f} {r.ratio:>5.1f}x {r.found:>7,}")


def _lookup_sql(db: Database) -> tuple[str, Callable[[str], tuple[Any, ...]]]:
    """Our lookup's SQL as the dialect compiles it, and its positional arguments for a
    number (the statement has constant parameters too: the LIMIT, COALESCE's 0)."""
    compiled = _LOOKUP.compile(dialect=db.engine.dialect)
    names = list(compiled.positiontup or ())
    constants = compiled.construct_params({"number": ""})

    def arguments(number: str) -> tuple[Any, ...]:
        return tuple(number if name == "number" else constants[name] for name in names)

    return str(compiled), arguments


async def _sqlite_baselines(db: Database, path: str, nationals: list[str]) -> list[
        tuple[str, list[int], int]]:
    sql, arguments = _lookup_sql(db)
    connection = sqlite3.connect(path)
    try:
        async def probe(number: str) -> object:
            return connection.execute(
                "SELECT customer_id FROM customer_phones WHERE number = ? LIMIT 1",
                (number,)).fetchone()

        async def same_sql(number: str) -> object:
            return connection.execute(sql, arguments(number)).fetchone()

        return [("raw probe (sqlite3)", *await _time(probe, nationals)),
                ("raw same SQL (sqlite3)", *await _time(same_sql, nationals))]
    finally:
        connection.close()


async def _pg_baselines(db: Database, url: str, nationals: list[str]) -> list[
        tuple[str, list[int], int]]:
    import asyncpg  # the driver SQLAlchemy uses for PostgreSQL

    sql, arguments = _lookup_sql(db)
    plain = async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        probe_statement = await connection.prepare(
            "SELECT customer_id FROM customer_phones WHERE number = $1 LIMIT 1")
        same_statement = await connection.prepare(sql)

        async def same_sql(number: str) -> object:
            return await same_statement.fetchrow(*arguments(number))

        return [("raw probe (asyncpg)", *await _time(probe_statement.fetchrow, nationals)),
                ("raw same SQL (asyncpg)", *await _time(same_sql, nationals))]
    finally:
        await connection.close()


async def _drop(url: str) -> None:
    db = await Database.connect(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        await db.close()


async def run_backend(backend: str, url: str, n_customers: int, n_lookups: int, seed: int,
                      sqlite_path: str | None = None) -> list[Result]:
    if backend == "postgresql":
        await _drop(url)
    await upgrade_database(url)
    db = await Database.connect(url)
    try:
        seconds = await load(db, n_customers, seed)
        n_phones = sum(len(_numbers(i)) for i in range(1, n_customers + 1))
        print(f"{backend}: loaded {n_customers:,} customers, {n_phones:,} numbers in "
              f"{seconds:.1f} s ({(n_customers + n_phones) / seconds:,.0f} rows/s)", flush=True)
        pairs = lookups(n_customers, n_lookups, seed)
        spellings = [spelling for spelling, _ in pairs]
        nationals = [national for _, national in pairs]
        if backend == "sqlite":
            assert sqlite_path is not None
            baselines = await _sqlite_baselines(db, sqlite_path, nationals)
        else:
            baselines = await _pg_baselines(db, url, nationals)
        async with CustomerService(db) as service:
            ours = ("ours: lookup_by_number", *await _time(service.lookup_by_number, spellings))
    finally:
        await db.close()
        if backend == "postgresql":
            await _drop(url)
    probe_mean = statistics.fmean(baselines[0][1]) / 1000
    return [_result(backend, n_customers, method, latencies, found, probe_mean)
            for method, latencies, found in [*baselines, ours]]


async def _run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="customer-lookup-") as tmp:
        path = str(Path(tmp) / "customers.db")
        results += await run_backend("sqlite", f"sqlite:///{path}", args.customers,
                                     args.lookups, args.seed, sqlite_path=path)
    if args.pg_url:
        results += await run_backend("postgresql", args.pg_url, args.customers, args.lookups,
                                     args.seed)
    return results


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--lookups", type=int, default=DEFAULT_LOOKUPS)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--pg-url", default=os.environ.get(PG_URL_ENV),
                        help=f"a throwaway PostgreSQL database (default: ${PG_URL_ENV})")
    parser.add_argument("--smoke", action="store_true",
                        help=f"{SMOKE_CUSTOMERS:,} customers, {SMOKE_LOOKUPS:,} lookups")
    args = parser.parse_args(argv)
    if args.smoke:
        args.customers, args.lookups = SMOKE_CUSTOMERS, SMOKE_LOOKUPS
    results = asyncio.run(_run(args))
    print()
    print(HEADER)
    for result in results:
        print(format_result(result))
    print(f"(half of the {args.lookups:,} lookups are for missing numbers; "
          f"x = mean over the raw probe's mean)")
    for result in results:
        if result.method.startswith("ours"):
            verdict = "meets" if result.p99_us < FLOOR_MS * 1000 else "MISSES"
            print(f"{result.backend}: p99 {result.p99_us:.0f} µs {verdict} the "
                  f"{FLOOR_MS:g} ms floor at {result.customers:,} customers")
    return results


if __name__ == "__main__":
    main()
