"""Reading customers from an .xlsx sheet: headers mapped to fields, rows checked one by one.

No database here: the importer (apps/customer_import.py) passes in the account managers
it knows and writes what comes out. Rows stream from openpyxl's read-only reader, so a
100 000-row sheet is never held in memory; formula cells give the value Excel cached when
the file was saved (``data_only``), and are never evaluated.

A row is either a ``CustomerRow`` ready to write or a ``RejectedRow`` carrying every
reason it was refused, by Excel row number and column letter, as the user sees them.
"""

from __future__ import annotations

import enum
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from os import PathLike
from types import TracebackType
from typing import IO, Any, Final

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from apps.customer_levels import MAX_VIP_LEVEL, VipLevelError, VipLevels
from apps.customer_reasons import Reason, ReasonParam, reason
from apps.customers import (
    MAX_CODE_CHARS,
    MAX_EXTERNAL_KEY_CHARS,
    MAX_LABEL_CHARS,
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
    STORABLE_KINDS,
)
from switch.pri_gateway import NumberError, normalize

Source = str | PathLike[str] | IO[bytes]
CellValue = str | int | float | bool | datetime | date | time | None


class CustomerImportError(Exception):
    """Base error of the customer import. ``reason`` says why as data, for a message in
    the reader's language; ``str()`` is the English text."""

    def __init__(self, key: str, **params: ReasonParam) -> None:
        self.reason: Reason = reason(key, **params)
        super().__init__(str(self.reason))


class SheetError(CustomerImportError):
    """Nothing could be read: not an .xlsx file, no header row, no name column."""


class Field(enum.StrEnum):
    """Where a column's values go. ``custom`` keeps them in the customer's custom
    fields under the header text; ``ignore`` drops the column."""

    NAME = "name"
    PHONE = "phone"
    EXTERNAL_ID = "external_id"
    GROUP_CODE = "group_code"
    GROUP_NAME = "group_name"
    VIP_LEVEL = "vip_level"
    ACCOUNT_MANAGER = "account_manager"
    TITLE = "title"
    CUSTOM = "custom"
    IGNORE = "ignore"


# The columns the error report (apps/customer_import.py) puts before the row's cells.
REPORT_HEADERS: Final = ("行号 Row", "列 Column", "原因 Reason")

# Headers as customers' sheets spell them, compared after _header_key (case, spaces,
# "_-*:" and brackets removed). Several columns may map to phone or to the VIP level
# (the highest level given wins: a customer has one, so a second "VIP等级" column is no
# custom field); for any other field the first column wins and later ones become custom
# fields.
HEADER_ALIASES: Final[dict[Field, tuple[str, ...]]] = {
    Field.NAME: ("客户名称", "客户姓名", "姓名", "名称", "客户", "联系人", "name",
                 "customer", "customer name", "full name"),
    Field.PHONE: ("手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式",
                  "固话", "固定电话", "办公电话", "号码", "phone", "phones", "phone number",
                  "mobile", "mobile phone", "telephone", "tel", "number"),
    Field.EXTERNAL_ID: ("外部编号", "客户编号", "客户编码", "客户代码", "编号", "external id",
                        "external key", "customer id", "customer no", "id"),
    Field.GROUP_CODE: ("集团编号", "集团编码", "集团代码", "集团号", "group code", "group no",
                       "group number", "group id"),
    Field.GROUP_NAME: ("集团名称", "集团", "所属集团", "集团客户", "group name", "group",
                       "company"),
    Field.VIP_LEVEL: ("vip等级", "vip级别", "vip", "客户等级", "等级", "级别", "vip level",
                      "level"),
    Field.ACCOUNT_MANAGER: ("客户经理", "负责人", "account manager", "manager"),
    Field.TITLE: ("职务", "职位", "title", "position", "job title"),
    # The columns our own error report adds, so that a corrected report imports as is.
    Field.IGNORE: REPORT_HEADERS,
}

