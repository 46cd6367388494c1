"""LoginThrottle against a straightforward model: blocked exactly when the last
max_failures failures all lie inside the window; Retry-After says when that ends."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.throttle import LoginThrottle, throttle_keys

MAX, WINDOW = 3, 60.0


def model_wait(failures: list[float], now: float) -> int | None:
    recent = [t for t in failures if t > now - WINDOW]
    if len(recent) < MAX:
        return None
    return math.ceil(recent[-MAX] + WINDOW - now)


# A script of (seconds since the previous step, key, did this attempt fail).
steps = st.lists(st.tuples(st.floats(0, 40, allow_nan=False), st.sampled_from("ab"),
                           st.booleans()), max_size=60)


@given(steps)
def test_throttle_matches_the_model(script: list[tuple[float, str, bool]]) -> None:
    throttle = LoginThrottle(MAX, WINDOW)
    failures: dict[str, list[float]] = {"a": [], "b": []}
    now = 0.0
    for gap, key, failed in script:
        now += gap
        wait = throttle.retry_after_s([key], now)
        assert wait == model_wait(failures[key], now)
        if wait is not None:
            assert 1 <= wait <= WINDOW
            continue  # refused attempts are not counted again
        if failed:
            throttle.record_failure([key], now)
            failures[key].append(now)


def test_blocked_after_max_failures_until_the_first_leaves_the_window() -> None:
    throttle = LoginThrottle(5, 300)
    for t in range(5):
        assert throttle.retry_after_s(["user:x"], 100.0 + t) is None
        throttle.record_failure(["user:x"], 100.0 + t)
    assert throttle.retry_after_s(["user:x"], 104.0) == 296
    assert throttle.retry_after_s(["user:x"], 399.5) == 1
    assert throttle.retry_after_s(["user:x"], 400.0) is None
    assert throttle.retry_after_s(["user:y"], 104.0) is None


def test_the_longest_wait_of_several_keys_wins() -> None:
    throttle = LoginThrottle(1, 100)
    throttle.record_failure(["ip:1"], 0.0)
    throttle.record_failure(["user:a"], 50.0)
    assert throttle.retry_after_s(["user:a", "ip:1"], 60.0) == 90


def test_forget_clears_a_key() -> None:
    throttle = LoginThrottle(1, 100)
    throttle.record_failure(["user:a", "ip:1"], 0.0)
    throttle.forget("user:a")
    assert throttle.retry_after_s(["user:a"], 1.0) is None
    assert throttle.retry_after_s(["ip:1"], 1.0) == 99


def test_memory_is_bounded_by_max_keys() -> None:
    throttle = LoginThrottle(5, 300, max_keys=100)
    for n in range(1000):
        throttle.record_failure([f"user:{n}"], float(n))
    assert len(throttle) == 100
    throttle.record_failure(["user:999"] * 4, 1000.0)
    assert throttle.retry_after_s(["user:999"], 1000.0) == 299


def test_keys_fold_case_and_cut_long_names() -> None:
    assert throttle_keys("10.0.0.1", " ZhangWei ") == ("user:zhangwei", "ip:10.0.0.1")
    assert throttle_keys(None, "x" * 1000) == ("user:" + "x" * 150,)


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        LoginThrottle(0, 10)
    with pytest.raises(ValueError):
        LoginThrottle(1, 0)
