"""Trunk groups and E1 channel accounting: what call control sees when it asks for a
channel, in either direction, and whom it trusts by source address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.pri_gateway.health import GatewayHealth
from switch.pri_gateway.trunks import (
    ALL_GATEWAYS_DOWN,
    TRUNK_FULL,
    ChannelPool,
    Direction,
    Gateway,
    Rejection,
    Seizure,
    TrunkError,
    TrunkGroup,
    Trunks,
)

IN, OUT = Direction.INBOUND, Direction.OUTBOUND


def fill(pool: ChannelPool, n: int, prefix: str, direction: Direction) -> None:
    for i in range(n):
        assert pool.seize(f"{prefix}{i}", direction) is not None


def take_down(trunks: Trunks, name: str, now: float = 0.0) -> None:
    health = trunks.health[name]
    while health.is_live:
        health.probe_sent(now)
        health.probe_timed_out(now + 32.0)
        now += 32.0


# --- Gateway and channel pool ---------------------------------------------------------


def test_gateway_defaults_and_channels_per_span() -> None:
    gw = Gateway("gw1", "10.0.0.5")
    assert (gw.port, gw.transport, gw.spans, gw.channels) == (5060, "UDP", 1, 30)
    assert Gateway("gw2", "10.0.0.6", spans=4).channels == 120


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spans": 0}, "gateway 'gw': spans must be >= 1, got 0"),
        ({"port": 0}, "gateway 'gw': port 0 is out of range"),
        ({"transport": "SCTP"}, "gateway 'gw': transport 'SCTP' is not UDP, TCP or TLS"),
        ({"host": ""}, "gateway 'gw': host must not be empty"),
    ],
)
def test_gateway_rejects_bad_config(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "gw", "host": "10.0.0.5", **kwargs}
    with pytest.raises(TrunkError) as exc:
        Gateway(**args)  # type: ignore[arg-type]
    assert str(exc.value) == message


def test_inbound_and_outbound_share_the_spans() -> None:
    pool = ChannelPool(Gateway("gw1", "10.0.0.5"))
    fill(pool, 20, "in-", IN)
    fill(pool, 10, "out-", OUT)
    assert (pool.busy, pool.free, pool.capacity) == (30, 0, 30)
    assert (pool.busy_in(IN), pool.busy_in(OUT)) == (20, 10)
    assert pool.seize("one-more-in", IN) is None
    assert pool.seize("one-more-out", OUT) is None


def test_two_spans_hold_sixty_calls() -> None:
    pool = ChannelPool(Gateway("gw1", "10.0.0.5", spans=2))
    fill(pool, 60, "c", OUT)
    assert (pool.busy, pool.free) == (60, 0)
    assert pool.seize("c60", OUT) is None


def test_seizure_names_gateway_call_and_direction() -> None:
    gw = Gateway("gw1", "10.0.0.5")
    pool = ChannelPool(gw)
    assert pool.seize("abc@host", IN) == Seizure(gw, "abc@host", IN)


def test_release_frees_and_double_release_is_harmless() -> None:
    pool = ChannelPool(Gateway("gw1", "10.0.0.5"))
    fill(pool, 30, "c", IN)
    assert pool.release("c7") is True
    assert (pool.busy, pool.free) == (29, 1)
    assert pool.release("c7") is False
    assert pool.release("never-seized") is False
    assert (pool.busy, pool.free) == (29, 1)
    assert pool.seize("new", OUT) is not None
    assert pool.free == 0


def test_seizing_twice_for_one_call_takes_one_channel() -> None:
    pool = ChannelPool(Gateway("gw1", "10.0.0.5"))
    first = pool.seize("c1", OUT)
    assert pool.seize("c1", OUT) == first
    assert pool.busy == 1
    with pytest.raises(TrunkError) as exc:
        pool.seize("c1", IN)
    assert str(exc.value) == "call 'c1' already holds a channel on gateway 'gw1' as outbound"


# --- Trunk group selection ------------------------------------------------------------


def make_trunks(*gateways: Gateway) -> Trunks:
    return Trunks([TrunkGroup("pstn", gateways)])


def test_outbound_picks_least_busy_gateway() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    fill(trunks.pools["a"], 3, "a", IN)
    fill(trunks.pools["b"], 1, "b", IN)
    choice = trunks.seize_outbound("pstn", "out-1")
    assert isinstance(choice, Seizure)
    assert choice.gateway.name == "b"


def test_ties_go_to_configured_order_and_calls_spread() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    picked = []
    for i in range(4):
        s = trunks.seize_outbound("pstn", f"c{i}")
        assert isinstance(s, Seizure)
        picked.append(s.gateway.name)
    assert picked == ["a", "b", "a", "b"]


def test_least_busy_is_by_share_of_channels() -> None:
    # 10 of 120 busy on the 4-span gateway is less loaded than 5 of 30 on the 1-span one.
    trunks = make_trunks(Gateway("small", "10.0.0.1"), Gateway("big", "10.0.0.2", spans=4))
    fill(trunks.pools["small"], 5, "s", IN)
    fill(trunks.pools["big"], 10, "b", IN)
    assert trunks.select_outbound("pstn") == trunks.gateways["big"]


def test_a_full_gateway_is_skipped() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2", spans=4))
    fill(trunks.pools["a"], 30, "a", IN)
    fill(trunks.pools["b"], 119, "b", IN)  # busier by share than nothing, but has room
    assert trunks.select_outbound("pstn") == trunks.gateways["b"]


def test_down_gateway_is_skipped_even_when_least_busy() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    fill(trunks.pools["b"], 29, "b", IN)
    take_down(trunks, "a")
    assert trunks.select_outbound("pstn") == trunks.gateways["b"]


def test_full_trunk_is_rejected_with_503_cause_34() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    for i in range(60):
        assert isinstance(trunks.seize_outbound("pstn", f"c{i}"), Seizure)
    rejection = trunks.seize_outbound("pstn", "c60")
    assert rejection == Rejection(503, 34, "No circuit/channel available")
    assert rejection == TRUNK_FULL
    assert TRUNK_FULL.reason_header_value() == 'Q.850;cause=34;text="No circuit/channel available"'


def test_live_gateways_full_and_others_down_is_still_cause_34() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    take_down(trunks, "a")
    fill(trunks.pools["b"], 30, "b", IN)
    assert trunks.seize_outbound("pstn", "x") == TRUNK_FULL


def test_all_gateways_down_is_rejected_with_503_cause_38() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    take_down(trunks, "a")
    take_down(trunks, "b")
    rejection = trunks.seize_outbound("pstn", "x")
    assert rejection == ALL_GATEWAYS_DOWN
    assert (rejection.status, rejection.q850_cause) == (503, 38)
    assert rejection.reason_header_value() == 'Q.850;cause=38;text="Network out of order"'
    assert trunks.pools["a"].busy == trunks.pools["b"].busy == 0


def test_gateway_back_up_rejoins_the_rotation() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"))
    take_down(trunks, "a")
    assert trunks.select_outbound("pstn") == ALL_GATEWAYS_DOWN
    health = trunks.health["a"]
    for now in (200.0, 210.0):
        health.probe_sent(now)
        health.response_received(200, now + 0.01)
    assert trunks.select_outbound("pstn") == trunks.gateways["a"]


def test_inbound_counts_against_outbound_capacity_across_groups() -> None:
    gw = Gateway("a", "10.0.0.1")
    trunks = Trunks([TrunkGroup("local", [gw]), TrunkGroup("long-distance", [gw])])
    for i in range(15):
        assert isinstance(trunks.seize_inbound(gw, f"in{i}"), Seizure)
    for i in range(15):
        group = "local" if i % 2 else "long-distance"
        assert isinstance(trunks.seize_outbound(group, f"out{i}"), Seizure)
    assert trunks.seize_outbound("local", "out15") == TRUNK_FULL
    assert trunks.seize_inbound(gw, "in15") == TRUNK_FULL


def test_inbound_is_accepted_from_a_gateway_marked_down() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"))
    take_down(trunks, "a")
    assert isinstance(trunks.seize_inbound(trunks.gateways["a"], "in"), Seizure)


def test_inbound_only_gateway_and_configured_keepalive() -> None:
    inbound_only = Gateway("in-only", "10.0.0.9")
    trunks = Trunks(
        [TrunkGroup("pstn", [Gateway("a", "10.0.0.1")])],
        gateways=[inbound_only],
        make_health=lambda name: GatewayHealth(name, interval_s=5.0, failures_to_down=1),
    )
    assert trunks.gateway_for_source("10.0.0.9", 5060) == inbound_only
    assert isinstance(trunks.seize_inbound(inbound_only, "in"), Seizure)
    health = trunks.health["a"]
    health.probe_sent(0.0)
    assert health.response_received(200, 0.1) is None
    assert health.next_deadline() == 5.0
    health.probe_sent(5.0)
    health.probe_timed_out(37.0)
    assert trunks.select_outbound("pstn") == ALL_GATEWAYS_DOWN


def test_release_through_trunks_frees_the_right_pool_once() -> None:
    trunks = make_trunks(Gateway("a", "10.0.0.1"), Gateway("b", "10.0.0.2"))
    s = trunks.seize_outbound("pstn", "c")
    assert isinstance(s, Seizure)
    assert trunks.release(s) is True
    assert trunks.release(s) is False
    assert trunks.pools["a"].busy == trunks.pools["b"].busy == 0


def test_configuration_errors_are_exact() -> None:
    a = Gateway("a", "10.0.0.1")
    with pytest.raises(TrunkError, match=r"^trunk group 'x' has no gateways$"):
        TrunkGroup("x", [])
    with pytest.raises(TrunkError, match=r"^trunk group 'x' lists a gateway twice$"):
        TrunkGroup("x", [a, a])
    with pytest.raises(TrunkError, match=r"^gateway 'a' is configured twice, differently$"):
        Trunks([TrunkGroup("x", [a]), TrunkGroup("y", [Gateway("a", "10.0.0.9")])])
    with pytest.raises(TrunkError, match=r"^trunk group 'nope' is not configured$"):
        make_trunks(a).seize_outbound("nope", "c")


# --- Trust by source address ----------------------------------------------------------


def test_gateway_for_source_matches_exact_host_any_port() -> None:
    tcp = Gateway("tcp-gw", "10.0.0.5", transport="TCP")
    trunks = make_trunks(tcp, Gateway("other", "10.0.0.6"))
    assert trunks.gateway_for_source("10.0.0.5", 5060) == tcp
    assert trunks.gateway_for_source("10.0.0.5", 49152) == tcp  # ephemeral TCP port
    assert trunks.gateway_for_source("10.0.0.5") == tcp
    assert trunks.gateway_for_source("10.0.0.50", 5060) is None  # no prefix matching
    assert trunks.gateway_for_source("10.0.0.", 5060) is None
    assert trunks.gateway_for_source("192.168.1.5", 5060) is None


def test_gateway_for_source_uses_port_to_tell_gateways_on_one_host_apart() -> None:
    first = Gateway("first", "10.0.0.5", port=5060)
    second = Gateway("second", "10.0.0.5", port=5062)
    trunks = make_trunks(first, second)
    assert trunks.gateway_for_source("10.0.0.5", 5062) == second
    assert trunks.gateway_for_source("10.0.0.5", 5060) == first
    assert trunks.gateway_for_source("10.0.0.5", 40000) == first


def test_gateway_for_source_compares_ipv6_by_value() -> None:
    gw = Gateway("v6", "2001:db8::5")
    trunks = make_trunks(gw)
    assert trunks.gateway_for_source("2001:0db8:0:0:0:0:0:5", 5060) == gw
    assert trunks.gateway_for_source("2001:db8::6", 5060) is None


# --- Property: accounting never leaves its bounds -------------------------------------

actions = st.lists(
    st.tuples(
        st.sampled_from(["seize_in", "seize_out", "release"]),
        st.integers(min_value=0, max_value=80),
    ),
    max_size=300,
)


@given(actions)
def test_channel_counts_stay_within_capacity(script: list[tuple[str, int]]) -> None:
    pool = ChannelPool(Gateway("gw", "10.0.0.1", spans=2))
    model: dict[str, Direction] = {}
    for action, n in script:
        call_id = f"c{n}"
        if action == "release":
            pool.release(call_id)
            model.pop(call_id, None)
        else:
            direction = IN if action == "seize_in" else OUT
            if call_id in model and model[call_id] is not direction:
                with pytest.raises(TrunkError):
                    pool.seize(call_id, direction)
                continue
            result = pool.seize(call_id, direction)
            if result is None:
                assert call_id not in model and len(model) == 60
            else:
                model[call_id] = direction
        assert 0 <= pool.busy <= pool.capacity == 60
        assert pool.busy == len(model)
        assert pool.free == 60 - len(model)
        assert pool.busy_in(IN) + pool.busy_in(OUT) == pool.busy
