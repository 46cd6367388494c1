"""Customer import (批量导入客户数据): rows checked by apps/customer_sheet.py, written in
batches with SQLAlchemy Core, and the error report of the rows refused.

Writing: a batch of rows is one transaction of a few multi-row statements (executemany),
so the SQLite file the switch shares is locked for milliseconds at a time, never for the
whole import, and an interrupted import leaves whole batches. Reading the sheet runs in
a worker thread between batches: the event loop (the switch, the web) keeps running.

Matching: a row is the existing customer with its external id, else the one customer
that has any of its phone numbers. ``update`` changes what the row gives and adds its
new numbers (it removes nothing); ``skip`` leaves existing customers alone. Importing a
file a second time therefore writes nothing: every row is unchanged or skipped.
Groups (集团) are found by code (or by name when the sheet has no code) and created when
missing; an existing group is never modified by an import.
"""

from __future__ import annotations

import asyncio
import enum
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from typing import IO, Any, Final, TypeVar, cast
from xml.etree import ElementTree

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from apps.customer_sheet import (
    REPORT_HEADERS,
    AccountManagers,
    CustomerImportError,
    CustomerRow,
    Field,
    Preview,
    RejectedRow,
    RowError,
    RowReader,
    Sheet,
    SheetError,
    Source,
    map_headers,
    preview,
)
from apps.db import Database
from apps.models import Customer, CustomerGroup, CustomerPhone, User

T = TypeVar("T")

BATCH_ROWS: Final = 1000
# Values per IN (...) list: well under SQLite's 32766 and asyncpg's 32767 parameters.
_MAX_IN_VALUES: Final = 5000

_customers = cast(Table, Customer.__table__)
_phones = cast(Table, CustomerPhone.__table__)
_groups = cast(Table, CustomerGroup.__table__)

ProgressCallback = Callable[[int, int], object]


