"""The customer database: enterprise groups (集团), their member customers, phone numbers,
VIP levels, account managers and free custom fields; and the caller lookup that inbound
routing and the screen pop run on every call.

Numbers are stored in one form, the national form of ``switch.pri_gateway.normalize``
(13800138000, 01088886666), and every number we are given, stored or looked up, is
normalised the same way first; so "+86 138-0013-8000" finds what "13800138000" stored,
and the lookup is a single probe of the index on ``customer_phones.number``.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, bindparam, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from apps.customer_levels import VipLevelError, VipLevels, effective_vip_level
from apps.db import Database
from apps.models import Customer, CustomerGroup, CustomerPhone, User
from switch.pri_gateway import NumberError, NumberKind, normalize

MAX_NAME_CHARS: Final = 200  # customers.name, customer_groups.name
MAX_TITLE_CHARS: Final = 100
MAX_CODE_CHARS: Final = 32
MAX_LABEL_CHARS: Final = 32
MAX_EXTERNAL_KEY_CHARS: Final = 128
MAX_PAGE_SIZE: Final = 500

# What a customer's number may be. Short service numbers (10086) and bare local numbers
# (no area code to place them) identify no one; unknown shapes would never match a
# normalised caller ID.
STORABLE_KINDS: Final = frozenset(
    {NumberKind.MOBILE, NumberKind.FIXED, NumberKind.SERVICE_400_800, NumberKind.INTERNATIONAL}
)
_KIND_REASONS: Final[Mapping[NumberKind, str]] = {
    NumberKind.LOCAL: "a local number needs its area code",
    NumberKind.SHORT_SERVICE: "a short service number is no customer's number",
    NumberKind.INTERNAL: "an extension is no customer's number",
    NumberKind.UNKNOWN: "not a mobile, fixed-line, 400/800 or international number",
}

CustomFieldValue = str | int | float | bool


class CustomerError(Exception):
    """A customer-database request that cannot be done; the message is shown as is."""


class PhoneTaken(CustomerError):
    """A number given to a customer that another customer already has. A customer's
    number is whom the screen pop shows: it is not taken from one customer by adding it
    to another (the customer import follows the same rule)."""

    def __init__(self, number: str, owner_id: int, owner_name: str) -> None:
        super().__init__(f"number {number} belongs to customer {owner_id} ({owner_name})")
        self.number = number
        self.owner_id = owner_id
        self.owner_name = owner_name


class _Unset(enum.Enum):
    UNSET = 0


UNSET: Final = _Unset.UNSET  # "leave as it is" for update arguments where None means clear


@dataclass(frozen=True)
class PhoneRecord:
    number: str  # national form
    label: str | None


@dataclass(frozen=True)
class CustomerGroupRecord:
    id: int
    code: str
    name: str
    vip_level: int
    account_manager_id: int | None
    custom_fields: Mapping[str, CustomFieldValue]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CustomerRecord:
    id: int
    name: str
    title: str | None
    group_id: int | None
    vip_level: int  # the customer's own rank; effective_vip_level gives the one shown
    account_manager_id: int | None
    custom_fields: Mapping[str, CustomFieldValue]
    external_key: str | None
    phones: tuple[PhoneRecord, ...]  # sorted by number
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CustomerMatch:
    """Who is calling, as inbound routing and the screen pop need it.

    ``vip_level`` is the higher of the customer's and its group's. The account manager is
    the customer's own, else the group's."""

    customer_id: int
    name: str
    title: str | None
    number: str  # the national form that matched
    vip_level: int
    group_id: int | None
    group_code: str | None
    group_name: str | None
    account_manager_id: int | None
    account_manager_username: str | None
    account_manager_name: str | None
    account_manager_extension: str | None


@dataclass(frozen=True)
class CustomerPage:
    customers: tuple[CustomerRecord, ...]
    total: int  # matches over all pages
    offset: int
    limit: int
    groups: Mapping[int, CustomerGroupRecord] = field(default_factory=dict)  # of these

    def group_of(self, customer: CustomerRecord) -> CustomerGroupRecord | None:
        return None if customer.group_id is None else self.groups.get(customer.group_id)


def customer_vip_level(customer: CustomerRecord, group: CustomerGroupRecord | None) -> int:
    """The one VIP rank a customer shows everywhere: its own, or its group's if higher."""
    return effective_vip_level(customer.vip_level, None if group is None else group.vip_level)


