"""OPTIONS keepalive: exact timelines with explicit `now`, and a property that no
sequence of reports leaves the machine in an undefined state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.pri_gateway.health import (
    GatewayCameBack,
    GatewayHealth,
    GatewayWentDown,
    HealthError,
    HealthState,
)

TIMER_F_S = 32.0  # RFC 3261 §17.1.2.2: 64*T1 with T1 = 0.5 s


def test_first_probe_is_due_at_once_then_every_interval() -> None:
    h = GatewayHealth("gw1")
    assert h.is_live and h.state is HealthState.UP
    assert h.due(0.0) and h.next_deadline() == 0.0
    h.probe_sent(1000.0)
    assert h.next_deadline() is None and not h.due(5000.0)  # one probe at a time
    assert h.response_received(200, 1000.02) is None
    assert h.next_deadline() == 1030.0
    assert not h.due(1029.999)
    assert h.due(1030.0)


def test_three_timeouts_take_the_gateway_down_at_the_exact_time() -> None:
    h = GatewayHealth("gw1", interval_s=30.0, failures_to_down=3)
    # Each probe times out after timer F (32 s) - later than the 30 s interval, so the
    # next probe goes out when the previous one's outcome arrives.
    timeline: list[tuple[float, object]] = []
    now = 0.0
    for _ in range(3):
        assert h.due(now)
        h.probe_sent(now)
        now += TIMER_F_S
        timeline.append((now, h.probe_timed_out(now)))
        timeline.append((now, h.state))
    assert timeline == [
        (32.0, None), (32.0, HealthState.SUSPECT),
        (64.0, None), (64.0, HealthState.SUSPECT),
        (96.0, GatewayWentDown("gw1", 96.0)), (96.0, HealthState.DOWN),
    ]
    assert not h.is_live


def test_quick_timeouts_keep_the_30_second_cadence() -> None:
    h = GatewayHealth("gw1")
    events = []
    for sent in (0.0, 30.0, 60.0):
        assert h.due(sent)
        if sent > 0.0:
            assert not h.due(sent - 0.001)
        h.probe_sent(sent)
        events.append(h.probe_timed_out(sent + 5.0))
    assert events == [None, None, GatewayWentDown("gw1", 65.0)]


def test_a_success_resets_the_failure_count() -> None:
    h = GatewayHealth("gw1")
    for sent, timed_out in ((0.0, True), (30.0, True), (60.0, False), (90.0, True)):
        h.probe_sent(sent)
        if timed_out:
            assert h.probe_timed_out(sent + 5.0) is None
        else:
            assert h.response_received(200, sent + 0.01) is None
    assert h.state is HealthState.SUSPECT and h.is_live
    assert h.consecutive_failures == 1


def test_down_gateway_is_probed_faster_and_comes_back_after_two_successes() -> None:
    h = GatewayHealth("gw1", interval_s=30.0, down_interval_s=10.0, successes_to_up=2)
    now = 0.0
    for _ in range(3):
        h.probe_sent(now)
        now += TIMER_F_S
        h.probe_timed_out(now)
    assert h.state is HealthState.DOWN
    # While down: probes continue, next one due as soon as the timeout is reported...
    assert h.next_deadline() == 74.0 and h.due(96.0)
    h.probe_sent(96.0)
    assert h.probe_timed_out(128.0) is None
    # ...and the gateway answers again.
    h.probe_sent(128.0)
    assert h.response_received(200, 128.01) is None
    assert (h.state, h.is_live) == (HealthState.RECOVERING, False)
    assert h.next_deadline() == 138.0  # down_interval_s after the last probe was sent
    h.probe_sent(138.0)
    assert h.response_received(200, 138.01) == GatewayCameBack("gw1", 138.01)
    assert (h.state, h.is_live) == (HealthState.UP, True)
    assert h.next_deadline() == 168.0  # back to interval_s


def test_a_miss_while_recovering_starts_the_count_again() -> None:
    h = GatewayHealth("gw1", failures_to_down=3, successes_to_up=2)
    for sent in (-64.0, -32.0, 0.0):
        h.probe_sent(sent)
        last = h.probe_timed_out(sent + 32.0)
    assert last == GatewayWentDown("gw1", 32.0)
    h.probe_sent(42.0)
    h.response_received(200, 42.1)
    h.probe_sent(52.0)
    assert h.probe_timed_out(84.0) is None
    assert h.state is HealthState.DOWN  # one miss, not three: recovery needs a clean run
    h.probe_sent(94.0)
    assert h.response_received(200, 94.1) is None  # one success, not two in a row
    h.probe_sent(104.0)
    assert h.response_received(200, 104.1) == GatewayCameBack("gw1", 104.1)


@pytest.mark.parametrize("status", [200, 404, 405, 408, 481, 488, 500, 501, 600, 603])
def test_any_final_response_proves_the_gateway_alive(status: int) -> None:
    h = GatewayHealth("gw1", failures_to_down=1, successes_to_up=1)
    h.probe_sent(0.0)
    h.probe_timed_out(32.0)
    h.probe_sent(42.0)
    assert h.response_received(status, 42.5) == GatewayCameBack("gw1", 42.5)


def test_503_counts_as_a_failed_probe() -> None:
    h = GatewayHealth("gw1", failures_to_down=2)
    h.probe_sent(0.0)
    assert h.response_received(503, 0.1) is None
    h.probe_sent(30.0)
    assert h.response_received(503, 30.1) == GatewayWentDown("gw1", 30.1)


def test_provisional_response_leaves_the_probe_outstanding() -> None:
    h = GatewayHealth("gw1")
    h.probe_sent(0.0)
    assert h.response_received(100, 0.01) is None
    assert h.probe_outstanding and h.next_deadline() is None
    assert h.response_received(200, 0.02) is None
    assert not h.probe_outstanding


def test_out_of_order_reports_are_refused_with_exact_messages() -> None:
    h = GatewayHealth("gw1")
    with pytest.raises(HealthError, match=r"^gateway 'gw1': no probe is outstanding$"):
        h.response_received(200, 1.0)
    with pytest.raises(HealthError, match=r"^gateway 'gw1': no probe is outstanding$"):
        h.probe_timed_out(1.0)
    h.probe_sent(0.0)
    with pytest.raises(HealthError, match=r"^gateway 'gw1': a probe is already outstanding$"):
        h.probe_sent(1.0)
    with pytest.raises(HealthError, match=r"^gateway 'gw1': status 99 is not a SIP status$"):
        h.response_received(99, 1.0)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(HealthError, match=r"^gateway 'g': probe intervals must be positive$"):
        GatewayHealth("g", interval_s=0.0)
    with pytest.raises(HealthError, match=r"failure and success counts must be >= 1$"):
        GatewayHealth("g", failures_to_down=0)


# --- Property: random report sequences ------------------------------------------------

# Whole probes (sent, then an outcome) most of the time, so the machine gets around its
# whole table; stray single reports in between exercise the refusals.
_outcome = st.one_of(
    st.just(("timeout", 0)),
    st.tuples(st.just("response"), st.sampled_from([100, 180, 200, 404, 501, 503, 603])),
    st.tuples(st.just("response"), st.integers(min_value=-5, max_value=800)),
)
_probe = _outcome.map(lambda outcome: [("sent", 0), outcome])
_stray = st.one_of(st.just(("sent", 0)), _outcome).map(lambda report: [report])
reports = st.lists(st.one_of(_probe, _probe, _probe, _stray), max_size=60).map(
    lambda steps: [report for step in steps for report in step]
)


@given(
    reports,
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=4),
)
def test_random_reports_never_reach_an_undefined_state(
    script: list[tuple[str, int]], failures_to_down: int, successes_to_up: int
) -> None:
    h = GatewayHealth("gw", failures_to_down=failures_to_down, successes_to_up=successes_to_up)
    now = 0.0
    live = True
    for kind, status in script:
        now += 1.0
        before = (h.state, h.probe_outstanding, h.consecutive_failures)
        try:
            if kind == "sent":
                h.probe_sent(now)
                event = None
            elif kind == "timeout":
                event = h.probe_timed_out(now)
            else:
                event = h.response_received(status, now)
        except HealthError:
            # Refused input changes nothing.
            assert (h.state, h.probe_outstanding, h.consecutive_failures) == before
            continue
        assert h.state in HealthState
        assert h.is_live == (h.state in (HealthState.UP, HealthState.SUSPECT))
        # An event is emitted exactly when liveness flips, and says which way.
        if h.is_live != live:
            assert event == (GatewayCameBack("gw", now) if h.is_live
                             else GatewayWentDown("gw", now))
        else:
            assert event is None
        live = h.is_live
        assert min(h.consecutive_failures, h.consecutive_successes) >= 0
        assert h.consecutive_failures == 0 or h.consecutive_successes == 0
        if h.state is HealthState.SUSPECT:
            assert 0 < h.consecutive_failures < failures_to_down
        if h.state is HealthState.RECOVERING:
            assert 0 < h.consecutive_successes < successes_to_up
        deadline = h.next_deadline()
        assert (deadline is None) == h.probe_outstanding