class ExistingCustomers(enum.StrEnum):
    """What a row does to a customer that is already in the database."""

    UPDATE = "update"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int  # new customers
    updated: int  # existing customers changed
    unchanged: int  # existing customers the row already matched exactly (update mode)
    skipped: int  # existing customers left alone (skip mode)
    rejected: int  # rows refused; their reasons are in rejected_rows
    groups_created: int
    headers: tuple[str | None, ...]
    rejected_rows: tuple[RejectedRow, ...] = field(repr=False)

    @property
    def errors(self) -> tuple[RowError, ...]:
        return tuple(error for row in self.rejected_rows for error in row.errors)

    def summary(self) -> str:
        return (f"imported {self.imported}, updated {self.updated}, "
                f"unchanged {self.unchanged}, skipped {self.skipped}, "
                f"rejected {self.rejected}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CustomerImporter:
    """Previews and imports customer sheets into ``db``."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utc_now,
                 default_area_code: str | None = None, batch_rows: int = BATCH_ROWS) -> None:
        self._db = db
        self._clock = clock
        self._area_code = default_area_code
        self._batch_rows = batch_rows

    async def account_managers(self) -> AccountManagers:
        async with self._db.engine.connect() as connection:
            users = await connection.execute(select(User.id, User.username, User.name))
            return AccountManagers((row.id, row.username, row.name) for row in users)

    async def preview(self, source: Source, n: int = 10, *,
                      mapping: Mapping[str, str | Field] | None = None) -> Preview:
        """The mapping found and the first ``n`` rows checked; nothing is written.
        Raises SheetError when the file cannot be read."""
        managers = await self.account_managers()
        return await asyncio.to_thread(preview, source, n, mapping=mapping, managers=managers,
                                       default_area_code=self._area_code)

    async def import_file(
        self,
        source: Source,
        *,
        existing: ExistingCustomers | str = ExistingCustomers.UPDATE,
        mapping: Mapping[str, str | Field] | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImportResult:
        """Import every good row of the sheet; refuse the others with their reasons.

        Raises SheetError (nothing imported) when the file is no .xlsx workbook, has no
        header row or no column for the name. ``progress(rows_done, rows_total)`` is
        called after each batch; the total is the file's own estimate, never below
        rows_done."""
        mode = ExistingCustomers(existing)
        managers = await self.account_managers()
        sheet = await asyncio.to_thread(Sheet, source)
        reading: asyncio.Future[tuple[int, list[CustomerRow | RejectedRow]] | None] | None = None
        try:
            reader = RowReader(map_headers(sheet.headers, mapping), managers, self._area_code)
            batches = _batches(sheet.rows(), reader, self._batch_rows)
            run = _Run(mode)
            rows_done = 0
            # The next batch is read (in a thread) while this one is written.
            reading = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            while (batch := await reading) is not None:
                reading = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
                rows_read, checked = batch
                accepted = [row for row in checked if isinstance(row, CustomerRow)]
                run.rejected += [row for row in checked if isinstance(row, RejectedRow)]
                if accepted:
                    async with self._db.engine.begin() as connection:
                        if connection.dialect.name == "sqlite":
                            # The batch reads, then writes what it read: take the write
                            # lock first (SQLite has no row locks; its driver would read
                            # outside the transaction). Other writers wait one batch.
                            await connection.execute(text("BEGIN IMMEDIATE"))
                        await _write_batch(connection, run, accepted, self._clock())
                rows_done += rows_read
                if progress is not None:
                    progress(rows_done, max(rows_done, sheet.rows_estimate))
        finally:
            # The sheet is closed only after the reading thread has let go of it.
            if reading is not None:
                await asyncio.wait({reading})
                if not reading.cancelled():
                    reading.exception()  # retrieved: the error that matters is ours
            sheet.close()
        run.rejected.sort(key=lambda row: row.row)
        return ImportResult(
            imported=run.imported, updated=run.updated, unchanged=run.unchanged,
            skipped=run.skipped, rejected=len(run.rejected),
            groups_created=run.groups_created, headers=sheet.headers,
            rejected_rows=tuple(run.rejected),
        )


# What openpyxl raises on a sheet whose XML or compressed data breaks off midway.
_DAMAGE: Final = (zipfile.BadZipFile, zlib.error, ElementTree.ParseError, EOFError, ValueError,
                  KeyError)


def _batches(rows: Iterator[tuple[int, tuple[Any, ...]]], reader: RowReader, size: int,
             ) -> Iterator[tuple[int, list[CustomerRow | RejectedRow]]]:
    """(rows read, rows checked) ``size`` non-empty rows at a time; runs in a thread."""
    checked: list[CustomerRow | RejectedRow] = []
    read = 0
    last_row = 0
    while True:
        try:
            number, values = next(rows)
        except StopIteration:
            break
        except _DAMAGE as error:  # a zip member or XML cut short past the rows read
            raise SheetError(f"the sheet is damaged after row {last_row}: "
                             f"{error or type(error).__name__}") from None
        last_row = number
        read += 1
        row = reader.read(number, values)
        if row is not None:
            checked.append(row)
            if len(checked) >= size:
                yield read, checked
                checked, read = [], 0
    if checked or read:
        yield read, checked


# ---- writing ------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one import has done so far, across batches."""

    mode: ExistingCustomers
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    groups_created: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    group_by_code: dict[str, int] = field(default_factory=dict)
    group_by_name: dict[str, int] = field(default_factory=dict)
    # Existing customers already matched, by id -> row: a second row is refused.
    matched_rows: dict[int, int] = field(default_factory=dict)


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == _MAX_IN_VALUES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _refuse(run: _Run, row: CustomerRow, reason: str) -> None:
    """A row that passed the sheet's checks but conflicts with the database."""
    run.rejected.append(RejectedRow(row.row, row.values, (RowError(row.row, None, None, reason),)))


async def _write_batch(connection: AsyncConnection, run: _Run, rows: list[CustomerRow],
                       now: datetime) -> None:
    group_ids = await _group_ids(connection, run, rows, now)
    existing = await _existing_customers(connection, rows)
    new_rows: list[CustomerRow] = []
    updates: list[dict[str, Any]] = []
    new_phones: list[dict[str, Any]] = []
    for row in rows:
        group_id = group_ids.get(row.row)
        if isinstance(group_id, str):
            _refuse(run, row, group_id)
            continue
        match = existing.match(row)
        if isinstance(match, str):
            _refuse(run, row, match)
            continue
        if match is None:
            new_rows.append(row)
            continue
        earlier = run.matched_rows.setdefault(match.id, row.row)
        if earlier != row.row:
            _refuse(run, row, f"this is the same customer as row {earlier}")
            continue
        if run.mode is ExistingCustomers.SKIP:
            run.skipped += 1
            continue
        values = _updated_values(match, row, group_id)
        phones = [phone for phone in row.phones if phone.number not in match.numbers]
        if values is None and not phones:
            run.unchanged += 1
            continue
        run.updated += 1
        if values is None:
            values = _updated_values(match, row, group_id, force=True)
        assert values is not None
        updates.append({"b_id": match.id, "b_updated_at": now, **values})
        new_phones += [{"customer_id": match.id, "number": phone.number, "label": phone.label}
                       for phone in phones]
    if updates:
        await connection.execute(_UPDATE_CUSTOMER, updates)
    if new_rows:
        inserted = await _insert_returning_ids(
            connection, _customers,
            [{
                "group_id": group_ids.get(row.row),
                "name": row.name,
                "title": row.title,
                "vip_level": row.vip_level or 0,
                "account_manager_id": row.account_manager_id,
                "custom_fields": dict(row.custom_fields),
                "external_key": row.external_id,
                "created_at": now,
                "updated_at": now,
            } for row in new_rows],
        )
        for customer_id, row in zip(inserted, new_rows, strict=True):
            new_phones += [{"customer_id": customer_id, "number": phone.number,
                            "label": phone.label} for phone in row.phones]
        run.imported += len(new_rows)
    if new_phones:
        await connection.execute(insert(_phones), new_phones)


async def _insert_returning_ids(connection: AsyncConnection, table: Table,
                                rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in one executemany; their new ids, in the order of ``rows``."""
    if connection.dialect.name != "sqlite":
        inserted = await connection.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        return list(inserted.scalars())
    # SQLAlchemy cannot trust the order of SQLite's RETURNING rows and would insert one
    # row per statement (a thread round trip each through aiosqlite). But SQLite gives
    # a new row the largest id + 1, and the batch holds the write lock: the new rows are
    # the last len(rows) ids, in order. Checked, not assumed.
    await connection.execute(insert(table), rows)
    last = await connection.scalars(
        select(table.c.id).order_by(table.c.id.desc()).limit(len(rows)))
    ids = list(last)[::-1]
    if len(ids) != len(rows) or ids[-1] - ids[0] != len(rows) - 1:
        raise CustomerImportError(f"the new rows of {table.name} got no consecutive ids")
    return ids


_UPDATE_CUSTOMER: Final = (
    update(_customers)
    .where(_customers.c.id == bindparam("b_id"))
    .values(
        name=bindparam("b_name"),
        title=bindparam("b_title"),
        vip_level=bindparam("b_vip_level"),
        account_manager_id=bindparam("b_account_manager_id"),
        group_id=bindparam("b_group_id"),
        custom_fields=bindparam("b_custom_fields", type_=_customers.c.custom_fields.type),
        external_key=bindparam("b_external_key"),
        updated_at=bindparam("b_updated_at", type_=_customers.c.updated_at.type),
    )
)


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    name: str
    title: str | None
    vip_level: int
    account_manager_id: int | None
    group_id: int | None
    custom_fields: dict[str, Any]
    external_key: str | None
    numbers: frozenset[str]


def _updated_values(customer: _Existing, row: CustomerRow, group_id: int | None,
                    force: bool = False) -> dict[str, Any] | None:
    """The customer's columns after the row is applied; None when nothing changes."""
    values = {
        "b_name": row.name,
        "b_title": row.title if row.title is not None else customer.title,
        "b_vip_level": row.vip_level if row.vip_level is not None else customer.vip_level,
        "b_account_manager_id": (row.account_manager_id if row.account_manager_id is not None
                                 else customer.account_manager_id),
        "b_group_id": group_id if group_id is not None else customer.group_id,
        "b_custom_fields": {**customer.custom_fields, **row.custom_fields},
        "b_external_key": row.external_id or customer.external_key,
    }
    before = {
        "b_name": customer.name, "b_title": customer.title, "b_vip_level": customer.vip_level,
        "b_account_manager_id": customer.account_manager_id, "b_group_id": customer.group_id,
        "b_custom_fields": customer.custom_fields, "b_external_key": customer.external_key,
    }
    return values if force or values != before else None


class _ExistingCustomers:
    """The customers of the database a batch's rows can match, with their numbers."""

    def __init__(self, by_id: dict[int, _Existing], by_key: dict[str, int],
                 by_number: dict[str, set[int]]) -> None:
        self._by_id = by_id
        self._by_key = by_key
        self._by_number = by_number

    def match(self, row: CustomerRow) -> _Existing | str | None:
        """The customer the row updates, None for a new one, or why the row is refused."""
        if row.external_id is not None and row.external_id in self._by_key:
            return self._by_id[self._by_key[row.external_id]]
        owners: dict[int, str] = {}
        for phone in row.phones:
            for customer_id in sorted(self._by_number.get(phone.number, ())):
                owners.setdefault(customer_id, phone.number)
        if not owners:
            return None
        if len(owners) > 1:
            numbers = ", ".join(sorted(set(owners.values())))
            return (f"the phone numbers ({numbers}) belong to {len(owners)} different "
                    f"customers already")
        [(customer_id, number)] = owners.items()
        customer = self._by_id[customer_id]
        if (row.external_id is not None and customer.external_key is not None):
            return (f"phone {number} belongs to the customer with external id "
                    f"'{customer.external_key}'")
        return customer


async def _existing_customers(connection: AsyncConnection, rows: Sequence[CustomerRow],
                              ) -> _ExistingCustomers:
    keys = {row.external_id for row in rows if row.external_id is not None}
    numbers = {phone.number for row in rows for phone in row.phones}
    by_key: dict[str, int] = {}
    for chunk in _chunks(keys):
        found = await connection.execute(
            select(_customers.c.external_key, _customers.c.id)
            .where(_customers.c.external_key.in_(chunk)))
        by_key.update({key: customer_id for key, customer_id in found})
    by_number: dict[str, set[int]] = {}
    for chunk in _chunks(numbers):
        found = await connection.execute(
            select(_phones.c.number, _phones.c.customer_id).where(_phones.c.number.in_(chunk)))
        for number, customer_id in found:
            by_number.setdefault(number, set()).add(customer_id)
    ids = set(by_key.values()).union(*by_number.values())
    by_id: dict[int, _Existing] = {}
    all_numbers: dict[int, set[str]] = {}
    for id_chunk in _chunks(sorted(ids)):
        found = await connection.execute(
            select(_phones.c.customer_id, _phones.c.number)
            .where(_phones.c.customer_id.in_(id_chunk)))
        for customer_id, number in found:
            all_numbers.setdefault(customer_id, set()).add(number)
        customers = await connection.execute(
            select(_customers.c.id, _customers.c.name, _customers.c.title,
                   _customers.c.vip_level, _customers.c.account_manager_id,
                   _customers.c.group_id, _customers.c.custom_fields,
                   _customers.c.external_key)
            .where(_customers.c.id.in_(id_chunk)))
        for c in customers:
            by_id[c.id] = _Existing(c.id, c.name, c.title, c.vip_level, c.account_manager_id,
                                    c.group_id, dict(c.custom_fields or {}), c.external_key,
                                    frozenset(all_numbers.get(c.id, ())))
    return _ExistingCustomers(by_id, by_key, by_number)


async def _group_ids(connection: AsyncConnection, run: _Run, rows: Sequence[CustomerRow],
                     now: datetime) -> dict[int, int | str]:
    """Row number -> group id for rows naming a group (found or created), or the reason
    the group cannot be made."""
    wanted_codes: dict[str, str] = {}  # code -> name for a new group
    wanted_names: set[str] = set()
    for row in rows:
        if row.group_code is not None:
            wanted_codes.setdefault(row.group_code, row.group_name or row.group_code)
        elif row.group_name is not None:
            wanted_names.add(row.group_name)
    missing_codes = [code for code in wanted_codes if code not in run.group_by_code]
    missing_names = [name for name in wanted_names
                     if name not in run.group_by_name and name not in run.group_by_code]
    for chunk in _chunks(missing_codes + missing_names):
        found = await connection.execute(
            select(_groups.c.id, _groups.c.code, _groups.c.name)
            .where(_groups.c.code.in_(chunk) | _groups.c.name.in_(chunk)))
        for group_id, code, name in found:
            run.group_by_code.setdefault(code, group_id)
            run.group_by_name.setdefault(name, group_id)
    # A group named without a code is created with its name as the code.
    to_create = {code: name for code, name in wanted_codes.items()
                 if code not in run.group_by_code}
    to_create.update({name: name for name in wanted_names
                      if name not in run.group_by_name and name not in run.group_by_code
                      and len(name) <= _MAX_GROUP_CODE_CHARS})
    if to_create:
        created = await _insert_returning_ids(
            connection, _groups,
            [{"code": code, "name": name, "vip_level": 0, "custom_fields": {},
              "created_at": now, "updated_at": now} for code, name in to_create.items()])
        for group_id, (code, name) in zip(created, to_create.items(), strict=True):
            run.group_by_code[code] = group_id
            run.group_by_name.setdefault(name, group_id)
        run.groups_created += len(to_create)
    ids: dict[int, int | str] = {}
    for row in rows:
        if row.group_code is not None:
            ids[row.row] = run.group_by_code[row.group_code]
        elif row.group_name is not None:
            group_id = run.group_by_name.get(row.group_name,
                                             run.group_by_code.get(row.group_name))
            ids[row.row] = group_id if group_id is not None else (
                f"group '{row.group_name}' does not exist and has no group code; "
                f"add its code (集团编号)")
    return ids


_MAX_GROUP_CODE_CHARS: Final = 32


# ---- error report -------------------------------------------------------------------------

# A cell starting with one of these is a formula (or becomes one) when the report is
# opened in Excel or LibreOffice: CSV/formula injection (OWASP).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """A cell value safe to export: text that a spreadsheet would run as a formula gets
    a leading apostrophe, characters XML cannot carry are dropped."""
    if not isinstance(value, str):
        return value
    text = ILLEGAL_CHARACTERS_RE.sub("", value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def write_error_report(result: ImportResult, target: str | PathLike[str] | IO[bytes]) -> None:
    """An .xlsx with one line per rejected row: row number, columns and reasons, then the
    row's cells as they were read. Fix the cells and the file imports as it is (the
    three report columns are ignored by the import)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("rejected")
    sheet.append([*REPORT_HEADERS, *(neutralise(header) for header in result.headers)])
    for rejected in result.rejected_rows:
        columns = "\n".join(_column_label(error) for error in rejected.errors)
        reasons = "\n".join(error.reason for error in rejected.errors)
        values = list(rejected.values) + [None] * (len(result.headers) - len(rejected.values))
        sheet.append([rejected.row, neutralise(columns), neutralise(reasons),
                      *(neutralise(value) for value in values)])
    workbook.save(target)


def _column_label(error: RowError) -> str:
    return f"{error.column} {error.header}" if error.column is not None else "-"


__all__ = [
    "BATCH_ROWS",
    "REPORT_HEADERS",
    "CustomerImportError",
    "CustomerImporter",
    "ExistingCustomers",
    "ImportResult",
    "ProgressCallback",
    "neutralise",
    "write_error_report",
]