def customer_manager_id(customer: CustomerRecord,
                        group: CustomerGroupRecord | None) -> int | None:
    """The customer's account manager: its own, else its group's."""
    if customer.account_manager_id is not None:
        return customer.account_manager_id
    return group.account_manager_id if group is not None else None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def normalize_customer_number(number: str, default_area_code: str | None = None) -> str:
    """The stored form of ``number``, or CustomerError saying why it cannot be stored."""
    try:
        normalized = normalize(number, default_area_code=default_area_code)
    except NumberError as exc:
        raise CustomerError(f"invalid phone number {number!r}: {exc}") from None
    if normalized.kind not in STORABLE_KINDS:
        raise CustomerError(f"invalid phone number {number!r}: {_KIND_REASONS[normalized.kind]}")
    return normalized.national


def _lookup_key(number: str, default_area_code: str | None) -> str | None:
    """The stored form a caller ID would have, or None when it cannot match anyone
    (anonymous, garbage, a short service number)."""
    try:
        normalized = normalize(number, default_area_code=default_area_code)
    except NumberError:
        return None
    return normalized.national if normalized.kind in STORABLE_KINDS else None


def _text(value: str, what: str, max_chars: int, *, required: bool = True) -> str:
    stripped = value.strip()
    if required and not stripped:
        raise CustomerError(f"{what} is required")
    if len(stripped) > max_chars:
        raise CustomerError(f"{what} is longer than {max_chars} characters")
    return stripped


def _optional_text(value: str | None, what: str, max_chars: int) -> str | None:
    if value is None:
        return None
    return _text(value, what, max_chars, required=False) or None


def _vip_level(levels: VipLevels, level: int | str) -> int:
    try:
        return levels.rank(level)
    except VipLevelError as error:
        raise CustomerError(str(error)) from None


def _check_distinct(numbers: Sequence[str]) -> None:
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise CustomerError(f"number {duplicates[0]} is given more than once")