# Column sizes, as CustomerService checks them: a longer value is a row error here
# instead of a failed batch in the database.
MAX_CHARS: Final[dict[Field, int]] = {
    Field.NAME: MAX_NAME_CHARS,
    Field.TITLE: MAX_TITLE_CHARS,
    Field.EXTERNAL_ID: MAX_EXTERNAL_KEY_CHARS,
    Field.GROUP_CODE: MAX_CODE_CHARS,
    Field.GROUP_NAME: MAX_NAME_CHARS,
}
_PHONE_LIST_SEPARATORS = re.compile(r"[,;/，；、|\n]+")
_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0"  # the old binary .xls format


def _header_key(header: str) -> str:
    return re.sub(r"[\s_\-*:：()（）]+", "", header).casefold()


_FIELD_BY_HEADER: Final[dict[str, Field]] = {
    _header_key(alias): field_ for field_, aliases in HEADER_ALIASES.items() for alias in aliases
}


# ---- mapping --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    index: int  # 0-based position in the row
    header: str
    field: Field

    @property
    def letter(self) -> str:
        return str(get_column_letter(self.index + 1))


@dataclass(frozen=True, slots=True)
class SheetMapping:
    """Which column feeds which field."""

    columns: tuple[Column, ...]

    def of(self, field_: Field) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.field is field_)

    def as_dict(self) -> dict[str, str]:
        """Header -> field name, the form a mapping override takes (for the UI)."""
        return {column.header: column.field.value for column in self.columns}


def map_headers(headers: Sequence[object],
                overrides: Mapping[str, str | Field] | None = None) -> SheetMapping:
    """Map a header row to fields: ``overrides`` (header text -> field name) first, then
    the known aliases; an unknown header becomes a custom field, an empty one is ignored.
    Raises SheetError for an override naming no field."""
    chosen = dict(overrides or {})
    columns: list[Column] = []
    taken: set[Field] = set()
    for index, raw in enumerate(headers):
        header = _text(raw)
        if header is None:
            continue
        if header in chosen:
            try:
                target = Field(chosen[header])
            except ValueError:
                names = ", ".join(f.value for f in Field)
                raise SheetError("unknown_field", field=str(chosen[header]), header=header,
                                 names=names) from None
        else:
            target = _FIELD_BY_HEADER.get(_header_key(header), Field.CUSTOM)
            if target in taken and target not in _REPEATABLE:
                target = Field.CUSTOM
        if target not in (*_REPEATABLE, Field.CUSTOM, Field.IGNORE):
            taken.add(target)
        columns.append(Column(index, header, target))
    return SheetMapping(tuple(columns))


# Fields several columns may feed.
_REPEATABLE: Final = (Field.PHONE, Field.VIP_LEVEL)


# ---- the workbook ----------------------------------------------------------------------


class Sheet:
    """The first worksheet of an .xlsx file, read row by row. Use as a context manager.

    Raises SheetError when the file is no .xlsx workbook or its first sheet is empty.
    The header row is the first row with anything in it."""

    def __init__(self, source: Source) -> None:
        # A path is opened here and handed over as a stream, so the workbook is
        # recognised by its content, not by the name's extension.
        if isinstance(source, (str, PathLike)):
            self._stream: IO[bytes] = open(source, "rb")  # noqa: SIM115 (closed in close())
            self._owns_stream = True
        else:
            self._stream = source
            self._owns_stream = False
        self._workbook: Any = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        position = self._stream.tell()
        head = self._stream.read(8)
        self._stream.seek(position)
        if not head:
            raise SheetError("empty_file")
        if head.startswith(_OLE2_MAGIC):
            raise SheetError("old_xls")
        try:
            self._workbook = load_workbook(self._stream, read_only=True, data_only=True)
            worksheet = self._workbook.worksheets[0]
        except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, OSError,
                ValueError, TypeError) as error:
            raise SheetError("not_xlsx", detail=_describe(error)) from None
        if not hasattr(worksheet, "reset_dimensions"):  # a chart sheet
            raise SheetError("not_a_worksheet")
        # The size the file claims is only an estimate: some writers get it wrong, and
        # the reader would stop there. Reset, then read every row there is.
        claimed_rows = _claimed_rows(worksheet)
        worksheet.reset_dimensions()
        # iter_rows yields empty rows too, so counting rows gives Excel's row numbers.
        self._rows = enumerate(worksheet.iter_rows(values_only=True), start=1)
        self.headers: tuple[str | None, ...] = ()
        self.header_row = 0
        for number, values in self._rows:
            headers = tuple(_text(value) for value in values)
            if any(headers):
                self.headers, self.header_row = headers, number
                break
        else:
            raise SheetError("no_header_row")
        self.rows_estimate = max(claimed_rows - self.header_row, 0)  # 0: not known

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(Excel row number, cell values) for every row after the header row."""
        for number, values in self._rows:
            yield number, tuple(values)

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()
            self._workbook = None
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="[A-Z]*[0-9]*:?[A-Z]*([0-9]+)"')


def _claimed_rows(worksheet: Any) -> int:
    """The last row number the sheet's <dimension> names, 0 when it names none.

    Read from the head of the sheet's XML, where Excel puts it: openpyxl's own max_row
    parses the whole sheet when the tag is missing (files written by streaming
    writers), which costs a fifth of an import."""
    try:
        with worksheet._get_source() as xml:
            match = _DIMENSION.search(xml.read(4096))
    except (OSError, KeyError, AttributeError):
        return 0
    return int(match.group(1)) if match else 0


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):  # a zip without the parts every .xlsx has
        return "a zip file without an Excel workbook in it"
    if isinstance(error, zipfile.BadZipFile):
        return "not a zip file"
    return str(error) or type(error).__name__
def _text(value: object) -> str | None:
    """A cell as trimmed text, None when blank. Whole numbers lose Excel's ".0"."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, (date, time)):
        text = value.isoformat()
    else:
        text = str(value)
    return text.strip() or None


