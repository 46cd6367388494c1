"""The source-address ban list for failed authentications."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.sip.bans import FailureBanList, describe_ban
from switch.sip.errors import LocalProtocolError

ATTACKER = "203.0.113.7"


def fail(bans: FailureBanList, ip: str, times: list[float]) -> list[bool]:
    return [bans.record_failure(ip, now) for now in times]


def test_fifth_failure_within_the_window_bans() -> None:
    bans = FailureBanList(max_failures=5, window_s=60.0, ban_s=600.0)
    assert fail(bans, ATTACKER, [0.0, 10.0, 20.0, 30.0]) == [False] * 4
    assert not bans.is_banned(ATTACKER, 30.0)
    assert bans.record_failure(ATTACKER, 59.0) is True
    assert bans.is_banned(ATTACKER, 59.0)
    assert bans.banned() == [(ATTACKER, 659.0)]


def test_describe_ban_exact_text() -> None:
    assert describe_ban(ATTACKER, 600.0, 5) == (
        "banned 203.0.113.7 for 600 s after 5 failed authentications"
    )
    assert describe_ban("2001:db8::1", 90.5, 3) == (
        "banned 2001:db8::1 for 90.5 s after 3 failed authentications"
    )


def test_failures_spread_wider_than_the_window_never_ban() -> None:
    bans = FailureBanList(max_failures=3, window_s=60.0)
    assert fail(bans, ATTACKER, [0.0, 30.0, 60.0, 90.0, 120.0, 150.0]) == [False] * 6
    assert bans.record_failure(ATTACKER, 151.0) is True  # 120, 150, 151


def test_ban_expires() -> None:
    bans = FailureBanList(max_failures=2, window_s=60.0, ban_s=100.0)
    assert fail(bans, ATTACKER, [0.0, 1.0]) == [False, True]
    assert bans.is_banned(ATTACKER, 100.999)
    assert not bans.is_banned(ATTACKER, 101.0)
    assert bans.banned() == []
    # After the ban the count starts over.
    assert fail(bans, ATTACKER, [102.0, 103.0]) == [False, True]


def test_failures_during_a_ban_do_not_extend_it() -> None:
    bans = FailureBanList(max_failures=2, window_s=60.0, ban_s=100.0)
    fail(bans, ATTACKER, [0.0, 1.0])
    assert fail(bans, ATTACKER, [50.0, 60.0, 70.0]) == [False] * 3
    assert bans.banned() == [(ATTACKER, 101.0)]


def test_success_resets_the_count_but_not_a_ban() -> None:
    bans = FailureBanList(max_failures=3, window_s=60.0, ban_s=100.0)
    fail(bans, ATTACKER, [0.0, 1.0])
    bans.record_success(ATTACKER)
    assert fail(bans, ATTACKER, [2.0, 3.0]) == [False, False]
    assert bans.record_failure(ATTACKER, 4.0) is True
    bans.record_success(ATTACKER)
    assert bans.is_banned(ATTACKER, 5.0)


def test_unban() -> None:
    bans = FailureBanList(max_failures=1)
    assert bans.record_failure(ATTACKER, 0.0)
    bans.unban(ATTACKER)
    assert not bans.is_banned(ATTACKER, 1.0)


def test_whitelisted_addresses_and_networks_are_never_banned() -> None:
    bans = FailureBanList(max_failures=1, whitelist=["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])
    for ip in ("10.1.2.3", "192.0.2.1", "2001:db8::5", "::ffff:10.9.9.9"):
        assert bans.is_whitelisted(ip)
        assert fail(bans, ip, [0.0, 1.0, 2.0]) == [False] * 3
        assert not bans.is_banned(ip, 2.0)
    assert not bans.is_whitelisted("192.0.2.2")
    assert bans.record_failure("192.0.2.2", 0.0) is True


def test_ipv4_mapped_ipv6_is_the_same_address() -> None:
    bans = FailureBanList(max_failures=2)
    bans.record_failure("::ffff:203.0.113.7", 0.0)
    assert bans.record_failure(ATTACKER, 1.0) is True
    assert bans.is_banned("::ffff:203.0.113.7", 2.0)
    assert bans.banned() == [(ATTACKER, 601.0)]


def test_not_an_address_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError) as info:
        FailureBanList().record_failure("pbx.example", 0.0)
    assert str(info.value) == "not an IP address: 'pbx.example'"
    with pytest.raises(LocalProtocolError, match="max_failures must be at least 1, not 0"):
        FailureBanList(max_failures=0)


def test_tracked_addresses_are_bounded_oldest_forgotten() -> None:
    bans = FailureBanList(max_failures=3, max_tracked=2)
    fail(bans, "198.51.100.1", [0.0, 1.0])
    fail(bans, "198.51.100.2", [2.0])
    fail(bans, "198.51.100.3", [3.0])  # pushes out .1, the longest quiet
    assert bans.record_failure("198.51.100.1", 4.0) is False  # its count restarted
    fail(bans, "198.51.100.3", [5.0])
    assert bans.record_failure("198.51.100.3", 6.0) is True  # .3 was kept


def test_bans_are_bounded_soonest_ending_dropped() -> None:
    bans = FailureBanList(max_failures=1, ban_s=100.0, max_banned=2)
    for n in range(3):
        bans.record_failure(f"198.51.100.{n}", float(n))
    assert bans.banned() == [("198.51.100.1", 101.0), ("198.51.100.2", 102.0)]
    assert not bans.is_banned("198.51.100.0", 3.0)


def test_banned_with_now_drops_expired_entries() -> None:
    bans = FailureBanList(max_failures=1, ban_s=10.0)
    bans.record_failure("198.51.100.1", 0.0)
    bans.record_failure("198.51.100.2", 5.0)
    assert bans.banned(now=12.0) == [("198.51.100.2", 15.0)]
    assert repr(bans) == "<FailureBanList 1 banned, 0 tracked>"


# A step: (address index, seconds since the previous step, failure or success)
_steps = st.lists(
    st.tuples(st.integers(0, 2), st.floats(0.0, 40.0), st.booleans()), max_size=60
)


@given(_steps)
def test_matches_a_naive_reference_model(steps: list[tuple[int, float, bool]]) -> None:
    max_failures, window_s, ban_s = 3, 60.0, 100.0
    bans = FailureBanList(max_failures, window_s, ban_s)
    failures: dict[str, list[float]] = {}
    banned_until: dict[str, float] = {}
    now = 0.0
    for index, dt, failed in steps:
        now += dt
        ip = f"198.51.100.{index}"
        active = banned_until.get(ip, float("-inf")) > now
        if failed:
            expected = False
            if not active:
                recent = [t for t in failures.get(ip, []) if now - t < window_s] + [now]
                failures[ip] = recent
                if len(recent) >= max_failures:
                    expected = True
                    failures[ip] = []
                    banned_until[ip] = now + ban_s
            assert bans.record_failure(ip, now) is expected
        else:
            failures[ip] = []
            bans.record_success(ip)
        for other in range(3):
            address = f"198.51.100.{other}"
            assert bans.is_banned(address, now) is (banned_until.get(address, -1.0) > now)
