"""RFC 4028 rules without any session: header values, the UAS and UAC decisions,
and the timer's deadlines."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.sip.headers import HeaderError
from switch.sip.message import Headers, Response
from switch.sip.session_timer import (
    MinSE,
    Refresher,
    SessionExpires,
    SessionTimer,
    TimerAnswer,
    TimerDue,
    TooSmall,
    answer_timer,
    request_timer_headers,
    retry_after_422,
    supports_timer,
    uac_timer,
)


def message(*headers: tuple[str, str]) -> Response:
    return Response(200, None, Headers(list(headers)))


# -- header values

@pytest.mark.parametrize(("text", "expected"), [
    ("1800", SessionExpires(1800)),
    ("1800;refresher=uac", SessionExpires(1800, Refresher.UAC)),
    (" 90 ; refresher = UAS", SessionExpires(90, Refresher.UAS)),
    ("4000;x-vendor=1;refresher=uas", SessionExpires(4000, Refresher.UAS)),
    ("99999999999", SessionExpires(2**32 - 1)),  # delta-seconds overflow is clamped
])
def test_session_expires_parse(text: str, expected: SessionExpires) -> None:
    assert SessionExpires.parse(text) == expected


@pytest.mark.parametrize(("text", "error"), [
    ("", "Session-Expires needs delta-seconds, got ''"),
    ("soon", "Session-Expires needs delta-seconds, got 'soon'"),
    ("-5", "Session-Expires needs delta-seconds, got '-5'"),
    ("1800;refresher=me", "refresher must be uac or uas, got 'me'"),
    ("1800;refresher", "refresher must be uac or uas, got ''"),
])
def test_session_expires_errors(text: str, error: str) -> None:
    with pytest.raises(HeaderError) as info:
        SessionExpires.parse(text)
    assert str(info.value) == error and info.value.status == 400


def test_serialize_and_repr() -> None:
    assert SessionExpires(1800, Refresher.UAC).serialize() == "1800;refresher=uac"
    assert SessionExpires(1800).serialize() == "1800"
    assert repr(SessionExpires(90, Refresher.UAS)) == "<SessionExpires 90;refresher=uas>"
    assert MinSE.parse("600;x=y") == MinSE(600) and MinSE(600).serialize() == "600"


@given(st.integers(0, 2**32 - 1), st.sampled_from([None, *Refresher]))
def test_session_expires_round_trip(interval_s: int, refresher: Refresher | None) -> None:
    value = SessionExpires(interval_s, refresher)
    assert SessionExpires.parse(value.serialize()) == value


@given(st.integers(0, 2**32 - 1))
def test_min_se_round_trip(interval_s: int) -> None:
    assert MinSE.parse(MinSE(interval_s).serialize()) == MinSE(interval_s)


@given(st.text(max_size=40))
def test_parsers_raise_only_header_errors(text: str) -> None:
    for parse in (SessionExpires.parse, MinSE.parse):
        with contextlib.suppress(HeaderError):
            parse(text)


def test_supports_timer_reads_supported_and_require_lists() -> None:
    assert supports_timer(message(("Supported", "100rel, Timer")))
    assert supports_timer(message(("Require", "timer")))
    assert not supports_timer(message(("Supported", "100rel, replaces")))


def test_request_headers() -> None:
    assert request_timer_headers(1800, 90) == [
        ("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90")]
    assert request_timer_headers(600, 120, Refresher.UAS)[1] == (
        "Session-Expires", "600;refresher=uas")


# -- the UAS decision (RFC 4028 §9)

TIMER = ("Supported", "timer")


@pytest.mark.parametrize(("headers", "we_refresh", "expected"), [
    # The UAC asks, without choosing: it refreshes.
    ((TIMER, ("Session-Expires", "1800")), None,
     TimerAnswer(SessionExpires(1800, Refresher.UAC), require_timer=True)),
    # It chose: copied.
    ((TIMER, ("Session-Expires", "1800;refresher=uas")), None,
     TimerAnswer(SessionExpires(1800, Refresher.UAS), require_timer=True)),
    # It asks for more than we want: reduced to ours.
    ((TIMER, ("Session-Expires", "7200")), None,
     TimerAnswer(SessionExpires(1800, Refresher.UAC), require_timer=True)),
    # ... but never below its own Min-SE.
    ((TIMER, ("Session-Expires", "7200"), ("Min-SE", "3600")), None,
     TimerAnswer(SessionExpires(3600, Refresher.UAC), require_timer=True)),
    # It supports timers but did not ask: we add one and refresh ourselves.
    ((TIMER,), None, TimerAnswer(SessionExpires(1800, Refresher.UAS), require_timer=True)),
    # It does not know the extension: we refresh, no Require.
    ((), None, TimerAnswer(SessionExpires(1800, Refresher.UAS), require_timer=False)),
    # A proxy put a too small interval in for a UAC without support: raised (errata 1687).
    ((("Session-Expires", "30"),), None,
     TimerAnswer(SessionExpires(120, Refresher.UAS), require_timer=False)),
    # Too small with support: 422.
    ((TIMER, ("Session-Expires", "90")), None, TooSmall(120)),
    # In a dialog, a request without refresher keeps today's refresher.
    ((TIMER, ("Session-Expires", "1800")), True,
     TimerAnswer(SessionExpires(1800, Refresher.UAS), require_timer=True)),
    ((TIMER, ("Session-Expires", "1800")), False,
     TimerAnswer(SessionExpires(1800, Refresher.UAC), require_timer=True)),
])
def test_answer_timer(headers: tuple[tuple[str, str], ...], we_refresh: bool | None,
                      expected: TimerAnswer | TooSmall) -> None:
    decision = answer_timer(message(*headers), session_expires_s=1800, min_se_s=120,
                            we_refresh=we_refresh)
    assert decision == expected


def test_answer_headers() -> None:
    answer = TimerAnswer(SessionExpires(1800, Refresher.UAC), require_timer=True)
    assert answer.headers() == [("Require", "timer"),
                                ("Session-Expires", "1800;refresher=uac")]
    assert not answer.we_refresh
    assert TimerAnswer(SessionExpires(90, Refresher.UAS), False).headers() == [
        ("Session-Expires", "90;refresher=uas")]


@given(asked=st.one_of(st.none(), st.integers(0, 10**6)),
       peer_min=st.one_of(st.none(), st.integers(90, 10**5)),
       ours=st.integers(90, 10**5), supported=st.booleans())
def test_an_accepted_interval_respects_every_minimum(asked: int | None, peer_min: int | None,
                                                     ours: int, supported: bool) -> None:
    headers = [*([TIMER] if supported else []),
               *([("Session-Expires", str(asked))] if asked is not None else []),
               *([("Min-SE", str(peer_min))] if peer_min is not None else [])]
    decision = answer_timer(message(*headers), session_expires_s=ours, min_se_s=90)
    if isinstance(decision, TooSmall):
        assert supported and asked is not None and asked < 90
        return
    interval_s = decision.session_expires.interval_s
    assert interval_s >= max(90, peer_min or 0)
    assert decision.session_expires.refresher is not None  # the 2xx always names one


# -- the UAC side (RFC 4028 §7.2, §7.3)

@pytest.mark.parametrize(("headers", "expected"), [
    ((("Require", "timer"), ("Session-Expires", "1800;refresher=uac")), (1800, True)),
    ((("Require", "timer"), ("Session-Expires", "900;refresher=uas")), (900, False)),
    ((("Session-Expires", "600"),), (600, True)),  # no refresher: the UAC refreshes
    ((), None),
])
def test_uac_timer(headers: tuple[tuple[str, str], ...],
                   expected: tuple[int, bool] | None) -> None:
    assert uac_timer(message(*headers)) == expected


def test_retry_after_422() -> None:
    too_small = message(("Min-SE", "600"))
    assert retry_after_422(too_small, session_expires_s=90, min_se_s=90) == (600, 600)
    assert retry_after_422(too_small, session_expires_s=1800, min_se_s=90) is None
    assert retry_after_422(message(), session_expires_s=90, min_se_s=90) is None


# -- deadlines (RFC 4028 §10)

def test_refresher_refreshes_at_half_the_interval() -> None:
    timer = SessionTimer(1800, we_refresh=True, refreshed_at=100.0)
    assert timer.next_deadline() == 1000.0
    assert timer.due(999.9) is None and timer.due(1000.0) is TimerDue.REFRESH
    timer.refresh_pending = True
    assert timer.next_deadline() == 1900.0  # no answer by the expiry: BYE
    assert timer.due(1900.0) is TimerDue.EXPIRE
    timer.renew(1200.0)
    assert not timer.refresh_pending and timer.next_deadline() == 2100.0


@pytest.mark.parametrize(("interval_s", "bye_at"), [(1800, 1768.0), (90, 60.0), (96, 64.0)])
def test_the_other_side_byes_before_the_expiry(interval_s: int, bye_at: float) -> None:
    timer = SessionTimer(interval_s, we_refresh=False, refreshed_at=0.0)
    assert timer.next_deadline() == bye_at  # min(32 s, interval/3) early
    assert timer.due(bye_at) is TimerDue.EXPIRE


@given(st.integers(90, 10**6), st.booleans(), st.booleans(), st.floats(0, 10**6))
def test_deadline_is_inside_the_interval(interval_s: int, we_refresh: bool, pending: bool,
                                         at: float) -> None:
    timer = SessionTimer(interval_s, we_refresh, at, pending)
    assert at < timer.next_deadline() <= at + interval_s
    assert timer.due(timer.next_deadline()) is not None
