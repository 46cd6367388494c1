"""Customer import throughput: a generated .xlsx of 100 000 customers imported into a
fresh database, beside a baseline in the same run: openpyxl alone streaming the same
file (read-only, values only). The ratio shows what checking every row and writing the
batches add to merely reading the sheet. Then the same file again: the idempotent
re-import, which reads, matches and writes nothing.

    .venv/bin/python bench/customer_import.py                 # 100 000 rows, SQLite
    .venv/bin/python bench/customer_import.py --rows 20000
    .venv/bin/python bench/customer_import.py --pg postgresql://user@127.0.0.1/db
    .venv/bin/python bench/customer_import.py --smoke         # 2 000 rows (the test suite)

Floor: 100 000 rows in under 60 s. The sheet is realistic: 1-2 numbers per customer
(mobiles, some fixed lines), one group (集团) per 50 customers, an account manager,
a free custom column, and 1 % bad rows (a bad number or no name) to report.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openpyxl import Workbook, load_workbook  # noqa: E402

from apps import Database, UserService, upgrade_database  # noqa: E402
from apps.customer_import import CustomerImporter  # noqa: E402

FLOOR_ROWS = 100_000
FLOOR_S = 60.0
HEADERS = ["客户编号", "客户名称", "手机", "办公电话", "集团编号", "集团名称", "VIP等级",
           "客户经理", "职务", "备注"]


def write_sheet(path: Path, n_rows: int) -> int:
    """A customer sheet of ``n_rows`` data rows; returns how many are bad."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(HEADERS)
    bad = 0
    for i in range(n_rows):
        mobile = f"13{i % 10}{i:08d}"
        office = f"010-6{i:07d}" if i % 3 == 0 else None
        name: str | None = f"客户{i}"
        if i % 100 == 99:  # 1 % bad rows, alternating the reason
            bad += 1
            if i % 200 == 99:
                mobile = "12345"
            else:
                name = None
        group = i // 50
        sheet.append([f"K{i:07d}", name, mobile, office, f"G{group:05d}", f"集团{group}",
                      i % 6, "manager", "经理" if i % 4 == 0 else None, f"备注{i % 7}"])
    workbook.save(path)
    _add_dimension(path, f"A1:J{n_rows + 1}")
    return bad


def _add_dimension(path: Path, ref: str) -> None:
    """Put in the <dimension> Excel always writes and openpyxl's streaming writer leaves
    out; without it, opening the file parses the whole sheet once just to size it."""
    sheet_xml = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(path) as source:
        parts = {item: source.read(item.filename) for item in source.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item, content in parts.items():
            if item.filename == sheet_xml:
                content = content.replace(b"<sheetViews>",
                                          f'<dimension ref="{ref}" /><sheetViews>'.encode(), 1)
            target.writestr(item, content)


def read_baseline(path: Path) -> tuple[float, int]:
    """openpyxl alone: stream every row of the same file, values only."""
    start = time.perf_counter()
    workbook = load_workbook(path, read_only=True, data_only=True)
    rows = sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
    workbook.close()
    return time.perf_counter() - start, rows - 1


async def import_twice(path: Path, url: str) -> dict[str, Any]:
    await upgrade_database(url)
    db = await Database.connect(url)
    try:
        await UserService(db, "bench").add_user("manager", "bench-password",
                                                role="account_manager", name="经理")
        importer = CustomerImporter(db)
        start = time.perf_counter()
        first = await importer.import_file(path)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        again = await importer.import_file(path)
        again_s = time.perf_counter() - start
    finally:
        await db.close()
    return {"first": first, "first_s": first_s, "again": again, "again_s": again_s}


async def _drop_tables(url: str) -> None:
    from sqlalchemy import text

    from apps.models import Base

    db = await Database.connect(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        await db.close()


def run(n_rows: int, pg_url: str | None) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-customer-import-") as tmp:
        sheet = Path(tmp) / "customers.xlsx"
        start = time.perf_counter()
        bad = write_sheet(sheet, n_rows)
        print(f"generated {n_rows:,} rows ({bad:,} bad) in {time.perf_counter() - start:.1f} s, "
              f"{sheet.stat().st_size / 1e6:.1f} MB")
        baseline_s, read_rows = read_baseline(sheet)
        assert read_rows == n_rows, read_rows
        targets = [("SQLite", f"sqlite:///{tmp}/callcenter.db")]
        if pg_url:
            targets.append(("PostgreSQL", pg_url))
        for label, url in targets:
            if label == "PostgreSQL":
                asyncio.run(_drop_tables(url))  # a fresh database, as for SQLite
            outcome = asyncio.run(import_twice(sheet, url))
            first, again = outcome["first"], outcome["again"]
            results.append({
                "database": label, "rows": n_rows, "bad_rows": bad,
                "baseline_s": baseline_s, "import_s": outcome["first_s"],
                "reimport_s": outcome["again_s"], "imported": first.imported,
                "rejected": first.rejected, "groups_created": first.groups_created,
                "reimport_unchanged": again.unchanged, "reimport_imported": again.imported,
            })
            if label == "PostgreSQL":
                asyncio.run(_drop_tables(url))
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 000 rows, SQLite only")
    parser.add_argument("--rows", type=int, default=FLOOR_ROWS, help="data rows to generate")
    parser.add_argument("--pg", metavar="URL",
                        help="also import into this PostgreSQL database (its tables are "
                             "dropped before and after)")
    args = parser.parse_args(argv)
    n_rows = 2_000 if args.smoke else args.rows
    rows = run(n_rows, None if args.smoke else args.pg)
    print(f"{'database':<11} {'step':<30} {'seconds':>8} {'rows/s':>10} {'vs openpyxl':>12}")
    for row in rows:
        baseline = row["baseline_s"]
        print(f"{row['database']:<11} {'openpyxl read only (baseline)':<30} {baseline:>8.2f} "
              f"{n_rows / baseline:>10,.0f} {'1.0x':>12}")
        for step, key in (("import (fresh database)", "import_s"),
                          ("import again (idempotent)", "reimport_s")):
            seconds = row[key]
            print(f"{row['database']:<11} {step:<30} {seconds:>8.2f} {n_rows / seconds:>10,.0f} "
                  f"{seconds / baseline:>11.1f}x")
        print(f"{row['database']:<11} imported {row['imported']:,}, rejected {row['rejected']:,}, "
              f"groups {row['groups_created']:,}; again: unchanged {row['reimport_unchanged']:,}, "
              f"imported {row['reimport_imported']:,}")
        projected = row["import_s"] * FLOOR_ROWS / n_rows
        verdict = "ok" if projected < FLOOR_S else "TOO SLOW"
        print(f"{row['database']:<11} floor: {FLOOR_ROWS:,} rows < {FLOOR_S:.0f} s -> "
              f"{projected:.1f} s{' (projected)' if n_rows != FLOOR_ROWS else ''} {verdict}")
    return rows


if __name__ == "__main__":
    main()
