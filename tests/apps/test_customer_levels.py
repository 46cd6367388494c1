"""VIP levels by name and rank (apps.customer_levels): what routing compares and pages show."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps import VipLevelError, VipLevels
from apps.customer_levels import effective_vip_level

LEVELS = VipLevels()


def test_the_default_levels_rank_from_the_lowest() -> None:
    assert LEVELS.names == ("钻石卡", "金卡", "银卡", "普通")
    assert [LEVELS.rank(name) for name in LEVELS.names] == [3, 2, 1, 0]
    assert LEVELS.ranks == ((3, "钻石卡"), (2, "金卡"), (1, "银卡"), (0, "普通"))
    assert [LEVELS.name(rank) for rank in range(4)] == ["普通", "银卡", "金卡", "钻石卡"]


def test_numbers_scripts_and_old_sheets_write_are_ranks() -> None:
    assert [LEVELS.rank(value) for value in (0, 3, 3.0, "3", " 2 ", "VIP3", "v 1", "3级",
                                             "vip10", 99)] == [0, 3, 3, 3, 2, 3, 1, 3, 10, 99]
    assert LEVELS.rank(" 金卡 ") == 2
    # A rank above the names keeps its order and shows as a number.
    assert LEVELS.name(10) == "VIP 10"


@pytest.mark.parametrize("value", ["白金卡", "", "gold", -1, 100, 2.5, True, "VIP100"])
def test_anything_else_is_refused_naming_the_levels(value: object) -> None:
    with pytest.raises(VipLevelError) as raised:
        LEVELS.rank(value)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"unknown VIP level '{value}': give one of 钻石卡, 金卡, 银卡, 普通 or a whole "
        "number 0 to 99")


def test_routing_compares_ranks_not_names() -> None:
    assert LEVELS.is_at_least("钻石卡", "金卡")
    assert LEVELS.is_at_least("金卡", "金卡")
    assert not LEVELS.is_at_least("银卡", "金卡")
    assert LEVELS.is_at_least(2, "金卡") and not LEVELS.is_at_least("普通", 1)
    assert LEVELS.is_at_least(10, "钻石卡")


def test_configured_levels_rank_the_same_way() -> None:
    levels = VipLevels(["黑金", "白金", "普通"])
    assert (levels.rank("黑金"), levels.rank("白金"), levels.rank("普通")) == (2, 1, 0)
    with pytest.raises(VipLevelError):
        levels.rank("金卡")


@pytest.mark.parametrize("names", [[], ["金卡", "金卡"], ["Gold", "gold"], ["3"], ["VIP2"],
                                   [""], ["卡" * 33]])
def test_level_lists_that_could_not_be_told_apart_are_refused(names: list[str]) -> None:
    with pytest.raises(ValueError):
        VipLevels(names)


def test_a_customer_shows_its_groups_level_when_that_is_higher() -> None:
    assert effective_vip_level(0, 3) == 3
    assert effective_vip_level(2, 1) == 2
    assert effective_vip_level(1, None) == 1


@given(st.integers(0, 99), st.integers(0, 99))
def test_is_at_least_is_the_order_of_ranks(a: int, b: int) -> None:
    assert LEVELS.is_at_least(a, b) == (a >= b)
    assert LEVELS.rank(LEVELS.name(a)) == a
