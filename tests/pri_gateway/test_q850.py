"""Q.850 <-> SIP mapping (RFC 3398 tables, row by row) and the Reason header."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from switch.pri_gateway import (
    CAUSE_NAMES,
    CauseClass,
    ReasonHeaderError,
    ReasonValue,
    cause_class,
    cause_name,
    format_reason,
    parse_reason,
    q850_cause_for_status,
    q850_cause_from_reason,
    sip_status_for_cause,
)
from switch.pri_gateway.q850 import ISUP_CAUSE_TO_SIP_STATUS, SIP_STATUS_TO_ISUP_CAUSE
from switch.sip import LocalProtocolError, RemoteProtocolError

# RFC 3398 §7.2.4.1, typed in again from the RFC (not copied from the module).
RFC3398_ISUP_TO_SIP = [
    (1, 404), (2, 404), (3, 404), (17, 486), (18, 408), (19, 480), (20, 480), (21, 403),
    (22, 410), (23, 410), (26, 404), (27, 502), (28, 484), (29, 501), (31, 480),
    (34, 503), (38, 503), (41, 503), (42, 503), (47, 503), (55, 403), (57, 403),
    (58, 503), (65, 488), (70, 488), (79, 501), (87, 403), (88, 503), (102, 504),
    (111, 500), (127, 500),
]

# RFC 3398 §8.2.6.1.
RFC3398_SIP_TO_ISUP = [
    (400, 41), (401, 21), (402, 21), (403, 21), (404, 1), (405, 63), (406, 79),
    (407, 21), (408, 102), (410, 22), (413, 127), (414, 127), (415, 79), (416, 127),
    (420, 127), (421, 127), (423, 127), (480, 18), (481, 41), (482, 25), (483, 25),
    (484, 28), (485, 1), (486, 17), (500, 41), (501, 79), (502, 38), (503, 41),
    (504, 102), (505, 127), (513, 127), (600, 17), (603, 21), (604, 1),
]


@pytest.mark.parametrize(("cause", "status"), RFC3398_ISUP_TO_SIP)
def test_isup_cause_to_sip_status_rfc3398_rows(cause: int, status: int) -> None:
    assert sip_status_for_cause(cause) == status


@pytest.mark.parametrize(("status", "cause"), RFC3398_SIP_TO_ISUP)
def test_sip_status_to_isup_cause_rfc3398_rows(status: int, cause: int) -> None:
    assert q850_cause_for_status(status) == cause


def test_tables_hold_exactly_the_rfc_rows() -> None:
    assert {c: s for c, s in ISUP_CAUSE_TO_SIP_STATUS.items() if s is not None} == dict(
        RFC3398_ISUP_TO_SIP)
    assert [c for c, s in ISUP_CAUSE_TO_SIP_STATUS.items() if s is None] == [16]
    assert {s: c for s, c in SIP_STATUS_TO_ISUP_CAUSE.items() if c is not None} == dict(
        RFC3398_SIP_TO_ISUP)
    assert [s for s, c in SIP_STATUS_TO_ISUP_CAUSE.items() if c is None] == [487, 488, 606]


def test_call_rejected_at_the_user_gives_decline() -> None:
    assert sip_status_for_cause(21, location_user=True) == 603
    assert sip_status_for_cause(17, location_user=True) == 486


@pytest.mark.parametrize(("cause", "status"), [
    (16, 480),  # normal call clearing while a final response is still owed
    (0, 480), (6, 480), (25, 480), (30, 480),  # normal event class
    (44, 503), (46, 503),  # resource unavailable
    (50, 503), (63, 503),  # service or option not available
    (66, 501), (69, 501),  # service or option not implemented
    (81, 500), (95, 500),  # invalid message
    (96, 500), (103, 500),  # protocol error
    (112, 500), (126, 500),  # interworking
])
def test_unlisted_cause_takes_its_class_default(cause: int, status: int) -> None:
    assert sip_status_for_cause(cause) == status


@pytest.mark.parametrize(("status", "cause"), [
    (487, 31), (488, 31), (606, 31),  # "---" in the RFC
    (409, 31), (422, 31), (491, 31), (499, 31),
    (506, 41), (580, 41), (599, 41),
    (601, 31), (607, 31), (699, 31),
])
def test_unlisted_status_takes_its_class_default(status: int, cause: int) -> None:
    assert q850_cause_for_status(status) == cause


@pytest.mark.parametrize("status", [100, 180, 200, 302, 399, 700, 0, -1])
def test_only_failure_statuses_map_to_a_cause(status: int) -> None:
    with pytest.raises(LocalProtocolError,
                       match=rf"^only failure statuses 400\.\.699 map to a cause, got {status}$"):
        q850_cause_for_status(status)


@pytest.mark.parametrize("cause", [-1, 128, 1000])
def test_cause_out_of_range_is_our_bug(cause: int) -> None:
    with pytest.raises(LocalProtocolError, match=rf"^Q\.850 cause must be 0\.\.127, got {cause}$"):
        sip_status_for_cause(cause)


@given(st.integers(0, 127))
def test_every_cause_maps_to_a_failure_status(cause: int) -> None:
    assert 400 <= sip_status_for_cause(cause) <= 699


@given(st.integers(400, 699))
def test_every_failure_status_maps_to_a_named_cause(status: int) -> None:
    assert q850_cause_for_status(status) in CAUSE_NAMES


@pytest.mark.parametrize(("cause", "name"), [
    (1, "Unallocated (unassigned) number"), (16, "Normal call clearing"), (17, "User busy"),
    (18, "No user responding"), (19, "No answer from user (user alerted)"),
    (21, "Call rejected"), (27, "Destination out of order"),
    (28, "Invalid number format (address incomplete)"), (31, "Normal, unspecified"),
    (34, "No circuit/channel available"), (38, "Network out of order"),
    (41, "Temporary failure"), (42, "Switching equipment congestion"),
    (102, "Recovery on timer expiry"), (127, "Interworking, unspecified"),
    (13, "Unknown cause 13"),
])
def test_cause_names(cause: int, name: str) -> None:
    assert cause_name(cause) == name


@pytest.mark.parametrize(("cause", "klass"), [
    (0, CauseClass.NORMAL_EVENT), (16, CauseClass.NORMAL_EVENT), (31, CauseClass.NORMAL_EVENT),
    (32, CauseClass.RESOURCE_UNAVAILABLE), (47, CauseClass.RESOURCE_UNAVAILABLE),
    (48, CauseClass.SERVICE_NOT_AVAILABLE), (63, CauseClass.SERVICE_NOT_AVAILABLE),
    (64, CauseClass.SERVICE_NOT_IMPLEMENTED), (80, CauseClass.INVALID_MESSAGE),
    (96, CauseClass.PROTOCOL_ERROR), (111, CauseClass.PROTOCOL_ERROR),
    (112, CauseClass.INTERWORKING), (127, CauseClass.INTERWORKING),
])
def test_cause_classes(cause: int, klass: CauseClass) -> None:
    assert cause_class(cause) is klass


# ---- Reason header ----------------------------------------------------------------

def test_format_reason_with_the_q850_name() -> None:
    assert format_reason(34) == 'Q.850;cause=34;text="No circuit/channel available"'
    assert format_reason(16) == 'Q.850;cause=16;text="Normal call clearing"'


def test_format_reason_with_own_text_and_unnamed_cause() -> None:
    assert format_reason(17, 'busy "here"') == r'Q.850;cause=17;text="busy \"here\""'
    assert format_reason(13) == "Q.850;cause=13"


def test_format_reason_refuses_bad_input() -> None:
    with pytest.raises(LocalProtocolError, match=r"^Q\.850 cause must be 0\.\.127, got 200$"):
        format_reason(200)
    with pytest.raises(LocalProtocolError, match=r"^control character in reason text"):
        format_reason(16, "a\r\nVia: evil")


@pytest.mark.parametrize(("value", "parsed"), [
    ('Q.850;cause=34;text="No circuit/channel available"',
     [ReasonValue("Q.850", 34, "No circuit/channel available")]),
    ("q.850 ; CAUSE = 16", [ReasonValue("Q.850", 16)]),
    ('SIP;cause=200;text="Call completed elsewhere"',
     [ReasonValue("SIP", 200, "Call completed elsewhere")]),
    ('SIP ;cause=487, Q.850;cause=16;text="Normal call clearing"',
     [ReasonValue("SIP", 487), ReasonValue("Q.850", 16, "Normal call clearing")]),
    ('Q.850;text="a, b; c";cause=41', [ReasonValue("Q.850", 41, "a, b; c")]),
    ("Q.850;cause=41;text=Temporary", [ReasonValue("Q.850", 41, "Temporary")]),
    ("Q.850;cause=41;x-vendor;y=1", [ReasonValue("Q.850", 41)]),
    ("preemption;cause=1", [ReasonValue("preemption", 1)]),
    ("Q.850", [ReasonValue("Q.850", None)]),
    ("\tsip;cause=503 ", [ReasonValue("SIP", 503)]),
])
def test_parse_reason(value: str, parsed: list[ReasonValue]) -> None:
    assert parse_reason(value) == parsed


@pytest.mark.parametrize(("value", "message"), [
    ("", "bad Reason protocol ''"),
    ("Q.850;cause=16,", "bad Reason protocol ''"),
    ("Q 850;cause=1", "bad Reason protocol 'Q 850'"),
    ("Q.850;cause=", "bad Reason cause ''"),
    ("Q.850;cause=abc", "bad Reason cause 'abc'"),
    ("Q.850;cause=-1", "bad Reason cause '-1'"),
    ("Q.850;cause=128", "Q.850 cause 128 out of range"),
    ("SIP;cause=99", "SIP cause 99 out of range"),
    ("SIP;cause=700", "SIP cause 700 out of range"),
    ('Q.850;cause=16;text="open',
     "unterminated quoted string in Reason 'Q.850;cause=16;text=\"open'"),
    ('Q.850;cause=16;text="a" "b"', "bad quoted string in Reason '\"a\" \"b\"'"),
    ("Q.850;=3", "bad Reason parameter '=3'"),
    ("Q.850;x=", "empty value for Reason parameter 'x'"),
])
def test_parse_reason_errors_answer_400(value: str, message: str) -> None:
    with pytest.raises(ReasonHeaderError) as info:
        parse_reason(value)
    assert str(info.value) == message
    assert info.value.status == 400
    assert isinstance(info.value, RemoteProtocolError)


@given(st.integers(0, 127), st.one_of(st.none(), st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)))
def test_format_then_parse_round_trips(cause: int, text: str | None) -> None:
    expected_text = text if text is not None else CAUSE_NAMES.get(cause)
    assert parse_reason(format_reason(cause, text)) == [ReasonValue("Q.850", cause,
                                                                    expected_text)]


@given(st.lists(st.builds(ReasonValue, st.sampled_from(["Q.850", "SIP"]),
                          st.integers(100, 127), st.one_of(st.none(), st.text(max_size=10))),
                min_size=1, max_size=4))
def test_serialize_then_parse_round_trips(values: list[ReasonValue]) -> None:
    assert parse_reason(", ".join(v.serialize() for v in values)) == values


@given(st.text(max_size=80))
@example('"\\')
@example('Q.850;text="\\')
@example("Q.850;cause=99999999999999999999")
@example("," * 40)
def test_parse_reason_raises_only_its_own_error(value: str) -> None:
    try:
        values = parse_reason(value)
    except ReasonHeaderError as exc:
        assert exc.status == 400
    else:
        assert values and all(isinstance(v, ReasonValue) for v in values)


def test_q850_cause_from_reason() -> None:
    assert q850_cause_from_reason(parse_reason("SIP;cause=486, Q.850;cause=17")) == 17
    assert q850_cause_from_reason(parse_reason("Q.850, Q.850;cause=34")) == 34
    assert q850_cause_from_reason(parse_reason("SIP;cause=487")) is None
    assert q850_cause_from_reason([]) is None


def test_reason_value_repr_is_one_line() -> None:
    assert repr(ReasonValue("Q.850", 34)) == "ReasonValue('Q.850;cause=34')"
