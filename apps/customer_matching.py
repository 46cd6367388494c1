"""Which existing customer a sheet row is, and what importing the row would change.

A row is the customer with its external id (外部编号); else, among the customers that
hold any of its phone numbers, the one with the same name (as written). A number alone
never renames anyone: when the one customer holding the row's numbers has another name,
the row is a conflict, and the operator chooses what it does (``ConflictChoice``):
nothing, update that customer with the sheet's name and fields, or add a new customer
who shares the number. Two customers may share a number (customer_phones is unique
per customer only: a household, a switchboard); the caller lookup then picks one
deterministically (``CustomerService.lookup_by_number``: the highest effective VIP
level, then the oldest). A row never gives a customer a number another customer has:
that row is refused, as the customer page refuses it.

Every row ends in one ``RowPlan``; the preview shows the plans without writing them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from apps.customer_reasons import Reason, reason
from apps.customer_sheet import CustomerRow, RowError
from apps.models import Customer, CustomerPhone

T = TypeVar("T")

# Values per IN (...) list: well under SQLite's 32766 and asyncpg's 32767 parameters.
MAX_IN_VALUES: Final = 5000

_customers = cast(Table, Customer.__table__)
_phones = cast(Table, CustomerPhone.__table__)


class RowOutcome(enum.StrEnum):
    """What a row does (or, in the preview, would do)."""

    NEW = "new"  # a customer is added
    UPDATE = "update"  # an existing customer changes (``RowPlan.changes``)
    UNCHANGED = "unchanged"  # an existing customer already is what the row says
    SKIP = "skip"  # an existing customer left alone: the import skips existing ones
    CONFLICT = "conflict"  # the row's number is a customer's with another name
    REJECTED = "rejected"  # refused (``RowPlan.errors``)


class ConflictChoice(enum.StrEnum):
    """What a conflict row does; nothing unless the operator says otherwise."""

    SKIP = "skip"  # change nothing
    UPDATE = "update"  # the customer takes the sheet's name and fields
    ADD = "add"  # a new customer, sharing the number


class Change(enum.StrEnum):
    """A part of an existing customer a row changes."""

    NAME = "name"
    TITLE = "title"
    VIP_LEVEL = "vip_level"
    ACCOUNT_MANAGER = "account_manager"
    GROUP = "group"
    CUSTOM_FIELDS = "custom_fields"
    EXTERNAL_ID = "external_id"
    PHONES = "phones"  # numbers added (an import never removes one)


@dataclass(frozen=True, slots=True)
class RowPlan:
    """One row's outcome. For a conflict: the number, the customer who has it and both
    names; ``resolution`` is what the import did (None in the preview: not chosen)."""

    row: int
    outcome: RowOutcome
    values: tuple[Any, ...] = ()  # the cells as read
    changes: tuple[Change, ...] = ()
    customer_id: int | None = None  # the existing customer matched or in conflict
    existing_name: str | None = None
    sheet_name: str | None = None
    number: str | None = None
    resolution: ConflictChoice | None = None
    errors: tuple[RowError, ...] = ()


@dataclass(frozen=True, slots=True)
class KnownCustomer:
    id: int
    name: str
    title: str | None
    vip_level: int
    account_manager_id: int | None
    group_id: int | None
    custom_fields: dict[str, Any]
    external_key: str | None
    numbers: frozenset[str]


@dataclass(frozen=True, slots=True)
class Conflict:
    """The row's ``number`` belongs to ``customer``, whose name is not the row's."""

    customer: KnownCustomer
    number: str


# The customer columns an update writes, with the part of the customer each one is.
_COLUMNS: Final = (
    ("b_name", Change.NAME), ("b_title", Change.TITLE), ("b_vip_level", Change.VIP_LEVEL),
    ("b_account_manager_id", Change.ACCOUNT_MANAGER), ("b_group_id", Change.GROUP),
    ("b_custom_fields", Change.CUSTOM_FIELDS), ("b_external_key", Change.EXTERNAL_ID),
)


def updated_values(customer: KnownCustomer, row: CustomerRow, group_id: int | None,
                   ) -> tuple[dict[str, Any], tuple[Change, ...]]:
    """The customer's columns after the row is applied, and which of them change. A
    value the sheet does not give leaves the customer's as it is."""
    before: dict[str, Any] = {
        "b_name": customer.name, "b_title": customer.title, "b_vip_level": customer.vip_level,
        "b_account_manager_id": customer.account_manager_id, "b_group_id": customer.group_id,
        "b_custom_fields": customer.custom_fields, "b_external_key": customer.external_key,
    }
    given: dict[str, Any] = {
        "b_name": row.name, "b_title": row.title, "b_vip_level": row.vip_level,
        "b_account_manager_id": row.account_manager_id, "b_group_id": group_id,
        "b_external_key": row.external_id,
    }
    after = {key: before[key] if given.get(key) is None else given[key] for key in before}
    after["b_custom_fields"] = {**customer.custom_fields, **row.custom_fields}
    changes = tuple(change for key, change in _COLUMNS if after[key] != before[key])
    return after, changes


