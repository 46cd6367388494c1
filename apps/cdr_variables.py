"""A call's variables as its CDR stores them: a JSON object the database always takes.

Applications put what they learn on the call (``switch.applications``:
``Channel.variables``: customer id, VIP level, IVR path, digits) and the CDR keeps them
(``calls.variables``). Applications may put anything there, and a CDR must never be lost
over it, so ``storable`` makes any mapping into plain JSON of bounded size, and cannot
fail:
- keys become strings; mappings, lists and tuples stay JSON objects and arrays; a value
  JSON has no form for (a datetime, a set, NaN, an object) becomes its ``str()``;
- of variables over ``MAX_BYTES`` of JSON in all, it keeps every one that fits whole, in
  its place, cuts the first one that does not fit short (a string ending in
  ``CUT_MARK``: the value, or its JSON text if it is not a string), leaves out the rest,
  and says so under ``TRUNCATED_KEY``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["CUT_MARK", "MAX_BYTES", "TRUNCATED_KEY", "storable"]

logger = logging.getLogger(__name__)

MAX_BYTES = 16 * 1024  # of JSON text, as the column stores it (non-ASCII as \uXXXX)
TRUNCATED_KEY = "_truncated"
CUT_MARK = "…[cut]"
MAX_DEPTH = 32  # deeper than this, a value is stored as its str()
MAX_NODES = MAX_BYTES  # more values than bytes cannot fit anyway: the rest become "…"
_MARKER_RESERVE = 128  # room kept for TRUNCATED_KEY's entry
_MIN_CUT = 32  # room below which a variable is left out rather than cut

_JSON_SCALARS = (str, int, float, bool, type(None))


def storable(variables: Mapping[Any, object] | None) -> dict[str, object] | None:
    """``variables`` as the CDR stores them; None when there are none."""
    if not variables:
        return None
    try:
        plain = _Plain().mapping(variables, 0)
    except Exception as error:  # a mapping that fails to iterate: the CDR still goes in
        logger.warning("call variables not stored: %r", error)
        return {TRUNCATED_KEY: f"not stored: {type(error).__name__}"}
    if _size(plain) <= MAX_BYTES:
        return plain
    return _truncated(plain)


def _size(value: object) -> int:
    return len(json.dumps(value))  # SQLAlchemy's JSON serialiser: ASCII, so chars = bytes


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # an application's object whose __str__ fails: still a CDR
        return f"<unprintable {type(value).__name__}>"


class _Plain:
    """Makes one set of variables plain JSON, with a bound on the work it does."""

    def __init__(self) -> None:
        self.nodes = 0
        self.path: set[int] = set()  # containers being converted, to see a cycle

    def mapping(self, value: Mapping[Any, object], depth: int) -> dict[str, object]:
        return {self.key(k): self.value(v, depth + 1) for k, v in value.items()}

    @staticmethod
    def key(key: object) -> str:
        return key if isinstance(key, str) else _text(key)

    def value(self, value: object, depth: int) -> object:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            return "…"
        if isinstance(value, Mapping | list | tuple):
            if id(value) in self.path:
                return "[cycle]"
            if depth > MAX_DEPTH:
                return _text(value)
            self.path.add(id(value))
            try:
                if isinstance(value, Mapping):
                    return self.mapping(value, depth)
                return [self.value(item, depth + 1) for item in value]
            finally:
                self.path.discard(id(value))
        if isinstance(value, _JSON_SCALARS):
            try:  # NaN and infinities are not JSON; nor is an int past str()'s limit
                json.dumps(value, allow_nan=False)
            except ValueError:
                return _text(value)
            return value
        return _text(value)


def _truncated(plain: dict[str, object]) -> dict[str, object]:
    budget = MAX_BYTES - _MARKER_RESERVE - 2  # "{}"
    kept: dict[str, object] = {}
    over: list[str] = []
    for key, value in plain.items():
        entry = _size(key) + 2 + _size(value) + 2  # "key": value, separator
        if entry <= budget:
            kept[key] = value
            budget -= entry
        else:
            over.append(key)
    cut: dict[str, str] = {}
    if over and (room := budget - _size(over[0]) - 4) >= _MIN_CUT:
        value = plain[over[0]]
        cut[over[0]] = _cut(value if isinstance(value, str) else json.dumps(value), room)
    n_out = len(over) - len(cut)
    stored = {key: kept[key] if key in kept else cut[key]
              for key in plain if key in kept or key in cut}
    stored[TRUNCATED_KEY] = (f"over {MAX_BYTES} bytes: {len(cut)} variable(s) cut short, "
                             f"{n_out} left out")
    return stored


def _cut(text: str, room: int) -> str:
    """The longest start of ``text`` that, ending in CUT_MARK, is at most ``room`` bytes of
    JSON (escapes make a character's cost vary, so search for it)."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if _size(text[:mid] + CUT_MARK) <= room:
            low = mid
        else:
            high = mid - 1
    return text[:low] + CUT_MARK
