"""Why the customer import refused a row or a file, as data: a key and its parameters.

The web pages and the error report say it in the reader's language (``import.reason.<key>``
in web/customer_messages.py); the English text here is what the CLI prints and what
``str()`` of an error gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

ReasonParam = str | int

ENGLISH: Final[Mapping[str, str]] = {
    # rows
    "missing_name": "missing name",
    "too_long": "longer than {limit} characters",
    "bad_vip_level": "unknown VIP level '{value}': give one of {names} or a whole number "
                     "0 to {max}",
    "unknown_manager": "unknown account manager '{name}'",
    "ambiguous_manager": "account manager '{name}' is ambiguous: give the username",
    "bad_phone": "invalid phone number '{number}': not a telephone number",
    "phone_local": "invalid phone number '{number}': a local number needs its area code",
    "phone_short_service": "invalid phone number '{number}': a short service number is no "
                           "customer's number",
    "phone_internal": "invalid phone number '{number}': an extension is no customer's number",
    "phone_unknown": "invalid phone number '{number}': not a mobile, fixed-line, 400/800 or "
                     "international number",
    "no_phone_no_id": "no phone number and no external id: the customer could not be "
                      "recognised when the sheet is imported again",
    "external_id_repeated": "external id '{external_id}' is also on row {row}",
    "phone_repeated": "phone {number} is also on row {row}",
    "same_customer": "this is the same customer as row {row}",
    "group_without_code": "group '{name}' does not exist and has no group code; add its "
                          "code (集团编号)",
    "phone_taken": "phone {number} belongs to another customer ({name}) already",
    "phones_shared": "the phone numbers ({numbers}) belong to {n} different customers already",
    "phone_of_external_id": "phone {number} belongs to the customer with external id "
                            "'{external_id}'",
    # files
    "empty_file": "the file is empty",
    "old_xls": "this is an old .xls file; save it as .xlsx in Excel first",
    "not_xlsx": "not an .xlsx spreadsheet ({detail})",
    "not_a_worksheet": "the first sheet of the workbook is not a worksheet",
    "no_header_row": "no header row: the first sheet is empty",
    "no_name_column": "no column for the customer name (a header such as 客户名称, 姓名 or name)",
    "unknown_field": "unknown field '{field}' for column '{header}' (choose from {names})",
    "damaged": "the sheet is damaged after row {row}: {detail}",
    "no_consecutive_ids": "the new rows of {table} got no consecutive ids",
    "internal_error": "internal error: {name}",
}


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason, by ``key`` (of ENGLISH) with its ``params``; ``str()`` is English."""

    key: str
    params: Mapping[str, ReasonParam] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in ENGLISH:
            raise KeyError(f"no customer import reason {self.key!r}")

    def __str__(self) -> str:
        return ENGLISH[self.key].format(**self.params)


def reason(key: str, **params: ReasonParam) -> Reason:
    return Reason(key, params)


__all__ = ["ENGLISH", "Reason", "ReasonParam", "reason"]