class KnownCustomers:
    """The customers of the database a batch's rows can match, with their numbers."""

    def __init__(self, by_id: dict[int, KnownCustomer], by_key: dict[str, int],
                 by_number: dict[str, set[int]]) -> None:
        self._by_id = by_id
        self._by_key = by_key
        self._by_number = by_number

    def match(self, row: CustomerRow) -> KnownCustomer | Conflict | Reason | None:
        """The customer the row is, a conflict, None for a new customer, or why the row
        is refused."""
        owners: dict[int, str] = {}  # customer id -> the first of the row's numbers it has
        for phone in row.phones:
            for customer_id in sorted(self._by_number.get(phone.number, ())):
                owners.setdefault(customer_id, phone.number)
        if row.external_id is not None and row.external_id in self._by_key:
            customer = self._by_id[self._by_key[row.external_id]]
            return self._taken(customer, row) or customer
        if not owners:
            return None
        named = [customer_id for customer_id in owners
                 if self._by_id[customer_id].name == row.name]
        if len(named) == 1:
            customer = self._by_id[named[0]]
            if self._taken(customer, row):
                return _shared(owners)
        elif named or len(owners) > 1:
            return _shared(owners)
        else:
            customer = self._by_id[next(iter(owners))]
        number = owners[customer.id]
        if row.external_id is not None and customer.external_key is not None:
            return reason("phone_of_external_id", number=number,
                          external_id=customer.external_key)
        return customer if named else Conflict(customer, number)


    def _taken(self, customer: KnownCustomer, row: CustomerRow) -> Reason | None:
        """Why the row cannot be ``customer``: it would give them a number another
        customer has. A number is never taken from one customer by adding it to another
        (as on the customer page: CustomerService.update_customer)."""
        for phone in row.phones:
            holders = sorted(self._by_number.get(phone.number, ()))
            if holders and phone.number not in customer.numbers:
                name = self._by_id[holders[0]].name
                return reason("phone_taken", number=phone.number, name=name)
        return None


def _shared(owners: dict[int, str]) -> Reason:
    numbers = ", ".join(sorted(set(owners.values())))
    return reason("phones_shared", numbers=numbers, n=len(owners))


def chunks(values: Iterable[T]) -> Iterator[list[T]]:
    """``values`` in lists short enough for one IN (...)."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == MAX_IN_VALUES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def load_known_customers(connection: AsyncConnection, rows: Sequence[CustomerRow],
                               ) -> KnownCustomers:
    """The customers with the external ids or phone numbers of ``rows``."""
    keys = {row.external_id for row in rows if row.external_id is not None}
    numbers = {phone.number for row in rows for phone in row.phones}
    by_key: dict[str, int] = {}
    for chunk in chunks(keys):
        found = await connection.execute(
            select(_customers.c.external_key, _customers.c.id)
            .where(_customers.c.external_key.in_(chunk)))
        by_key.update({key: customer_id for key, customer_id in found})
    by_number: dict[str, set[int]] = {}
    for chunk in chunks(numbers):
        found = await connection.execute(
            select(_phones.c.number, _phones.c.customer_id).where(_phones.c.number.in_(chunk)))
        for number, customer_id in found:
            by_number.setdefault(number, set()).add(customer_id)
    ids = set(by_key.values()).union(*by_number.values())
    by_id: dict[int, KnownCustomer] = {}
    all_numbers: dict[int, set[str]] = {}
    for id_chunk in chunks(sorted(ids)):
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
            by_id[c.id] = KnownCustomer(c.id, c.name, c.title, c.vip_level,
                                        c.account_manager_id, c.group_id,
                                        dict(c.custom_fields or {}), c.external_key,
                                        frozenset(all_numbers.get(c.id, ())))
    return KnownCustomers(by_id, by_key, by_number)
