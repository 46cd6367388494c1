"""Customer import (批量导入客户数据): rows checked by apps/customer_sheet.py, matched by
apps/customer_matching.py, written in batches with SQLAlchemy Core, and the error report
of the rows refused.

Writing: a batch of rows is one transaction of a few multi-row statements (executemany),
so the SQLite file the switch shares is locked for milliseconds at a time, never for the
whole import, and an interrupted import leaves whole batches. Reading the sheet runs in
a worker thread between batches: the event loop (the switch, the web) keeps running.

Matching (apps/customer_matching.py): a row is the customer with its external id, else
the customer holding one of its numbers under the same name. A number held by a customer
with another name is a conflict: by default nothing changes (the row is skipped and
reported); ``conflicts``/``conflict_rows`` choose update or add instead. ``update``
changes what the row gives and adds its new numbers (it removes nothing); ``skip``
leaves existing customers alone. Importing a file a second time with the same choices
therefore writes nothing: every row is unchanged, skipped or refused again.
Groups (集团) are found by code (or by name when the sheet has no code) and created when
missing; an existing group is never modified by an import.

``check_file`` runs the same steps without writing anything: the preview of every row.
"""

from __future__ import annotations

import asyncio
import enum
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from os import PathLike
from typing import IO, Any, Final, cast
from xml.etree import ElementTree

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from apps.customer_levels import VipLevels
from apps.customer_matching import (
    Change,
    Conflict,
    ConflictChoice,
    KnownCustomers,
    RowOutcome,
    RowPlan,
    chunks,
    load_known_customers,
    updated_values,
)
from apps.customer_reasons import Reason, reason
from apps.customer_sheet import (
    REPORT_HEADERS,
    AccountManagers,
    CustomerImportError,
    CustomerRow,
    Field,
    Phone,
    RejectedRow,
    RowError,
    RowReader,
    Sheet,
    SheetError,
    SheetMapping,
    Source,
    map_headers,
)
from apps.db import Database
from apps.models import Customer, CustomerGroup, CustomerPhone, User

BATCH_ROWS: Final = 1000

_customers = cast(Table, Customer.__table__)
_phones = cast(Table, CustomerPhone.__table__)
_groups = cast(Table, CustomerGroup.__table__)

ProgressCallback = Callable[[int, int], object]
RowsCallback = Callable[[Sequence[RowPlan]], object]


class ExistingCustomers(enum.StrEnum):
    """What a row does to a customer that is already in the database."""

    UPDATE = "update"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int  # new customers (conflicts resolved "add" among them)
    updated: int  # existing customers changed (conflicts resolved "update" among them)
    unchanged: int  # existing customers the row already matched exactly (update mode)
    skipped: int  # existing customers left alone: skip mode, and conflicts skipped
    rejected: int  # rows refused; their reasons are in rejected_rows
    groups_created: int
    headers: tuple[str | None, ...]
    rejected_rows: tuple[RejectedRow, ...] = field(repr=False)
    # Every conflict row, with what was done (RowPlan.resolution), in row order.
    conflicts: tuple[RowPlan, ...] = field(default=(), repr=False)

    @property
    def errors(self) -> tuple[RowError, ...]:
        return tuple(error for row in self.rejected_rows for error in row.errors)

    def summary(self) -> str:
        return (f"imported {self.imported}, updated {self.updated}, "
                f"unchanged {self.unchanged}, skipped {self.skipped}, "
                f"rejected {self.rejected}")


@dataclass(frozen=True, slots=True)
class SheetCheck:
    """What importing a sheet would do, counted by outcome; nothing was written. The
    counts are for updating existing customers and leaving conflicts undecided."""

    headers: tuple[str | None, ...]
    mapping: SheetMapping
    counts: Mapping[RowOutcome, int]  # every outcome, 0 included
    groups_created: int  # groups the import would create

    @property
    def has_name_column(self) -> bool:
        return bool(self.mapping.of(Field.NAME))


