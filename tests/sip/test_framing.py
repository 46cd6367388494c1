"""Stream framing (RFC 3261 §18.3): byte-at-a-time and random splits equal one-shot,
several messages per read, keepalives, and exact errors for truncated input."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.sip.framing import StreamFramer
from switch.sip.message import ParseError, SipMessage, build_error_response, parse_message

FIXTURES = Path(__file__).parent / "fixtures" / "messages"
MESSAGES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.sip"))]
STREAM = b"".join(MESSAGES)
EXPECTED = [parse_message(m) for m in MESSAGES]

GOOD = (b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP pc.example.com;branch=z9hG4bK1\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n"
        b"Call-ID: abc@pc\r\nCSeq: 1 OPTIONS\r\nContent-Length: 2\r\n\r\nhi")


def feed_all(framer: StreamFramer, chunks: list[bytes]) -> list[SipMessage]:
    out: list[SipMessage] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


def test_one_shot() -> None:
    framer = StreamFramer()
    assert framer.feed(STREAM) == EXPECTED
    assert framer.buffered == 0


def test_one_byte_at_a_time() -> None:
    framer = StreamFramer()
    got = feed_all(framer, [STREAM[i : i + 1] for i in range(len(STREAM))])
    assert got == EXPECTED
    assert framer.buffered == 0


@given(st.lists(st.integers(0, len(STREAM)), max_size=30))
def test_random_splits_equal_one_shot(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in pairwise(bounds)]
    assert feed_all(StreamFramer(), chunks) == EXPECTED


def test_messages_complete_only_with_their_body() -> None:
    framer = StreamFramer()
    assert framer.feed(GOOD[:-1]) == []
    assert framer.buffered == len(GOOD) - 1
    [message] = framer.feed(GOOD[-1:])
    assert message.body == b"hi"


def test_keepalives_between_messages_are_counted_as_pings() -> None:
    framer = StreamFramer()
    got = framer.feed(b"\r\n\r\n" + GOOD + b"\r\n\r\n\r\n\r\n" + GOOD + b"\r\n")
    assert len(got) == 2
    assert framer.pings == 3
    assert framer.buffered == 0


def test_ping_split_byte_by_byte() -> None:
    framer = StreamFramer()
    assert feed_all(framer, [b"\r", b"\n", b"\r", b"\n"]) == []
    assert framer.pings == 1


def test_single_crlf_is_not_a_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == [] and framer.pings == 0
    assert len(framer.feed(GOOD)) == 1 and framer.pings == 0


def test_missing_content_length_is_fatal_but_answerable() -> None:
    framer = StreamFramer()
    data = GOOD.replace(b"Content-Length: 2\r\n", b"")
    with pytest.raises(ParseError) as info:
        framer.feed(data)
    assert str(info.value) == "missing Content-Length on a stream transport"
    assert framer.failed is info.value
    answer = build_error_response(info.value.raw_headers or [], info.value.status)
    assert answer is not None and answer.status == 400
    with pytest.raises(ParseError, match=r"^missing Content-Length on a stream transport$"):
        framer.feed(GOOD)


@pytest.mark.parametrize(("value", "error"), [
    (b"-2", "bad Content-Length '-2' on a stream transport"),
    (b"2, 3", "bad Content-Length '2, 3' on a stream transport"),
])
def test_bad_content_length_is_fatal(value: bytes, error: str) -> None:
    with pytest.raises(ParseError) as info:
        StreamFramer().feed(GOOD.replace(b"Content-Length: 2", b"Content-Length: " + value))
    assert str(info.value) == error


def test_header_section_over_the_limit_is_513() -> None:
    framer = StreamFramer(max_message_bytes=100)
    assert framer.feed(GOOD[:90]) == []
    with pytest.raises(ParseError) as info:
        framer.feed(GOOD[90:120])
    assert str(info.value) == "header section exceeds 100 bytes"
    assert info.value.status == 513
    assert info.value.raw_headers is None
    assert framer.buffered == 0


def test_message_over_the_limit_is_513_and_answerable() -> None:
    big = GOOD.replace(b"Content-Length: 2\r\n\r\nhi", b"Content-Length: 100000\r\n\r\n")
    with pytest.raises(ParseError) as info:
        StreamFramer(max_message_bytes=65535).feed(big)
    assert str(info.value) == "message exceeds 65535 bytes"
    assert info.value.status == 513
    answer = build_error_response(info.value.raw_headers or [], 513)
    assert answer is not None and answer.reason == "Message Too Large"


def test_malformed_but_framed_message_keeps_the_stream_in_step() -> None:
    bad = GOOD.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    framer = StreamFramer()
    events = framer.feed_events(GOOD + bad + GOOD)
    assert [type(e).__name__ for e in events] == ["Request", "ParseError", "Request"]
    error = events[1]
    assert isinstance(error, ParseError)
    assert str(error) == "CSeq method INVITE does not match OPTIONS"
    assert error.raw_headers is not None
    assert framer.failed is None


def test_feed_returns_messages_before_an_error_then_raises_it() -> None:
    bad = GOOD.replace(b"To: <sip:bob@example.com>", b"To: <sip:bob@example.com")
    framer = StreamFramer()
    assert len(framer.feed(GOOD + bad)) == 1
    assert framer.has_pending_error
    with pytest.raises(ParseError, match=r"^bad To header: missing '>' after URI$"):
        framer.feed(b"")
    assert framer.feed(GOOD) != []


def test_truncated_stream_waits_for_more() -> None:
    framer = StreamFramer()
    clipped = GOOD.replace(b"Content-Length: 2", b"Content-Length: 9999")
    assert framer.feed(clipped) == []
    assert framer.buffered == len(clipped)
