"""Times as the people at the desks read them: in the configured zone ([web] timezone,
Asia/Shanghai by default), written 2026-12-07 17:26. Stored times and the JSON API stay
UTC; only pages convert, through the `local_time` filter every template has."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, date, datetime

__all__ = ["format_local", "zone"]

FORMATS = {
    "minute": "%Y-%m-%d %H:%M",
    "second": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
}


@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def format_local(value: datetime | date | str | None, zone_name: str,
                 precision: str = "minute") -> str:
    """`value` (an aware datetime, a naive one taken as UTC as the database returns them,
    an ISO 8601 string, a date or None) in `zone_name`, at `precision` ("minute",
    "second" or "date"); "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return value.strftime(FORMATS["date"])
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # what SQLite gives back for a UTC column
    return value.astimezone(zone(zone_name)).strftime(FORMATS[precision])