def _custom_fields(fields: Mapping[str, Any] | None) -> dict[str, CustomFieldValue]:
    """A checked copy: JSON-safe on both backends (PostgreSQL's json rejects NaN)."""
    checked: dict[str, CustomFieldValue] = {}
    for key, value in (fields or {}).items():
        if not isinstance(key, str) or not key.strip():
            raise CustomerError(f"custom field names must be non-empty text, not {key!r}")
        if not isinstance(value, str | int | float | bool):
            raise CustomerError(
                f"custom field {key!r} must be text, a number or true/false, not {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise CustomerError(f"custom field {key!r} must be a finite number, not {value!r}")
        checked[key] = value
    return checked


def _group_record(group: CustomerGroup) -> CustomerGroupRecord:
    return CustomerGroupRecord(
        id=group.id,
        code=group.code,
        name=group.name,
        vip_level=group.vip_level,
        account_manager_id=group.account_manager_id,
        custom_fields=dict(group.custom_fields),
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


def _customer_record(customer: Customer, phones: Iterable[CustomerPhone]) -> CustomerRecord:
    return CustomerRecord(
        id=customer.id,
        name=customer.name,
        title=customer.title,
        group_id=customer.group_id,
        vip_level=customer.vip_level,
        account_manager_id=customer.account_manager_id,
        custom_fields=dict(customer.custom_fields),
        external_key=customer.external_key,
        phones=tuple(
            sorted((PhoneRecord(p.number, p.label) for p in phones), key=lambda p: p.number)
        ),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def _lookup_statement() -> Select[Any]:
    """One statement for the caller lookup, built once so SQLAlchemy compiles it once."""
    group = aliased(CustomerGroup)
    own_manager = aliased(User)
    group_manager = aliased(User)
    manager_id = func.coalesce(Customer.account_manager_id, group.account_manager_id)
    group_vip = func.coalesce(group.vip_level, 0)
    # The larger of two values: SQLite's two-argument max() is greatest() on PostgreSQL.
    vip = case((Customer.vip_level >= group_vip, Customer.vip_level), else_=group_vip)
    return (
        select(
            Customer.id,
            Customer.name,
            Customer.title,
            CustomerPhone.number,
            vip,
            group.id,
            group.code,
            group.name,
            manager_id,
            func.coalesce(own_manager.username, group_manager.username),
            func.coalesce(own_manager.name, group_manager.name),
            func.coalesce(own_manager.extension, group_manager.extension),
        )
        .select_from(CustomerPhone)
        .join(Customer, Customer.id == CustomerPhone.customer_id)
        .outerjoin(group, group.id == Customer.group_id)
        .outerjoin(own_manager, own_manager.id == Customer.account_manager_id)
        .outerjoin(group_manager, group_manager.id == group.account_manager_id)
        .where(CustomerPhone.number == bindparam("number"))
        # A number shared by several customers: the most important one, then the oldest.
        .order_by(vip.desc(), Customer.id)
        .limit(1)
    )


_LOOKUP: Final = _lookup_statement()


class _LookupConnection:
    """The caller lookup's own connection, held open and driven at the driver level.

    The lookup runs on every inbound call and must stay well under a millisecond. Through
    SQLAlchemy's async layer each lookup checked a connection out of the pool and reset it
    on return, which on SQLite is two more hops to aiosqlite's worker thread: about 600
    µs on the two-core test machine, against 60 µs for one hop running the same SQL on
    a connection kept open (bench/customer_lookup.py). The statement is compiled once per
    dialect. Each fetch runs outside any transaction, so it sees every committed change.
    The lock serialises lookups (asyncpg runs one query at a time per connection); a
    failed lookup drops the connection so the next one opens a fresh one.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._connection: AsyncConnection | None = None
        self._driver: Any = None  # aiosqlite.Connection or asyncpg.Connection
        self._lock = asyncio.Lock()
        compiled = _LOOKUP.compile(dialect=db.engine.dialect)
        self._sql = str(compiled)
        self._names = list(compiled.positiontup or ())
        self._constants = compiled.construct_params({"number": ""})
        self._sqlite = db.dialect == "sqlite"

    async def fetch(self, number: str) -> tuple[Any, ...] | None:
        args = tuple(number if name == "number" else self._constants[name]
                     for name in self._names)
        async with self._lock:
            try:
                if self._driver is None:
                    self._connection = await self._db.engine.connect()
                    raw = await self._connection.get_raw_connection()
                    self._driver = raw.driver_connection
                if self._sqlite:
                    rows = list(await self._driver.execute_fetchall(self._sql, args))
                    return tuple(rows[0]) if rows else None
                row = await self._driver.fetchrow(self._sql, *args)
                return None if row is None else tuple(row)
            except BaseException:
                await self._close()
                raise

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            await connection.close()


_NUMBER_CHARS: Final = frozenset("0123456789+ -().")


def _managed_by(user_id: int) -> ColumnElement[bool]:
    """The customer's own account manager is the user, or it has none and its group's is."""
    by_group = (select(CustomerGroup.id)
                .where(CustomerGroup.id == Customer.group_id,
                       CustomerGroup.account_manager_id == user_id)
                .exists())
    return or_(Customer.account_manager_id == user_id,
               Customer.account_manager_id.is_(None) & by_group)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CustomerService:
    """Customers and customer groups (集团) in ``db``. Make one per process and ``close()``
    it (or use ``async with``): the caller lookup keeps a connection of its own.

    ``default_area_code`` places 7-8 digit local numbers (stored and looked up alike);
    without it they are refused for storage and match no one. A VIP level is given as a
    name of ``vip_levels`` or as a rank 0 to 99, and stored as the rank.
    """

    def __init__(
        self,
        db: Database,
        *,
        default_area_code: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        vip_levels: VipLevels | None = None,
    ) -> None:
        self._db = db
        self._area_code = default_area_code
        self.vip_levels = vip_levels or VipLevels()
        self._clock = clock
        self._lookup = _LookupConnection(db)

    def normalize(self, number: str) -> str:
        """The stored form of ``number`` (CustomerError when it cannot be stored)."""
        return normalize_customer_number(number, self._area_code)

    # --- caller lookup -------------------------------------------------------------------

    async def lookup_by_number(self, number: str) -> CustomerMatch | None:
        """The customer calling from ``number`` (any format a gateway or a person writes),
        or None. One indexed query; when several customers share the number, the one with
        the highest effective VIP level wins, then the oldest."""
        key = _lookup_key(number, self._area_code)
        if key is None:
            return None
        row = await self._lookup.fetch(key)
        return None if row is None else CustomerMatch(*row)

    async def close(self) -> None:
        """Return the lookup's connection (see ``_LookupConnection``) to the pool."""
        await self._lookup.close()

    async def __aenter__(self) -> CustomerService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- groups ----------------------------------------------------------------------------

    async def create_group(
        self,
        code: str,
        name: str,
        *,
        vip_level: int | str = 0,
        account_manager_id: int | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> CustomerGroupRecord:
        now = self._clock()
        group = CustomerGroup(
            code=_text(code, "group code", MAX_CODE_CHARS),
            name=_text(name, "group name", MAX_NAME_CHARS),
            vip_level=_vip_level(self.vip_levels, vip_level),
            account_manager_id=account_manager_id,
            custom_fields=_custom_fields(custom_fields),
            created_at=now,
            updated_at=now,
        )
        async with self._db.session() as session:
            await self._check_user(session, account_manager_id)
            await self._check_group_code_free(session, group.code)
            session.add(group)
            await self._commit(session, lambda: self._check_group_code_free(session, group.code))
            return _group_record(group)

    async def update_group(
        self,
        group_id: int,
        *,
        name: str | _Unset = UNSET,
        vip_level: int | str | _Unset = UNSET,
        account_manager_id: int | _Unset | None = UNSET,
        custom_fields: Mapping[str, Any] | _Unset = UNSET,
    ) -> CustomerGroupRecord:
        async with self._db.session() as session:
            group = await self._group(session, group_id)
            if not isinstance(name, _Unset):
                group.name = _text(name, "group name", MAX_NAME_CHARS)
            if not isinstance(vip_level, _Unset):
                group.vip_level = _vip_level(self.vip_levels, vip_level)
            if not isinstance(account_manager_id, _Unset):
                await self._check_user(session, account_manager_id)
                group.account_manager_id = account_manager_id
            if not isinstance(custom_fields, _Unset):
                group.custom_fields = _custom_fields(custom_fields)
            group.updated_at = self._clock()
            await session.commit()
            return _group_record(group)

    async def get_group(self, group_id: int) -> CustomerGroupRecord | None:
        async with self._db.session() as session:
            group = await session.get(CustomerGroup, group_id)
            return None if group is None else _group_record(group)

    async def get_group_by_code(self, code: str) -> CustomerGroupRecord | None:
        async with self._db.session() as session:
            group = await session.scalar(
                select(CustomerGroup).where(CustomerGroup.code == code.strip())
            )
            return None if group is None else _group_record(group)

    async def list_group_members(self, group_id: int) -> list[CustomerRecord]:
        """The group's customers, sorted by name."""
        async with self._db.session() as session:
            await self._group(session, group_id)
            customers = list(
                await session.scalars(
                    select(Customer)
                    .where(Customer.group_id == group_id)
                    .order_by(Customer.name, Customer.id)
                )
            )
            return await self._records(session, customers)

    # --- customers -----------------------------------------------------------------------

    async def create_customer(
        self,
        name: str,
        *,
        phones: Sequence[str] = (),
        group_id: int | None = None,
        title: str | None = None,
        vip_level: int | str = 0,
        account_manager_id: int | None = None,
        custom_fields: Mapping[str, Any] | None = None,
        external_key: str | None = None,
    ) -> CustomerRecord:
        numbers = [self.normalize(p) for p in phones]
        _check_distinct(numbers)
        now = self._clock()
        customer = Customer(
            name=_text(name, "customer name", MAX_NAME_CHARS),
            title=_optional_text(title, "title", MAX_TITLE_CHARS),
            group_id=group_id,
            vip_level=_vip_level(self.vip_levels, vip_level),
            account_manager_id=account_manager_id,
            custom_fields=_custom_fields(custom_fields),
            external_key=_optional_text(external_key, "external key", MAX_EXTERNAL_KEY_CHARS),
            created_at=now,
            updated_at=now,
        )
        async with self._db.session() as session:
            if group_id is not None:
                await self._group(session, group_id)
            await self._check_user(session, account_manager_id)
            key = customer.external_key
            await self._check_external_key_free(session, key)
            session.add(customer)
            await session.flush()
            phone_rows = [CustomerPhone(customer_id=customer.id, number=n) for n in numbers]
            session.add_all(phone_rows)
            await self._commit(session, lambda: self._check_external_key_free(session, key))
            return _customer_record(customer, phone_rows)

    async def update_customer(
        self,
        customer_id: int,
        *,
        name: str | _Unset = UNSET,
        title: str | _Unset | None = UNSET,
        group_id: int | _Unset | None = UNSET,
        vip_level: int | str | _Unset = UNSET,
        account_manager_id: int | _Unset | None = UNSET,
        custom_fields: Mapping[str, Any] | _Unset = UNSET,
        external_key: str | _Unset | None = UNSET,
        add_phones: Sequence[tuple[str, str | None]] = (),
        remove_phones: Sequence[str] = (),
    ) -> CustomerRecord:
        """Change the fields given, remove the numbers ``remove_phones`` and add the
        ``(number, label)`` pairs of ``add_phones``: all or (on any CustomerError)
        nothing. A number another customer has is refused with PhoneTaken."""
        removed = [self.normalize(number) for number in remove_phones]
        added = [(self.normalize(number), _optional_text(label, "phone label", MAX_LABEL_CHARS))
                 for number, label in add_phones]
        async with self._db.session() as session:
            customer = await self._customer(session, customer_id)
            if not isinstance(name, _Unset):
                customer.name = _text(name, "customer name", MAX_NAME_CHARS)
            if not isinstance(title, _Unset):
                customer.title = _optional_text(title, "title", MAX_TITLE_CHARS)
            if not isinstance(group_id, _Unset):
                if group_id is not None:
                    await self._group(session, group_id)
                customer.group_id = group_id
            if not isinstance(vip_level, _Unset):
                customer.vip_level = _vip_level(self.vip_levels, vip_level)
            if not isinstance(account_manager_id, _Unset):
                await self._check_user(session, account_manager_id)
                customer.account_manager_id = account_manager_id
            if not isinstance(custom_fields, _Unset):
                customer.custom_fields = _custom_fields(custom_fields)
            key: str | None = customer.external_key
            if not isinstance(external_key, _Unset):
                key = _optional_text(external_key, "external key", MAX_EXTERNAL_KEY_CHARS)
                if key != customer.external_key:
                    await self._check_external_key_free(session, key)
                customer.external_key = key
            await self._change_phones(session, customer_id, added, removed)
            customer.updated_at = self._clock()

            async def recheck() -> None:
                for number, _ in added:
                    await self._check_phone_free(session, customer_id, number)
                await self._check_external_key_free(session, key)

            await self._commit(session, recheck)
            return (await self._records(session, [customer]))[0]

    async def _change_phones(self, session: AsyncSession, customer_id: int,
                             added: Sequence[tuple[str, str | None]],
                             removed: Sequence[str]) -> None:
        for number in removed:
            phone = await session.scalar(
                select(CustomerPhone).where(
                    CustomerPhone.customer_id == customer_id, CustomerPhone.number == number
                )
            )
            if phone is None:
                raise CustomerError(f"customer {customer_id} has no number {number}")
            await session.delete(phone)
        if removed:
            await session.flush()  # a number removed and added again: delete it first
        _check_distinct([number for number, _ in added])
        for number, label in added:
            await self._check_phone_free(session, customer_id, number)
            session.add(CustomerPhone(customer_id=customer_id, number=number, label=label))

    async def set_account_manager(
        self, customer_id: int, user_id: int | None
    ) -> CustomerRecord:
        """Make user ``user_id`` the customer's account manager (None: the group's, if any)."""
        return await self.update_customer(customer_id, account_manager_id=user_id)

    async def get_customer(self, customer_id: int) -> CustomerRecord | None:
        async with self._db.session() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                return None
            return (await self._records(session, [customer]))[0]

    async def get_customer_by_external_key(self, external_key: str) -> CustomerRecord | None:
        async with self._db.session() as session:
            customer = await session.scalar(
                select(Customer).where(Customer.external_key == external_key.strip())
            )
            if customer is None:
                return None
            return (await self._records(session, [customer]))[0]

    async def add_phone(
        self, customer_id: int, number: str, label: str | None = None
    ) -> PhoneRecord:
        """Give the customer one more number (PhoneTaken if another customer has it)."""
        national = self.normalize(number)
        record = await self.update_customer(customer_id, add_phones=[(number, label)])
        return next(phone for phone in record.phones if phone.number == national)

    async def remove_phone(self, customer_id: int, number: str) -> None:
        await self.update_customer(customer_id, remove_phones=[number])

    async def search(self, query: str = "", *, offset: int = 0, limit: int = 50,
                     manager_id: int | None = None) -> CustomerPage:
        """Customers whose name contains ``query`` (case-insensitive), or, when ``query``
        looks like a number, who have that number (in any spelling) or, for a fragment of
        a number, a number containing its digits; with ``manager_id``, only the customers
        that user is the account manager of (their own, or their group's when they name
        none: 我的客户). Sorted by name, then id; ``limit`` is at most MAX_PAGE_SIZE. The
        page carries the groups of its customers."""
        if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
            raise CustomerError(f"page must have offset >= 0 and 1 <= limit <= {MAX_PAGE_SIZE}")
        condition = self._search_condition(query.strip())
        if manager_id is not None:
            condition = condition & _managed_by(manager_id)
        async with self._db.session() as session:
            total = await session.scalar(
                select(func.count()).select_from(Customer).where(condition)
            )
            customers = list(
                await session.scalars(
                    select(Customer)
                    .where(condition)
                    .order_by(Customer.name, Customer.id)
                    .offset(offset)
                    .limit(limit)
                )
            )
            records = await self._records(session, customers)
            group_ids = sorted({c.group_id for c in customers if c.group_id is not None})
            groups = {} if not group_ids else {
                group.id: _group_record(group) for group in await session.scalars(
                    select(CustomerGroup).where(CustomerGroup.id.in_(group_ids)))}
        return CustomerPage(tuple(records), total or 0, offset, limit, groups)

    # --- helpers -------------------------------------------------------------------------

    def _search_condition(self, query: str) -> ColumnElement[bool]:
        if not query:
            return Customer.id.is_not(None)
        by_name = Customer.name.ilike(f"%{_like_escape(query)}%", escape="\\")
        digits = "".join(ch for ch in query if ch.isascii() and ch.isdigit())
        if not digits or not set(query) <= _NUMBER_CHARS:
            return by_name
        # A whole number is one probe of the number index; only a fragment scans.
        key = _lookup_key(query, self._area_code)
        number_matches = (
            CustomerPhone.number == key
            if key is not None
            else CustomerPhone.number.like(f"%{digits}%")
        )
        by_number = (
            select(CustomerPhone.id)
            .where(CustomerPhone.customer_id == Customer.id, number_matches)
            .exists()
        )
        return or_(by_name, by_number)

    async def _records(
        self, session: AsyncSession, customers: list[Customer]
    ) -> list[CustomerRecord]:
        """Records with their phones, loaded in one query for all of them."""
        phones: dict[int, list[CustomerPhone]] = {c.id: [] for c in customers}
        if customers:
            rows = await session.scalars(
                select(CustomerPhone).where(CustomerPhone.customer_id.in_(list(phones)))
            )
            for phone in rows:
                phones[phone.customer_id].append(phone)
        return [_customer_record(c, phones[c.id]) for c in customers]

    async def _commit(
        self, session: AsyncSession, recheck: Callable[[], Any]
    ) -> None:
        try:
            await session.commit()
        except IntegrityError:
            # Someone else took the code, key or number between our check and the insert:
            # the check, run again, names what was taken.
            await session.rollback()
            await recheck()
            raise

    async def _group(self, session: AsyncSession, group_id: int) -> CustomerGroup:
        group = await session.get(CustomerGroup, group_id)
        if group is None:
            raise CustomerError(f"no customer group with id {group_id}")
        return group

    async def _customer(self, session: AsyncSession, customer_id: int) -> Customer:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise CustomerError(f"no customer with id {customer_id}")
        return customer

    async def _check_user(self, session: AsyncSession, user_id: int | None) -> None:
        if user_id is not None and await session.get(User, user_id) is None:
            raise CustomerError(f"no user with id {user_id} to be account manager")

    async def _check_group_code_free(self, session: AsyncSession, code: str) -> None:
        taken = await session.scalar(select(CustomerGroup.id).where(CustomerGroup.code == code))
        if taken is not None:
            raise CustomerError(f"a customer group with code {code} already exists")

    async def _check_external_key_free(self, session: AsyncSession, key: str | None) -> None:
        if key is None:
            return
        taken = await session.scalar(select(Customer.id).where(Customer.external_key == key))
        if taken is not None:
            raise CustomerError(f"customer {taken} already has the external key {key!r}")

    async def _check_phone_free(
        self, session: AsyncSession, customer_id: int, number: str
    ) -> None:
        """Refuse a number the customer or any other customer has already."""
        owners = list(await session.execute(
            select(Customer.id, Customer.name)
            .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
            .where(CustomerPhone.number == number)
            .order_by(Customer.id)
        ))
        if any(owner_id == customer_id for owner_id, _ in owners):
            raise CustomerError(f"customer {customer_id} already has the number {number}")
        if owners:
            owner_id, owner_name = owners[0]
            raise PhoneTaken(number, owner_id, owner_name)
