"""The RFC 3261 §14.1 pause after a 491, drawn from an injected source."""

from __future__ import annotations

import pytest

from switch.sip.errors import LocalProtocolError
from switch.sip.glare import glare_retry_delay_s


@pytest.mark.parametrize(("owns", "drawn", "span", "delay_s"), [
    (True, 0, 191, 2.1), (True, 190, 191, 4.0), (True, 1, 191, 2.11),
    (False, 0, 201, 0.0), (False, 200, 201, 2.0), (False, 37, 201, 0.37),
])
def test_delay_in_units_of_10_ms_within_the_rfc_ranges(owns: bool, drawn: int, span: int,
                                                       delay_s: float) -> None:
    asked: list[int] = []

    def randbelow(n: int) -> int:
        asked.append(n)
        return drawn

    assert glare_retry_delay_s(owns_call_id=owns, randbelow=randbelow) == delay_s
    assert asked == [span]


def test_a_source_out_of_its_range_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError, match=r"^randbelow\(191\) returned 191$"):
        glare_retry_delay_s(owns_call_id=True, randbelow=lambda n: n)