# ---- rows -------------------------------------------------------------------------------

JsonScalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Phone:
    number: str  # national form: normalize(...).national, what caller lookup searches
    label: str | None  # the header of the column it came from ("手机", "办公电话")


@dataclass(frozen=True, slots=True)
class RowError:
    """One reason a row was refused, where Excel shows it: row 7, column C."""

    row: int
    column: str | None  # letter; None when the reason is about the whole row
    header: str | None
    reason: Reason  # str() is the English text

    def __str__(self) -> str:
        if self.column is None:
            return f"row {self.row}: {self.reason}"
        return f"row {self.row}, column {self.column} ({self.header}): {self.reason}"


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A row that passed every check. ``None`` means the sheet gave no value: an update
    leaves that field of an existing customer as it is."""

    row: int
    name: str
    phones: tuple[Phone, ...] = ()
    external_id: str | None = None
    group_code: str | None = None
    group_name: str | None = None
    vip_level: int | None = None
    account_manager_id: int | None = None
    title: str | None = None
    custom_fields: Mapping[str, JsonScalar] = field(default_factory=dict)
    # The cells as read, for the error report if the database step refuses the row.
    values: tuple[Any, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int
    values: tuple[Any, ...]  # the cells as read, for the error report
    errors: tuple[RowError, ...]


class CellError(CustomerImportError):
    """A cell value that cannot be used; ``reason`` is why."""


class AccountManagers:
    """Users a sheet may name as account manager, by username or by full name. A name
    two users share is refused as ambiguous rather than guessed."""

    def __init__(self, users: Iterable[tuple[int, str, str | None]] = ()) -> None:
        self._by_username: dict[str, int] = {}
        self._by_name: dict[str, int | None] = {}
        for user_id, username, name in users:
            self._by_username[username.casefold()] = user_id
            if name:
                key = name.strip().casefold()
                self._by_name[key] = None if key in self._by_name else user_id

    def resolve(self, text: str) -> int:
        key = text.casefold()
        if key in self._by_username:
            return self._by_username[key]
        if key not in self._by_name:
            raise CellError("unknown_manager", name=text)
        user_id = self._by_name[key]
        if user_id is None:
            raise CellError("ambiguous_manager", name=text)
        return user_id


def _vip_level(levels: VipLevels, value: object) -> int:
    try:
        return levels.rank(value if isinstance(value, (int, float, str)) else str(value))
    except VipLevelError as error:
        raise CellError("bad_vip_level", value=error.value, names=", ".join(error.names),
                        max=MAX_VIP_LEVEL) from None


def _limited(field_: Field, text: str) -> str:
    limit = MAX_CHARS[field_]
    if len(text) > limit:
        raise CellError("too_long", limit=limit)
    return text


def _custom_value(value: object) -> JsonScalar | None:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):  # PostgreSQL's json has no NaN
            return str(value)
        return int(value) if value.is_integer() else value
    return _text(value)


def split_phones(text: str, default_area_code: str | None = None) -> list[str]:
    """The national forms of the numbers in one cell: separated by , ; / (or their
    full-width forms) or by spaces. Spaces may also sit inside one number
    ("010 8888 6666"): the pieces are tried one by one first, then joined.
    Raises CellError naming the first number that is no usable phone."""
    numbers: list[str] = []
    for part in _PHONE_LIST_SEPARATORS.split(text):
        pieces = part.split()
        if not pieces:
            continue
        if len(pieces) > 1:
            try:
                numbers += [_phone(piece, default_area_code) for piece in pieces]
                continue
            except CellError:
                pass
        numbers.append(_phone(part.strip(), default_area_code))
    return numbers


def _phone(text: str, default_area_code: str | None) -> str:
    # The same rule as a number typed in on the customer page (normalize_customer_number).
    try:
        normalized = normalize(text, default_area_code=default_area_code)
    except NumberError:
        raise CellError("bad_phone", number=text) from None
    if normalized.kind not in STORABLE_KINDS:
        raise CellError(f"phone_{normalized.kind.value}", number=text)
    return normalized.national


class RowReader:
    """Checks rows against the mapping, one at a time, in sheet order. Remembers the
    external ids and phone numbers of the rows it accepted, so that a second row with
    either is refused as a duplicate (the first one imports)."""

    def __init__(self, mapping: SheetMapping, managers: AccountManagers | None = None,
                 default_area_code: str | None = None, levels: VipLevels | None = None,
                 ) -> None:
        if not mapping.of(Field.NAME):
            raise SheetError("no_name_column")
        self.mapping = mapping
        self._managers = managers or AccountManagers()
        self._area_code = default_area_code
        self._levels = levels or VipLevels()
        self._vip = mapping.of(Field.VIP_LEVEL)
        self._single = {f: mapping.of(f)[0] for f in _SINGLE_FIELDS if mapping.of(f)}
        self._phones = mapping.of(Field.PHONE)
        self._custom = mapping.of(Field.CUSTOM)
        self._external_rows: dict[str, int] = {}
        self._phone_rows: dict[str, int] = {}

    def read(self, row: int, values: Sequence[Any]) -> CustomerRow | RejectedRow | None:
        """The row checked; None for a row with nothing in it."""
        if all(_text(value) is None for value in values):
            return None
        errors: list[RowError] = []

        def cell(column: Column) -> Any:
            return values[column.index] if column.index < len(values) else None

        def problem(column: Column | None, key: str, **params: ReasonParam) -> None:
            errors.append(RowError(row, column.letter if column else None,
                                   column.header if column else None, reason(key, **params)))

        found: dict[Field, Any] = {}
        for field_, column in self._single.items():
            raw = cell(column)
            text = _text(raw)
            if text is None:
                if field_ is Field.NAME:
                    problem(column, "missing_name")
                continue
            try:
                found[field_] = _FIELD_PARSERS[field_](self._managers, raw, text)
            except CellError as error:
                errors.append(RowError(row, column.letter, column.header, error.reason))
        for column in self._vip:
            raw = cell(column)
            if _text(raw) is None:
                continue
            try:
                level = _vip_level(self._levels, raw)
            except CellError as error:
                errors.append(RowError(row, column.letter, column.header, error.reason))
                continue
            found[Field.VIP_LEVEL] = max(level, found.get(Field.VIP_LEVEL, level))

        phones: dict[str, tuple[Phone, Column]] = {}
        for column in self._phones:
            text = _text(cell(column))
            if text is None:
                continue
            try:
                numbers = split_phones(text, self._area_code)
            except CellError as error:
                errors.append(RowError(row, column.letter, column.header, error.reason))
                continue
            label = column.header[:MAX_LABEL_CHARS]
            for number in numbers:
                phones.setdefault(number, (Phone(number, label), column))

        external_id: str | None = found.get(Field.EXTERNAL_ID)
        if not errors and not phones and external_id is None:
            problem(self._phones[0] if self._phones else None, "no_phone_no_id")
        if not errors:
            if external_id is not None and external_id in self._external_rows:
                problem(self._single[Field.EXTERNAL_ID], "external_id_repeated",
                        external_id=external_id, row=self._external_rows[external_id])
            for number, (_, column) in phones.items():
                if number in self._phone_rows:
                    problem(column, "phone_repeated", number=number, row=self._phone_rows[number])
        if errors:
            # Left to right, as the user reads the row; whole-row reasons first.
            errors.sort(key=lambda e: (len(e.column or ""), e.column or ""))
            return RejectedRow(row, tuple(values), tuple(errors))

        if external_id is not None:
            self._external_rows[external_id] = row
        for number in phones:
            self._phone_rows[number] = row
        custom: dict[str, JsonScalar] = {}
        for column in self._custom:
            value = _custom_value(cell(column))
            if value is not None:
                custom[column.header] = value
        return CustomerRow(
            row=row,
            name=found[Field.NAME],
            phones=tuple(phone for phone, _ in phones.values()),
            external_id=external_id,
            group_code=found.get(Field.GROUP_CODE),
            group_name=found.get(Field.GROUP_NAME),
            vip_level=found.get(Field.VIP_LEVEL),
            account_manager_id=found.get(Field.ACCOUNT_MANAGER),
            title=found.get(Field.TITLE),
            custom_fields=custom,
            values=tuple(values),
        )


_SINGLE_FIELDS: Final = (Field.NAME, Field.EXTERNAL_ID, Field.GROUP_CODE, Field.GROUP_NAME,
                         Field.ACCOUNT_MANAGER, Field.TITLE)

# How each single-column field turns (raw cell, its text) into a value, or raises CellError.
_FIELD_PARSERS: Final[dict[Field, Callable[[AccountManagers, object, str], Any]]] = {
    Field.NAME: lambda _, __, text: _limited(Field.NAME, text),
    Field.EXTERNAL_ID: lambda _, __, text: _limited(Field.EXTERNAL_ID, text),
    Field.GROUP_CODE: lambda _, __, text: _limited(Field.GROUP_CODE, text),
    Field.GROUP_NAME: lambda _, __, text: _limited(Field.GROUP_NAME, text),
    Field.TITLE: lambda _, __, text: _limited(Field.TITLE, text),
    Field.ACCOUNT_MANAGER: lambda managers, _, text: managers.resolve(text),
}


# ---- entry points -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    """What the upload page shows before importing: the mapping found (or chosen) and
    the first rows as they would import or be refused."""

    headers: tuple[str | None, ...]
    mapping: SheetMapping
    rows: tuple[CustomerRow | RejectedRow, ...]
    rows_estimate: int  # data rows the file claims to have; may be off


def preview(source: Source, n: int = 10, *, mapping: Mapping[str, str | Field] | None = None,
            managers: AccountManagers | None = None,
            default_area_code: str | None = None, levels: VipLevels | None = None) -> Preview:
    """The first ``n`` non-empty rows checked. A sheet without a name column still
    previews (the user can pick the column in the mapping); importing it is refused.
    Raises SheetError when the file cannot be read at all."""
    with Sheet(source) as sheet:
        found = map_headers(sheet.headers, mapping)
        rows: list[CustomerRow | RejectedRow] = []
        if found.of(Field.NAME):
            reader = RowReader(found, managers, default_area_code, levels)
            for number, values in sheet.rows():
                if len(rows) >= n:
                    break
                checked = reader.read(number, values)
                if checked is not None:
                    rows.append(checked)
        return Preview(sheet.headers, found, tuple(rows), sheet.rows_estimate)


def read_customers(source: Source, *, mapping: Mapping[str, str | Field] | None = None,
                   managers: AccountManagers | None = None,
                   default_area_code: str | None = None, levels: VipLevels | None = None,
                   ) -> Iterator[CustomerRow | RejectedRow]:
    """Every non-empty row checked, streaming. Raises SheetError before the first row
    when the file cannot be read or has no name column."""
    with Sheet(source) as sheet:
        reader = RowReader(map_headers(sheet.headers, mapping), managers, default_area_code,
                           levels)
        for number, values in sheet.rows():
            checked = reader.read(number, values)
            if checked is not None:
                yield checked
