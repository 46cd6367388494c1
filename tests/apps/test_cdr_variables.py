"""apps.cdr_variables.storable: any call variables become a JSON object of bounded size."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.cdr_variables import CUT_MARK, MAX_BYTES, TRUNCATED_KEY, storable


def stored_size(value: object) -> int:
    return len(json.dumps(value))


def test_no_variables_store_nothing() -> None:
    assert storable(None) is None
    assert storable({}) is None


def test_plain_json_is_stored_as_it_is() -> None:
    variables = {"customer_id": 42, "vip_level": "金卡", "digits": "1#",
                 "ivr_path": [{"node": "menu", "pressed": "1", "duration_s": 3.5}],
                 "callback": None, "vip": True}
    assert storable(variables) == variables


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_what_json_has_no_form_for_is_stored_as_its_str() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    cyclic: list[object] = ["a"]
    cyclic.append(cyclic)
    assert storable({
        "when": when,
        "keys": frozenset({"1"}),
        "score": math.nan,
        "limit": math.inf,
        "huge": 10**5000,  # past the digits int->str converts
        "odd": Unprintable(),
        7: ("a", 1),
        "cyclic": cyclic,
        "nested": {1: {when}},
    }) == {
        "when": "2024-05-06 07:08:09+00:00",
        "keys": "frozenset({'1'})",
        "score": "nan",
        "limit": "inf",
        "huge": "<unprintable int>",
        "odd": "<unprintable Unprintable>",
        "7": ["a", 1],
        "cyclic": ["a", "[cycle]"],
        "nested": {"1": "{datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)}"},
    }


class Broken(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("gone")

    def __len__(self) -> int:
        return 1


def test_a_mapping_that_cannot_be_read_leaves_a_note() -> None:
    assert storable(Broken()) == {TRUNCATED_KEY: "not stored: RuntimeError"}


def test_an_oversize_set_keeps_what_fits_cuts_one_and_says_so() -> None:
    variables = {"customer_id": 42, "transcript": "x" * 20_000, "vip_level": "金卡",
                 "ivr_path": ["menu:1"] * 4000, "digits": "1"}
    stored = storable(variables)
    assert stored is not None
    assert list(stored) == ["customer_id", "transcript", "vip_level", "digits", TRUNCATED_KEY]
    assert (stored["customer_id"], stored["vip_level"], stored["digits"]) == (42, "金卡", "1")
    transcript = stored["transcript"]
    assert isinstance(transcript, str) and transcript.endswith(CUT_MARK)
    assert transcript.startswith("xxxx") and len(transcript) > 15_000
    assert stored[TRUNCATED_KEY] == "over 16384 bytes: 1 variable(s) cut short, 1 left out"
    assert MAX_BYTES - 200 < stored_size(stored) <= MAX_BYTES


def test_a_cut_value_that_is_not_a_string_is_its_json_text() -> None:
    path = [f"menu:{i}" for i in range(5000)]
    stored = storable({"ivr_path": path})
    assert stored is not None
    cut = stored["ivr_path"]
    assert isinstance(cut, str) and cut.endswith(CUT_MARK)
    assert cut.startswith('["menu:0", "menu:1", ')
    assert stored[TRUNCATED_KEY] == "over 16384 bytes: 1 variable(s) cut short, 0 left out"
    assert stored_size(stored) <= MAX_BYTES


def test_escaped_characters_count_as_stored() -> None:
    # Stored as \uXXXX, a Chinese character is 6 bytes of JSON: the cut makes room for it.
    stored = storable({"note": "金" * 10_000})
    assert stored is not None
    assert stored_size(stored) <= MAX_BYTES
    note = stored["note"]
    assert isinstance(note, str) and set(note.removesuffix(CUT_MARK)) == {"金"}


_leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.datetimes() | st.binary() | st.builds(object))
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner) | st.tuples(inner, inner)
    | st.dictionaries(st.text() | st.integers(), inner),
    max_leaves=40,
)


_long_texts = st.builds(lambda part, n: part * n, st.text(min_size=1, max_size=3),
                       st.integers(1000, 9000))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(), _values | _long_texts, max_size=8))
def test_anything_becomes_strict_json_within_the_bound(variables: dict[str, object]) -> None:
    stored = storable(variables)
    if not variables:
        assert stored is None
        return
    text = json.dumps(stored, allow_nan=False)
    assert len(text) <= MAX_BYTES
    assert json.loads(text) == stored