# Which count of ImportResult a row adds to, by its outcome and a conflict's resolution.
_COUNTED_AS: Final[Mapping[tuple[RowOutcome, ConflictChoice | None], str]] = {
    (RowOutcome.NEW, None): "imported",
    (RowOutcome.UPDATE, None): "updated",
    (RowOutcome.UNCHANGED, None): "unchanged",
    (RowOutcome.SKIP, None): "skipped",
    (RowOutcome.REJECTED, None): "rejected",
    (RowOutcome.CONFLICT, None): "skipped",
    (RowOutcome.CONFLICT, ConflictChoice.SKIP): "skipped",
    (RowOutcome.CONFLICT, ConflictChoice.UPDATE): "updated",
    (RowOutcome.CONFLICT, ConflictChoice.ADD): "imported",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CustomerImporter:
    """Checks (previews) and imports customer sheets into ``db``."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utc_now,
                 default_area_code: str | None = None, batch_rows: int = BATCH_ROWS,
                 vip_levels: VipLevels | None = None) -> None:
        self._db = db
        self.vip_levels = vip_levels or VipLevels()
        self._clock = clock
        self._area_code = default_area_code
        self._batch_rows = batch_rows

    async def account_managers(self) -> AccountManagers:
        async with self._db.engine.connect() as connection:
            users = await connection.execute(select(User.id, User.username, User.name))
            return AccountManagers((row.id, row.username, row.name) for row in users)

    async def check_file(
        self,
        source: Source,
        *,
        mapping: Mapping[str, str | Field] | None = None,
        progress: ProgressCallback | None = None,
        on_rows: RowsCallback | None = None,
    ) -> SheetCheck:
        """Every row planned as ``import_file`` would with its defaults (existing
        customers updated, conflicts not chosen yet), against the database as it is now;
        nothing is written. ``on_rows(plans)`` gets each batch's rows in row order.

        A sheet without a name column checks no rows (the mapping can still be
        changed). Raises SheetError when the file cannot be read."""
        run = _Run(write=False, mode=ExistingCustomers.UPDATE, conflicts=None)
        headers, found = await self._go(source, run, mapping, progress, on_rows)
        return SheetCheck(headers, found, {outcome: run.outcomes[outcome] for outcome in
                                           RowOutcome}, run.groups_created)

    async def import_file(
        self,
        source: Source,
        *,
        existing: ExistingCustomers | str = ExistingCustomers.UPDATE,
        conflicts: ConflictChoice | str = ConflictChoice.SKIP,
        conflict_rows: Mapping[int, ConflictChoice | str] | None = None,
        mapping: Mapping[str, str | Field] | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImportResult:
        """Import every good row of the sheet; refuse the others with their reasons.

        ``conflicts`` is what every conflict row does, ``conflict_rows`` (Excel row
        number -> choice) overrides it for single rows; a choice for a row that turns
        out to be no conflict is ignored. ``existing`` does not apply to conflicts.

        Raises SheetError (nothing imported) when the file is no .xlsx workbook, has no
        header row or no column for the name. ``progress(rows_done, rows_total)`` is
        called after each batch; the total is the file's own estimate, never below
        rows_done."""
        run = _Run(write=True, mode=ExistingCustomers(existing),
                   conflicts=ConflictChoice(conflicts),
                   conflict_rows={row: ConflictChoice(choice)
                                  for row, choice in (conflict_rows or {}).items()})
        headers, _ = await self._go(source, run, mapping, progress, None)
        counted = Counter({name: 0 for name in _COUNTED_AS.values()})
        for (outcome, resolution), n in run.tallies.items():
            counted[_COUNTED_AS[outcome, resolution]] += n
        return ImportResult(
            imported=counted["imported"], updated=counted["updated"],
            unchanged=counted["unchanged"], skipped=counted["skipped"],
            rejected=counted["rejected"], groups_created=run.groups_created, headers=headers,
            rejected_rows=tuple(RejectedRow(plan.row, plan.values, plan.errors)
                                for plan in run.kept if plan.outcome is RowOutcome.REJECTED),
            conflicts=tuple(plan for plan in run.kept if plan.outcome is RowOutcome.CONFLICT),
        )

    async def _go(self, source: Source, run: _Run, mapping: Mapping[str, str | Field] | None,
                  progress: ProgressCallback | None, on_rows: RowsCallback | None,
                  ) -> tuple[tuple[str | None, ...], SheetMapping]:
        """Read, plan and (when ``run.write``) write the sheet batch by batch."""
        managers = await self.account_managers()
        sheet = await asyncio.to_thread(Sheet, source)
        reading: asyncio.Future[tuple[int, list[CustomerRow | RejectedRow]] | None] | None = None
        try:
            found = map_headers(sheet.headers, mapping)
            if not run.write and not found.of(Field.NAME):
                return sheet.headers, found
            reader = RowReader(found, managers, self._area_code, self.vip_levels)
            batches = _batches(sheet.rows(), reader, self._batch_rows)
            rows_done = 0
            # The next batch is read (in a thread) while this one is written.
            reading = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            while (batch := await reading) is not None:
                reading = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
                rows_read, checked = batch
                plans = [_rejected(row) for row in checked if isinstance(row, RejectedRow)]
                accepted = [row for row in checked if isinstance(row, CustomerRow)]
                if accepted:
                    plans += await self._batch(run, accepted)
                plans.sort(key=lambda plan: plan.row)
                run.record(plans)
                if on_rows is not None:
                    on_rows(plans)
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
        return sheet.headers, found

    async def _batch(self, run: _Run, rows: list[CustomerRow]) -> list[RowPlan]:
        if not run.write:
            async with self._db.engine.connect() as connection:
                return await _plan_batch(connection, run, rows, self._clock())
        async with self._db.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                # The batch reads, then writes what it read: take the write lock first
                # (SQLite has no row locks; its driver would read outside the
                # transaction). Other writers wait one batch.
                await connection.execute(text("BEGIN IMMEDIATE"))
            return await _plan_batch(connection, run, rows, self._clock())


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
            raise SheetError("damaged", row=last_row,
                             detail=str(error) or type(error).__name__) from None
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


# ---- planning and writing -----------------------------------------------------------------


@dataclass
class _Run:
    """What one import (or check) has done so far, across batches."""

    write: bool  # False: a check, which writes nothing
    mode: ExistingCustomers
    conflicts: ConflictChoice | None  # None: not chosen (a check)
    conflict_rows: dict[int, ConflictChoice] = field(default_factory=dict)
    groups_created: int = 0
    outcomes: Counter[RowOutcome] = field(default_factory=Counter)
    tallies: Counter[tuple[RowOutcome, ConflictChoice | None]] = field(default_factory=Counter)
    kept: list[RowPlan] = field(default_factory=list)  # an import's rejected and conflicts
    group_by_code: dict[str, int] = field(default_factory=dict)
    group_by_name: dict[str, int] = field(default_factory=dict)
    # Existing customers already matched (or updated by a conflict row), by id -> row:
    # a later row with the same customer is refused.
    matched_rows: dict[int, int] = field(default_factory=dict)

    def choice(self, row: int) -> ConflictChoice | None:
        return self.conflict_rows.get(row, self.conflicts)

    def record(self, plans: Sequence[RowPlan]) -> None:
        for plan in plans:
            self.outcomes[plan.outcome] += 1
            self.tallies[plan.outcome, plan.resolution] += 1
            if self.write and plan.outcome in (RowOutcome.REJECTED, RowOutcome.CONFLICT):
                self.kept.append(plan)


@dataclass(frozen=True, slots=True)
class _Write:
    """What a planned row writes: a new customer (``customer_id`` None), or the columns
    and new numbers of an existing one."""

    customer_id: int | None
    values: dict[str, Any] = field(default_factory=dict)
    numbers: tuple[Phone, ...] = ()


def _rejected(row: RejectedRow) -> RowPlan:
    return RowPlan(row.row, RowOutcome.REJECTED, row.values, errors=row.errors)


def _refused(row: CustomerRow, why: Reason) -> RowPlan:
    """A row that passed the sheet's checks but conflicts with the database."""
    return RowPlan(row.row, RowOutcome.REJECTED, row.values, sheet_name=row.name,
                   errors=(RowError(row.row, None, None, why),))


def _plan(run: _Run, known: KnownCustomers, row: CustomerRow, group_id: int | Reason | None,
          ) -> tuple[RowPlan, _Write | None]:
    """What the row does, and what that writes."""
    if isinstance(group_id, Reason):
        return _refused(row, group_id), None
    found = known.match(row)
    if isinstance(found, Reason):
        return _refused(row, found), None
    if found is None:
        return RowPlan(row.row, RowOutcome.NEW, row.values, sheet_name=row.name), _Write(None)
    customer = found.customer if isinstance(found, Conflict) else found
    earlier = run.matched_rows.get(customer.id)
    if earlier is not None:
        return _refused(row, reason("same_customer", row=earlier)), None
    plan = RowPlan(row.row, RowOutcome.UNCHANGED, row.values, customer_id=customer.id,
                   existing_name=customer.name, sheet_name=row.name)
    if isinstance(found, Conflict):
        plan = replace(plan, outcome=RowOutcome.CONFLICT, number=found.number,
                       resolution=run.choice(row.row))
        if plan.resolution is ConflictChoice.ADD:
            return plan, _Write(None)
        if plan.resolution is not ConflictChoice.UPDATE:
            return plan, None
    run.matched_rows[customer.id] = row.row
    if plan.outcome is RowOutcome.UNCHANGED and run.mode is ExistingCustomers.SKIP:
        return replace(plan, outcome=RowOutcome.SKIP), None
    values, changes = updated_values(customer, row, group_id)
    numbers = tuple(phone for phone in row.phones if phone.number not in customer.numbers)
    if numbers:
        changes += (Change.PHONES,)
    if not changes:
        return plan, None
    if plan.outcome is RowOutcome.UNCHANGED:
        plan = replace(plan, outcome=RowOutcome.UPDATE)
    return replace(plan, changes=changes), _Write(customer.id, values, numbers)


async def _plan_batch(connection: AsyncConnection, run: _Run, rows: list[CustomerRow],
                      now: datetime) -> list[RowPlan]:
    """Plan the rows of one batch and, for an import, write them."""
    group_ids = await _group_ids(connection, run, rows, now)
    known = await load_known_customers(connection, rows)
    plans: list[RowPlan] = []
    new_rows: list[CustomerRow] = []
    updates: list[dict[str, Any]] = []
    new_phones: list[dict[str, Any]] = []
    for row in rows:
        plan, write = _plan(run, known, row, group_ids.get(row.row))
        plans.append(plan)
        if write is None:
            continue
        if write.customer_id is None:
            new_rows.append(row)
            continue
        updates.append({"b_id": write.customer_id, "b_updated_at": now, **write.values})
        new_phones += [{"customer_id": write.customer_id, "number": phone.number,
                        "label": phone.label} for phone in write.numbers]
    if not run.write:
        return plans
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
    if new_phones:
        await connection.execute(insert(_phones), new_phones)
    return plans


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
        raise CustomerImportError("no_consecutive_ids", table=table.name)
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


async def _group_ids(connection: AsyncConnection, run: _Run, rows: Sequence[CustomerRow],
                     now: datetime) -> dict[int, int | Reason]:
    """Row number -> group id for rows naming a group (found or created; a check makes
    up negative ids for the groups it would create), or the reason the group cannot be
    made."""
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
    for chunk in chunks(missing_codes + missing_names):
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
        if run.write:
            created = await _insert_returning_ids(
                connection, _groups,
                [{"code": code, "name": name, "vip_level": 0, "custom_fields": {},
                  "created_at": now, "updated_at": now} for code, name in to_create.items()])
        else:  # a check: ids of its own, so later rows find the group as they would
            created = [-(run.groups_created + n) for n in range(1, len(to_create) + 1)]
        for group_id, (code, name) in zip(created, to_create.items(), strict=True):
            run.group_by_code[code] = group_id
            run.group_by_name.setdefault(name, group_id)
        run.groups_created += len(to_create)
    ids: dict[int, int | Reason] = {}
    for row in rows:
        if row.group_code is not None:
            ids[row.row] = run.group_by_code[row.group_code]
        elif row.group_name is not None:
            group_id = run.group_by_name.get(row.group_name,
                                             run.group_by_code.get(row.group_name))
            ids[row.row] = group_id if group_id is not None else reason(
                "group_without_code", name=row.group_name)
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


def write_error_report(result: ImportResult, target: str | PathLike[str] | IO[bytes], *,
                       say: Callable[[Reason], str] = str,
                       column_label: Callable[[RowError], str] | None = None) -> None:
    """An .xlsx with one line per rejected row: row number, columns and reasons, then the
    row's cells as they were read. Fix the cells and the file imports as it is (the
    three report columns are ignored by the import). ``say`` words a reason and
    ``column_label`` names a column (by its header and letter) in the reader's language;
    English by default."""
    label = column_label or _column_label
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("rejected")
    sheet.append([*REPORT_HEADERS, *(neutralise(header) for header in result.headers)])
    for rejected in result.rejected_rows:
        columns = "\n".join(label(error) if error.column is not None else "-"
                            for error in rejected.errors)
        reasons = "\n".join(say(error.reason) for error in rejected.errors)
        values = list(rejected.values) + [None] * (len(result.headers) - len(rejected.values))
        sheet.append([rejected.row, neutralise(columns), neutralise(reasons),
                      *(neutralise(value) for value in values)])
    workbook.save(target)


def _column_label(error: RowError) -> str:
    return f'column {error.column} "{error.header}"'


__all__ = [
    "BATCH_ROWS",
    "REPORT_HEADERS",
    "Change",
    "ConflictChoice",
    "CustomerImportError",
    "CustomerImporter",
    "ExistingCustomers",
    "ImportResult",
    "ProgressCallback",
    "RowOutcome",
    "RowPlan",
    "RowsCallback",
    "SheetCheck",
    "neutralise",
    "write_error_report",
]
