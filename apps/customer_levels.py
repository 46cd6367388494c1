"""VIP levels (VIP等级) as operators write them: named and ranked, 钻石卡 > 金卡 > 银卡 > 普通
by default, configured as ``[customers] vip_levels`` (highest first).

The database keeps the rank, a whole number: the lowest name is 0, the next 1, and so on
(普通 0, 银卡 1, 金卡 2, 钻石卡 3). Numbers written before levels had names stay valid and
keep their order; a number above the highest name has no name and is shown as "VIP <n>".
Sheets, forms and the API may give a name or a number; routing compares ranks
(``rank``, ``is_at_least``), never names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

MAX_VIP_LEVEL: Final = 99  # the highest rank a number may give (a 32-bit column, room to spare)
MAX_LEVEL_NAME_CHARS: Final = 32
DEFAULT_VIP_LEVELS: Final = ("钻石卡", "金卡", "银卡", "普通")  # highest first

# How sheets write a bare number: 3, "3", "VIP3", "v 3", "3级".
_NUMBER_TEXT: Final = re.compile(r"(?:vip|v)?\s*([0-9]{1,6})\s*级?")


class VipLevelError(ValueError):
    """A VIP level that is neither a configured name nor a whole number 0 to 99."""

    def __init__(self, value: object, levels: VipLevels) -> None:
        shown = str(value)
        self.value = shown if len(shown) <= 40 else shown[:39] + "…"
        self.names = levels.names
        super().__init__(f"unknown VIP level '{self.value}': give one of "
                         f"{', '.join(levels.names)} or a whole number 0 to {MAX_VIP_LEVEL}")


class VipLevels:
    """The configured level names, highest first; ranks are counted from the lowest."""

    def __init__(self, names: Iterable[str] = DEFAULT_VIP_LEVELS) -> None:
        self.names: tuple[str, ...] = tuple(name.strip() for name in names)
        check_level_names(self.names)
        self._by_key = {name.casefold(): len(self.names) - 1 - index
                        for index, name in enumerate(self.names)}

    def __repr__(self) -> str:
        return f"VipLevels({' > '.join(self.names)})"

    @property
    def ranks(self) -> tuple[tuple[int, str], ...]:
        """(rank, name) for every named level, highest first: what a form offers."""
        return tuple((self._by_key[name.casefold()], name) for name in self.names)

    def rank(self, level: int | float | str) -> int:
        """The rank of a level name (钻石卡), or of a number as scripts and old sheets give
        it (3, "3", "VIP3", "3级"). Raises VipLevelError for anything else."""
        if isinstance(level, bool):
            raise VipLevelError(level, self)
        if isinstance(level, float) and level.is_integer():
            level = int(level)
        if isinstance(level, int):
            if 0 <= level <= MAX_VIP_LEVEL:
                return level
            raise VipLevelError(level, self)
        if not isinstance(level, str):
            raise VipLevelError(level, self)
        text = level.strip()
        found = self._by_key.get(text.casefold())
        if found is not None:
            return found
        match = _NUMBER_TEXT.fullmatch(text.casefold())
        if match is not None and int(match.group(1)) <= MAX_VIP_LEVEL:
            return int(match.group(1))
        raise VipLevelError(level, self)

    def name(self, rank: int) -> str:
        """What pages show for a stored rank: its name, or "VIP <n>" above the names."""
        if 0 <= rank < len(self.names):
            return self.names[len(self.names) - 1 - rank]
        return f"VIP {rank}"

    def is_at_least(self, level: int | str, floor: int | str) -> bool:
        """Whether ``level`` ranks at or above ``floor`` (names or numbers alike)."""
        return self.rank(level) >= self.rank(floor)


def check_level_names(names: tuple[str, ...]) -> None:
    """Refuse a level list that could not be told apart from numbers or from itself."""
    if not names:
        raise ValueError("at least one VIP level name is needed")
    if len(names) > MAX_VIP_LEVEL + 1:
        raise ValueError(f"at most {MAX_VIP_LEVEL + 1} VIP level names")
    for name in names:
        if not name or len(name) > MAX_LEVEL_NAME_CHARS:
            raise ValueError(f"a VIP level name is 1 to {MAX_LEVEL_NAME_CHARS} characters")
        if _NUMBER_TEXT.fullmatch(name.casefold()):
            raise ValueError(f"VIP level name {name!r} reads as a number")
    if len({name.casefold() for name in names}) != len(names):
        raise ValueError("VIP level names must be distinct")


def effective_vip_level(own: int, group: int | None) -> int:
    """The one level a customer shows and routes by: its own, or its group's when higher."""
    return own if group is None or own >= group else group


__all__ = [
    "DEFAULT_VIP_LEVELS",
    "MAX_VIP_LEVEL",
    "VipLevelError",
    "VipLevels",
    "check_level_names",
    "effective_vip_level",
]
