"""Hypothesis fuzzing of the SIP parser (STYLE.md §20).

Arbitrary bytes and mutated real messages (byte flips, truncations, insertions,
duplicated lines): parse_message and StreamFramer.feed raise nothing but ParseError.
Whatever parses is fully usable: every structured view the upper layers read can be
built (parse_message validated it), and it survives a serialize/parse round trip.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from switch.sip.errors import RemoteProtocolError
from switch.sip.framing import StreamFramer
from switch.sip.message import ParseError, Request, SipMessage, parse_message

HERE = Path(__file__).parent / "fixtures"
SEEDS = [p.read_bytes() for p in sorted((HERE / "messages").glob("*.sip"))]
SEEDS += [p.read_bytes() for p in sorted((HERE / "rfc4475").glob("*.dat"))]

FUZZ = settings(max_examples=int(os.environ.get("SIP_FUZZ_EXAMPLES", "400")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Bytes that matter to the grammar, so mutations hit separators rather than letters.
INTERESTING = [*b'\r\n \t:;,<>"\\%@=?&[]/0', 0x00, 0x7F, 0x80, 0xC3, 0xFF]


def use_everything(message: SipMessage) -> None:
    """Read every view the upper layers use: none may raise on a parsed message."""
    message.vias  # noqa: B018
    message.top_via  # noqa: B018
    message.from_  # noqa: B018
    message.to  # noqa: B018
    message.cseq  # noqa: B018
    message.call_id  # noqa: B018
    message.contacts  # noqa: B018
    message.routes  # noqa: B018
    message.record_routes  # noqa: B018
    message.max_forwards  # noqa: B018
    message.expires  # noqa: B018
    message.content_type  # noqa: B018
    if isinstance(message, Request):
        message.uri  # noqa: B018
    again = parse_message(message.serialize())
    assert again == message


def check_parse(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError as exc:
        assert isinstance(exc, RemoteProtocolError)
        assert 400 <= exc.status <= 599
        return
    use_everything(message)


def check_stream(data: bytes, cut: int) -> None:
    framer = StreamFramer(max_message_bytes=4096)
    try:
        messages = framer.feed(data[:cut]) + framer.feed(data[cut:]) + framer.feed(b"")
    except ParseError:
        return
    for message in messages:
        use_everything(message)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from(INTERESTING))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8)
                               | st.sampled_from([b"\r\n", b"\r\n ", b",", b";", b'"', b"%"]))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        else:  # duplicate the line containing `at`
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            if end >= 0:
                data[start:start] = data[start : end + 1]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\nCSeq: " + b"1" * 5000 + b" INVITE\r\n\r\n")
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    check_parse(data)


@FUZZ
@given(mutated())
def test_mutated_messages_raise_only_parse_error(data: bytes) -> None:
    check_parse(data)


@FUZZ
@given(st.binary(max_size=2048), st.integers(0, 2048))
@example(b"\r\n" * 3 + b"OPTIONS", 3)
@example(b"X: y\r\nContent-Length: 99999999999999999999999\r\n\r\n", 10)
def test_stream_arbitrary_bytes_raise_only_parse_error(data: bytes, cut: int) -> None:
    check_stream(data, cut)


@FUZZ
@given(mutated(), st.integers(0, 4096))
def test_stream_mutated_messages_raise_only_parse_error(data: bytes, cut: int) -> None:
    check_stream(data, cut)


@FUZZ
@given(st.lists(st.sampled_from(SEEDS[:8]), min_size=1, max_size=4), st.data())
def test_stream_of_good_messages_survives_any_split(batch: list[bytes], data: st.DataObject
                                                   ) -> None:
    stream = b"".join(batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = StreamFramer()
    got: list[SipMessage] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        got.extend(framer.feed(stream[last:cut]))
        last = cut
    assert got == [parse_message(m) for m in batch]
