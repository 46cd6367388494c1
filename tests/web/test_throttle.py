"""LoginThrottle against a straightforward model: an attempt is refused exactly when the
last max_failures failures of its (username, address) pair, or the last
address_max_failures of its address, all lie inside the window; Retry-After says when
that ends. A username's failures from anywhere only slow its attempts down."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.throttle import Admission, FailureWindow, LoginThrottle, user_key

MAX, ADDRESS_MAX, WINDOW, DELAY = 3, 5, 60.0, 2.0


def throttle(max_keys: int = 100_000) -> LoginThrottle:
    return LoginThrottle(MAX, WINDOW, address_max_failures=ADDRESS_MAX, user_delay_s=DELAY,
                         max_keys=max_keys)


def model_wait(failures: list[float], limit: int, now: float) -> float:
    recent = [t for t in failures if t > now - WINDOW]
    return 0.0 if len(recent) < limit else recent[-limit] + WINDOW - now


def model_admission(failures: dict[str, list[float]], address: str, user: str,
                    now: float) -> Admission:
    longest = max(model_wait(failures[address + user], MAX, now),
                  model_wait(failures[address], ADDRESS_MAX, now))
    if longest > 0:
        return Admission(math.ceil(longest))
    return Admission(None, DELAY if model_wait(failures[user], MAX, now) > 0 else 0.0)


# A script of (seconds since the previous step, address, username, did the password fail).
steps = st.lists(st.tuples(st.floats(0, 40, allow_nan=False), st.sampled_from("ab"),
                           st.sampled_from("xy"), st.booleans()), max_size=80)


@given(steps)
def test_throttle_matches_the_model(script: list[tuple[float, str, str, bool]]) -> None:
    subject = throttle()
    keys = ["a", "b", "x", "y", "ax", "ay", "bx", "by"]
    failures: dict[str, list[float]] = {key: [] for key in keys}
    now = 0.0
    for gap, address, user, failed in script:
        now += gap
        admission = subject.admit(address, user, now)
        assert admission == model_admission(failures, address, user, now)
        if admission.retry_after_s is not None:
            assert 1 <= admission.retry_after_s <= WINDOW
            continue  # refused attempts are not counted again
        if failed:
            subject.record_failure(address, user, now)
            for key in (address + user, address, user):
                failures[key].append(now)
        else:
            subject.record_success(address, user)
            failures[address + user].clear()
            failures[user].clear()


def test_an_attacker_cannot_lock_the_owner_out_from_elsewhere() -> None:
    subject = LoginThrottle(5, 300, address_max_failures=20, user_delay_s=2.0)
    for t in range(50):
        if subject.admit("10.6.6.6", "admin", float(t)).retry_after_s is None:
            subject.record_failure("10.6.6.6", "admin", float(t))
    assert subject.admit("10.6.6.6", "admin", 50.0) == Admission(250)
    assert subject.admit("192.168.1.10", "admin", 50.0) == Admission(None, 2.0)
    subject.record_success("192.168.1.10", "admin")
    assert subject.admit("192.168.1.10", "admin", 51.0) == Admission(None, 0.0)
    assert subject.admit("10.6.6.6", "admin", 51.0) == Admission(249)


def test_an_address_trying_many_usernames_is_refused_for_all() -> None:
    subject = throttle()
    for n in range(ADDRESS_MAX):
        subject.record_failure("10.6.6.6", f"guess{n}", float(n))
    assert subject.admit("10.6.6.6", "admin", 10.0) == Admission(50)
    assert subject.admit("10.0.0.1", "admin", 10.0) == Admission(None)


def test_the_longer_refusal_of_pair_and_address_wins() -> None:
    subject = LoginThrottle(1, 100, address_max_failures=2, user_delay_s=0)
    subject.record_failure("ip", "a", 0.0)
    subject.record_failure("ip", "b", 50.0)
    assert subject.admit("ip", "b", 60.0) == Admission(90)
    assert subject.admit("ip", "a", 60.0) == Admission(40)
    assert subject.admit("ip", "c", 60.0) == Admission(40)


def test_a_success_keeps_the_address_count() -> None:
    subject = throttle()
    for n in range(ADDRESS_MAX - 1):
        subject.record_failure("ip", f"victim{n}", float(n))
    subject.record_success("ip", "my own account")
    subject.record_failure("ip", "victim9", 10.0)
    assert subject.admit("ip", "my own account", 11.0).retry_after_s == 49


def test_clients_without_an_address_count_as_one_address() -> None:
    subject = throttle()
    for _ in range(MAX):
        subject.record_failure(None, "x", 0.0)
    assert subject.admit(None, "x", 1.0) == Admission(59)
    assert subject.admit("ip", "x", 1.0) == Admission(None, DELAY)


def test_failure_window_blocks_after_limit_until_the_first_leaves() -> None:
    window = FailureWindow(5, 300)
    for t in range(5):
        assert window.wait_s("x", 100.0 + t) == 0.0
        window.record("x", 100.0 + t)
    assert window.wait_s("x", 104.0) == 296
    assert window.wait_s("x", 399.5) == 0.5
    assert window.wait_s("x", 400.0) == 0.0
    assert window.wait_s("y", 104.0) == 0.0
    window.record("y", 500.0)
    window.forget("y")
    assert window.wait_s("x", 404.0) == 0.0
    assert len(window) == 0  # x's failures all left the window: the key is dropped


def test_memory_is_bounded_by_max_keys() -> None:
    subject = throttle(max_keys=100)
    for n in range(1000):
        subject.record_failure(f"10.0.{n // 256}.{n % 256}", f"user{n}", float(n) / 100)
    assert len(subject) == 300  # pairs, addresses and usernames: 100 of each
    for _ in range(MAX):
        subject.record_failure("10.0.3.231", "user999", 10.0)
    assert subject.admit("10.0.3.231", "user999", 10.0) == Admission(60)


def test_usernames_fold_case_and_long_names_are_cut() -> None:
    assert user_key(" ZhangWei ") == "zhangwei"
    assert user_key("x" * 1000) == "x" * 150
    subject = throttle()
    for name in ("ZhangWei", "zhangwei ", "ZHANGWEI"):
        subject.record_failure("ip", name, 0.0)
    assert subject.admit("ip", "zhangWei", 1.0) == Admission(59)


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        FailureWindow(0, 10)
    with pytest.raises(ValueError):
        FailureWindow(1, 0)
    with pytest.raises(ValueError):
        LoginThrottle(1, 10, address_max_failures=0, user_delay_s=1)
    with pytest.raises(ValueError):
        LoginThrottle(1, 10, address_max_failures=1, user_delay_s=-1)
