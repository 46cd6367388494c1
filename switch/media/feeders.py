"""Which legs may feed one recording: the one rule `MediaEngine.retarget_recording` and
the tests' FakeMediaEngine both apply, so they refuse the same things the same way."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

__all__ = ["REC_MAX_EXTRA", "recording_feeders"]

REC_MAX_EXTRA = 4  # added parties mixed into the right channel (engine_types.pxd)

LegId = TypeVar("LegId")


def recording_feeders(leg_a: LegId, leg_b: LegId | None,
                      extra: Iterable[LegId]) -> tuple[LegId, ...]:
    """All the legs a recording is fed from (`leg_a`, `leg_b` unless None, then `extra`);
    ValueError when a leg feeds it twice or there are too many extra legs."""
    added = tuple(extra)
    if len(added) > REC_MAX_EXTRA:
        raise ValueError(f"at most {REC_MAX_EXTRA} extra legs, got {len(added)}")
    if leg_b is not None and leg_b == leg_a:
        raise ValueError(f"cannot record leg {leg_a} against itself")
    fed = (leg_a, *(() if leg_b is None else (leg_b,)), *added)
    if len(set(fed)) != len(fed):
        raise ValueError(f"extra legs must differ from each other and from leg_a and "
                         f"leg_b, got {added!r}")
    return fed
