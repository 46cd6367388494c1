"""Times on pages: in [web] timezone (Asia/Shanghai by default), as 2026-12-07 17:26."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from web.local_time import format_local

SHANGHAI = "Asia/Shanghai"
NINE_UTC = datetime(2026, 12, 7, 9, 26, 41, tzinfo=UTC)


@pytest.mark.parametrize(("value", "precision", "shown"), [
    (NINE_UTC, "minute", "2026-12-07 17:26"),
    (NINE_UTC, "second", "2026-12-07 17:26:41"),
    (NINE_UTC.replace(tzinfo=None), "minute", "2026-12-07 17:26"),  # SQLite: naive UTC
    ("2026-12-07T09:26:41+00:00", "minute", "2026-12-07 17:26"),  # from the JSON shapes
    (NINE_UTC.astimezone(timezone(timedelta(hours=-5))), "minute", "2026-12-07 17:26"),
    (datetime(2026, 12, 7, 17, 0, tzinfo=UTC), "date", "2026-12-08"),  # past midnight there
    (date(2026, 12, 7), "minute", "2026-12-07"),
    (None, "minute", ""),
])
def test_times_are_shown_in_the_configured_zone(value: object, precision: str,
                                                 shown: str) -> None:
    assert format_local(value, SHANGHAI, precision) == shown  # type: ignore[arg-type]


def test_another_zone_is_honoured() -> None:
    assert format_local(NINE_UTC, "Europe/Berlin") == "2026-12-07 10:26"
    assert format_local(NINE_UTC, "UTC") == "2026-12-07 09:26"
